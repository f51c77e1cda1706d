"""Sanity checks of atomic structures before anything is built on them."""

from __future__ import annotations

import ase
import numpy as np
from ase.geometry import find_mic

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


def same_structure(first: ase.Atoms, second: ase.Atoms, tolerance: float = 1e-6) -> bool:
    """True when both hold the same elements at the same positions (Å, within ``tolerance``) in the same cell.

    Positions that differ by a lattice vector along a periodic axis count as
    the same.  Data sets name their samples by seed, and different base seeds
    can give one structure two names; comparing atoms is what tells a repeat.
    """
    if len(first) != len(second) or first.get_chemical_symbols() != second.get_chemical_symbols():
        return False
    if not (np.allclose(first.cell.array, second.cell.array, atol=tolerance) and (first.pbc == second.pbc).all()):
        return False
    moves, _ = find_mic(second.positions - first.positions, first.cell, first.pbc)  # [n_atoms, 3] Å, nearest image
    return bool(np.abs(moves).max(initial=0.0) <= tolerance)
