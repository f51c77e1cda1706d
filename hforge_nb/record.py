"""One electronic-structure sample: structure, basis, and H and S as atom-pair blocks.

H and S are stored as dense blocks of atom pairs (i, j, R): atom i in the
home cell, atom j in the periodic image shifted by the integer lattice
vector R (``shifts``).  Block b occupies ``values[offsets[b]:offsets[b+1]]``
row-major as ``[n_orbitals(i), n_orbitals(j)]``.  Energies are in eV,
referenced to the Fermi level (E_F = 0), as sisl presents SIESTA output.

Bloch sums use sisl's convention, H(k) = sum_R H(R) exp(+2 pi i k.R),
with k in reduced coordinates of the reciprocal cell.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import ase
import numpy as np
import scipy.linalg

from .basis import Basis, SpeciesBasis
from .errors import BasisMismatchError, NonFiniteValuesError
from .neighbours import pair_vectors
from .spin import SpinKind, spin_box
from .structure import check_finite


@dataclass(frozen=True)
class Provenance:
    """Where a record came from.

    Attributes
    ----------
    source : str
        The file (or generator) it was read from.
    code : str
        The program that computed it (``"SIESTA"``, ``"GPAW"``, ``"hforge-nb"``).
    settings : dict
        Settings of that calculation that matter for comparisons (basis,
        functional, k-grid, ...), as strings or numbers.
    """

    source: str = ""
    code: str = ""
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class HamiltonianRecord:
    """H and S of one structure in a localized orbital basis.

    Attributes
    ----------
    atoms : ase.Atoms
        The structure, with cell (Å) and periodicity.
    basis : Basis
        Orbital basis of every species.
    species : tuple of str
        Species label of every atom (a key of ``basis``).
    pairs : numpy.ndarray
        ``[n_blocks, 2]`` int, atoms (i, j) of every block.
    shifts : numpy.ndarray
        ``[n_blocks, 3]`` int, lattice image of atom j.
    h_values : numpy.ndarray
        ``[n_values, n_components]`` float, H in eV (components: see :mod:`.spin`).
    s_values : numpy.ndarray
        ``[n_values]`` float, S (dimensionless).
    spin : SpinKind
        Spin treatment.
    fermi_level : float
        The source calculation's absolute Fermi level (eV); the matrices
        themselves are already referenced to it.
    provenance : Provenance
    """

    atoms: ase.Atoms
    basis: Basis
    species: tuple[str, ...]
    pairs: np.ndarray
    shifts: np.ndarray
    h_values: np.ndarray
    s_values: np.ndarray
    spin: SpinKind = SpinKind.UNPOLARIZED
    fermi_level: float = 0.0
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self) -> None:
        object.__setattr__(self, "species", tuple(self.species))
        object.__setattr__(self, "spin", SpinKind(self.spin))
        object.__setattr__(self, "pairs", np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2))
        object.__setattr__(self, "shifts", np.asarray(self.shifts, dtype=np.int64).reshape(-1, 3))
        h = np.asarray(self.h_values, dtype=float)
        object.__setattr__(self, "h_values", h.reshape(len(h), -1))
        object.__setattr__(self, "s_values", np.asarray(self.s_values, dtype=float).reshape(-1))
        self._validate()

    # ------------------------------------------------------------------ checks
    def _validate(self) -> None:
        n_atoms = len(self.atoms)
        if len(self.species) != n_atoms:
            raise BasisMismatchError(f"{len(self.species)} species labels for {n_atoms} atoms")
        self.basis.for_symbols(self.species)  # raises MissingBasisError
        if len(self.pairs) != len(self.shifts):
            raise ValueError(f"{len(self.pairs)} atom pairs but {len(self.shifts)} shifts")
        if len(self.pairs) and (self.pairs.min() < 0 or self.pairs.max() >= n_atoms):
            raise ValueError(f"atom-pair indices outside 0..{n_atoms - 1}")
        n_values = int(self.block_offsets[-1])
        if self.h_values.shape != (n_values, self.spin.n_components):
            raise BasisMismatchError(
                f"H holds {self.h_values.shape} values; the blocks and basis need "
                f"({n_values}, {self.spin.n_components}) for {self.spin.value} spin"
            )
        if self.s_values.shape != (n_values,):
            raise BasisMismatchError(f"S holds {self.s_values.shape[0]} values; the blocks need {n_values}")
        for name, values in (("H", self.h_values), ("S", self.s_values)):
            self._check_finite(name, values)
        check_finite(self.atoms)

    def _check_finite(self, name: str, values: np.ndarray) -> None:
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if bad.any():
            block = int(np.searchsorted(self.block_offsets, np.flatnonzero(bad)[0], side="right") - 1)
            i, j = self.pairs[block]
            raise NonFiniteValuesError(
                f"{name} holds {int(bad.sum())} non-finite value(s), first in block {block} "
                f"(atoms {i}, {j}, shift {self.shifts[block].tolist()})"
            )

    # --------------------------------------------------------------- structure
    @property
    def n_atoms(self) -> int:
        return len(self.atoms)

    @property
    def n_blocks(self) -> int:
        return len(self.pairs)

    @property
    def atom_orbital_counts(self) -> np.ndarray:
        """``[n_atoms]`` orbitals per atom."""
        return self.basis.orbital_counts(self.species)

    @property
    def n_orbitals(self) -> int:
        """Orbitals in the home cell (without spin)."""
        return int(self.atom_orbital_counts.sum())

    @property
    def orbital_offsets(self) -> np.ndarray:
        """``[n_atoms + 1]`` first orbital of every atom."""
        return np.concatenate([[0], np.cumsum(self.atom_orbital_counts)])

    @property
    def block_shapes(self) -> np.ndarray:
        """``[n_blocks, 2]`` (rows, columns) of every block."""
        counts = self.atom_orbital_counts
        return np.stack([counts[self.pairs[:, 0]], counts[self.pairs[:, 1]]], axis=1)

    @property
    def block_offsets(self) -> np.ndarray:
        """``[n_blocks + 1]`` start of every block in the value arrays."""
        sizes = self.block_shapes.prod(axis=1) if self.n_blocks else np.zeros(0, int)
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    @property
    def pair_vectors(self) -> np.ndarray:
        """``[n_blocks, 3]`` Å, from atom i to the image of atom j."""
        return pair_vectors(self.atoms, self.pairs[:, 0], self.pairs[:, 1], self.shifts)

    @property
    def on_site(self) -> np.ndarray:
        """``[n_blocks]`` bool, True for the (i, i, 0) blocks."""
        return on_site_mask(self.pairs, self.shifts)

    def per_value(self, per_block: np.ndarray) -> np.ndarray:
        """``[n_values, ...]``: ``per_block`` (``[n_blocks, ...]``) repeated over each block's values.

        ``record.per_value(record.on_site)`` marks the on-site values of ``h_values`` and ``s_values``.
        """
        return np.repeat(per_block, np.diff(self.block_offsets), axis=0)

    def species_basis(self, atom: int) -> SpeciesBasis:
        return self.basis[self.species[atom]]

    # ------------------------------------------------------------------ blocks
    def block(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """H ``[n_i, n_j, n_components]`` (eV) and S ``[n_i, n_j]`` of block ``index``."""
        start, stop = self.block_offsets[index], self.block_offsets[index + 1]
        n_i, n_j = self.block_shapes[index]
        h = self.h_values[start:stop].reshape(n_i, n_j, -1)
        return h, self.s_values[start:stop].reshape(n_i, n_j)

    def find_blocks(self, pairs: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        """Indices of the blocks (i, j, shift); -1 where the record has none."""
        return find_blocks(self.pairs, self.shifts, pairs, shifts)

    def block_max_abs(self) -> tuple[np.ndarray, np.ndarray]:
        """``[n_blocks]`` largest |H| (eV, over components) and largest |S| of every block."""
        offsets = self.block_offsets[:-1]
        if self.n_blocks == 0:
            return np.zeros(0), np.zeros(0)
        h = np.maximum.reduceat(np.abs(self.h_values).max(axis=1), offsets)
        s = np.maximum.reduceat(np.abs(self.s_values), offsets)
        return h, s

    def adjoint_value_index(self) -> np.ndarray:
        """``[n_values]`` position of every value's partner in H_ji(-R)^T; -1 if that block is absent."""
        return adjoint_value_index(self.pairs, self.shifts, self.atom_orbital_counts)

    def _adjoint_values(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """H and S of the adjoint, aligned with this record's values, and the mask of paired values."""
        index = self.adjoint_value_index()
        paired = index >= 0
        perm, sign = self.spin.adjoint_map
        h_adj = self.h_values[np.where(paired, index, 0)][:, perm] * sign
        return h_adj, self.s_values[np.where(paired, index, 0)], paired

    def hermiticity_error(self) -> tuple[float, float]:
        """Largest violation of H_ij(R) = H_ji(-R)^T (eV) and of the same for S.

        For spinful kinds the adjoint also acts on the spin box
        (:attr:`SpinKind.adjoint_map`).  A block whose partner is missing
        counts with its full magnitude.
        """
        return self._adjoint_errors(*self._adjoint_values())

    def _adjoint_errors(self, h_adj: np.ndarray, s_adj: np.ndarray, paired: np.ndarray) -> tuple[float, float]:
        """:meth:`hermiticity_error` from :meth:`_adjoint_values` (its arrays are changed in place)."""
        h_adj[~paired], s_adj[~paired] = 0.0, 0.0
        h_err = np.abs(self.h_values - h_adj).max(initial=0.0)
        return float(h_err), float(np.abs(self.s_values - s_adj).max(initial=0.0))

    def symmetrized(self) -> "HamiltonianRecord":
        """A copy with H and S replaced by (M + M^dagger) / 2: exactly Hermitian.

        Raises ``ValueError`` if a block lacks its (j, i, -R) partner.
        """
        h_adj, s_adj, paired = self._adjoint_values()
        if not paired.all():
            raise ValueError("cannot symmetrize: some blocks have no (j, i, -R) partner")
        return dataclasses.replace(self, h_values=0.5 * (self.h_values + h_adj),
                                   s_values=0.5 * (self.s_values + s_adj))

    # -------------------------------------------------------------- k-space
    def matrices_at_k(self, k: np.ndarray, spin_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Dense H(k) (eV) and S(k) at reduced ``k`` ``[3]``.

        Unpolarized and polarized records give ``[n_orb, n_orb]`` matrices
        (``spin_index`` picks up or down); spin-box kinds give
        ``[2 n_orb, 2 n_orb]`` with S expanded over spin.
        """
        phases = np.exp(2j * np.pi * (self.shifts @ np.asarray(k, dtype=float)))
        if not self.spin.is_spin_box:
            return self._collinear_matrices_at_k(phases, spin_index)
        n, first = self.n_orbitals, self.orbital_offsets
        hk, sk = np.zeros((2 * n, 2 * n), complex), np.zeros((n, n), complex)
        for b, (i, j) in enumerate(self.pairs):
            h, s = self.block(b)
            sk[first[i] : first[i + 1], first[j] : first[j + 1]] += phases[b] * s
            hk[2 * first[i] : 2 * first[i + 1], 2 * first[j] : 2 * first[j + 1]] += phases[b] * spin_box(h, self.spin)
        return hk, np.kron(sk, np.eye(2))

    def _collinear_matrices_at_k(self, phases: np.ndarray, spin_index: int) -> tuple[np.ndarray, np.ndarray]:
        """H(k), S(k) ``[n_orb, n_orb]`` from the per-block ``phases`` ``[n_blocks]``, summed into dense matrices.

        Each value is added at its flat position row * n_orb + column
        (three times faster than summing sparse matrices, which sort the values first).
        """
        block, rows, cols = value_orbitals(self.pairs, self.atom_orbital_counts)
        flat, n = rows * self.n_orbitals + cols, self.n_orbitals  # [n_values]
        phases = phases[block]  # [n_values]
        return (_dense_sum(flat, self.h_values[:, spin_index] * phases, n),
                _dense_sum(flat, self.s_values * phases, n))

    def sparse_matrices_at_k(self, k=(0.0, 0.0, 0.0), spin_index: int = 0):
        """H(k) (eV) and S(k) as ``scipy.sparse.csr_matrix`` ``[n_orb, n_orb]``; real at k = 0.

        For large structures, where dense matrices do not fit; only
        collinear spin kinds.
        """
        if self.spin.is_spin_box:
            raise ValueError(f"sparse H(k) is built for collinear spin only; this record is {self.spin.value}")
        k = np.asarray(k, dtype=float)
        phases = np.exp(2j * np.pi * (self.shifts @ k)) if k.any() else np.ones(self.n_blocks)
        return self._sparse_sums(phases, spin_index)

    def _sparse_sums(self, phases: np.ndarray, spin_index: int):
        """CSR sums over blocks of values times their block's phase ``[n_blocks]`` (duplicates summed)."""
        import scipy.sparse

        block, rows, cols = value_orbitals(self.pairs, self.atom_orbital_counts)
        shape = (self.n_orbitals, self.n_orbitals)
        hk = scipy.sparse.csr_matrix((self.h_values[:, spin_index] * phases[block], (rows, cols)), shape=shape)
        sk = scipy.sparse.csr_matrix((self.s_values * phases[block], (rows, cols)), shape=shape)
        return hk, sk

    def block_sparse_matrices_at_gamma(self, spin_index: int = 0):
        """H (eV) and S at k = 0 as ``scipy.sparse.bsr_matrix`` ``[n_orb, n_orb]`` of ``[n, n]`` atom blocks.

        For structures whose atoms all have the same ``n`` orbitals.  The
        blocks of every atom pair are summed over their periodic images
        without the per-value row and column indices that
        :meth:`sparse_matrices_at_k` builds, so the peak memory stays close
        to that of the values (a 10^4-atom cell has about 3e8 of them).
        """
        n = self.basis.common_orbital_count(self.species, required=True)
        keys = self.pairs[:, 0].astype(np.int64) * self.n_atoms + self.pairs[:, 1]  # [n_blocks]
        in_order = bool(np.all(np.diff(keys) >= 0))  # blocks already sorted by pair: no sorted copy of the values
        order = slice(None) if in_order else np.argsort(keys, kind="stable")
        unique, starts = np.unique(keys[order], return_index=True)

        def summed(values: np.ndarray):
            blocks = np.add.reduceat(values.reshape(self.n_blocks, n, n)[order], starts, axis=0)
            return bsr_from_pair_keys(unique, blocks, self.n_atoms)

        return summed(self.h_values[:, spin_index]), summed(self.s_values)

    def eigenvalues(self, kpoints: np.ndarray) -> np.ndarray:
        """Eigenvalues (eV, relative to E_F) at reduced k-points.

        Parameters
        ----------
        kpoints
            ``[n_k, 3]`` reduced coordinates.

        Returns
        -------
        numpy.ndarray
            ``[n_spin, n_k, n_bands]``: ``n_spin`` is 2 for polarized records, else 1.
        """
        kpoints = np.atleast_2d(kpoints)
        channels = range(2) if self.spin is SpinKind.POLARIZED else range(1)
        out = []
        for spin_index in channels:
            bands = [scipy.linalg.eigvalsh(*self.matrices_at_k(k, spin_index)) for k in kpoints]
            out.append(np.array(bands))
        return np.array(out)

    # ------------------------------------------------------------- metadata
    def metadata(self) -> dict[str, Any]:
        """A plain-data summary (sizes, spin, provenance) for manifests and logs."""
        return {
            "n_atoms": self.n_atoms,
            "n_orbitals": self.n_orbitals,
            "n_blocks": self.n_blocks,
            "spin": self.spin.value,
            "fermi_level_eV": self.fermi_level,
            "formula": self.atoms.get_chemical_formula(),
            "source": self.provenance.source,
            "code": self.provenance.code,
        }


def bsr_from_pair_keys(keys: np.ndarray, blocks: np.ndarray, n_atoms: int):
    """``scipy.sparse.bsr_matrix`` of ``blocks`` ``[n_pairs, n, n]`` at the sorted unique keys i * n_atoms + j."""
    import scipy.sparse

    n = blocks.shape[1]
    indptr = np.searchsorted(keys // n_atoms, np.arange(n_atoms + 1))
    return scipy.sparse.bsr_matrix((blocks, (keys % n_atoms).astype(np.int32), indptr),
                                   shape=(n_atoms * n, n_atoms * n))


def _pair_keys(pairs: np.ndarray, shifts: np.ndarray, n_atoms: int, max_shift: int) -> np.ndarray:
    """Encode (i, j, shift) as one int64; shifts must lie within +-max_shift."""
    width = 2 * max_shift + 1
    s = shifts + max_shift
    cell = (s[:, 0] * width + s[:, 1]) * width + s[:, 2]
    return (pairs[:, 0].astype(np.int64) * n_atoms + pairs[:, 1]) * width**3 + cell


def find_blocks(pairs: np.ndarray, shifts: np.ndarray, wanted_pairs: np.ndarray,
                wanted_shifts: np.ndarray) -> np.ndarray:
    """Position of every wanted block (i, j, shift) among ``pairs``/``shifts``; -1 where absent."""
    wanted_pairs, wanted_shifts = np.asarray(wanted_pairs).reshape(-1, 2), np.asarray(wanted_shifts).reshape(-1, 3)
    if len(pairs) == 0:
        return np.full(len(wanted_pairs), -1)
    n_atoms = int(max(pairs.max(), wanted_pairs.max(initial=0))) + 1
    max_shift = int(max(np.abs(shifts).max(), np.abs(wanted_shifts).max(initial=0)))
    keys = _pair_keys(pairs, shifts, n_atoms, max_shift)
    wanted = _pair_keys(wanted_pairs, wanted_shifts, n_atoms, max_shift)
    order = np.argsort(keys)
    pos = np.searchsorted(keys[order], wanted).clip(max=len(keys) - 1)
    return np.where(keys[order][pos] == wanted, order[pos], -1)


def on_site_mask(pairs: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """``[n_blocks]`` bool, True for on-site blocks (i, i, R = 0)."""
    return (pairs[:, 0] == pairs[:, 1]) & ~np.asarray(shifts).any(axis=1)


def _dense_sum(flat: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """``[n, n]`` complex matrix of ``values`` ``[n_values]`` summed at their ``flat`` positions ``[n_values]``."""
    real = np.bincount(flat, weights=values.real, minlength=n * n)
    imag = np.bincount(flat, weights=values.imag, minlength=n * n)
    return (real + 1j * imag).reshape(n, n)


def value_positions(shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block, row and column ``[n_values]`` of every value of blocks of ``shapes`` ``[n_blocks, 2]``, laid out row-major."""
    if len(shapes) and (shapes == shapes[0]).all():  # one block shape (every atom with the same orbitals): tiled
        (n_row, n_col), n_blocks = shapes[0], len(shapes)
        return (np.repeat(np.arange(n_blocks), n_row * n_col), np.tile(np.repeat(np.arange(n_row), n_col), n_blocks),
                np.tile(np.arange(n_col), n_blocks * n_row))
    sizes = shapes.prod(axis=1) if len(shapes) else np.zeros(0, int)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    block = np.repeat(np.arange(len(shapes)), sizes)
    row, col = np.divmod(np.arange(offsets[-1]) - offsets[block], shapes[block, 1])
    return block, row, col


def value_orbitals(pairs: np.ndarray, orbital_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block, row orbital and column orbital ``[n_values]`` of every value, in the whole structure's orbital order.

    Blocks are laid out as in :func:`value_positions`; ``orbital_counts``
    ``[n_atoms]`` gives every atom's orbitals, numbered atom after atom.
    """
    first = np.concatenate([[0], np.cumsum(orbital_counts)])
    block, row, col = value_positions(np.stack([orbital_counts[pairs[:, 0]], orbital_counts[pairs[:, 1]]], axis=1))
    return block, first[pairs[:, 0]][block] + row, first[pairs[:, 1]][block] + col


def adjoint_value_index(pairs: np.ndarray, shifts: np.ndarray, orbital_counts: np.ndarray) -> np.ndarray:
    """``[n_values]`` position of every value's partner in the (j, i, -R) block, transposed; -1 if absent.

    Blocks are laid out row-major one after the other, block b being
    ``[orbital_counts[i], orbital_counts[j]]`` for ``pairs[b] = (i, j)``.
    """
    partner = find_blocks(pairs, shifts, pairs[:, ::-1], -shifts)
    shapes = np.stack([orbital_counts[pairs[:, 0]], orbital_counts[pairs[:, 1]]], axis=1)
    offsets = np.concatenate([[0], np.cumsum(shapes.prod(axis=1))]).astype(np.int64)
    block, row, col = value_positions(shapes)
    index = offsets[partner[block]] + col * shapes[block, 0] + row
    return np.where(partner[block] >= 0, index, -1)


def drop_small_blocks(record: HamiltonianRecord, tolerance: float) -> HamiltonianRecord:
    """A copy without the off-site blocks whose every |H| (eV) and |S| is below ``tolerance``.

    A block and its (j, i, -R) partner have the same largest element, so
    both go or both stay: the result stays Hermitian.  On-site blocks always
    stay.  Measure what this costs (eigenvalues) before relying on it: S can
    be ill-conditioned, so never drop single elements.
    """
    h_max, s_max = record.block_max_abs()
    return keep_blocks(record, record.on_site | (h_max >= tolerance) | (s_max >= tolerance))


def keep_blocks(record: HamiltonianRecord, keep: np.ndarray) -> HamiltonianRecord:
    """A copy with only the blocks where ``keep`` ``[n_blocks]`` (bool) is True, values and all."""
    values = record.per_value(keep)
    return dataclasses.replace(record, pairs=record.pairs[keep], shifts=record.shifts[keep],
                               h_values=record.h_values[values], s_values=record.s_values[values])


#: Largest Hermiticity violation (eV for H, and for S) of a record stored as one block of each Hermitian pair.
HERMITIAN_STORAGE_TOLERANCE = 1e-10


def hermitian_half_mask(pairs: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """``[n_blocks]`` bool: one block of every pair (i, j, R) and (j, i, -R), and every on-site block.

    Kept are i < j, and i == j with R lexicographically >= 0.

    Examples
    --------
    >>> hermitian_half_mask(np.array([[0, 1], [1, 0], [0, 0], [0, 0], [0, 0]]),
    ...                     np.array([[0, 0, 1], [0, 0, -1], [0, 0, 0], [0, 1, -1], [0, -1, 1]])).tolist()
    [True, False, True, True, False]
    """
    first = np.where(shifts.any(axis=1), np.sign(shifts[np.arange(len(shifts)), (shifts != 0).argmax(axis=1)]), 0)
    return (pairs[:, 0] < pairs[:, 1]) | ((pairs[:, 0] == pairs[:, 1]) & (first >= 0))


def hermitian_half(record: HamiltonianRecord) -> HamiltonianRecord | None:
    """One block of every Hermitian pair of ``record`` (:func:`hermitian_half_mask`), or None.

    None when some block lacks its (j, i, -R) partner or the record is not
    Hermitian to :data:`HERMITIAN_STORAGE_TOLERANCE`: then the other half
    cannot be rebuilt from this one.  :func:`with_adjoint_blocks` rebuilds it.
    """
    h_adj, s_adj, paired = record._adjoint_values()  # the partner search once, for both checks
    if not paired.all() or max(record._adjoint_errors(h_adj, s_adj, paired)) > HERMITIAN_STORAGE_TOLERANCE:
        return None
    return keep_blocks(record, hermitian_half_mask(record.pairs, record.shifts))


def with_adjoint_blocks(half: HamiltonianRecord) -> HamiltonianRecord:
    """The full record from :func:`hermitian_half`: each (j, i, -R) block added as the adjoint of (i, j, R).

    Blocks come back in (i, j, R) order, the order of records made by
    :mod:`.gpaw_reference` and :mod:`.convert`.
    """
    added = np.flatnonzero(~half.on_site)
    pairs = np.concatenate([half.pairs, half.pairs[added, ::-1]])
    shifts = np.concatenate([half.shifts, -half.shifts[added]])
    source = np.concatenate([np.arange(half.n_blocks), added])
    adjoint = np.arange(len(source)) >= half.n_blocks
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], pairs[:, 1], pairs[:, 0]))
    pairs, shifts, source, adjoint = pairs[order], shifts[order], source[order], adjoint[order]
    counts = half.atom_orbital_counts
    block, row, col = value_positions(np.stack([counts[pairs[:, 0]], counts[pairs[:, 1]]], axis=1))
    columns = counts[half.pairs[source[block], 1]]  # columns of the stored block each value comes from
    index = half.block_offsets[source[block]] + np.where(adjoint[block], col * columns + row, row * columns + col)
    perm, sign = half.spin.adjoint_map
    h = np.where(adjoint[block, None], half.h_values[index][:, perm] * sign, half.h_values[index])
    return dataclasses.replace(half, pairs=pairs, shifts=shifts, h_values=h, s_values=half.s_values[index])


def records_equal(a: HamiltonianRecord, b: HamiltonianRecord, atol: float = 0.0) -> bool:
    """True when two records hold the same structure, basis and blocks (to ``atol``).

    Block order does not matter.
    """
    if a.basis != b.basis or a.species != b.species or a.spin != b.spin or a.n_blocks != b.n_blocks:
        return False
    if not (np.allclose(a.atoms.positions, b.atoms.positions, rtol=0, atol=1e-12)
            and np.allclose(a.atoms.cell.array, b.atoms.cell.array, rtol=0, atol=1e-12)):
        return False
    match = b.find_blocks(a.pairs, a.shifts)
    if (match < 0).any():
        return False
    for block_a, block_b in enumerate(match):
        (ha, sa), (hb, sb) = a.block(block_a), b.block(block_b)
        if np.abs(ha - hb).max(initial=0) > atol or np.abs(sa - sb).max(initial=0) > atol:
            return False
    return True


def repeat_record(record: HamiltonianRecord, repeats) -> HamiltonianRecord:
    """The record of the supercell ``repeats`` ``(n1, n2, n3)`` times the cell: the same H and S, tiled.

    Exact: the supercell's matrices at k = 0 have the eigenvalues of the cell's
    on the grid k = m / n (:func:`supercell_kpoints`).  Atoms are ordered
    as ``ase.Atoms.repeat`` orders them (copy by copy, the last axis fastest).
    """
    repeats = np.asarray(repeats, dtype=np.int64).reshape(3)
    if (repeats < 1).any() or (repeats[~record.atoms.pbc] != 1).any():
        raise ValueError(f"repeats must be positive, and 1 along non-periodic axes; got {repeats.tolist()}")
    copies = np.stack(np.meshgrid(*[np.arange(n) for n in repeats], indexing="ij"), -1).reshape(-1, 3)
    n_atoms, n_copies = record.n_atoms, len(copies)
    copy_index = np.ravel_multi_index(copies.T, repeats)  # [n_copies], equals arange in this order
    target = copies[:, None, :] + record.shifts[None, :, :]  # [n_copies, n_blocks, 3] cell of j's image
    j_copy = np.ravel_multi_index((target % repeats).reshape(-1, 3).T, repeats).reshape(n_copies, -1)
    pairs = np.stack([copy_index[:, None] * n_atoms + record.pairs[None, :, 0], j_copy * n_atoms + record.pairs[None, :, 1]], -1)
    return dataclasses.replace(
        record, atoms=record.atoms.repeat(tuple(repeats)), species=record.species * n_copies,
        pairs=pairs.reshape(-1, 2), shifts=(target // repeats).reshape(-1, 3),
        h_values=np.tile(record.h_values, (n_copies, 1)), s_values=np.tile(record.s_values, n_copies),
    )


def supercell_kpoints(repeats) -> np.ndarray:
    """``[n1 n2 n3, 3]`` reduced k-points m / n of the cell that fold onto k = 0 of its ``repeats`` supercell."""
    grids = [np.arange(n) / n for n in np.asarray(repeats, dtype=int).reshape(3)]
    return np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 3)
