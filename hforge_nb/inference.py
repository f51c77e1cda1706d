"""Predicting H and S of large structures in chunks of atoms, with memory linear in their number.

:meth:`.HamiltonianModel.predict` builds one graph of the whole structure,
whose descriptor and readout tensors grow with it; at 10^4 atoms they no
longer fit in memory.  :func:`predict_in_chunks` gives the same blocks
chunk by chunk:

1. **Node features** are computed one interaction layer at a time, one
   spatial domain at a time: a layer's features of the domain's atoms need
   only the previous layer's features of their neighbours within ``r_max``
   (periodic images included), which are kept for all atoms between layers.
   They equal the whole-structure features, and no work is repeated on
   halos.
2. **Blocks**: every unordered pair {i, j(R)} closer than the model's
   ``edge_cutoff`` is taken once, in the domain of its first atom, and the
   readouts run in both directions: the Hermitian block
   ``0.5 (B_ij(R) + B_ji(-R)^T)`` and its transpose are exact, and both
   directions' contributions to the on-site blocks are summed into
   per-atom accumulators.
3. **On-site blocks** come last, from the node features and those sums.

Blocks farther apart than ``block_cutoff`` are computed (their on-site
contributions count) but not kept; ``block_cutoff`` trades sparsity against
the small far blocks (:func:`.large_scale.truncated_overlap_eigenvalues`
shows what cutting S does to a reference).

Pairs are found with a k-d tree over the structure padded with the
periodic images within reach, which works for any cell shape and needs
memory linear in the number of atoms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import ase
import numpy as np
import torch

from .model_graph import StructureBlocks, build_model_graph
from .models.descriptor import DomainGraph
from .models.three_center import Neighbourhood, neighbourhood
from .neighbours import PeriodicImages, face_spacings
from .record import HamiltonianRecord, Provenance, bsr_from_pair_keys
from .structure import check_structure


@dataclass(frozen=True)
class ChunkConfig:
    """How a large structure is cut up for prediction.

    Attributes
    ----------
    chunk_atoms : int
        Target number of atoms per spatial domain of the blocks; peak memory
        grows with it, not with the structure.
    feature_chunk_atoms : int
        The same for the node features.  A structure of at most this many
        atoms gets its features from its own periodic graph; a larger one
        domain by domain, one interaction layer at a time, so no halo is
        recomputed (:meth:`.MACEDescriptor.forward_in_domains`).
    block_cutoff : float or None
        Keep off-site blocks closer than this (Å); ``None`` keeps every block
        the model predicts (closer than its ``edge_cutoff``).
    """

    chunk_atoms: int = 1000
    feature_chunk_atoms: int = 1000
    block_cutoff: float | None = None

    def __post_init__(self) -> None:
        if self.chunk_atoms < 1 or self.feature_chunk_atoms < 1:
            raise ValueError(f"chunk sizes must be positive, got {self.chunk_atoms}, {self.feature_chunk_atoms}")
        if self.block_cutoff is not None and self.block_cutoff <= 0:
            raise ValueError(f"block_cutoff must be positive (Å), got {self.block_cutoff}")


class BlockChunk(NamedTuple):
    """Blocks of one chunk, laid out as in a :class:`.HamiltonianRecord`.

    ``pairs`` ``[n, 2]`` int, ``shifts`` ``[n, 3]`` int (lattice image of j),
    ``h_values`` ``[n_values]`` eV and ``s_values`` ``[n_values]``, each block
    row-major ``[n_orbitals(i), n_orbitals(j)]``.
    """

    pairs: np.ndarray
    shifts: np.ndarray
    h_values: np.ndarray
    s_values: np.ndarray


def spatial_domains(atoms: ase.Atoms, chunk_atoms: int) -> list[np.ndarray]:
    """Atoms split into compact domains of about ``chunk_atoms`` (a grid in cell fractions), none empty.

    A structure of at most ``chunk_atoms`` atoms is one domain, whatever its shape.
    """
    n_domains = max(1, int(np.ceil(len(atoms) / chunk_atoms)))
    if n_domains == 1:
        return [np.arange(len(atoms))]
    spacings = face_spacings(atoms.cell.array) if atoms.pbc.all() else np.ptp(atoms.positions, axis=0) + 1.0
    grid = np.maximum(1, np.round(spacings * (n_domains / np.prod(spacings)) ** (1 / 3))).astype(int)
    if atoms.pbc.all():
        fractional = atoms.cell.scaled_positions(atoms.positions) % 1.0
    else:
        fractional = (atoms.positions - atoms.positions.min(axis=0)) / spacings
    cells = np.minimum((fractional * grid).astype(int), grid - 1)
    label = np.ravel_multi_index(cells.T, grid)
    order = np.argsort(label, kind="stable")
    return [d for d in np.split(order, np.flatnonzero(np.diff(label[order])) + 1) if len(d)]


# ------------------------------------------------------------- the model
def domain_graph(images: PeriodicImages, domain: np.ndarray, r_max: float, dtype: torch.dtype) -> DomainGraph:
    """The message-passing edges (closer than ``r_max``, Å) into the atoms of ``domain``, as a :class:`.DomainGraph`."""
    receiver, point = images.within(domain, r_max)
    sender = images.atom[point]
    nodes = np.unique(np.concatenate([domain, sender]))
    edge_index = np.stack([np.searchsorted(nodes, sender), np.searchsorted(nodes, receiver)])
    vectors = images.home[receiver] - images.positions[point]  # [n_edges, 3] Å, sender's image -> receiver
    return DomainGraph(torch.as_tensor(nodes), torch.as_tensor(np.searchsorted(nodes, domain)),
                       torch.as_tensor(edge_index), torch.as_tensor(vectors, dtype=dtype))


@torch.no_grad()
def node_features_in_chunks(model, atoms: ase.Atoms, images: PeriodicImages,
                            domains: list[np.ndarray]) -> torch.Tensor:
    """``[n_atoms, n_features]`` node features of a periodic structure, one domain at a time.

    A single domain is the structure itself: its own (periodic) graph.
    Several go through the descriptor layer by layer
    (:meth:`.MACEDescriptor.forward_in_domains`), each domain reading the
    previous layer's features of its neighbours, so no halo is recomputed.
    """
    if len(domains) == 1:
        return model.node_features(_graph_without_blocks(model, atoms))
    species_index = torch.as_tensor(model.basis.species_indices(atoms.get_chemical_symbols()))
    graphs = [domain_graph(images, domain, model.config.r_max, model.dtype) for domain in domains]
    return model.descriptor.forward_in_domains(species_index, graphs)


def _graph_without_blocks(model, atoms: ase.Atoms):
    """The model graph of ``atoms`` for node features only (no blocks), in the model's dtype."""
    item = StructureBlocks(atoms, tuple(atoms.get_chemical_symbols()), np.zeros((0, 2), np.int64),
                           np.zeros((0, 3), np.int64))
    return build_model_graph([item], model.basis, model.config.r_max).to(model.dtype)


