"""What every Hamiltonian model shares: block outputs, Hermiticity, prediction of records.

A model maps a :class:`.ModelGraph` to the flat values of H (eV) and S of
its blocks, laid out as in a :class:`.HamiltonianRecord`.  Subclasses give
the on-site and off-site blocks of each species (pair) as irreps vectors;
the base class turns those into orbital blocks (:class:`BlockOutput`),
places them, and makes the result Hermitian, H_ij(R) = H_ji(-R)^T, by
averaging every value with its partner.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, NamedTuple

import ase
import numpy as np
import torch

from ..basis import Basis
from ..block_irreps import block_change_of_basis, block_irreps
from ..model_graph import ModelGraph, StructureBlocks, build_model_graph, stack_targets
from ..record import HamiltonianRecord, Provenance
from .charges import PartialCharges, graph_potentials
from .crystal_field import CrystalFieldPrior, Neighbours
from .local_potential import LocalPotential
from .three_center import Neighbourhood, Triplets, neighbourhood, triplets_of
from .two_center import TwoCenterPrior, linear_on_grid


class PairIrreps(NamedTuple):
    """What a model gives for a group of pairs i -> j(R), as irreps ``[n, dim]``.

    ``h`` and ``s`` are the blocks' own; ``h_on_site`` and ``s_on_site`` are
    j's contributions to atom i's on-site blocks (in the irreps of i's
    species), summed over neighbours by :meth:`HamiltonianModel.forward`.
    The crystal field of the neighbours' potentials (and, in PAW, their
    projectors' overlap corrections) is such a sum over neighbours, with
    the angular dependence Y_L(r_ij) up to L = 4 that a d-d block needs;
    node features of degree l <= 2 alone cannot give it at a tetrahedral
    site, where every l = 1, 2 feature vanishes by symmetry.
    """

    h: torch.Tensor
    s: torch.Tensor
    h_on_site: torch.Tensor
    s_on_site: torch.Tensor


class PairInputs(NamedTuple):
    """What a model reads of a group of pairs i -> j(R): node features ``[n, n_features]`` of i and of j,
    and the pair vectors ``[n, 3]`` (Å)."""

    features_i: torch.Tensor
    features_j: torch.Tensor
    vectors: torch.Tensor


class BlockValues(NamedTuple):
    """Predicted H ``[n_values]`` (eV) and S ``[n_values]``, in the graph's value layout."""

    h: torch.Tensor
    s: torch.Tensor


