"""MACE atomic descriptors, built from scratch and kept equivariant.

A :class:`MACEDescriptor` wraps ``mace.modules.MACE`` with its energy
readouts removed: it maps a structure to per-atom features, the atom's
species (one-hot) followed by the node features of every interaction layer
(``keep_last_layer_irreps`` keeps the last layer's vectors and tensors
too).  The one-hot part matters for atoms without neighbours within
``r_max``, whose MACE features are exactly zero.  Both model kinds use it.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from .._compat import import_mace_modules, import_o3
from ..basis import Basis
from ..model_graph import ModelGraph


def irreps_up_to(multiplicity: int, max_l: int) -> str:
    """``multiplicity`` copies of every l <= ``max_l`` with the parity of Y_l.

    >>> irreps_up_to(8, 2)
    '8x0e+8x1o+8x2e'
    """
    return "+".join(f"{multiplicity}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(max_l + 1))


@dataclass(frozen=True)
class DescriptorConfig:
    """Hyperparameters of the MACE descriptor.

    Attributes
    ----------
    r_max : float
        Message-passing cutoff (Å).
    channels : int
        Channels per irrep of the node features.
    max_l : int
        Node features carry l = 0..max_l with natural parity (0e, 1o, 2e, ...).
    sh_lmax : int
        Largest l of the spherical harmonics of edge directions.
    num_interactions : int
        Message-passing layers; the receptive field is num_interactions * r_max.
    correlation : int
        Body order of MACE's symmetric products.
    num_bessel, num_polynomial_cutoff : int
        Radial Bessel functions and the order of the smooth cutoff envelope.
    avg_num_neighbors : float
        Normalization of the message sum (about the neighbours within r_max).
    two_center : bool
        Off-site blocks start from a two-center (Slater-Koster) fit to the
        training blocks (:class:`.TwoCenterPrior`), and the network learns
        what it leaves; both model kinds read it.
    crystal_field : bool
        On-site S blocks start from a fitted sum over neighbours of
        two-body terms (:class:`.CrystalFieldPrior`), the form of PAW's
        overlap corrections; both model kinds read it.
    h_crystal_field : bool
        On-site H blocks start from such a fitted sum too: the two-body part
        of the neighbours' potentials (their many-body rest, and the
        electrostatics of charge transfer, are left to the networks).
    network_cutoff : float or None
        With ``two_center``, the networks' pair terms (off-site corrections
        and neighbour contributions to on-site blocks) act on pairs closer
        than this (Å) and vanish smoothly there; blocks between it and
        ``edge_cutoff`` come from the two-center prior alone.  Most pairs
        lie there, so this is where prediction time goes, while their DFT
        blocks are small and close to two-center.  ``None`` (or
        ``two_center=False``): the networks cover every pair up to
        ``edge_cutoff``.
    three_center_cutoff : float or None
        Off-site H blocks of pairs within the network cutoff get a learned
        sum over the atoms k closer than this (Å) to both atoms: the
        three-center part <phi_i|V_k|phi_j> (:mod:`.three_center`).  The
        third atoms come from the message-passing neighbours, so a value
        above ``r_max`` acts as ``r_max`` (:attr:`three_center_reach`);
        ``None`` turns the term off.
    coulomb_cutoff : float or None
        H gets the electrostatic term of learned partial charges
        (:mod:`.charges`), their damped shifted-force Coulomb potential
        summed to this distance (Å); ``None`` turns it off.
    coulomb_damping : float
        Damping of that sum (1/Å, :mod:`hforge_nb.electrostatics`).
    local_potential_hidden : int
        Greater than 0: H gets a learned potential per atom, an MLP of this
        hidden width of the atom's invariant features, times S
        (:mod:`.local_potential`); 0 turns it off.
    """

    r_max: float = 5.0
    channels: int = 8
    max_l: int = 2
    sh_lmax: int = 3
    num_interactions: int = 2
    correlation: int = 2
    num_bessel: int = 8
    num_polynomial_cutoff: int = 5
    avg_num_neighbors: float = 50.0
    two_center: bool = True
    crystal_field: bool = True
    h_crystal_field: bool = False
    network_cutoff: float | None = 5.0
    three_center_cutoff: float | None = 3.5
    coulomb_cutoff: float | None = None
    coulomb_damping: float = 0.25
    local_potential_hidden: int = 0

    def __post_init__(self):
        if self.network_cutoff is not None and not self.network_cutoff > 0:
            raise ValueError(f"network_cutoff must be positive (Å) or None, got {self.network_cutoff}")
        if self.three_center_cutoff is not None and not self.three_center_cutoff > 0:
            raise ValueError(f"three_center_cutoff must be positive (Å) or None, got {self.three_center_cutoff}")
        if self.coulomb_cutoff is not None and not (self.coulomb_cutoff > 0 and self.coulomb_damping > 0):
            raise ValueError(f"coulomb_cutoff (Å) and coulomb_damping (1/Å) must be positive, got "
                             f"{self.coulomb_cutoff} and {self.coulomb_damping}")
        hidden = self.local_potential_hidden
        if isinstance(hidden, bool) or not (isinstance(hidden, int) and hidden >= 0):
            raise ValueError(f"local_potential_hidden must be a width (0 turns the term off), "
                             f"got {self.local_potential_hidden!r}")

    @property
    def coulomb(self) -> tuple[float, float] | None:
        """``(coulomb_cutoff, coulomb_damping)`` for :func:`.build_model_graph`, or ``None`` without the term."""
        return None if self.coulomb_cutoff is None else (self.coulomb_cutoff, self.coulomb_damping)

    @property
    def three_center_reach(self) -> float | None:
        """Å, the largest distance of a third atom from both atoms of a pair: ``three_center_cutoff``, at most ``r_max``."""
        return None if self.three_center_cutoff is None else min(self.three_center_cutoff, self.r_max)

    @property
    def node_irreps(self) -> str:
        """Irreps of one layer's node features, for example ``'8x0e+8x1o+8x2e'``."""
        return irreps_up_to(self.channels, self.max_l)


