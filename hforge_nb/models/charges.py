"""Partial charges from node features, and the electrostatic term they add to H.

An atom's charge is a linear function of its invariant node features, one
per species, made neutral per structure (:func:`.electrostatics.neutralized`).
The site potentials phi of the charges (:func:`.electrostatics.site_potentials`)
shift H as a self-consistent-charge tight-binding model does:

    H_ij(R) += -(phi_i + phi_j) / 2 * S_ij(R),

the energy -e phi of an electron in the potential, taken as an average over
the two atoms of each block so that H stays Hermitian.  It is a scalar
times S, so H keeps S's rotation properties.  The weights start at zero: a
new model's H is that of the same model without the term.
"""

from __future__ import annotations

import ase
import torch

from ..electrostatics import coulomb_matrix, neutralized, site_potentials
from ..model_graph import ModelGraph


class PartialCharges(torch.nn.Module):
    """Charges ``[n_atoms]`` (e) of a graph's atoms from their invariant features, neutral per structure.

    Parameters
    ----------
    n_species : int
        Species of the basis (rows of the weights).
    scalar_index : torch.Tensor
        ``[n_scalars]`` long, positions of the invariant features in the node features.

    Examples
    --------
    >>> charges = PartialCharges(2, torch.tensor([0, 1]))
    >>> charges.parameter_count()
    6
    """

    def __init__(self, n_species: int, scalar_index: torch.Tensor):
        super().__init__()
        self.register_buffer("scalar_index", scalar_index)
        self.weight = torch.nn.Parameter(torch.zeros(n_species, len(scalar_index)))  # [n_species, n_scalars] e
        self.bias = torch.nn.Parameter(torch.zeros(n_species))  # [n_species] e

    def forward(self, graph: ModelGraph, features: torch.Tensor) -> torch.Tensor:
        """``[n_atoms]`` charges (e) of the graph's atoms from their ``features`` ``[n_atoms, F]``, neutral per structure."""
        return neutralized(self.raw(graph.species_index, features), graph.batch, len(graph.ptr) - 1)

    def raw(self, species_index: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``[n_atoms]`` charges (e) of atoms of ``species_index`` ``[n_atoms]`` before neutralization."""
        scalars = features[:, self.scalar_index]  # [n_atoms, n_scalars]
        return (scalars * self.weight[species_index]).sum(dim=1) + self.bias[species_index]

    def potentials_of_structure(self, atoms: ase.Atoms, species_index: torch.Tensor, features: torch.Tensor,
                     coulomb: tuple[float, float]) -> torch.Tensor:
        """``[n_atoms]`` site potentials (V) of one structure's neutral charges, ``coulomb`` = (cutoff Å, damping 1/Å).

        What :func:`graph_potentials` gives for a graph, for a structure
        whose node features were computed without one (large structures).
        """
        one_structure = torch.zeros(len(species_index), dtype=torch.long)
        charges = neutralized(self.raw(species_index, features), one_structure, 1)
        index, values = coulomb_matrix(atoms, *coulomb)
        return site_potentials(charges, torch.as_tensor(index), torch.as_tensor(values, dtype=charges.dtype))

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def graph_potentials(graph: ModelGraph, charges: torch.Tensor) -> torch.Tensor:
    """``[n_atoms]`` site potentials phi (V) of a graph's atoms from their ``charges`` ``[n_atoms]`` e."""
    if graph.coulomb_index.shape[1] == 0:
        raise ValueError("this graph has no Coulomb matrix: build it with the model's coulomb settings (model.graph)")
    return site_potentials(charges, graph.coulomb_index, graph.coulomb_values.to(charges.dtype))