class BlockOutput(torch.nn.Module):
    """Irreps vectors ``[n, dim]`` to orbital blocks ``[n, n_row * n_col]`` of one species (pair).

    ``block = (irreps * scale * profile(r) + shift + prior(r)) @ U``, with U of
    :func:`.block_change_of_basis` and ``prior`` the two-center part of
    off-site blocks (:class:`.TwoCenterPrior`; absent without ``cutoff``).
    On-site blocks have no profile; with ``neighbour_species`` (and a
    ``cutoff``) their prior is the sum over neighbours of
    :class:`.CrystalFieldPrior`, which enters through the neighbours'
    contributions to the irreps (:meth:`neighbour_term`).
    All of them are fitted to data by
    :meth:`HamiltonianModel.fit_statistics` and keep the map equivariant:
    ``scale`` has one value per irrep instance (repeated over its 2L+1
    components); ``shift`` is non-zero on the invariant (0e) components of
    on-site blocks only; ``profile`` (off-site blocks) is the RMS of the
    blocks at pair distance r relative to all of them, on a grid of
    ``PROFILE_STEP`` Å, interpolated in log scale, so that a network of
    order-one outputs starts with blocks of the right size at every distance
    (they fall by orders of magnitude from 1.5 to 9 Å).  With a prior the
    network's part is what the prior leaves, and ``profile`` and ``scale``
    describe that remainder.
    """

    PROFILE_STEP = 0.25  # Å
    PROFILE_BINS = 64  # covers 16 Å

    def __init__(self, row, col, cutoff: float | None = None, neighbour_species=()):
        super().__init__()
        self.irreps = block_irreps(row, col)
        with_crystal_field = cutoff is not None and len(neighbour_species) > 0
        self.two_center = TwoCenterPrior(row, col, cutoff) if cutoff is not None and not with_crystal_field else None
        self.crystal_field = CrystalFieldPrior(row, neighbour_species, cutoff) if with_crystal_field else None
        change = torch.as_tensor(block_change_of_basis(row, col), dtype=torch.get_default_dtype())
        self.register_buffer("change", change)  # [dim, n_row * n_col]
        self.register_buffer("scale", torch.ones(len(change)))
        self.register_buffer("shift", torch.zeros(len(change)))
        self.register_buffer("log_profile", torch.zeros(self.PROFILE_BINS))  # [bins] log relative RMS
        self.register_buffer("instance", _irrep_instances(self.irreps))  # [dim] which irrep instance
        self.register_buffer("invariant", _invariant_mask(self.irreps))  # [dim] bool, 0e components

    @property
    def dim(self) -> int:
        return self.change.shape[0]

    def profile(self, distances: torch.Tensor) -> torch.Tensor:
        """``[n, 1]`` relative block size at ``distances`` ``[n]`` (Å), linear in log between grid points."""
        return linear_on_grid(self.log_profile.unsqueeze(1), distances, self.PROFILE_STEP).exp()

    def forward(self, irreps: torch.Tensor, vectors: torch.Tensor | None = None) -> torch.Tensor:
        """Blocks ``[n, n_row * n_col]``; ``vectors`` ``[n, 3]`` Å are the pair vectors of off-site blocks."""
        if vectors is None:
            return (irreps * self.scale + self.shift) @ self.change
        scaled = irreps * self.scale * self.profile(vectors.norm(dim=1))
        if self.two_center is not None:
            scaled = scaled + self.two_center(vectors)
        return (scaled + self.shift) @ self.change

    def neighbour_term(self, species: str, vectors: torch.Tensor) -> torch.Tensor:
        """``[n, dim]`` crystal-field prior of pairs to neighbours of ``species`` (``vectors`` ``[n, 3]`` Å).

        In units of the network's irreps: added to the network's neighbour
        contributions before ``scale`` multiplies them, it adds exactly the
        prior to the block.
        """
        return self.crystal_field(species, vectors) / self.scale

    @torch.no_grad()
    def fit(self, blocks: torch.Tensor, vectors: torch.Tensor | None = None,
            neighbours: list[Neighbours] | None = None) -> None:
        """Set ``shift``, the prior, ``profile`` and ``scale`` from reference blocks ``[n, n_row * n_col]``.

        On-site blocks are given without ``vectors``: their invariants'
        mean becomes ``shift``; with a crystal-field prior, ``neighbours``
        (the pairs from these atoms, rows indexing ``blocks``) are needed,
        the prior and its constant (the new ``shift``) are fitted together
        and the prior is removed.  Off-site blocks come with their pair
        vectors ``[n, 3]`` (Å): no shift (the envelope must take blocks to
        zero); the two-center prior is fitted and removed, then a distance
        profile of what remains.  ``scale`` is then the RMS of every irrep
        instance of the shifted, profile-divided blocks.
        """
        irreps = blocks.to(self.change.dtype) @ self.change.T  # [n, dim]
        if vectors is None and self.crystal_field is not None:
            self.shift.copy_(self.crystal_field.fit(irreps, neighbours or []) * self.invariant)
            irreps = irreps - self.crystal_field.sums(neighbours or [], len(irreps), irreps.dtype)
        elif vectors is None:
            self.shift.copy_(irreps.mean(dim=0) * self.invariant)
        else:
            self.shift.zero_()
            vectors = vectors.to(irreps.dtype)
            if self.two_center is not None:
                self.two_center.fit(irreps, vectors)
                irreps = irreps - self.two_center(vectors)
            distances = vectors.norm(dim=1)
            self.log_profile.copy_(_log_profile(irreps, distances, self.PROFILE_STEP, self.PROFILE_BINS))
            irreps = irreps / self.profile(distances)
        squares = (irreps - self.shift).square().mean(dim=0)
        n_instances = int(self.instance.max()) + 1
        per_instance = torch.zeros(n_instances, dtype=squares.dtype).index_add_(0, self.instance, squares)
        per_instance /= torch.bincount(self.instance, minlength=n_instances)
        self.scale.copy_(per_instance.sqrt().clamp(min=1e-8)[self.instance])


