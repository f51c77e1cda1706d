"""Reference BN structures: hexagonal (hBN) and cubic (cBN) cells, and a small test cluster."""

from __future__ import annotations

import ase

#: Lattice constants (Å): hBN in-plane a and interlayer c, cBN cubic a.
HBN_A, HBN_C, CBN_A = 2.504, 6.66, 3.615


def hexagonal_bn() -> ase.Atoms:
    """hBN, AA' stacking (B over N), a = 2.504 Å, c = 6.66 Å: 4 atoms."""
    cell = [[HBN_A, 0, 0], [-HBN_A / 2, HBN_A * 3**0.5 / 2, 0], [0, 0, HBN_C]]
    scaled = [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.25], [2 / 3, 1 / 3, 0.75], [1 / 3, 2 / 3, 0.75]]
    return ase.Atoms("BNBN", scaled_positions=scaled, cell=cell, pbc=True)


def b2n2_cluster() -> ase.Atoms:
    """A non-planar B2N2 cluster (no symmetry left to hide a sign error), centred in a 9 Å box, not periodic."""
    positions = [[0.0, 0.0, 0.0], [1.42, 0.15, 0.0], [0.71, 1.25, 0.35], [0.75, -1.2, 0.4]]
    atoms = ase.Atoms("BNNB", positions=positions, cell=[9.0, 9.0, 9.0], pbc=False)
    atoms.center()
    return atoms


def cubic_bn(cubic: bool = False) -> ase.Atoms:
    """cBN (zincblende), a = 3.615 Å: the 2-atom primitive cell, or the 8-atom cube if ``cubic``."""
    from ase.build import bulk

    return bulk("BN", "zincblende", a=CBN_A, cubic=cubic)
