"""The tensors a Hamiltonian model reads: atoms, message-passing edges and the blocks to predict.

One :class:`ModelGraph` holds one structure or a batch of them (atoms and
blocks concatenated, indices offset).  It carries two graphs:

- the *message-passing* graph of the descriptor, every pair closer than its
  cutoff ``r_max`` (MACE convention: sender ``edge_index[0]``, receiver
  ``edge_index[1]``, vector = r_receiver + shift - r_sender);
- the *blocks* to predict, (i, j, R) with i, j global atom indices, laid out
  one after the other row-major exactly as in a :class:`.HamiltonianRecord`,
  grouped by species (on-site) and species pair (off-site) for the readouts.

``adjoint_index`` pairs every value with its partner in the (j, i, -R) block,
so a model makes its output Hermitian with one gather.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import ase
import numpy as np
import torch

from .basis import Basis
from .electrostatics import coulomb_matrix
from .graph import block_list, build_pair_graph
from .neighbours import neighbour_pairs
from .record import HamiltonianRecord, adjoint_value_index, find_blocks, on_site_mask
from .structure import check_structure


@dataclass(frozen=True)
class BlockGroup:
    """Blocks of one species (on-site) or one ordered species pair (off-site).

    Attributes
    ----------
    blocks : torch.Tensor
        ``[n]`` long, indices into the graph's blocks.
    values : torch.Tensor
        ``[n, n_row * n_col]`` long, where each block's values go in the flat output.
    """

    blocks: torch.Tensor
    values: torch.Tensor


@dataclass(frozen=True)
class ModelGraph:
    """Model input for one structure or a batch (see the module docstring).

    Attributes
    ----------
    positions : torch.Tensor
        ``[n_atoms, 3]`` Å.
    species_index : torch.Tensor
        ``[n_atoms]`` long, index of each atom's species in ``basis.symbols``.
    batch, ptr : torch.Tensor
        ``[n_atoms]`` structure of every atom; ``[n_structures + 1]`` first atom of each.
    cell : torch.Tensor
        ``[n_structures, 3, 3]`` Å.
    mp_edge_index, mp_shifts, mp_unit_shifts : torch.Tensor
        Message-passing graph: ``[2, n_mp]``; ``[n_mp, 3]`` Å; ``[n_mp, 3]`` lattice images.
    block_pairs, block_shifts : torch.Tensor
        ``[n_blocks, 2]`` long (global atom indices); ``[n_blocks, 3]`` Å, Cartesian image shift of j.
    adjoint_index : torch.Tensor
        ``[n_values]`` long, position of each value's Hermitian partner.
    on_site : dict
        Species symbol -> :class:`BlockGroup` of its (i, i, 0) blocks.
    off_site : dict
        ``"A-B"`` -> :class:`BlockGroup` of the other blocks with i of species A, j of B.
    assembly_index : torch.Tensor
        ``[n_values]`` long: the groups' values concatenated in :meth:`groups` order,
        indexed by this, give the flat value layout.
    coulomb_index, coulomb_values : torch.Tensor
        The structures' :func:`.electrostatics.coulomb_matrix` stacked
        (``[2, n_entries]`` long, global atom indices; ``[n_entries]`` eV
        per e^2); empty unless the graph was built with ``coulomb`` settings.
    """

    positions: torch.Tensor
    species_index: torch.Tensor
    batch: torch.Tensor
    ptr: torch.Tensor
    cell: torch.Tensor
    mp_edge_index: torch.Tensor
    mp_shifts: torch.Tensor
    mp_unit_shifts: torch.Tensor
    block_pairs: torch.Tensor
    block_shifts: torch.Tensor
    adjoint_index: torch.Tensor
    on_site: dict[str, BlockGroup]
    off_site: dict[str, BlockGroup]
    assembly_index: torch.Tensor
    coulomb_index: torch.Tensor = dataclasses.field(default_factory=lambda: torch.zeros((2, 0), dtype=torch.long))
    coulomb_values: torch.Tensor = dataclasses.field(default_factory=lambda: torch.zeros(0, dtype=torch.float64))

    @property
    def n_atoms(self) -> int:
        return self.positions.shape[0]

    @property
    def n_values(self) -> int:
        return self.adjoint_index.shape[0]

    def groups(self) -> list[tuple[str, BlockGroup]]:
        """On-site groups, then off-site groups: the order of :attr:`assembly_index`."""
        return list(self.on_site.items()) + list(self.off_site.items())

    def block_vectors(self) -> torch.Tensor:
        """``[n_blocks, 3]`` Å, from atom i to the image of atom j."""
        i, j = self.block_pairs[:, 0], self.block_pairs[:, 1]
        return self.positions[j] + self.block_shifts - self.positions[i]

    def to(self, dtype: torch.dtype) -> "ModelGraph":
        """A copy with floating tensors (positions, cells, shifts) in ``dtype``."""
        floating = {name: getattr(self, name).to(dtype)
                    for name in ("positions", "cell", "mp_shifts", "block_shifts", "coulomb_values")}
        return ModelGraph(**{**self.__dict__, **floating})


@dataclass(frozen=True)
class StructureBlocks:
    """One structure, the blocks (i, j, R) to predict for it and, from a record, their reference values.

    Attributes
    ----------
    atoms : ase.Atoms
    species : tuple of str
    pairs : numpy.ndarray
        ``[n_blocks, 2]`` int.
    shifts : numpy.ndarray
        ``[n_blocks, 3]`` int, lattice images of j.
    h_values, s_values : numpy.ndarray or None
        ``[n_values]`` reference H (eV, first spin component) and S of these blocks, if known.
    """

    atoms: ase.Atoms
    species: tuple[str, ...]
    pairs: np.ndarray
    shifts: np.ndarray
    h_values: np.ndarray | None = None
    s_values: np.ndarray | None = None

    @classmethod
    def of_record(cls, record: HamiltonianRecord, cutoff: float) -> "StructureBlocks":
        """The record's on-site blocks and its other blocks closer than ``cutoff`` (Å), with their values."""
        if record.spin.n_components != 1:
            raise ValueError(f"models predict spin-unpolarized H; this record is {record.spin.value}")
        keep = record.on_site | (np.linalg.norm(record.pair_vectors, axis=1) < cutoff)
        values = record.per_value(keep)
        return cls(record.atoms, record.species, record.pairs[keep], record.shifts[keep],
                   record.h_values[values, 0], record.s_values[values])

    @classmethod
    def of_atoms(cls, atoms: ase.Atoms, basis: Basis, cutoff: float, species=None) -> "StructureBlocks":
        """Every on-site block and every pair closer than ``cutoff`` (Å)."""
        species = tuple(atoms.get_chemical_symbols() if species is None else species)
        pairs, shifts = block_list(build_pair_graph(atoms, basis, species=species, cutoff=cutoff))
        return cls(atoms, species, pairs, shifts)