def _log_profile(irreps: torch.Tensor, distances: torch.Tensor, step: float, n_bins: int) -> torch.Tensor:
    """``[n_bins]`` log of the RMS of blocks per distance bin over the RMS of all; gaps interpolated."""
    block_ms = irreps.square().mean(dim=1).double().numpy()  # [n] mean square of each block
    bins = np.clip((distances.double().numpy() / step).round().astype(int), 0, n_bins - 1)
    sums, counts = np.bincount(bins, block_ms, n_bins), np.bincount(bins, minlength=n_bins)
    filled = (counts > 0) & (sums > 0)
    if not filled.any():
        return torch.zeros(n_bins, dtype=irreps.dtype)
    relative = np.log(np.sqrt(sums[filled] / counts[filled] / block_ms.mean()))
    grid = np.arange(n_bins)
    return torch.as_tensor(np.interp(grid, grid[filled], relative), dtype=irreps.dtype)


def _irrep_instances(irreps: str) -> torch.Tensor:
    """``[dim]`` index of the irrep instance every component belongs to."""
    from .._compat import import_o3

    labels, instance = [], 0
    for mul, ir in import_o3().Irreps(irreps):
        for _ in range(mul):
            labels += [instance] * ir.dim
            instance += 1
    return torch.as_tensor(labels, dtype=torch.long)


def _invariant_mask(irreps: str) -> torch.Tensor:
    """``[dim]`` True on the components of 0e irreps."""
    from .._compat import import_o3

    return torch.as_tensor([ir.l == 0 and ir.p == 1 for mul, ir in import_o3().Irreps(irreps)
                            for _ in range(mul * ir.dim)], dtype=torch.bool)


