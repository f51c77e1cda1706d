"""How an orbital block decomposes into irreps, and back.

The block H_ij between an atom with shells (l_1, l_2, ...) and one with
shells (l'_1, l'_2, ...) is made of sub-blocks [2l+1, 2l'+1], one per shell
pair.  Under a rotation a sub-block turns as D^l X D^l'^T, which is the
tensor product l x l' = |l-l'| + ... + (l+l'), parity (-1)^(l+l').  An
equivariant model therefore predicts, per shell pair, one irrep of every
such L and assembles the sub-block with Clebsch-Gordan (Wigner 3j)
coefficients.

:func:`block_decomposition` lists those irreps; :func:`block_change_of_basis`
gives the orthogonal matrix U with ``block = irreps @ U`` (block flattened
row-major, in SIESTA's orbital order) and so ``irreps = block @ U.T``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .basis import SpeciesBasis
from .rotations import siesta_from_e3nn


@dataclass(frozen=True)
class BlockComponent:
    """One irrep of one shell pair of a block.

    Attributes
    ----------
    row_shell, col_shell : int
        Shell indices within the row and column species.
    l : int
        Angular momentum L of the irrep, |l_row - l_col| <= L <= l_row + l_col.
    parity : int
        +1 or -1, (-1)^(l_row + l_col).
    """

    row_shell: int
    col_shell: int
    l: int
    parity: int

    @property
    def irrep(self) -> str:
        """e3nn label, for example ``'2e'``."""
        return f"{self.l}{'e' if self.parity == 1 else 'o'}"


def block_decomposition(row: SpeciesBasis, col: SpeciesBasis) -> list[BlockComponent]:
    """Every (shell pair, L) of a ``row`` x ``col`` block, shell pairs row-major.

    Examples
    --------
    >>> from hforge_nb.basis import dzp_shells
    >>> b = SpeciesBasis("B", 5, dzp_shells(2, (4.0,) * 5))
    >>> parts = block_decomposition(b, b)
    >>> len(parts), sum(2 * p.l + 1 for p in parts)
    (45, 169)
    """
    parts = []
    for p, shell_p in enumerate(row.shells):
        for q, shell_q in enumerate(col.shells):
            parity = (-1) ** (shell_p.l + shell_q.l)
            for l in range(abs(shell_p.l - shell_q.l), shell_p.l + shell_q.l + 1):
                parts.append(BlockComponent(p, q, l, parity))
    return parts


def block_irreps(row: SpeciesBasis, col: SpeciesBasis) -> str:
    """The irreps of a block, merged and sorted (the order of :func:`block_change_of_basis`).

    Examples
    --------
    >>> from hforge_nb.basis import dzp_shells
    >>> b = SpeciesBasis("B", 5, dzp_shells(2, (4.0,) * 5))
    >>> block_irreps(b, b)
    '9x0e+5x1e+12x1o+9x2e+4x2o+1x3e+4x3o+1x4e'
    """
    counts: dict[tuple[int, int], int] = {}
    for part in block_decomposition(row, col):
        counts[(part.l, -part.parity)] = counts.get((part.l, -part.parity), 0) + 1
    return "+".join(
        f"{mul}x{l}{'e' if -sign == 1 else 'o'}" for (l, sign), mul in sorted(counts.items())
    )


def _wigner_3j(l1: int, l2: int, l3: int) -> np.ndarray:
    """``[2l1+1, 2l2+1, 2l3+1]`` e3nn's real Wigner 3j symbol (unit Frobenius norm)."""
    from ._compat import import_o3

    import torch

    return import_o3().wigner_3j(l1, l2, l3, dtype=torch.float64).numpy()


def _shell_slices(species: SpeciesBasis) -> list[slice]:
    starts = np.concatenate([[0], np.cumsum([s.n_orbitals for s in species.shells])])
    return [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]


@functools.cache
def block_change_of_basis(row: SpeciesBasis, col: SpeciesBasis) -> np.ndarray:
    """``[dim, n_row * n_col]`` orthogonal U: a block (row-major, SIESTA order) is ``irreps @ U``.

    ``irreps`` is laid out as e3nn lays out :func:`block_irreps` (irrep by
    irrep, each ``[mul, 2L+1]``).  A sub-block (p, q) is
    C_p^T (sum_L sqrt(2L+1) w3j(l_p, l_q, L) x_L) C_q, with C the change from
    e3nn's real harmonics to SIESTA's (:func:`.rotations.siesta_from_e3nn`).
    """
    parts = block_decomposition(row, col)
    rows, cols = _shell_slices(row), _shell_slices(col)
    change = np.zeros((sum(2 * p.l + 1 for p in parts), row.n_orbitals, col.n_orbitals))
    for part, start in zip(parts, component_starts(parts)):
        l_p, l_q = row.shells[part.row_shell].l, col.shells[part.col_shell].l
        coupling = np.sqrt(2 * part.l + 1) * _wigner_3j(l_p, l_q, part.l)  # [2lp+1, 2lq+1, 2L+1]
        sub = np.einsum("am,abM,bn->Mmn", siesta_from_e3nn(l_p), coupling, siesta_from_e3nn(l_q))
        change[start : start + 2 * part.l + 1, rows[part.row_shell], cols[part.col_shell]] = sub
    return change.reshape(len(change), -1)


def component_starts(parts: list[BlockComponent]) -> list[int]:
    """Where every component of :func:`block_decomposition` starts in the irreps vector of :func:`block_irreps`."""
    order = sorted(range(len(parts)), key=lambda k: (parts[k].l, -parts[k].parity, k))
    starts, position = [0] * len(parts), 0
    for k in order:
        starts[k] = position
        position += 2 * parts[k].l + 1
    return starts