def stack_targets(items: list[StructureBlocks], dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference H ``[n_values]`` (eV) and S ``[n_values]`` of items, in :func:`build_model_graph`'s layout."""
    if any(item.h_values is None for item in items):
        raise ValueError("reference values are known only for blocks taken from records (StructureBlocks.of_record)")
    h = torch.as_tensor(np.concatenate([item.h_values for item in items]), dtype=dtype)
    s = torch.as_tensor(np.concatenate([item.s_values for item in items]), dtype=dtype)
    return h, s


def _message_passing_edges(atoms: ase.Atoms, r_max: float) -> tuple[np.ndarray, np.ndarray]:
    """``[2, n]`` sender/receiver and ``[n, 3]`` lattice images of all pairs closer than ``r_max`` (Å)."""
    check_structure(atoms)
    i, j, shifts = neighbour_pairs(atoms, float(r_max))
    return np.stack([i, j]).astype(np.int64), shifts.astype(np.int64)


def _check_blocks(item: StructureBlocks, basis: Basis) -> None:
    """Every block needs its (j, i, -R) partner and indices inside the structure."""
    n_atoms = len(item.atoms)
    if len(item.pairs) and (item.pairs.min() < 0 or item.pairs.max() >= n_atoms):
        raise ValueError(f"block atom indices outside 0..{n_atoms - 1}")
    basis.for_symbols(item.species)
    missing = find_blocks(item.pairs, item.shifts, item.pairs[:, ::-1], -item.shifts) < 0
    if missing.any():
        b = int(np.flatnonzero(missing)[0])
        raise ValueError(f"block (i, j, R) = ({item.pairs[b].tolist()}, {item.shifts[b].tolist()}) has no "
                         f"(j, i, -R) partner: a model predicts Hermitian pairs of blocks")


def build_model_graph(items: list[StructureBlocks], basis: Basis, r_max: float,
                      coulomb: tuple[float, float] | None = None) -> ModelGraph:
    """Concatenate structures and their blocks into one :class:`ModelGraph` (float64).

    Parameters
    ----------
    items
        Structures with the blocks to predict.
    basis
        Orbital basis; ``basis.symbols`` fixes the species indices.
    r_max
        Cutoff (Å) of the descriptor's message-passing graph.
    coulomb
        ``(cutoff, damping)`` (Å, 1/Å) of the structures' Coulomb matrices
        (:func:`.electrostatics.coulomb_matrix`), or ``None`` for none.
    """
    for item in items:
        _check_blocks(item, basis)
    atom_start = np.concatenate([[0], np.cumsum([len(it.atoms) for it in items])])
    species = [s for it in items for s in it.species]
    counts = basis.orbital_counts(species)
    mp = [_message_passing_edges(it.atoms, r_max) for it in items]
    cells = [it.atoms.cell.array for it in items]
    pairs = np.concatenate([it.pairs + start for it, start in zip(items, atom_start)]).reshape(-1, 2)
    unit_shifts = np.concatenate([it.shifts for it in items]).reshape(-1, 3)
    structure_of_block = np.repeat(np.arange(len(items)), [len(it.pairs) for it in items])
    block_shifts = np.einsum("bk,bkx->bx", unit_shifts, np.asarray(cells)[structure_of_block]) if len(pairs) else np.zeros((0, 3))
    mp_unit = np.concatenate([s for _, s in mp])
    structure_of_mp = np.repeat(np.arange(len(items)), [s.shape[0] for _, s in mp])
    tensor = torch.as_tensor
    return ModelGraph(
        positions=tensor(np.concatenate([it.atoms.positions for it in items]), dtype=torch.float64),
        species_index=tensor(basis.species_indices(species), dtype=torch.long),
        batch=tensor(np.repeat(np.arange(len(items)), np.diff(atom_start)), dtype=torch.long),
        ptr=tensor(atom_start, dtype=torch.long),
        cell=tensor(np.asarray(cells), dtype=torch.float64),
        mp_edge_index=tensor(np.concatenate([e + start for (e, _), start in zip(mp, atom_start)], axis=1)),
        mp_shifts=tensor(np.einsum("ek,ekx->ex", mp_unit, np.asarray(cells)[structure_of_mp]), dtype=torch.float64),
        mp_unit_shifts=tensor(mp_unit, dtype=torch.float64),
        block_pairs=tensor(pairs, dtype=torch.long),
        block_shifts=tensor(block_shifts, dtype=torch.float64),
        adjoint_index=tensor(adjoint_value_index(pairs, unit_shifts, counts), dtype=torch.long),
        **_block_groups(pairs, unit_shifts, species, counts),
        **({} if coulomb is None else _coulomb_matrices(items, atom_start, *coulomb)),
    )


def _coulomb_matrices(items: list[StructureBlocks], atom_start: np.ndarray, cutoff: float, damping: float) -> dict:
    """``coulomb_index`` and ``coulomb_values`` of :class:`ModelGraph`: every item's matrix, indices offset."""
    matrices = [coulomb_matrix(item.atoms, cutoff, damping) for item in items]
    index = np.concatenate([m[0] + start for m, start in zip(matrices, atom_start)], axis=1)
    values = np.concatenate([m[1] for m in matrices])
    return {"coulomb_index": torch.as_tensor(index, dtype=torch.long),
            "coulomb_values": torch.as_tensor(values, dtype=torch.float64)}


def _block_groups(pairs: np.ndarray, unit_shifts: np.ndarray, species: list[str], counts: np.ndarray) -> dict:
    """Blocks grouped by species (on-site) and ordered species pair (off-site), and the assembly index."""
    sizes = counts[pairs[:, 0]] * counts[pairs[:, 1]]
    offsets = np.concatenate([[0], np.cumsum(sizes)])[:-1]
    on_site = on_site_mask(pairs, unit_shifts)
    labels = np.array([f"{species[i]}-{species[j]}" for i, j in pairs], dtype=object)
    groups: dict[str, dict] = {"on_site": {}, "off_site": {}}
    for label in sorted(set(labels)):
        for kind, mask in (("on_site", on_site), ("off_site", ~on_site)):
            blocks = np.flatnonzero((labels == label) & mask)
            if len(blocks) == 0:
                continue
            values = offsets[blocks, None] + np.arange(sizes[blocks[0]])
            key = label.split("-")[0] if kind == "on_site" else label
            groups[kind][key] = BlockGroup(torch.as_tensor(blocks), torch.as_tensor(values))
    order = [g.values.reshape(-1) for kind in ("on_site", "off_site") for g in groups[kind].values()]
    groups["assembly_index"] = _inverse_permutation(torch.cat(order)) if order else torch.zeros(0, dtype=torch.long)
    return groups


def _inverse_permutation(permutation: torch.Tensor) -> torch.Tensor:
    """``inverse`` with ``inverse[permutation] = arange``: the argsort of a permutation, in linear time."""
    inverse = torch.empty_like(permutation)
    inverse[permutation] = torch.arange(len(permutation))
    return inverse