class HamiltonianModel(torch.nn.Module):
    """Base class: predicts H and S blocks of structures.

    Subclasses set :attr:`kind`, hold a :class:`.MACEDescriptor` as
    ``self.descriptor`` and implement :meth:`node_features`, :meth:`on_site`
    and :meth:`off_site`; the last two return H and S irreps vectors of one
    group of blocks.  With ``config.three_center_cutoff`` they also set
    ``self.three_center`` (:mod:`.three_center`), added to the off-site H
    irreps.  They call :meth:`_add_site_potentials`: with
    ``config.coulomb_cutoff`` its :class:`.PartialCharges` add the
    electrostatic term to H (:mod:`.charges`), with
    ``config.local_potential_hidden`` its :class:`.LocalPotential` a
    learned potential per atom (:mod:`.local_potential`).  ``self.outputs`` holds
    one :class:`BlockOutput` per (matrix, group), keyed ``"h:B"``,
    ``"s:B-N"``, ...
    """

    kind: ClassVar[str] = ""

    def __init__(self, config, basis: Basis):
        super().__init__()
        self.config, self.basis = config, basis
        self.group_species = block_groups(basis)  # group key -> (row, column) species
        self.three_center: torch.nn.Module | None = None  # set by subclasses when config.three_center_cutoff is set
        self.charges: PartialCharges | None = None  # set by _add_site_potentials when config.coulomb_cutoff is set
        self.local_potential: LocalPotential | None = None  # likewise with config.local_potential_hidden
        self.outputs = torch.nn.ModuleDict({
            f"{matrix}:{key}": self._block_output(matrix, key, row, col)
            for matrix in ("h", "s") for key, (row, col) in self.group_species.items()
        })

    def _block_output(self, matrix: str, key: str, row: str, col: str) -> BlockOutput:
        """The :class:`BlockOutput` of one matrix and group, with the priors ``config`` asks for.

        The crystal-field prior serves S with ``config.crystal_field`` and H
        with ``config.h_crystal_field``: H's on-site blocks depend on the
        neighbours' potentials, whose first, two-body term has its form, and
        the networks learn the rest.
        """
        if "-" in key:
            return BlockOutput(self.basis[row], self.basis[col], self.config.edge_cutoff if self.config.two_center else None)
        with_crystal_field = self.config.crystal_field if matrix == "s" else self.config.h_crystal_field
        if with_crystal_field:
            return BlockOutput(self.basis[row], self.basis[col], self.config.edge_cutoff, self.basis.symbols)
        return BlockOutput(self.basis[row], self.basis[col])

    def _add_site_potentials(self, scalar_index: torch.Tensor) -> None:
        """Give the model :class:`.PartialCharges` and a :class:`.LocalPotential` of its node features' invariants
        (``scalar_index``) if the config asks for them."""
        if self.config.coulomb_cutoff is not None:
            self.charges = PartialCharges(len(self.basis.symbols), scalar_index)
        if self.config.local_potential_hidden:
            self.local_potential = LocalPotential(len(self.basis.symbols), scalar_index,
                                                  self.config.local_potential_hidden)

    def site_potentials(self, graph: ModelGraph, features: torch.Tensor) -> torch.Tensor | None:
        """``[n_atoms]`` potentials (V) of the graph's atoms: the partial charges' plus the local potential;
        ``None`` for a model with neither.  H gets -(V_i + V_j) / 2 S_ij on every block."""
        parts = []
        if self.charges is not None:
            parts.append(graph_potentials(graph, self.charges(graph, features)))
        if self.local_potential is not None:
            parts.append(self.local_potential(graph.species_index, features))
        return sum(parts) if parts else None

    def structure_potentials(self, atoms: ase.Atoms, species_index: torch.Tensor,
                             features: torch.Tensor) -> torch.Tensor | None:
        """:meth:`site_potentials` of one structure whose node features ``[n_atoms, F]`` were computed
        without a graph (large structures, :mod:`hforge_nb.inference`)."""
        parts = []
        if self.charges is not None:
            parts.append(self.charges.potentials_of_structure(atoms, species_index, features, self.config.coulomb))
        if self.local_potential is not None:
            parts.append(self.local_potential(species_index, features))
        return sum(parts) if parts else None

    # --------------------------------------------------------------- subclass API
    def node_features(self, graph: ModelGraph) -> torch.Tensor:
        """``[n_atoms, n_features]`` per-atom descriptors."""
        raise NotImplementedError

    def on_site(self, species: str, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """H and S irreps ``[n, dim]`` of the on-site blocks of atoms with ``features`` ``[n, n_features]``."""
        raise NotImplementedError

    def pair_features(self, features_i: torch.Tensor, features_j: torch.Tensor,
                      vectors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """What the heads of every species pair read from pairs i -> image of j: tensors ``[n, ...]``.

        ``features_i``, ``features_j`` ``[n, n_features]``, ``vectors`` ``[n, 3]`` Å.  Computed once for
        the pairs of all groups together (:meth:`forward`), then split per group for :meth:`off_site_heads`.
        """
        raise NotImplementedError

    def off_site_heads(self, pair: str, pair_features: tuple[torch.Tensor, ...]) -> PairIrreps:
        """H and S irreps of the pairs of group ``pair`` (and their on-site contributions) from their
        :meth:`pair_features`."""
        raise NotImplementedError

    def off_site(self, pair: str, features_i: torch.Tensor, features_j: torch.Tensor,
                 vectors: torch.Tensor) -> PairIrreps:
        """H and S irreps of blocks i -> image of j and of j's on-site contributions, ``vectors`` ``[n, 3]`` Å."""
        return self.off_site_heads(pair, self.pair_features(features_i, features_j, vectors))

    @property
    def network_cutoff(self) -> float:
        """Pairs closer than this (Å) get the networks' terms, farther ones only the priors.

        ``config.network_cutoff`` with the two-center prior, else ``config.edge_cutoff``.
        """
        return network_cutoff_of(self.config)

    def pair_irreps(self, pair: str, features_i: torch.Tensor, features_j: torch.Tensor,
                    vectors: torch.Tensor, triplets: Triplets | None = None) -> PairIrreps:
        """:meth:`off_site` of the pairs within :attr:`network_cutoff` (zero beyond), plus the crystal-field
        prior in the on-site contributions of every pair (for outputs that have one), plus the three-center
        term of the pairs' ``triplets`` (:meth:`triplets`) in H when the model has one."""
        inputs = PairInputs(features_i, features_j, vectors)
        three_center = self._three_center_terms({pair: inputs}, {pair: triplets})
        return self._with_prior_terms(pair, self._network_pair_irreps({pair: inputs})[pair], inputs,
                                      three_center.get(pair))

    def _three_center_terms(self, inputs: dict[str, PairInputs],
                            triplets: dict[str, Triplets | None]) -> dict[str, torch.Tensor]:
        """The three-center H term ``[n, dim]`` of every group (all groups' triplets at once); none without it."""
        if self.three_center is None:
            return {}
        if any(triplets[key] is None for key in inputs):
            raise ValueError("this model has a three-center term: pass the pairs' triplets (model.triplets)")
        return self.three_center.forward_groups({key: (triplets[key], *pairs) for key, pairs in inputs.items()})

    def _with_prior_terms(self, pair: str, irreps: PairIrreps, inputs: PairInputs,
                          three_center: torch.Tensor | None) -> PairIrreps:
        """The networks' ``irreps`` of a group plus its ``three_center`` term (if any) and crystal-field prior."""
        if three_center is not None:
            irreps = irreps._replace(h=irreps.h + three_center)
        row, col = self.group_species[pair]
        on_site = {}
        for matrix in ("h", "s"):
            output, own = self.outputs[f"{matrix}:{row}"], getattr(irreps, f"{matrix}_on_site")
            prior = None if output.crystal_field is None else output.neighbour_term(col, inputs.vectors)
            on_site[f"{matrix}_on_site"] = own if prior is None else own + prior
        return irreps._replace(**on_site)

    def triplets(self, pair_i: torch.Tensor, vectors: torch.Tensor, edges: Neighbourhood,
                 features: torch.Tensor) -> Triplets | None:
        """The third atoms of pairs (atom i ``[n]``, ``vectors`` ``[n, 3]`` Å) that the three-center term reads.

        ``edges`` holds every atom's neighbours within ``config.three_center_reach`` at least;
        ``features`` ``[n_atoms, F]`` are the node features.  ``None`` for a model without the term.
        """
        if self.three_center is None:
            return None
        return triplets_of(pair_i, vectors, edges, features, self.config.three_center_reach, self.network_cutoff)

    def _network_pair_irreps(self, inputs: dict[str, PairInputs]) -> dict[str, PairIrreps]:
        """:meth:`off_site` of every group's pairs within :attr:`network_cutoff`, zero rows for the others.

        The :meth:`pair_features` of all groups' near pairs are computed at once (one tensor product or
        MLP call instead of one per group, the same values), then each group's heads read its rows.
        """
        near = {key: torch.nonzero(pairs.vectors.norm(dim=1) < self.network_cutoff)[:, 0]  # [n_near]
                for key, pairs in inputs.items()}
        joined = [torch.cat([part[near[key]] for key, part in zip(inputs, parts)]) for parts in zip(*inputs.values())]
        sizes = [len(rows) for rows in near.values()]
        per_group = [torch.split(values, sizes) for values in self.pair_features(*joined)]
        irreps = {}
        for n, (key, pairs) in enumerate(inputs.items()):
            own = self.off_site_heads(key, tuple(values[n] for values in per_group))
            if len(near[key]) < len(pairs.vectors):  # zero rows for the far pairs
                own = PairIrreps(*(values.new_zeros(len(pairs.vectors), values.shape[1]).index_copy(
                    0, near[key], values) for values in own))
            irreps[key] = own
        return irreps

    # ------------------------------------------------------------------- forward
    def forward(self, graph: ModelGraph) -> BlockValues:
        """Hermitian H (eV) and S values of every block of ``graph``."""
        features = self.node_features(graph)
        vectors = graph.block_vectors().to(features.dtype)
        irreps = self._off_site_irreps(graph, features, vectors)
        irreps.update(self._on_site_irreps(graph, features, irreps))
        sites = self.site_potentials(graph, features)  # [n_atoms] V or None
        potentials = None if sites is None else 0.5 * (sites[graph.block_pairs[:, 0]] + sites[graph.block_pairs[:, 1]])
        h_parts, s_parts = [], []
        for key, group in graph.groups():
            pair_vectors = vectors[group.blocks] if key in graph.off_site else None
            h = self.outputs[f"h:{key}"](irreps[key][0], pair_vectors)  # [n, n_row * n_col] eV
            s = self.outputs[f"s:{key}"](irreps[key][1], pair_vectors)
            if potentials is not None:  # the electron's energy -V, S-weighted (see .charges)
                h = h - potentials[group.blocks, None] * s.detach()
            h_parts.append(h.reshape(-1))
            s_parts.append(s.reshape(-1))
        h, s = torch.cat(h_parts)[graph.assembly_index], torch.cat(s_parts)[graph.assembly_index]
        return BlockValues(0.5 * (h + h[graph.adjoint_index]), 0.5 * (s + s[graph.adjoint_index]))

    def _off_site_irreps(self, graph: ModelGraph, features, vectors) -> dict[str, PairIrreps]:
        """:class:`PairIrreps` of every off-site group."""
        edges = graph_neighbourhood(graph) if self.three_center is not None else None
        inputs, triplets = {}, {}
        for key, group in graph.off_site.items():
            i, j = graph.block_pairs[group.blocks, 0], graph.block_pairs[group.blocks, 1]
            inputs[key] = PairInputs(features[i], features[j], vectors[group.blocks])
            triplets[key] = None if edges is None else self.triplets(i, inputs[key].vectors, edges, features)
        network, three_center = self._network_pair_irreps(inputs), self._three_center_terms(inputs, triplets)
        return {key: self._with_prior_terms(key, network[key], pairs, three_center.get(key))
                for key, pairs in inputs.items()}

    def _on_site_irreps(self, graph: ModelGraph, features, pair_irreps: dict[str, PairIrreps]) -> dict:
        """H and S irreps of every on-site group: the atom's own plus its neighbours' contributions."""
        irreps = {}
        for species, group in graph.on_site.items():
            h, s = self.on_site(species, features[graph.block_pairs[group.blocks, 0]])
            for key, rows in self._neighbour_rows(graph, species):
                h, s = h.index_add(0, rows, pair_irreps[key].h_on_site), s.index_add(0, rows, pair_irreps[key].s_on_site)
            irreps[species] = (h, s)
        return irreps

    def on_site_neighbours(self, graph: ModelGraph, species: str, vectors: torch.Tensor) -> list[Neighbours]:
        """The pairs from atoms of ``species`` to each neighbour species; rows index the species' on-site group.

        ``vectors`` ``[n_blocks, 3]`` Å are the graph's :meth:`.ModelGraph.block_vectors`.
        """
        return [Neighbours(self.group_species[pair][1], rows, vectors[graph.off_site[pair].blocks])
                for pair, rows in self._neighbour_rows(graph, species)]

    def _neighbour_rows(self, graph: ModelGraph, species: str) -> list[tuple[str, torch.Tensor]]:
        """Per off-site group from atoms of ``species``: its key and the on-site row of each block's atom i."""
        row_of_atom = torch.zeros(graph.n_atoms, dtype=torch.long)
        row_of_atom[graph.block_pairs[graph.on_site[species].blocks, 0]] = torch.arange(len(graph.on_site[species].blocks))
        return [(key, row_of_atom[graph.block_pairs[group.blocks, 0]])
                for key, group in graph.off_site.items() if self.group_species[key][0] == species]

    # ---------------------------------------------------------------- prediction
    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def structure_blocks(self, structure: ase.Atoms | HamiltonianRecord) -> StructureBlocks:
        """The blocks predicted for a structure: a record's own (within the cutoff) or the model's graph."""
        if isinstance(structure, HamiltonianRecord):
            return StructureBlocks.of_record(structure, self.config.edge_cutoff)
        return StructureBlocks.of_atoms(structure, self.basis, self.config.edge_cutoff)

    def graph(self, structures: list[ase.Atoms | HamiltonianRecord]) -> ModelGraph:
        """The :class:`.ModelGraph` of one or more structures, in the model's dtype."""
        return self.graph_of_blocks([self.structure_blocks(s) for s in structures])

    def graph_of_blocks(self, items: list[StructureBlocks]) -> ModelGraph:
        """The :class:`.ModelGraph` of structures and their blocks, with what the model reads, in its dtype."""
        return build_model_graph(items, self.basis, self.config.r_max, self.config.coulomb).to(self.dtype)

    @torch.no_grad()
    def predict(self, structure: ase.Atoms | HamiltonianRecord) -> HamiltonianRecord:
        """The predicted record of a structure (or of a record's structure and blocks).

        Blocks farther apart than ``config.edge_cutoff`` are absent (zero).
        """
        item = self.structure_blocks(structure)
        values = self(self.graph_of_blocks([item]))
        return HamiltonianRecord(
            atoms=item.atoms, basis=self.basis, species=item.species, pairs=item.pairs, shifts=item.shifts,
            h_values=values.h.double().numpy()[:, None], s_values=values.s.double().numpy(),
            provenance=Provenance(source=f"{self.kind} model", code="hforge-nb",
                                  settings={"model": self.kind, **dataclasses.asdict(self.config)}),
        )

    @torch.no_grad()
    def fit_statistics(self, records: list[HamiltonianRecord]) -> None:
        """Data-dependent normalization before training: feature scales, then output shifts and scales.

        Uses the blocks of ``records`` within the cutoff; changes no
        trainable parameter and keeps the model equivariant.
        """
        items = [StructureBlocks.of_record(r, self.config.edge_cutoff) for r in records]
        graph = self.graph_of_blocks(items)
        self.descriptor.fit_feature_scale(graph)
        targets = dict(zip("hs", stack_targets(items, self.dtype)))
        vectors = graph.block_vectors()
        for key, group in graph.groups():
            pair_vectors = vectors[group.blocks] if key in graph.off_site else None
            neighbours = None if key in graph.off_site else self.on_site_neighbours(graph, key, vectors)
            for matrix, values in targets.items():
                self.outputs[f"{matrix}:{key}"].fit(values[group.values], pair_vectors, neighbours)

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def network_cutoff_of(config) -> float:
    """Å, :attr:`HamiltonianModel.network_cutoff` of a model with ``config``."""
    if config.network_cutoff is None or not config.two_center:
        return config.edge_cutoff
    return min(config.network_cutoff, config.edge_cutoff)


def graph_neighbourhood(graph: ModelGraph) -> Neighbourhood:
    """The message-passing edges of ``graph`` as a :class:`.Neighbourhood`: every atom's neighbours within r_max."""
    sender, receiver = graph.mp_edge_index
    vectors = graph.positions[receiver] + graph.mp_shifts - graph.positions[sender]  # [n_mp, 3] Å
    return neighbourhood(sender, receiver, vectors, graph.n_atoms)


def block_groups(basis: Basis) -> dict[str, tuple[str, str]]:
    """Every block group of a basis, ``"B"`` (on-site) and ``"B-N"`` (off-site), with its (row, column) species."""
    groups = {a: (a, a) for a in basis.symbols}
    groups.update({f"{a}-{b}": (a, b) for a in basis.symbols for b in basis.symbols})
    return groups


def rotated_predictions(model: HamiltonianModel, record: HamiltonianRecord,
                        rotation: np.ndarray) -> tuple[HamiltonianRecord, HamiltonianRecord]:
    """The prediction for the rotated structure, and the rotated prediction D_i H_ij D_j^T, block for block.

    ``rotation`` is 3x3 orthogonal; det -1 adds inversion.  For an exactly
    equivariant model the two records are equal.
    """
    from ..evaluation import aligned_values
    from ..rotations import rotate_record

    of_rotated = model.predict(rotate_record(record, rotation))
    rotated = rotate_record(model.predict(record), rotation)
    if (rotated.find_blocks(of_rotated.pairs, of_rotated.shifts) < 0).any():
        raise RuntimeError("the rotated structure has other blocks than the original (a pair on the cutoff?)")
    h, s = aligned_values(rotated, of_rotated)  # in of_rotated's block order
    return of_rotated, dataclasses.replace(of_rotated, h_values=h[:, None], s_values=s)


def rotation_error(model: HamiltonianModel, record: HamiltonianRecord, rotation: np.ndarray) -> dict[str, float]:
    """How far a model is from equivariance for one rotation (see :func:`rotated_predictions`).

    Returns
    -------
    dict
        ``h_max_eV`` and ``s_max``: largest absolute differences;
        ``h_relative`` and ``s_relative``: the same over the largest |H|, |S| predicted.
    """
    of_rotated, rotated = rotated_predictions(model, record, rotation)
    h_max = float(np.abs(of_rotated.h_values - rotated.h_values).max())
    s_max = float(np.abs(of_rotated.s_values - rotated.s_values).max())
    return {"h_max_eV": h_max, "s_max": s_max, "h_relative": h_max / float(np.abs(rotated.h_values).max()),
            "s_relative": s_max / float(np.abs(rotated.s_values).max())}


def parameter_breakdown(model: HamiltonianModel) -> dict[str, int]:
    """Trainable parameters of each top-level part of a model (descriptor, H and S readouts) and in total."""
    parts = {name: sum(p.numel() for p in child.parameters() if p.requires_grad)
             for name, child in model.named_children()}
    return {**{name: count for name, count in parts.items() if count}, "total": model.parameter_count()}