def canonical_pairs(images: PeriodicImages, domain: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i, j, R) closer than ``cutoff`` (Å) with i in ``domain``, each unordered pair once.

    A pair is kept from the side with i < j, or, for an atom and its own
    image, with R > 0 (lexicographically).

    Returns
    -------
    pairs, shifts, vectors
        ``[n, 2]`` int; ``[n, 3]`` int lattice image of j; ``[n, 3]`` Å from i to j's image.
    """
    i, point = images.within(domain, cutoff)
    j, shift = images.atom[point], images.shifts(i, point)
    first_nonzero = np.take_along_axis(shift, np.argmax(shift != 0, axis=1)[:, None], axis=1)[:, 0]
    keep = (i < j) | ((i == j) & (first_nonzero > 0))
    i, point = i[keep], point[keep]
    return np.stack([i, j[keep]], axis=1), shift[keep], images.positions[point] - images.home[i]


class _OnSiteSums:
    """Neighbour contributions to every atom's on-site irreps, H and S, summed over its pairs.

    One row per atom of each species (``row`` maps an atom to its row).
    """

    def __init__(self, model, species: np.ndarray, dtype: torch.dtype):
        self.h, self.s, self.atoms = {}, {}, {}
        self.row = torch.zeros(len(species), dtype=torch.long)  # [n_atoms] row within its species
        for symbol in np.unique(species):
            atoms = np.flatnonzero(species == symbol)
            self.atoms[symbol] = torch.as_tensor(atoms)
            self.row[atoms] = torch.arange(len(atoms))
            dim = model.outputs[f"h:{symbol}"].dim
            self.h[symbol] = torch.zeros((len(atoms), dim), dtype=dtype)
            self.s[symbol] = torch.zeros((len(atoms), dim), dtype=dtype)

    def add(self, symbol: str, atoms: torch.Tensor, h: torch.Tensor, s: torch.Tensor) -> None:
        """Add contributions ``[n, dim]`` to the on-site sums of ``atoms`` ``[n]`` (all of species ``symbol``)."""
        self.h[symbol].index_add_(0, self.row[atoms], h)
        self.s[symbol].index_add_(0, self.row[atoms], s)


def _directed_blocks(model, key: str, features: torch.Tensor, i: torch.Tensor, j: torch.Tensor,
                     vectors: torch.Tensor, sums: _OnSiteSums,
                     edges: Neighbourhood | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw H, S blocks ``[n, n_i * n_j]`` of pairs i -> j(R) of species pair ``key``; adds i's on-site terms."""
    triplets = None if edges is None else model.triplets(i, vectors, edges, features)
    irreps = model.pair_irreps(key, features[i], features[j], vectors, triplets)
    sums.add(model.group_species[key][0], i, irreps.h_on_site, irreps.s_on_site)
    return model.outputs[f"h:{key}"](irreps.h, vectors), model.outputs[f"s:{key}"](irreps.s, vectors)


