"""Several e3nn ``o3.Linear`` maps of the same input evaluated at once, one matrix product per irrep type.

e3nn's ``Linear`` slices its input once per input irrep and multiplies
each slice by its own weights; on the wide edge messages of the readouts
(dozens of input irreps) the slicing costs more than the products, above
all in the backward pass, where every slice's gradient is a zero-filled
copy of the whole input.  :class:`GroupedLinear` computes the same outputs
from the same weights with one gather of the input, one product per irrep
type (all input irreps of that type against all output irreps of that
type, of every map together) and one gather of the result.  The maps keep
their own parameters: their weights are passed in at every call, so
checkpoints, initialisation and e3nn's path normalization stay theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch


class GroupedLinear(torch.nn.Module):
    """Evaluates bias-free e3nn ``o3.Linear`` maps ``linears`` of one input at once.

    Parameters
    ----------
    linears : sequence of e3nn.o3.Linear
        Maps with internal, shared weights, no biases and the same
        ``irreps_in``.  Only their layout is read here; :meth:`forward`
        takes their weights.

    Examples
    --------
    >>> import torch
    >>> from hforge_nb._compat import import_o3
    >>> o3 = import_o3()
    >>> maps = [o3.Linear("4x0e+2x1o+3x0e", "2x0e+1x1o"), o3.Linear("4x0e+2x1o+3x0e", "5x1o")]
    >>> grouped = GroupedLinear(maps)
    >>> x = torch.randn(6, maps[0].irreps_in.dim)
    >>> outputs = grouped(x, [m.weight for m in maps])
    >>> all(torch.allclose(y, m(x), atol=1e-6) for y, m in zip(outputs, maps))
    True
    """

    def __init__(self, linears: Sequence):
        super().__init__()
        irreps_in = linears[0].irreps_in
        for linear in linears:
            _check_supported(linear, irreps_in)
        types = list(dict.fromkeys(ir for _, ir in irreps_in))  # irrep types in order of first appearance
        in_columns, self.in_sizes, self._dims = [], [], []
        for ir in types:
            columns = [torch.arange(s.start, s.stop) for s, (_, ir_in) in zip(irreps_in.slices(), irreps_in)
                       if ir_in == ir]
            in_columns.append(torch.cat(columns))
            self.in_sizes.append(len(in_columns[-1]))
            self._dims.append(ir.dim)
        self.register_buffer("in_columns", torch.cat(in_columns), persistent=False)  # [sum of in_sizes]
        layout = _output_layout(linears, types)
        for k, (index, scale) in enumerate(zip(layout.weight_index, layout.path_weight)):
            self.register_buffer(f"weight_index_{k}", index, persistent=False)  # [m_in, m_out] long
            self.register_buffer(f"path_weight_{k}", scale, persistent=False)  # [m_in, m_out]
        self.register_buffer("out_columns", layout.out_columns, persistent=False)  # [sum of out_sizes] long
        self.out_sizes = [linear.irreps_out.dim for linear in linears]

    def forward(self, features: torch.Tensor, weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each map's output ``[n, irreps_out.dim]`` for ``features`` ``[n, irreps_in.dim]``.

        ``weights`` are the maps' ``weight`` parameters, in the order of ``linears``.
        """
        flat = torch.cat([*weights, weights[0].new_zeros(1)])  # the last entry: absent paths
        pieces = features.index_select(1, self.in_columns).split(self.in_sizes, dim=1)
        products = []
        for k, (piece, dim) in enumerate(zip(pieces, self._dims)):
            matrix = flat[getattr(self, f"weight_index_{k}")] * getattr(self, f"path_weight_{k}")  # [m_in, m_out]
            m_in, m_out = matrix.shape
            if m_out:
                product = torch.einsum("nud,uw->nwd", piece.reshape(len(piece), m_in, dim), matrix)  # [n, m_out, dim]
                products.append(product.reshape(len(piece), m_out * dim))
        products.append(features.new_zeros(len(features), 1))  # outputs no path reaches
        return list(torch.cat(products, dim=1).index_select(1, self.out_columns).split(self.out_sizes, dim=1))


