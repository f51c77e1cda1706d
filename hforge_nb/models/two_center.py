"""The two-center (Slater-Koster) part of off-site blocks, fitted to data by least squares.

An integral that depends only on the two atoms of a block, such as the
overlap of two atomic orbitals, is a function of the pair vector r alone.
Every irrep (shell pair p, q; L) of such a block is then f_pqL(|r|) Y_L(r̂),
and vanishes when L's parity differs from that of l_p + l_q.  In GPAW's
PAW overlap that form holds to about 1e-5 (the rest is the three-center
part of the projector corrections); in H it is the distance trend of every
block, on which the environment acts.

:class:`TwoCenterPrior` holds f on a grid of ``STEP`` Å (or ``step``), linear between
grid points, fitted once to reference blocks (:meth:`TwoCenterPrior.fit`,
closed form, not trained); the models learn what it leaves.  It is
multiplied by MACE's polynomial envelope, so that blocks still vanish
smoothly at the cutoff.  Y_L is e3nn's (component normalization), so the
prior is equivariant with the rest.
"""

from __future__ import annotations

import numpy as np
import torch

from .._compat import import_mace_modules, import_o3
from ..basis import SpeciesBasis
from ..block_irreps import block_decomposition, component_starts


class TwoCenterPrior(torch.nn.Module):
    """Irreps ``[n, dim]`` of off-site blocks of one species pair from pair vectors ``[n, 3]`` (Å).

    Parameters
    ----------
    row, col : SpeciesBasis
        Species of the block's rows (atom i) and columns (atom j).
    cutoff : float
        Pair distance (Å) where the prior reaches zero (with its first
        derivatives, through the envelope).
    step : float, optional
        Grid spacing (Å) of the radial table; ``STEP`` by default.

    Examples
    --------
    >>> from hforge_nb.basis import SpeciesBasis, dzp_shells
    >>> b = SpeciesBasis("B", 5, dzp_shells(2, (4.0,) * 5))
    >>> prior = TwoCenterPrior(b, b, cutoff=9.0)
    >>> int(prior.allowed.sum()), prior.table.shape[1]  # components of the two-center form, block dim
    (127, 169)
    """

    STEP = 0.05  # Å between grid points
    SMOOTHNESS = 1e-5  # second-difference penalty, relative to the data per grid point
    ENVELOPE_POWER = 5  # of MACE's PolynomialCutoff

    def __init__(self, row: SpeciesBasis, col: SpeciesBasis, cutoff: float, step: float | None = None):
        super().__init__()
        self.step = self.STEP if step is None else step
        parts = block_decomposition(row, col)
        sh_index, allowed, part_of = _component_layout(parts)
        self.n_parts = len(parts)
        self.lmax = max(part.l for part in parts)
        self.register_buffer("sh_index", torch.as_tensor(sh_index))  # [dim] column of Y_L^m
        self.register_buffer("allowed", torch.as_tensor(allowed))  # [dim] bool, parity (-1)^L
        self.register_buffer("part_of", torch.as_tensor(part_of))  # [dim] which (p, q, L)
        first = np.unique(part_of, return_index=True)[1]
        self.register_buffer("part_first", torch.as_tensor(first), persistent=False)  # [parts] a component of each
        n_grid = int(np.ceil(cutoff / self.step)) + 2
        self.envelope = import_mace_modules().radial.PolynomialCutoff(cutoff, self.ENVELOPE_POWER)
        self.register_buffer("table", torch.zeros(n_grid, len(sh_index)))  # [grid, dim] f at the grid

    def harmonics(self, vectors: torch.Tensor) -> torch.Tensor:
        """``[n, dim]`` Y_L^m(r̂) of every irrep component, zero where the two-center form forbids it."""
        return self._all_harmonics(vectors) * self.allowed

    def _all_harmonics(self, vectors: torch.Tensor) -> torch.Tensor:
        """``[n, dim]`` Y_L^m(r̂) of every irrep component."""
        o3 = import_o3()
        sh = o3.spherical_harmonics(list(range(self.lmax + 1)), vectors, normalize=True, normalization="component")
        return sh[:, self.sh_index]

    def radial(self, distances: torch.Tensor) -> torch.Tensor:
        """``[n, dim]`` f(|r|) of every component: linear between grid points, times the envelope.

        ``distances`` ``[n]`` Å.  The components of one (p, q, L) share their
        column of the table, so each part is interpolated once.
        """
        per_part = linear_on_grid(self.table[:, self.part_first], distances, self.step)  # [n, parts]
        return per_part[:, self.part_of] * self.envelope(distances.unsqueeze(1))

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.radial(vectors.norm(dim=1)) * self._all_harmonics(vectors)  # f = 0 where forbidden

    @torch.no_grad()
    def fit(self, irreps: torch.Tensor, vectors: torch.Tensor) -> None:
        """Least-squares f on the grid from reference irreps ``[n, dim]`` at pair vectors ``[n, 3]`` Å.

        Each block's f_pqL is its projection on Y_L (sum over m of x_m Y_L^m
        over 2L + 1); a small second-difference penalty fixes grid points
        without data and keeps f smooth.
        """
        if len(irreps) == 0:
            return
        y = self.harmonics(vectors).double()
        projected = torch.zeros(len(irreps), self.n_parts, dtype=torch.float64)
        projected.index_add_(1, self.part_of, irreps.double() * y)  # [n, parts] sum_m x_m Y^m
        projected /= torch.bincount(self.part_of, minlength=self.n_parts).double()
        distances = vectors.norm(dim=1)
        envelope = self.envelope(distances.unsqueeze(1)).double().numpy()  # [n, 1]
        n_grid = len(self.table)
        design = hat_functions(distances.double().numpy(), self.step, n_grid) * envelope
        penalty = smoothness_penalty(n_grid, 1, 0, self.SMOOTHNESS * len(design) / n_grid)
        coefficients = penalized_least_squares(design, projected.numpy(), penalty)  # [grid, parts]
        table = coefficients[:, self.part_of.numpy()] * self.allowed.numpy()
        self.table.copy_(torch.as_tensor(table, dtype=self.table.dtype))