class DomainGraph(NamedTuple):
    """The message-passing edges into one domain of a large structure, in the domain's local numbering.

    ``nodes`` ``[n_nodes]`` int: the structure's atoms the domain's layers
    read (its own atoms and their neighbours within r_max), sorted;
    ``receivers`` ``[n_domain]`` int: positions of the domain's atoms in
    ``nodes``; ``edge_index`` ``[2, n_edges]`` int: sender and receiver
    positions in ``nodes`` (MACE's order), every receiver in the domain;
    ``vectors`` ``[n_edges, 3]`` Å from the sender's image to the receiver.
    """

    nodes: torch.Tensor
    receivers: torch.Tensor
    edge_index: torch.Tensor
    vectors: torch.Tensor


@contextlib.contextmanager
def building_in(dtype: torch.dtype):
    """Build modules in ``dtype``, so constants computed at construction keep full precision.

    Also silences TorchScript's notices about e3nn's and MACE's annotations,
    which say nothing about the model.
    """
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The TorchScript type system")
            yield
    finally:
        torch.set_default_dtype(previous)


class MACEDescriptor(torch.nn.Module):
    """Per-atom equivariant features from a MACE built from scratch.

    Parameters
    ----------
    config
        Hyperparameters (any object with :class:`DescriptorConfig`'s fields).
    basis
        The species; their order in ``basis.symbols`` is the one-hot order.
    """

    def __init__(self, config: DescriptorConfig, basis: Basis):
        super().__init__()
        modules, o3 = import_mace_modules(), import_o3()
        self.n_species = len(basis.symbols)
        self.mace = modules.MACE(
            r_max=config.r_max, num_bessel=config.num_bessel, num_polynomial_cutoff=config.num_polynomial_cutoff,
            max_ell=config.sh_lmax, interaction_cls=modules.RealAgnosticResidualInteractionBlock,
            interaction_cls_first=modules.RealAgnosticInteractionBlock, num_interactions=config.num_interactions,
            num_elements=self.n_species, hidden_irreps=o3.Irreps(config.node_irreps),
            MLP_irreps=o3.Irreps("8x0e"), atomic_energies=np.zeros(self.n_species),
            avg_num_neighbors=config.avg_num_neighbors,
            atomic_numbers=[s.atomic_number for s in basis.species], correlation=config.correlation,
            gate=torch.nn.functional.silu, keep_last_layer_irreps=True,
        )
        self.mace.readouts = torch.nn.ModuleList()  # energy readouts: unused, not trained
        self.irreps_out = o3.Irreps("+".join([f"{self.n_species}x0e"] + [config.node_irreps] * config.num_interactions))
        chunks = [k for k, (mul, ir) in enumerate(self.irreps_out) for _ in range(mul * ir.dim)]
        self.register_buffer("feature_chunk", torch.as_tensor(chunks, dtype=torch.long))  # [dim]
        self.register_buffer("feature_scale", torch.ones(self.irreps_out.dim))  # [dim]

    def scalar_index(self) -> torch.Tensor:
        """Positions of the invariant (0e) features in the output."""
        slices = [s for s, (_, ir) in zip(self.irreps_out.slices(), self.irreps_out) if ir.l == 0 and ir.p == 1]
        return torch.cat([torch.arange(s.start, s.stop) for s in slices])

    @torch.no_grad()
    def fit_feature_scale(self, graph: ModelGraph) -> None:
        """Scale every (layer, irrep) chunk of the features to unit RMS over ``graph``'s atoms.

        MACE's features start out small (about 1e-3) when built from
        scratch; a per-chunk scale keeps them equivariant and puts the
        readouts' inputs at order one.
        """
        self.feature_scale.fill_(1.0)
        squares = self(graph).square().mean(dim=0)  # [dim]
        n_chunks = int(self.feature_chunk.max()) + 1
        chunk_mean = torch.zeros(n_chunks, dtype=squares.dtype).index_add_(0, self.feature_chunk, squares)
        chunk_mean /= torch.bincount(self.feature_chunk, minlength=n_chunks)
        self.feature_scale.copy_(chunk_mean.sqrt().clamp(min=1e-12).reciprocal()[self.feature_chunk])

    @torch.no_grad()
    def forward_in_domains(self, species_index: torch.Tensor, domains: list[DomainGraph]) -> torch.Tensor:
        """:meth:`forward` of a structure too large for one graph, one interaction layer at a time, domain by domain.

        A layer's features of an atom depend only on the previous layer's
        features of its neighbours within r_max, so each layer is computed
        for every domain from the previous layer's features of all atoms:
        a domain costs its own edges, with no halo recomputed through the
        earlier layers.  Equal to :meth:`forward` on the whole structure.

        Parameters
        ----------
        species_index
            ``[n_atoms]`` int, position of every atom's species in the one-hot order.
        domains
            :class:`DomainGraph` of every domain; each atom is a receiver in exactly one.
        """
        one_hot = torch.nn.functional.one_hot(species_index, self.n_species).to(domains[0].vectors.dtype)
        features = self.mace.node_embedding(one_hot)  # [n_atoms, n_embedding]
        layers = []
        for index, (interaction, product) in enumerate(zip(self.mace.interactions, self.mace.products)):
            previous, features = features, None
            for domain in domains:
                own = self._layer_in_domain(interaction, product, index == 0, one_hot, previous, domain)
                if features is None:
                    features = torch.zeros((len(species_index), own.shape[1]), dtype=own.dtype)
                features[domain.nodes[domain.receivers]] = own
            layers.append(features)
        return torch.cat([one_hot, *layers], dim=1) * self.feature_scale

    def _layer_in_domain(self, interaction, product, first: bool, one_hot: torch.Tensor, features: torch.Tensor,
                         domain: DomainGraph) -> torch.Tensor:
        """``[n_domain, dim]`` one layer's node features of a domain's atoms, from the last layer's of all atoms."""
        attrs = one_hot[domain.nodes]  # [n_nodes, n_species]
        lengths = domain.vectors.norm(dim=1, keepdim=True)  # [n_edges, 1] Å
        edge_attrs = self.mace.spherical_harmonics(domain.vectors)
        edge_feats, cutoff = self.mace.radial_embedding(lengths, attrs, domain.edge_index, self.mace.atomic_numbers)
        messages, skip = interaction(node_attrs=attrs, node_feats=features[domain.nodes], edge_attrs=edge_attrs,
                                     edge_feats=edge_feats, edge_index=domain.edge_index, cutoff=cutoff,
                                     first_layer=first)
        own = domain.receivers
        return product(node_feats=messages[own], sc=None if skip is None else skip[own], node_attrs=attrs[own])

    def forward(self, graph: ModelGraph) -> torch.Tensor:
        """``[n_atoms, irreps_out.dim]`` species one-hot and every layer's node features, scaled."""
        one_hot = torch.nn.functional.one_hot(graph.species_index, self.n_species).to(graph.positions.dtype)
        data = {
            "positions": graph.positions.detach().clone(),  # MACE marks its input for forces
            "node_attrs": one_hot,
            "edge_index": graph.mp_edge_index,
            "shifts": graph.mp_shifts,
            "unit_shifts": graph.mp_unit_shifts,
            "cell": graph.cell.reshape(-1, 3),
            "batch": graph.batch,
            "ptr": graph.ptr,
        }
        features = self.mace(data, training=self.training, compute_force=False)["node_feats"]
        return torch.cat([one_hot, features], dim=1) * self.feature_scale