class _OutputLayout(NamedTuple):
    """Per irrep type: the weight matrix's positions in the maps' joined weights and their path weights;
    and for every output column of the maps side by side, its column in the joined products."""

    weight_index: list[torch.Tensor]  # per type [m_in, m_out] long
    path_weight: list[torch.Tensor]  # per type [m_in, m_out]
    out_columns: torch.Tensor  # [sum of the maps' output dims] long


def _check_supported(linear, irreps_in) -> None:
    if linear.irreps_in != irreps_in:
        raise ValueError(f"GroupedLinear needs maps of one input; got {linear.irreps_in} and {irreps_in}")
    if not (linear.internal_weights and linear.shared_weights) or linear.bias_numel:
        raise ValueError("GroupedLinear takes maps with internal shared weights and no biases")
    pairs = [(ins.i_in, ins.i_out) for ins in linear.instructions]
    if len(set(pairs)) != len(pairs):
        raise ValueError("GroupedLinear takes maps with at most one path per input and output irrep")


def _output_layout(linears, types) -> _OutputLayout:
    """The :class:`_OutputLayout` of ``linears`` over the input's irrep ``types`` (see :class:`GroupedLinear`)."""
    irreps_in = linears[0].irreps_in
    in_row = _rows_per_type(irreps_in, types)  # first row of each input irrep in its type's matrix
    outputs = [(a, i_out, mul, ir) for a, linear in enumerate(linears)
               for i_out, (mul, ir) in enumerate(linear.irreps_out)]
    out_row = {}  # (map, i_out) -> first column of its type's matrix
    widths = {ir: 0 for ir in types}
    for a, i_out, mul, ir in outputs:
        if ir in widths:
            out_row[a, i_out], widths[ir] = widths[ir], widths[ir] + mul
    absent = sum(linear.weight_numel for linear in linears)
    heights = {ir: sum(mul for mul, ir_in in irreps_in if ir_in == ir) for ir in types}
    index = {ir: torch.full((heights[ir], widths[ir]), absent, dtype=torch.long) for ir in types}
    scale = {ir: torch.zeros(heights[ir], widths[ir]) for ir in types}
    offset = 0
    for a, linear in enumerate(linears):
        for ins in linear.instructions:
            mul_in, mul_out = ins.path_shape
            ir = irreps_in[ins.i_in].ir
            rows = slice(in_row[ins.i_in], in_row[ins.i_in] + mul_in)
            cols = slice(out_row[a, ins.i_out], out_row[a, ins.i_out] + mul_out)
            index[ir][rows, cols] = offset + torch.arange(mul_in * mul_out).reshape(mul_in, mul_out)
            scale[ir][rows, cols] = ins.path_weight
            offset += mul_in * mul_out
    return _OutputLayout([index[ir] for ir in types], [scale[ir] for ir in types],
                         _output_columns(linears, types, widths, out_row))


def _rows_per_type(irreps_in, types) -> dict[int, int]:
    """The first row of every input irrep in the matrix of its type (inputs of a type stacked in order)."""
    rows, used = {}, {ir: 0 for ir in types}
    for i, (mul, ir) in enumerate(irreps_in):
        rows[i], used[ir] = used[ir], used[ir] + mul
    return rows


def _output_columns(linears, types, widths, out_row) -> torch.Tensor:
    """``[total output dim]`` the column of the joined products ``[n, sum_t width_t * dim_t + 1]`` that holds
    each output column of the maps side by side; outputs of a type the input lacks read the last (zero) one."""
    base, start = {}, 0
    for ir in types:
        base[ir], start = start, start + widths[ir] * ir.dim
    columns = []
    for a, linear in enumerate(linears):
        for i_out, (mul, ir) in enumerate(linear.irreps_out):
            if ir not in base:
                columns.append(torch.full((mul * ir.dim,), start))
                continue
            first = base[ir] + out_row[a, i_out] * ir.dim
            columns.append(first + torch.arange(mul * ir.dim))
    return torch.cat(columns)