def linear_on_grid(table: torch.Tensor, distances: torch.Tensor, step: float) -> torch.Tensor:
    """``[n, ...]`` values of ``table`` ``[n_grid, ...]`` (given every ``step`` Å from 0), linear in ``distances`` ``[n]`` Å.

    Distances beyond the grid take its last value.
    """
    position = (distances / step).clamp(0, len(table) - 1.001)
    low = position.floor().long()
    weight = (position - low).reshape(-1, *[1] * (table.dim() - 1))
    return table[low] * (1 - weight) + table[low + 1] * weight


def _component_layout(parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per irreps component (layout of :func:`.block_irreps`): Y column, parity allowed, part index."""
    dim = sum(2 * part.l + 1 for part in parts)
    sh_index, allowed, part_of = np.zeros(dim, np.int64), np.zeros(dim, bool), np.zeros(dim, np.int64)
    for k, (part, start) in enumerate(zip(parts, component_starts(parts))):
        span = slice(start, start + 2 * part.l + 1)
        sh_index[span] = part.l**2 + np.arange(2 * part.l + 1)
        allowed[span] = part.parity == (-1) ** part.l
        part_of[span] = k
    return sh_index, allowed, part_of


def hat_functions(distances: np.ndarray, step: float, n_grid: int) -> np.ndarray:
    """``[n, n_grid]`` linear-interpolation weights of ``distances`` (Å) on a grid of ``step``."""
    position = np.clip(distances / step, 0, n_grid - 1.001)
    low = np.floor(position).astype(np.int64)
    weights = np.zeros((len(distances), n_grid))
    rows = np.arange(len(distances))
    weights[rows, low] = 1 - (position - low)
    weights[rows, low + 1] = position - low
    return weights


def smoothness_penalty(n_grid: int, n_tables: int, n_free: int, strength: float) -> np.ndarray:
    """``[n_tables * (n_grid - 2), n_tables * n_grid + n_free]`` second differences of each table, times sqrt(strength).

    The columns are ``n_tables`` radial tables of ``n_grid`` points side
    by side, then ``n_free`` unpenalized coefficients (constants).
    """
    second_difference = np.diff(np.eye(n_grid), 2, axis=0)
    penalty = np.kron(np.eye(n_tables), second_difference)
    return np.sqrt(strength) * np.hstack([penalty, np.zeros((len(penalty), n_free))])


def penalized_least_squares(design: np.ndarray, targets: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """``[n_columns, k]`` argmin |design c - targets|^2 + |penalty c|^2 for ``targets`` ``[n, k]``."""
    stacked = np.vstack([design, penalty])
    padded = np.vstack([targets, np.zeros((len(penalty), targets.shape[1]))])
    return np.linalg.lstsq(stacked, padded, rcond=None)[0]