def chunk_neighbourhood(model, images: PeriodicImages, atoms: np.ndarray, dtype: torch.dtype) -> Neighbourhood | None:
    """The neighbours of ``atoms`` that the model's three-center term reads (None for a model without one)."""
    if model.three_center is None:
        return None
    centre, point = images.within(atoms, model.config.three_center_reach)
    vectors = images.positions[point] - images.home[centre]  # [n, 3] Å, centre -> neighbour's image
    return neighbourhood(torch.as_tensor(centre), torch.as_tensor(images.atom[point]),
                         torch.as_tensor(vectors, dtype=dtype), len(images.home))


def _transposed(blocks: torch.Tensor, n_rows: int, n_cols: int) -> torch.Tensor:
    """``[n, n_rows * n_cols]`` row-major blocks -> their transposes, ``[n, n_cols * n_rows]``."""
    return blocks.reshape(-1, n_rows, n_cols).transpose(1, 2).reshape(len(blocks), -1)


def _off_site_chunk(model, features: torch.Tensor, images: PeriodicImages, species: np.ndarray, pairs: np.ndarray,
                    shifts: np.ndarray, vectors: np.ndarray, keep_within: float, sums: _OnSiteSums,
                    potentials: torch.Tensor | None = None) -> list[BlockChunk]:
    """Hermitian blocks (i, j, R) and (j, i, -R) of canonical pairs, per species pair; those within ``keep_within``.

    ``potentials`` ``[n_atoms]`` (V): the site potentials of a model with partial charges or a local potential
    (:meth:`.HamiltonianModel.structure_potentials`).
    """
    chunks, edges = [], chunk_neighbourhood(model, images, np.unique(pairs), features.dtype)
    labels = np.char.add(np.char.add(species[pairs[:, 0]], "-"), species[pairs[:, 1]])
    for key in np.unique(labels):
        rows = np.flatnonzero(labels == key)
        i, j = (torch.as_tensor(pairs[rows, c]) for c in (0, 1))
        vec = torch.as_tensor(vectors[rows], dtype=features.dtype)
        reverse = "-".join(reversed(key.split("-")))
        h_ij, s_ij = _directed_blocks(model, key, features, i, j, vec, sums, edges)
        h_ji, s_ji = _directed_blocks(model, reverse, features, j, i, -vec, sums, edges)
        n_i, n_j = (model.basis[s].n_orbitals for s in key.split("-"))
        h = 0.5 * (h_ij + _transposed(h_ji, n_j, n_i))
        s = 0.5 * (s_ij + _transposed(s_ji, n_j, n_i))
        if potentials is not None:
            h = h - 0.5 * (potentials[i] + potentials[j])[:, None] * s
        kept = (vec.norm(dim=1) < keep_within).numpy()
        if kept.any():
            chunks.append(_pair_and_partner(pairs[rows][kept], shifts[rows][kept], h[kept], s[kept], n_i, n_j))
    return chunks


