"""The equivariant model: MACE descriptors and e3nn block readouts (the HForge approach).

On-site blocks of atom i come from its node features x_i (a linear map
plus the tensor product x_i (x) x_i, projected onto the block's irreps) plus
a sum over its neighbours j of a linear map of the pair message below: the
crystal-field-like terms, with Y_L(r_ij) up to L = 4.
Off-site blocks i -> j(R) come from an edge message: the sum of the two atoms'
reduced features tensored (channel-wise, "uvu") with the spherical harmonics Y(r_ij),
the path weights given by an MLP of a Bessel radial basis of |r_ij| and the
two atoms' invariants, times a smooth envelope that vanishes at
``edge_cutoff``; a linear map per species pair then gives the block's irreps.
Off-site H blocks also get a three-center term, a sum over the atoms near
both atoms of the pair (:class:`.EquivariantThreeCenter`).
Irreps become orbital blocks through Clebsch-Gordan coefficients
(:class:`.BlockOutput`), so every block rotates as D_i H_ij D_j^T, with the
right parity, by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._compat import import_mace_modules, import_o3
from ..basis import Basis
from ..block_irreps import block_irreps
from ..model_graph import ModelGraph
from .base import HamiltonianModel, PairIrreps, block_groups
from .descriptor import DescriptorConfig, MACEDescriptor, building_in, irreps_up_to
from .irreps_linear import GroupedLinear
from .three_center import EquivariantThreeCenter


@dataclass(frozen=True)
class EquivariantConfig(DescriptorConfig):
    """Hyperparameters of :class:`EquivariantModel` (descriptor fields: :class:`.DescriptorConfig`).

    Attributes
    ----------
    edge_cutoff : float
        Off-site blocks are predicted for pairs closer than this (Å); the
        envelope takes them smoothly to zero there.
    readout_channels : int
        Channels per irrep of the reduced node features the readouts combine.
    edge_sh_lmax : int
        Largest l of the edge spherical harmonics (4 reaches every L of a d-d block).
    num_radial : int
        Bessel functions of |r_ij| on [0, network cutoff] (:attr:`.HamiltonianModel.network_cutoff`).
    radial_hidden : int
        Width of the two hidden layers of the radial MLP.
    """

    edge_cutoff: float = 9.0
    readout_channels: int = 8
    edge_sh_lmax: int = 4
    num_radial: int = 8
    radial_hidden: int = 32

    @property
    def readout_irreps(self) -> str:
        return irreps_up_to(self.readout_channels, self.max_l)


class OnSiteHead(torch.nn.Module):
    """Node features ``[n, F]`` -> irreps of one species' on-site block: linear + x (x) x."""

    def __init__(self, node_irreps, readout_irreps, target_irreps):
        super().__init__()
        o3 = import_o3()
        self.linear = o3.Linear(node_irreps, target_irreps, biases=True)
        self.reduce = o3.Linear(node_irreps, readout_irreps)
        self.product = o3.FullyConnectedTensorProduct(readout_irreps, readout_irreps, target_irreps)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        reduced = self.reduce(features)
        return self.linear(features) + self.product(reduced, reduced)


class EdgeMessage(torch.nn.Module):
    """Equivariant features ``[n, irreps_out.dim]`` of directed pairs, and their envelope ``[n, 1]``.

    The radial basis spans [0, ``cutoff``] Å and the envelope vanishes there.
    """

    def __init__(self, config: EquivariantConfig, node_irreps, scalar_index: torch.Tensor, target_irreps,
                 cutoff: float):
        super().__init__()
        o3, modules = import_o3(), import_mace_modules()
        from e3nn.nn import FullyConnectedNet
        from mace.modules.irreps_tools import tp_out_irreps_with_instructions

        readout = o3.Irreps(config.readout_irreps)
        self.reduce_i, self.reduce_j = o3.Linear(node_irreps, readout), o3.Linear(node_irreps, readout)
        self.spherical_harmonics = o3.SphericalHarmonics(o3.Irreps.spherical_harmonics(config.edge_sh_lmax),
                                                         normalize=True, normalization="component")
        self.irreps_out, instructions = tp_out_irreps_with_instructions(
            readout, self.spherical_harmonics.irreps_out, o3.Irreps(target_irreps))
        self.product = o3.TensorProduct(readout, self.spherical_harmonics.irreps_out, self.irreps_out,
                                        instructions, shared_weights=False, internal_weights=False)
        self.radial = modules.radial.BesselBasis(cutoff, config.num_radial)
        self.envelope = modules.radial.PolynomialCutoff(cutoff, config.num_polynomial_cutoff)
        self.register_buffer("scalar_index", scalar_index)
        n_in = config.num_radial + 2 * len(scalar_index)
        self.weights = FullyConnectedNet([n_in, config.radial_hidden, config.radial_hidden, self.product.weight_numel],
                                         torch.nn.functional.silu)

    def forward(self, features_i, features_j, vectors) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.linalg.norm(vectors, dim=1, keepdim=True)  # [n, 1] Å
        invariants = torch.cat([self.radial(lengths), features_i[:, self.scalar_index],
                                features_j[:, self.scalar_index]], dim=1)
        pair = self.reduce_i(features_i) + self.reduce_j(features_j)
        message = self.product(pair, self.spherical_harmonics(vectors), self.weights(invariants))
        return message, self.envelope(lengths)


