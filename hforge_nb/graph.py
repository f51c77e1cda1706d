"""Graphs of atom pairs whose orbitals overlap, with periodic images.

Two atoms i, j interact through their orbitals when |r_ij| < R_i + R_j,
with R the largest orbital radius of each species: that is the default
cutoff, per species pair.  The graph's edges are the off-site blocks a model
predicts; on-site blocks belong to the nodes.

H reaches beyond the overlap range: the non-local pseudopotential
(SIESTA's Kleinman-Bylander projectors, GPAW's PAW projectors) couples two
orbitals that both touch a projector of a third atom, so H_ij can be
non-zero up to R_i + R_j + 2 R_proj (``reach="hamiltonian"``), with small
values.  :func:`block_coverage` measures what a graph misses of a reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import ase
import numpy as np

from .basis import Basis
from .errors import MissingBasisError
from .neighbours import neighbour_pairs, pair_vectors
from .record import HamiltonianRecord
from .structure import check_structure


@dataclass(frozen=True)
class PairGraph:
    """Directed atom-pair graph of one structure.

    Attributes
    ----------
    edge_index : numpy.ndarray
        ``[2, n_edges]`` int, (i, j): atom i in the home cell, j in image ``shifts``.
    shifts : numpy.ndarray
        ``[n_edges, 3]`` int, lattice image of atom j.
    vectors : numpy.ndarray
        ``[n_edges, 3]`` Å, from atom i to the image of atom j.
    n_atoms : int
    """

    edge_index: np.ndarray
    shifts: np.ndarray
    vectors: np.ndarray
    n_atoms: int

    @property
    def n_edges(self) -> int:
        return self.edge_index.shape[1]

    @property
    def distances(self) -> np.ndarray:
        """``[n_edges]`` Å."""
        return np.linalg.norm(self.vectors, axis=1)

    @property
    def pairs(self) -> np.ndarray:
        """``[n_edges, 2]`` the (i, j) of every edge."""
        return self.edge_index.T


def species_radii(basis: Basis, species) -> np.ndarray:
    """``[n_atoms]`` largest orbital radius (Å) of every atom's species."""
    radii = np.array([b.max_radius for b in basis.for_symbols(species)])
    if (radii <= 0).any():
        unknown = sorted({s for s, r in zip(species, radii) if r <= 0})
        raise MissingBasisError(f"species {unknown} have no orbital radii (read the basis from .ion.xml files)")
    return radii


def projector_reach(basis: Basis, species) -> float:
    """Largest projector radius (Å) among the species: H reaches R_i + R_j + 2 of it."""
    radii = [b.projector_radius for b in basis.for_symbols(set(species))]
    if min(radii) <= 0:
        raise MissingBasisError("the basis has no projector radii (read it from .ion.xml files) for reach='hamiltonian'")
    return max(radii)


def build_pair_graph(atoms: ase.Atoms, basis: Basis, species=None, cutoff: float | None = None,
                     reach: str = "overlap") -> PairGraph:
    """Atom pairs within orbital range (or within a fixed ``cutoff`` in Å).

    Parameters
    ----------
    atoms
        Structure; periodic directions follow ``atoms.pbc``.
    basis
        Orbital basis; species radii set the default cutoff R_i + R_j.
    species
        Species label of every atom (default: the chemical symbols).
    cutoff
        A single distance (Å) for every pair instead of R_i + R_j.
    reach
        ``"overlap"``: |r_ij| < R_i + R_j, where S is non-zero.
        ``"hamiltonian"``: |r_ij| < R_i + R_j + 2 R_proj, every pair two
        orbitals can share a pseudopotential projector through (R_proj the
        largest projector radius), where H can be non-zero.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from hforge_nb.basis import SpeciesBasis, OrbitalShell
    >>> si = Basis((SpeciesBasis("Si", 14, (OrbitalShell(3, 0, radius=2.5),)),))
    >>> graph = build_pair_graph(bulk("Si"), si)  # pairs closer than 2.5 + 2.5 Å
    >>> shells, counts = np.unique(np.round(graph.distances, 2), return_counts=True)
    >>> shells.tolist(), (counts // 2).tolist()
    ([2.35, 3.84, 4.5], [4, 12, 12])

    Each Si atom of diamond has 4 + 12 + 12 neighbours within 5 Å.
    """
    species = list(atoms.get_chemical_symbols() if species is None else species)
    check_structure(atoms)
    radii = species_radii(basis, species)
    if reach not in ("overlap", "hamiltonian"):
        raise ValueError(f"reach must be 'overlap' or 'hamiltonian', got {reach!r}")
    if reach == "hamiltonian":
        radii = radii + projector_reach(basis, species)
    i, j, shifts = neighbour_pairs(atoms, 2 * radii.max(initial=0.0) if cutoff is None else float(cutoff))
    vectors = pair_vectors(atoms, i, j, shifts)  # [n, 3] Å
    if cutoff is None:
        keep = np.linalg.norm(vectors, axis=1) < radii[i] + radii[j]
        i, j, shifts, vectors = i[keep], j[keep], shifts[keep], vectors[keep]
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], j, i))
    return PairGraph(
        edge_index=np.stack([i[order], j[order]]).astype(np.int64),
        shifts=shifts[order].astype(np.int64),
        vectors=vectors[order],
        n_atoms=len(atoms),
    )


def block_list(graph: PairGraph) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``[n_blocks, 2]`` and shifts ``[n_blocks, 3]``: the graph's edges plus the on-site blocks, sorted.

    These are the blocks of a record built on ``graph``: the edges are the
    off-site blocks and every atom adds its own (i, i, 0).
    """
    home = np.arange(graph.n_atoms)
    pairs = np.concatenate([np.stack([home, home], axis=1), graph.pairs])
    shifts = np.concatenate([np.zeros((graph.n_atoms, 3), np.int64), graph.shifts])
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], pairs[:, 1], pairs[:, 0]))
    return pairs[order], shifts[order]


@dataclass(frozen=True)
class BlockCoverage:
    """How much of a reference record's off-site blocks a graph holds.

    Counts are of off-site blocks (i != j or R != 0); "non-zero" means a
    largest |element| above the tolerance.  Magnitudes in eV for H.
    """

    n_reference_blocks: int
    n_graph_edges: int
    missing_nonzero_s: int
    missing_nonzero_h: int
    max_missing_abs_s: float
    max_missing_abs_h_eV: float
    max_missing_distance: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def block_coverage(record: HamiltonianRecord, graph: PairGraph, tolerance: float = 0.0) -> BlockCoverage:
    """Compare a record's non-zero off-site blocks with a graph's edges."""
    off_site = ~record.on_site
    graph_record_index = record.find_blocks(graph.pairs, graph.shifts)
    in_graph = np.zeros(record.n_blocks, bool)
    in_graph[graph_record_index[graph_record_index >= 0]] = True
    h_max, s_max = record.block_max_abs()
    missing = off_site & ~in_graph
    h_missing, s_missing = missing & (h_max > tolerance), missing & (s_max > tolerance)
    distances = np.linalg.norm(record.pair_vectors, axis=1)
    return BlockCoverage(
        n_reference_blocks=int(off_site.sum()),
        n_graph_edges=graph.n_edges,
        missing_nonzero_s=int(s_missing.sum()),
        missing_nonzero_h=int(h_missing.sum()),
        max_missing_abs_s=float(s_max[missing].max(initial=0.0)),
        max_missing_abs_h_eV=float(h_max[missing].max(initial=0.0)),
        max_missing_distance=float(distances[h_missing | s_missing].max(initial=0.0)),
    )
