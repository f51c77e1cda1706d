"""Sanity checks of atomic structures before anything is built on them."""

from __future__ import annotations

from dataclasses import dataclass

import ase
import numpy as np

from .errors import NonFiniteValuesError, OverlappingAtomsError
from .neighbours import neighbour_pairs, pair_vectors

#: Closest approach (Å) accepted between two atoms; closer means a broken structure.
MIN_DISTANCE = 0.5


def check_finite(atoms: ase.Atoms) -> None:
    """Raise :class:`NonFiniteValuesError` if positions or cell hold NaN or infinity."""
    if not (np.isfinite(atoms.positions).all() and np.isfinite(atoms.cell.array).all()):
        raise NonFiniteValuesError("atomic positions or cell hold NaN or infinity")


def check_structure(atoms: ase.Atoms, min_distance: float = MIN_DISTANCE) -> None:
    """Raise on non-finite coordinates or atoms closer than ``min_distance`` (Å)."""
    check_finite(atoms)
    i, j, shifts = neighbour_pairs(atoms, min_distance)
    d = np.linalg.norm(pair_vectors(atoms, i, j, shifts), axis=1)
    if len(d):
        k = int(np.argmin(d))
        symbols = atoms.get_chemical_symbols()
        raise OverlappingAtomsError(
            f"atoms {i[k]} ({symbols[i[k]]}) and {j[k]} ({symbols[j[k]]}) are {d[k]:.3f} Å apart "
            f"(minimum {min_distance} Å)"
        )


@dataclass(frozen=True)
class StructureFingerprint:
    """What a structure is, whatever its atoms' order, origin and orientation.

    ``cell_parameters`` ``[6]``: cell lengths (Å) and angles (degrees), zeros
    without periodic axes; ``distances``: for each pair of elements (``("B",
    "N")``, symbols sorted), the sorted distances (Å, nearest periodic image)
    of every such pair of atoms.  Two structures with the same fingerprint are
    one structure moved, renumbered, rotated or mirrored (up to the rare
    homometric pairs, which share every distance and are not the same).
    """

    cell_parameters: np.ndarray  # [6] Å, degrees
    pbc: tuple[bool, bool, bool]
    distances: dict[tuple[str, str], np.ndarray]  # each [n_pairs] Å, sorted

    @classmethod
    def of(cls, atoms: ase.Atoms) -> "StructureFingerprint":
        periodic = bool(atoms.pbc.any())
        all_distances = atoms.get_all_distances(mic=periodic)  # [n_atoms, n_atoms] Å
        first, second = np.triu_indices(len(atoms), 1)
        symbols = np.array(atoms.get_chemical_symbols())
        pair = np.sort(np.stack([symbols[first], symbols[second]]), axis=0)  # [2, n_pairs]
        labels = sorted(set(zip(pair[0], pair[1])))
        distances = {label: np.sort(all_distances[first, second][(pair[0] == label[0]) & (pair[1] == label[1])])
                     for label in labels}
        cell_parameters = atoms.cell.cellpar() if periodic else np.zeros(6)
        return cls(cell_parameters, tuple(bool(p) for p in atoms.pbc), distances)

    def matches(self, other: "StructureFingerprint", tolerance: float = 1e-3) -> bool:
        """True when both have the same periodicity, cell (Å, degrees) and pair distances (Å) within ``tolerance``."""
        if self.pbc != other.pbc or self.distances.keys() != other.distances.keys():
            return False
        if any(len(self.distances[k]) != len(other.distances[k]) for k in self.distances):
            return False
        return bool(np.allclose(self.cell_parameters, other.cell_parameters, rtol=0, atol=tolerance)
                    and all(np.abs(self.distances[k] - other.distances[k]).max(initial=0.0) <= tolerance
                            for k in self.distances))


def same_structure(first: ase.Atoms, second: ase.Atoms, tolerance: float = 1e-3) -> bool:
    """True when ``second`` is ``first`` moved, renumbered, rotated or mirrored (:class:`StructureFingerprint`).

    Data sets name their samples by seed, and one structure can come back
    under another name: another base seed, or a small cell that a
    melt-and-quench run freezes into the same ordered structure as another
    seed did, shifted or with its atoms in another order.  Comparing the
    pair distances per pair of elements (Å, within ``tolerance``) and the
    cell is what tells a repeat.
    """
    return StructureFingerprint.of(first).matches(StructureFingerprint.of(second), tolerance)
