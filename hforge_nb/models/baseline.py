"""The non-equivariant baseline: MACE descriptors and MLP heads that emit whole blocks.

In the spirit of published MLP-head Hamiltonian models: every component of
an atom's MACE features enters a plain MLP as a number, pair features are the
Cartesian vector r_ij and a radial basis of |r_ij|, and the heads output the
13 x 13 (or n_i x n_j) block's values directly; off-site H blocks add an MLP's
sum over the atoms near both atoms of the pair (:class:`.BaselineThreeCenter`).  Nothing ties the output to
rotations, so the model must learn them from data; random rotations of the
training structures (:func:`.rotations.random_rotation`) make the comparison
with :class:`.EquivariantModel` fair.  Hermiticity, the on-site symmetry
and the smooth cutoff are imposed exactly as in the equivariant model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .._compat import import_mace_modules
from ..basis import Basis
from ..model_graph import ModelGraph
from .base import HamiltonianModel, PairIrreps, block_groups, network_cutoff_of
from .charges import PartialCharges
from .local_potential import LocalPotential
from .descriptor import DescriptorConfig, MACEDescriptor, building_in
from .three_center import BaselineThreeCenter


@dataclass(frozen=True)
class BaselineConfig(DescriptorConfig):
    """Hyperparameters of :class:`BaselineModel` (descriptor fields: :class:`.DescriptorConfig`).

    Attributes
    ----------
    edge_cutoff : float
        Off-site blocks are predicted for pairs closer than this (Å).
    hidden : int
        Width of the MLP heads (:func:`baseline_config_for_budget` picks it
        to match a parameter count).
    depth : int
        Hidden layers of every MLP.
    num_radial : int
        Bessel functions of |r_ij| on [0, network cutoff] (:attr:`.HamiltonianModel.network_cutoff`).
    """

    edge_cutoff: float = 9.0
    hidden: int = 64
    depth: int = 2
    num_radial: int = 8


def mlp(n_in: int, hidden: int, depth: int, n_out: int) -> torch.nn.Sequential:
    """``depth`` hidden SiLU layers of width ``hidden``, then a linear output."""
    layers, width = [], n_in
    for _ in range(depth):
        layers += [torch.nn.Linear(width, hidden), torch.nn.SiLU()]
        width = hidden
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, n_out))


class BaselineHeads(torch.nn.Module):
    """MLP heads of one matrix (H or S): on-site per species, a shared pair trunk, linears per species pair.

    The pair trunk feeds the block i -> j(R) and j's contribution to i's
    on-site block (summed over neighbours), as in the equivariant model.
    """

    def __init__(self, config: BaselineConfig, basis: Basis, n_features: int):
        super().__init__()
        groups = block_groups(basis)
        dims = {key: _dim(basis, row, col) for key, (row, col) in groups.items()}
        self.on_site = torch.nn.ModuleDict({
            key: mlp(n_features, config.hidden, config.depth, dim) for key, dim in dims.items() if "-" not in key})
        n_pair = 2 * n_features + 3 + config.num_radial
        self.trunk = torch.nn.Sequential(mlp(n_pair, config.hidden, config.depth, config.hidden), torch.nn.SiLU())
        self.off_site = torch.nn.ModuleDict({
            key: torch.nn.Linear(config.hidden, dim) for key, dim in dims.items() if "-" in key})
        self.neighbour = torch.nn.ModuleDict({
            key: torch.nn.Linear(config.hidden, dims[groups[key][0]]) for key in dims if "-" in key})


def _dim(basis: Basis, row: str, col: str) -> int:
    return basis[row].n_orbitals * basis[col].n_orbitals


class BaselineModel(HamiltonianModel):
    """MACE descriptors + non-equivariant MLP heads for H and S.

    The heads' outputs pass through the same :class:`.BlockOutput` as the
    equivariant model's (an orthogonal change of basis with the same fitted
    scales), which changes nothing the MLP could not learn but keeps the
    two models' targets identical.
    """

    kind = "baseline"

    def __init__(self, config: BaselineConfig, basis: Basis, dtype: torch.dtype = torch.float32):
        with building_in(dtype):
            super().__init__(config, basis)
            self.descriptor = MACEDescriptor(config, basis)
            n_features = self.descriptor.irreps_out.dim
            self.h_heads = BaselineHeads(config, basis, n_features)
            self.s_heads = BaselineHeads(config, basis, n_features)
            modules = import_mace_modules()
            self.radial = modules.radial.BesselBasis(self.network_cutoff, config.num_radial)
            self.envelope = modules.radial.PolynomialCutoff(self.network_cutoff, config.num_polynomial_cutoff)
            self.three_center = _three_center(config, basis, self.descriptor, self.network_cutoff)
            self._add_site_potentials(self.descriptor.scalar_index())

    def node_features(self, graph: ModelGraph) -> torch.Tensor:
        return self.descriptor(graph)

    def on_site(self, species, features):
        return self.h_heads.on_site[species](features), self.s_heads.on_site[species](features)

    def pair_features(self, features_i, features_j, vectors):
        """H's and S's pair trunks ``[n, hidden]`` and the envelope ``[n, 1]``."""
        lengths = torch.linalg.norm(vectors, dim=1, keepdim=True)  # [n, 1] Å
        inputs = torch.cat([features_i, features_j, vectors / self.network_cutoff, self.radial(lengths)], dim=1)
        return self.h_heads.trunk(inputs), self.s_heads.trunk(inputs), self.envelope(lengths)

    def off_site_heads(self, pair, pair_features):
        h_trunk, s_trunk, envelope = pair_features
        neighbour_envelope = envelope / self.config.avg_num_neighbors
        return PairIrreps(self.h_heads.off_site[pair](h_trunk) * envelope, self.s_heads.off_site[pair](s_trunk) * envelope,
                          self.h_heads.neighbour[pair](h_trunk) * neighbour_envelope,
                          self.s_heads.neighbour[pair](s_trunk) * neighbour_envelope)


def _three_center(config: BaselineConfig, basis: Basis, descriptor: MACEDescriptor,
                  network_cutoff: float) -> BaselineThreeCenter | None:
    """The baseline's three-center term (MLP width and depth of the heads), or None without ``three_center_cutoff``."""
    if config.three_center_cutoff is None:
        return None
    return BaselineThreeCenter(basis, block_groups(basis), descriptor.scalar_index(), config.three_center_reach,
                               network_cutoff, config.hidden, config.depth, config.num_radial,
                               config.num_polynomial_cutoff)