class EquivariantReadout(torch.nn.Module):
    """Irreps of every block group of one matrix (H or S) from node features."""

    def __init__(self, config: EquivariantConfig, basis: Basis, node_irreps, scalar_index, cutoff: float):
        super().__init__()
        o3 = import_o3()
        groups = block_groups(basis)
        targets = {key: block_irreps(basis[row], basis[col]) for key, (row, col) in groups.items()}
        off_site = [key for key in targets if "-" in key]
        union = o3.Irreps("+".join(targets[k] for k in off_site)).sort().irreps.simplify()
        self.message = EdgeMessage(config, node_irreps, scalar_index, union, cutoff)
        self.on_site = torch.nn.ModuleDict({
            key: OnSiteHead(node_irreps, config.readout_irreps, targets[key]) for key in targets if "-" not in key})
        self.off_site = torch.nn.ModuleDict({
            key: o3.Linear(self.message.irreps_out, targets[key]) for key in off_site})
        self.neighbour = torch.nn.ModuleDict({
            key: o3.Linear(self.message.irreps_out, targets[groups[key][0]]) for key in off_site})
        self.neighbour_norm = 1.0 / config.avg_num_neighbors
        for linear in self.neighbour.values():  # start from the node-only on-site blocks
            torch.nn.init.zeros_(linear.weight)
        self.grouped_heads = torch.nn.ModuleDict({  # both maps of a group in one pass (same weights)
            key: GroupedLinear([self.off_site[key], self.neighbour[key]]) for key in off_site})

    def heads(self, key: str, message: torch.Tensor, envelope: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Irreps of the blocks i -> j(R) of group ``key`` and of j's contribution to i's on-site block,
        from the pairs' :class:`EdgeMessage` (``message`` ``[n, dim]``, ``envelope`` ``[n, 1]``)."""
        weights = [self.off_site[key].weight, self.neighbour[key].weight]
        off_site, neighbour = self.grouped_heads[key](message, weights)
        return off_site * envelope, neighbour * (envelope * self.neighbour_norm)


class EquivariantModel(HamiltonianModel):
    """MACE descriptors + e3nn readouts for H and S (see the module docstring).

    Examples
    --------
    >>> from hforge_nb.basis import Basis, SpeciesBasis, dzp_shells
    >>> basis = Basis((SpeciesBasis("B", 5, dzp_shells(2, (4.0,) * 5)),))
    >>> model = EquivariantModel(EquivariantConfig(channels=4, readout_channels=4), basis)
    >>> model.kind, model.parameter_count() > 0
    ('equivariant', True)
    """

    kind = "equivariant"

    def __init__(self, config: EquivariantConfig, basis: Basis, dtype: torch.dtype = torch.float32):
        with building_in(dtype):
            super().__init__(config, basis)
            self.descriptor = MACEDescriptor(config, basis)
            scalars = self.descriptor.scalar_index()
            irreps = self.descriptor.irreps_out
            self.h_readout = EquivariantReadout(config, basis, irreps, scalars, self.network_cutoff)
            self.s_readout = EquivariantReadout(config, basis, irreps, scalars, self.network_cutoff)
            if config.three_center_cutoff is not None:
                self.three_center = EquivariantThreeCenter(
                    basis, self.group_species, scalars, config.three_center_reach, self.network_cutoff,
                    num_radial=config.num_radial, radial_hidden=config.radial_hidden,
                    num_polynomial_cutoff=config.num_polynomial_cutoff)
            self._add_site_potentials(scalars)

    def node_features(self, graph: ModelGraph) -> torch.Tensor:
        return self.descriptor(graph)

    def on_site(self, species, features):
        return self.h_readout.on_site[species](features), self.s_readout.on_site[species](features)

    def pair_features(self, features_i, features_j, vectors):
        """H's and S's edge messages and envelopes (:class:`EdgeMessage`)."""
        return (*self.h_readout.message(features_i, features_j, vectors),
                *self.s_readout.message(features_i, features_j, vectors))

    def off_site_heads(self, pair, pair_features):
        h_message, h_envelope, s_message, s_envelope = pair_features
        h, h_on_site = self.h_readout.heads(pair, h_message, h_envelope)
        s, s_on_site = self.s_readout.heads(pair, s_message, s_envelope)
        return PairIrreps(h, s, h_on_site, s_on_site)
