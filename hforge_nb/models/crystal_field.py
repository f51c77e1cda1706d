"""The neighbour-sum ("crystal-field") part of on-site blocks, fitted to data by least squares.

Atom i's on-site overlap block is its orbitals' own overlap plus, in PAW,
one projector correction per neighbour j: <φ_μ|p^j> ΔS^j <p^j|φ_ν>.  Each
correction depends only on the vector r_ij, so every irrep (shell pair
p, q; L) of the block is

    c_pqL δ_L0 + Σ_j f_pqL^(Z_j)(|r_ij|) Y_L(r̂_ij),

linear in unknown radial functions, one per neighbour species.  The same
form is the first, two-body term of the neighbours' potentials in the
on-site H.  :class:`CrystalFieldPrior` holds f on a grid of ``STEP`` Å
(one :class:`.TwoCenterPrior` table per neighbour species) and fits the
constant and every f at once (:meth:`CrystalFieldPrior.fit`, closed form,
not trained); the models learn what it leaves.  A sum over neighbours of
equivariant terms, it is equivariant.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..basis import SpeciesBasis
from .two_center import TwoCenterPrior, hat_functions, penalized_least_squares, smoothness_penalty


class Neighbours(NamedTuple):
    """The pairs i -> j(R) from the atoms of one species to neighbours of species ``species``.

    ``rows`` ``[n]`` long indexes the centre atoms (rows of the on-site
    irreps); ``vectors`` ``[n, 3]`` Å point from i to the image of j.
    """

    species: str
    rows: torch.Tensor
    vectors: torch.Tensor


class CrystalFieldPrior(torch.nn.Module):
    """Per-pair contributions ``[n, dim]`` to the on-site irreps of one species, from its neighbours.

    Parameters
    ----------
    center : SpeciesBasis
        Species of the on-site blocks.
    neighbour_species : sequence of str
        Species whose neighbours contribute, one radial table each.
    cutoff : float
        Pair distance (Å) beyond which neighbours contribute nothing (with
        MACE's envelope, as in :class:`.TwoCenterPrior`).

    Examples
    --------
    >>> from hforge_nb.basis import SpeciesBasis, dzp_shells
    >>> b = SpeciesBasis("B", 5, dzp_shells(2, (4.0,) * 5))
    >>> prior = CrystalFieldPrior(b, ["B", "N"], cutoff=9.0)
    >>> prior("N", torch.ones(2, 3)).shape
    torch.Size([2, 169])
    """

    STEP = 0.25  # Å between grid points: neighbours are few, and the sums smooth over them
    SMOOTHNESS = 1e-3  # second-difference penalty, relative to the data per grid point

    def __init__(self, center: SpeciesBasis, neighbour_species, cutoff: float):
        super().__init__()
        self.terms = torch.nn.ModuleDict({
            species: TwoCenterPrior(center, center, cutoff, step=self.STEP) for species in neighbour_species
        })

    def forward(self, species: str, vectors: torch.Tensor) -> torch.Tensor:
        """``[n, dim]`` f(|r|) Y_L(r̂) of pairs to neighbours of ``species`` at ``vectors`` ``[n, 3]`` Å.

        Summing them per centre atom gives the prior (:meth:`sums`).
        """
        return self.terms[species](vectors)

    def sums(self, neighbours: list[Neighbours], n_atoms: int, dtype: torch.dtype) -> torch.Tensor:
        """``[n_atoms, dim]`` the prior of every centre atom: its pairs' contributions summed."""
        dim = next(iter(self.terms.values())).table.shape[1]
        total = torch.zeros(n_atoms, dim, dtype=dtype)
        for group in neighbours:
            total.index_add_(0, group.rows, self(group.species, group.vectors).to(dtype))
        return total

    @torch.no_grad()
    def fit(self, irreps: torch.Tensor, neighbours: list[Neighbours]) -> torch.Tensor:
        """Least-squares constant and radial tables from on-site irreps ``[n_atoms, dim]``.

        One solve per L: the design (the sums over neighbours of hat
        functions times Y_L^m, for every species and grid point, and a
        constant for L = 0) is shared by every shell pair of that L.
        Returns the fitted constant ``[dim]``, non-zero on L = 0 components.
        """
        first = next(iter(self.terms.values()))
        constant = torch.zeros(irreps.shape[1], dtype=torch.float64)
        tables = {species: np.zeros(tuple(term.table.shape)) for species, term in self.terms.items()}
        for l in range(first.lmax + 1):
            components = _components_of_l(first, l)  # [n_parts_l, 2l + 1]
            if len(components) == 0:
                continue
            design = self._design(components[0], neighbours, len(irreps))  # [n_atoms * (2l+1), n_columns]
            targets = irreps.double()[:, components].permute(0, 2, 1).reshape(-1, len(components))
            n_grid = len(first.table)
            penalty = smoothness_penalty(n_grid, len(self.terms), int(l == 0),
                                         self.SMOOTHNESS * len(design) / n_grid)
            solution = penalized_least_squares(design, targets.numpy(), penalty)  # [n_columns, n_parts_l]
            for k, species in enumerate(self.terms):
                tables[species][:, components] = solution[k * n_grid:(k + 1) * n_grid, :, None]
            if l == 0:
                constant[components[:, 0]] = torch.as_tensor(solution[-1])
        for species, term in self.terms.items():
            term.table.copy_(torch.as_tensor(tables[species], dtype=term.table.dtype))
        return constant

    def _design(self, columns: np.ndarray, neighbours: list[Neighbours], n_atoms: int) -> np.ndarray:
        """``[n_atoms * (2l+1), n_species * n_grid (+1 for l = 0)]``: neighbour sums of hat functions times Y_l^m.

        ``columns`` ``[2l+1]`` are the irreps components of one part of angular momentum l.
        """
        n_grid = len(next(iter(self.terms.values())).table)
        blocks = []
        for species, term in self.terms.items():
            summed = np.zeros((n_atoms, len(columns), n_grid))
            for group in (g for g in neighbours if g.species == species):
                vectors = group.vectors.double()
                distances = vectors.norm(dim=1)
                y = term.harmonics(vectors)[:, columns].numpy()  # [n, 2l+1]
                radial = hat_functions(distances.numpy(), term.step, n_grid) * term.envelope(
                    distances.unsqueeze(1)).numpy()  # [n, n_grid]
                np.add.at(summed, group.rows.numpy(), y[:, :, None] * radial[:, None, :])
            blocks.append(summed.reshape(-1, n_grid))
        if len(columns) == 1:  # l = 0: the constant
            blocks.append(np.ones((n_atoms, 1)))
        return np.hstack(blocks)


def _components_of_l(prior: TwoCenterPrior, l: int) -> np.ndarray:
    """``[n_parts, 2l+1]`` irreps columns of the allowed parts of angular momentum ``l``."""
    allowed = prior.allowed.numpy()
    sh_index = prior.sh_index.numpy()
    starts = np.flatnonzero(allowed & (sh_index == l * l))  # first component (m = -l) of each part
    return starts[:, None] + np.arange(2 * l + 1)[None, :]