def baseline_config_for_budget(config: BaselineConfig, basis: Basis, n_parameters: int) -> BaselineConfig:
    """``config`` with the head width whose model has the parameter count closest to ``n_parameters``.

    Only the heads and the three-center term depend on the width; the descriptor (and the partial
    charges, :mod:`.charges`, and the local potential, :mod:`.local_potential`) are counted once.
    """
    with building_in(torch.get_default_dtype()):
        descriptor = MACEDescriptor(config, basis)
    n_descriptor = sum(p.numel() for p in descriptor.parameters())
    if config.coulomb_cutoff is not None:
        n_descriptor += PartialCharges(len(basis.symbols), descriptor.scalar_index()).parameter_count()
    if config.local_potential_hidden:
        n_descriptor += LocalPotential(len(basis.symbols), descriptor.scalar_index(),
                                       config.local_potential_hidden).parameter_count()
    n_features = descriptor.irreps_out.dim

    def count(hidden: int) -> int:
        wide = replace(config, hidden=hidden)
        heads = BaselineHeads(wide, basis, n_features)
        three_center = _three_center(wide, basis, descriptor, network_cutoff_of(wide))
        n_three_center = 0 if three_center is None else sum(p.numel() for p in three_center.parameters())
        return n_descriptor + 2 * sum(p.numel() for p in heads.parameters()) + n_three_center

    low, high = 1, 4096  # the count grows with the width: bisect
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count(middle) <= n_parameters else (low, middle)
    best = min((low, high), key=lambda hidden: abs(count(hidden) - n_parameters))
    return replace(config, hidden=best)