def _pair_and_partner(pairs, shifts, h: torch.Tensor, s: torch.Tensor, n_i: int, n_j: int) -> BlockChunk:
    """Blocks (i, j, R) followed by their Hermitian partners (j, i, -R)."""
    return BlockChunk(
        np.concatenate([pairs, pairs[:, ::-1]]), np.concatenate([shifts, -shifts]),
        torch.cat([h.reshape(-1), _transposed(h, n_i, n_j).reshape(-1)]).double().numpy(),
        torch.cat([s.reshape(-1), _transposed(s, n_i, n_j).reshape(-1)]).double().numpy(),
    )


def _on_site_chunks(model, features: torch.Tensor, sums: _OnSiteSums,
                    potentials: torch.Tensor | None = None) -> Iterator[BlockChunk]:
    """The on-site blocks (i, i, 0) of every species, Hermitian (``potentials`` as in :func:`_off_site_chunk`)."""
    for symbol, atoms in sums.atoms.items():
        h, s = model.on_site(symbol, features[atoms])
        n = model.basis[symbol].n_orbitals
        h = model.outputs[f"h:{symbol}"](h + sums.h[symbol])
        s = model.outputs[f"s:{symbol}"](s + sums.s[symbol])
        h, s = 0.5 * (h + _transposed(h, n, n)), 0.5 * (s + _transposed(s, n, n))
        if potentials is not None:
            h = h - potentials[atoms][:, None] * s
        home = atoms.numpy()
        yield BlockChunk(np.stack([home, home], axis=1), np.zeros((len(home), 3), np.int64),
                         h.reshape(-1).double().numpy(), s.reshape(-1).double().numpy())


@torch.no_grad()
def predict_in_chunks(model, atoms: ase.Atoms, config: ChunkConfig = ChunkConfig()) -> Iterator[BlockChunk]:
    """The model's H and S blocks of ``atoms``, one chunk at a time (see the module docstring).

    Yields the off-site blocks of every domain, then the on-site blocks.
    Together they equal :meth:`.HamiltonianModel.predict` (blocks within
    ``config.block_cutoff``), in another order.
    """
    check_structure(atoms)
    species = np.asarray(atoms.get_chemical_symbols())
    model.basis.for_symbols(species.tolist())
    cutoff, keep_within = model.config.edge_cutoff, _block_range(model, config)
    images = PeriodicImages(atoms, max(cutoff, model.config.r_max))
    features = node_features_in_chunks(model, atoms, images, spatial_domains(atoms, config.feature_chunk_atoms))
    potentials = model.structure_potentials(atoms, torch.as_tensor(model.basis.species_indices(species.tolist())),
                                            features)
    sums = _OnSiteSums(model, species, features.dtype)
    for domain in spatial_domains(atoms, config.chunk_atoms):
        pairs, shifts, vectors = canonical_pairs(images, domain, cutoff)
        yield from _off_site_chunk(model, features, images, species, pairs, shifts, vectors, keep_within, sums,
                                   potentials)
    yield from _on_site_chunks(model, features, sums, potentials)


def _block_range(model, config: ChunkConfig) -> float:
    """Å: off-site blocks closer than this are kept (the model's edge cutoff, or ``block_cutoff`` if shorter)."""
    cutoff = model.config.edge_cutoff
    return cutoff if config.block_cutoff is None else min(cutoff, config.block_cutoff)


