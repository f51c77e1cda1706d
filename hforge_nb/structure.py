"""Sanity checks of atomic structures before anything is built on them."""

from __future__ import annotations

import ase
import numpy as np
from ase.neighborlist import neighbor_list
from scipy.spatial import cKDTree

from .errors import NonFiniteValuesError, OverlappingAtomsError

#: Closest approach (Å) accepted between two atoms; closer means a broken structure.
MIN_DISTANCE = 0.5


def check_finite(atoms: ase.Atoms) -> None:
    """Raise :class:`NonFiniteValuesError` if positions or cell hold NaN or infinity."""
    if not (np.isfinite(atoms.positions).all() and np.isfinite(atoms.cell.array).all()):
        raise NonFiniteValuesError("atomic positions or cell hold NaN or infinity")


def check_structure(atoms: ase.Atoms, min_distance: float = MIN_DISTANCE) -> None:
    """Raise on non-finite coordinates or atoms closer than ``min_distance`` (Å)."""
    check_finite(atoms)
    if atoms.pbc.any():
        i, j, d = neighbor_list("ijd", atoms, min_distance)
    else:  # a k-d tree is much faster than ase's list for large clusters
        pairs = cKDTree(atoms.positions).query_pairs(min_distance, output_type="ndarray")
        i, j = pairs.T if len(pairs) else (np.zeros(0, int), np.zeros(0, int))
        d = np.linalg.norm(atoms.positions[j] - atoms.positions[i], axis=1)
    if len(d):
        k = int(np.argmin(d))
        symbols = atoms.get_chemical_symbols()
        raise OverlappingAtomsError(
            f"atoms {i[k]} ({symbols[i[k]]}) and {j[k]} ({symbols[j[k]]}) are {d[k]:.3f} Å apart "
            f"(minimum {min_distance} Å)"
        )
