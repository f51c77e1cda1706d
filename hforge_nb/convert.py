"""Conversion between :class:`HamiltonianRecord` and ``sisl.Hamiltonian``.

sisl keeps a supercell-wide CSR matrix whose column ``isc * n_orb + o``
addresses orbital ``o`` in lattice image ``isc``; the record keeps dense
atom-pair blocks.  Both directions are exact: values are copied, never
recomputed.
"""

from __future__ import annotations

import ase
import numpy as np
import scipy.sparse as sp

from .basis import Basis, species_from_sisl_atom, species_to_sisl_atom
from .errors import BasisMismatchError
from .record import HamiltonianRecord, Provenance, value_positions
from .spin import SpinKind


def _sisl_entries(matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``[nnz]``, supercell columns ``[nnz]`` and values ``[nnz, dim]`` of a sisl matrix."""
    csr = matrix._csr  # sisl.SparseCSR: ptr/ncol/col/data with gaps between rows
    ncol = np.asarray(csr.ncol, dtype=np.int64)
    rows = np.repeat(np.arange(len(ncol)), ncol)
    row_start = np.repeat(np.asarray(csr.ptr[:-1], dtype=np.int64), ncol)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(ncol) - ncol, ncol)
    index = row_start + within
    return rows, np.asarray(csr.col)[index], np.asarray(csr.data)[index]


def atoms_from_sisl(geometry) -> ase.Atoms:
    """``ase.Atoms`` from a ``sisl.Geometry`` (positions and cell in Å)."""
    return ase.Atoms(
        numbers=[geometry.atoms[ia].Z for ia in range(geometry.na)],
        positions=np.array(geometry.xyz, dtype=float),
        cell=np.array(geometry.cell, dtype=float),
        pbc=np.asarray(geometry.lattice.pbc, dtype=bool),
    )


def basis_from_sisl_geometry(geometry) -> Basis:
    """The orbital basis of every species of a ``sisl.Geometry``."""
    return Basis(tuple(species_from_sisl_atom(atom) for atom in geometry.atoms.atom))


def record_from_sisl(hamiltonian, basis: Basis | None = None, fermi_level: float = 0.0,
                     provenance: Provenance | None = None) -> HamiltonianRecord:
    """Build a record from a non-orthogonal ``sisl.Hamiltonian``.

    Parameters
    ----------
    hamiltonian : sisl.Hamiltonian
        Energies in eV (as sisl reads them: relative to E_F).
    basis
        Orbital basis; defaults to the one carried by the geometry.  Its
        orbital counts must match the matrix (:class:`BasisMismatchError`).
    fermi_level
        Absolute Fermi level of the source calculation (eV), kept as metadata.
    """
    geometry = hamiltonian.geometry
    if hamiltonian.orthogonal:
        raise BasisMismatchError("the Hamiltonian is orthogonal (no overlap S); hforge-nb needs H and S")
    species = tuple(str(geometry.atoms[ia].tag) for ia in range(geometry.na))
    basis = basis_from_sisl_geometry(geometry) if basis is None else basis
    check_orbital_counts(basis, species, np.asarray(geometry.firsto[1:] - geometry.firsto[:-1]))

    rows, cols, values = _sisl_entries(hamiltonian)
    n_orb, n_atoms = geometry.no, geometry.na
    atom_i, atom_j_sc = geometry.o2a(rows), geometry.o2a(cols)
    image, atom_j = atom_j_sc // n_atoms, atom_j_sc % n_atoms
    shift = np.asarray(geometry.lattice.sc_off, dtype=np.int64)[image]
    first = np.asarray(geometry.firsto)
    local_i, local_j = rows - first[atom_i], cols % n_orb - first[atom_j]

    block_key = np.stack([atom_i, atom_j, shift[:, 0], shift[:, 1], shift[:, 2]], axis=1)
    unique_keys, block_of_entry = np.unique(block_key, axis=0, return_inverse=True)
    pairs, shifts = unique_keys[:, :2], unique_keys[:, 2:]
    counts = first[1:] - first[:-1]
    sizes = counts[pairs[:, 0]] * counts[pairs[:, 1]]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    position = offsets[block_of_entry] + local_i * counts[atom_j] + local_j

    n_comp = SpinKind.from_sisl(hamiltonian.spin).n_components
    h_values = np.zeros((offsets[-1], n_comp))
    s_values = np.zeros(offsets[-1])
    h_values[position] = values[:, :n_comp]
    s_values[position] = values[:, -1]
    return HamiltonianRecord(
        atoms=atoms_from_sisl(geometry), basis=basis, species=species, pairs=pairs, shifts=shifts,
        h_values=h_values, s_values=s_values, spin=SpinKind.from_sisl(hamiltonian.spin),
        fermi_level=float(fermi_level), provenance=provenance or Provenance(),
    )


def check_orbital_counts(basis: Basis, species, counts) -> None:
    """Raise :class:`BasisMismatchError` when the basis disagrees with per-atom orbital counts."""
    expected = basis.orbital_counts(species)
    bad = np.flatnonzero(expected != np.asarray(counts))
    if bad.size:
        ia = int(bad[0])
        raise BasisMismatchError(
            f"the basis gives species {species[ia]!r} {expected[ia]} orbitals per atom, "
            f"but the matrix has {int(counts[ia])} for atom {ia}"
        )


def geometry_to_sisl(record: HamiltonianRecord):
    """``sisl.Geometry`` with the record's atoms, basis and the images its blocks need."""
    import sisl

    atoms_by_label = {sb.symbol: species_to_sisl_atom(sb) for sb in record.basis.species}
    reach = np.abs(record.shifts).max(axis=0) if record.n_blocks else np.zeros(3, int)
    lattice = sisl.Lattice(record.atoms.cell.array, nsc=2 * reach + 1)
    return sisl.Geometry(record.atoms.positions, atoms=[atoms_by_label[s] for s in record.species], lattice=lattice)


def record_to_sisl(record: HamiltonianRecord):
    """A non-orthogonal ``sisl.Hamiltonian`` holding exactly the record's blocks."""
    import sisl

    geometry = geometry_to_sisl(record)
    n_orb, first = geometry.no, record.orbital_offsets
    image = geometry.lattice.sc_index(record.shifts)
    block, row, col = value_positions(record.block_shapes)
    rows = first[record.pairs[block, 0]] + row
    cols = image[block] * n_orb + first[record.pairs[block, 1]] + col
    shape = (n_orb, n_orb * geometry.n_s)
    data = np.concatenate([record.h_values, record.s_values[:, None]], axis=1)
    matrices = [sp.csr_matrix((data[:, d], (rows, cols)), shape=shape) for d in range(data.shape[1])]
    return sisl.Hamiltonian.fromsp(geometry, matrices[:-1], S=matrices[-1], spin=record.spin.to_sisl())
