"""Sanity checks of atomic structures before anything is built on them."""

from __future__ import annotations

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