def gamma_block_pattern(atoms: ase.Atoms, block_range: float, chunk_atoms: int = 1000) -> np.ndarray:
    """``[n_pairs]`` sorted keys i * n_atoms + j of the atom pairs with a block closer than ``block_range`` (Å).

    Every image of j counts; the on-site pairs (i, i) are included.  This is
    the block pattern of H and S at k = 0.
    """
    n_atoms = len(atoms)
    images = PeriodicImages(atoms, block_range)
    keys = [np.arange(n_atoms, dtype=np.int64) * (n_atoms + 1)]  # (i, i)
    for domain in spatial_domains(atoms, chunk_atoms):
        i, point = images.within(domain, block_range)
        keys.append(np.unique(i.astype(np.int64) * n_atoms + images.atom[point]))
    return np.unique(np.concatenate(keys))


def _add_blocks(data: np.ndarray, slots: np.ndarray, blocks: np.ndarray) -> None:
    """``data[slots] += blocks`` (``[n, b, b]``), repeated slots summed."""
    order = np.argsort(slots, kind="stable")
    unique, starts = np.unique(slots[order], return_index=True)
    data[unique] += np.add.reduceat(blocks[order], starts, axis=0)


@torch.no_grad()
def predict_gamma_matrices(model, atoms: ase.Atoms, config: ChunkConfig = ChunkConfig()):
    """H (eV) and S at k = 0 of the model's prediction as ``scipy.sparse.bsr_matrix`` ``[n_orb, n_orb]``.

    The blocks of :func:`predict_in_chunks` are summed over periodic
    images into block arrays allocated once for :func:`gamma_block_pattern`,
    chunk by chunk, so no record is built: the peak memory is the two
    matrices and one chunk, about half of :func:`predict_large` followed by
    :meth:`.HamiltonianRecord.block_sparse_matrices_at_gamma`, which give
    the same matrices.  Every atom must have the same number of orbitals.
    """
    n, n_atoms = model.basis.common_orbital_count(atoms.get_chemical_symbols(), required=True), len(atoms)
    keys = gamma_block_pattern(atoms, _block_range(model, config), config.chunk_atoms)
    h, s = np.zeros((len(keys), n, n)), np.zeros((len(keys), n, n))  # [n_pairs, n, n] eV, and S
    for chunk in predict_in_chunks(model, atoms, config):
        wanted = chunk.pairs[:, 0].astype(np.int64) * n_atoms + chunk.pairs[:, 1]
        slots = np.searchsorted(keys, wanted).clip(max=len(keys) - 1)
        if np.any(keys[slots] != wanted):
            raise RuntimeError("a predicted block lies outside the block pattern at k = 0")
        _add_blocks(h, slots, chunk.h_values.reshape(-1, n, n))
        _add_blocks(s, slots, chunk.s_values.reshape(-1, n, n))
    return bsr_from_pair_keys(keys, h, n_atoms), bsr_from_pair_keys(keys, s, n_atoms)


def record_from_chunks(atoms: ase.Atoms, basis, chunks, provenance: Provenance | None = None) -> HamiltonianRecord:
    """One :class:`.HamiltonianRecord` of the blocks of ``chunks`` (an iterable of :class:`BlockChunk`)."""
    chunks = list(chunks)
    return HamiltonianRecord(
        atoms=atoms, basis=basis, species=tuple(atoms.get_chemical_symbols()),
        pairs=np.concatenate([c.pairs for c in chunks]), shifts=np.concatenate([c.shifts for c in chunks]),
        h_values=np.concatenate([c.h_values for c in chunks])[:, None],
        s_values=np.concatenate([c.s_values for c in chunks]),
        provenance=provenance or Provenance(source="hforge-nb chunked prediction", code="hforge-nb"),
    )


def chunked_provenance(model, config: ChunkConfig) -> Provenance:
    """Provenance of a chunked prediction: the model kind, its configuration and the chunking."""
    settings = {"model": model.kind, **dataclasses.asdict(model.config), **dataclasses.asdict(config)}
    return Provenance(source=f"{model.kind} model, chunked", code="hforge-nb", settings=settings)


def predict_large(model, atoms: ase.Atoms, config: ChunkConfig = ChunkConfig()) -> HamiltonianRecord:
    """The model's prediction for ``atoms`` as one record, built chunk by chunk (:func:`predict_in_chunks`)."""
    return record_from_chunks(atoms, model.basis, predict_in_chunks(model, atoms, config),
                              chunked_provenance(model, config))
