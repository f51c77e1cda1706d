"""Short-range order of BN structures: density, coordination, homopolar bonds.

Two atoms are bonded when closer than ``bond_cutoff`` (default 1.85 Å, the
minimum after the first peak of aBN's pair distribution: B-N bonds are about
1.45 Å, N-N 1.45 Å and B-B 1.7 Å).  An atom with three bonds counts as
sp2-like and one with four as sp3-like, as in the aBN literature.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import ase
import numpy as np
from ase.neighborlist import neighbor_list

BOND_CUTOFF = 1.85
#: g/cm^3 per (amu / Å^3).
AMU_PER_A3_IN_G_PER_CM3 = 1.66053906660


@dataclass(frozen=True)
class StructureStats:
    """Short-range order of one BN structure.

    Attributes
    ----------
    n_atoms : int
    density : float
        g/cm^3 (periodic cells only; NaN otherwise).
    coordination_B, coordination_N : float
        Mean number of bonds of B and of N atoms.
    homopolar_fraction : float
        Fraction of bonds that are B-B or N-N.
    sp_fraction, sp2_fraction, sp3_fraction : float
        Fractions of atoms with 2, 3 and 4 bonds.
    other_fraction : float
        Fraction with fewer than 2 or more than 4 bonds.
    min_distance : float
        Closest interatomic distance (Å).
    """

    n_atoms: int
    density: float
    coordination_B: float
    coordination_N: float
    homopolar_fraction: float
    sp_fraction: float
    sp2_fraction: float
    sp3_fraction: float
    other_fraction: float
    min_distance: float

    def as_dict(self) -> dict:
        return asdict(self)


def mass_density(atoms: ase.Atoms) -> float:
    """Mass density (g/cm^3) of a periodic cell."""
    if not atoms.pbc.all():
        return float("nan")
    return float(atoms.get_masses().sum() * AMU_PER_A3_IN_G_PER_CM3 / atoms.get_volume())


def structure_stats(atoms: ase.Atoms, bond_cutoff: float = BOND_CUTOFF) -> StructureStats:
    """Density, coordination numbers, homopolar-bond and hybridisation fractions.

    Examples
    --------
    >>> from hforge_nb.crystals import cubic_bn
    >>> cbn = structure_stats(cubic_bn())
    >>> cbn.coordination_B, cbn.sp3_fraction, cbn.homopolar_fraction, round(cbn.density, 2)
    (4.0, 1.0, 0.0, 3.49)
    """
    i, j, d = neighbor_list("ijd", atoms, bond_cutoff)
    symbols = np.array(atoms.get_chemical_symbols())
    bonds = np.bincount(i, minlength=len(atoms))
    is_b = symbols == "B"
    fraction = lambda mask: float(mask.mean()) if len(mask) else float("nan")  # noqa: E731
    return StructureStats(
        n_atoms=len(atoms),
        density=mass_density(atoms),
        coordination_B=float(bonds[is_b].mean()) if is_b.any() else float("nan"),
        coordination_N=float(bonds[~is_b].mean()) if (~is_b).any() else float("nan"),
        homopolar_fraction=fraction(symbols[i] == symbols[j]) if len(i) else 0.0,
        sp_fraction=fraction(bonds == 2),
        sp2_fraction=fraction(bonds == 3),
        sp3_fraction=fraction(bonds == 4),
        other_fraction=fraction((bonds < 2) | (bonds > 4)),
        min_distance=float(neighbor_list("d", atoms, 3.0).min(initial=np.inf)),
    )
