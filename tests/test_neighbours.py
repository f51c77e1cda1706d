"""The k-d tree neighbour search finds exactly ASE's pairs, in any cell."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list
from conftest import bn_cluster, hbn_atoms

from hforge_nb.neighbours import neighbour_pairs


def _triclinic_cell() -> Atoms:
    """A small, skewed periodic cell whose images lie within the cutoff many times over."""
    rng = np.random.default_rng(0)
    cell = [[3.1, 0.0, 0.0], [1.4, 2.9, 0.0], [-0.8, 0.9, 3.3]]
    return Atoms("BNBN", scaled_positions=rng.uniform(-0.2, 1.2, size=(4, 3)), cell=cell, pbc=True)


def _sheet_without_height() -> Atoms:
    """An hBN sheet periodic in-plane whose cell has no third vector (ASE's own search handles it)."""
    a = 2.504
    cell = [[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, 0]]
    return Atoms("BN", positions=[[0, 0, 0], [0, a / np.sqrt(3), 0]], cell=cell, pbc=[True, True, False])


@pytest.mark.parametrize("atoms", [hbn_atoms(rattle=0.1), _triclinic_cell(), bn_cluster(),
                                   bulk("BN", "zincblende", a=3.615), _sheet_without_height()],
                         ids=["hBN", "triclinic", "cluster", "cBN", "sheet"])
@pytest.mark.parametrize("cutoff", [1.6, 5.0, 9.0])
def test_neighbour_pairs_equal_ase_neighbor_list(atoms, cutoff):
    i, j, shifts = neighbour_pairs(atoms, cutoff)
    ours = sorted(zip(i.tolist(), j.tolist(), map(tuple, shifts.tolist())))
    a, b, s = neighbor_list("ijS", atoms, cutoff)
    theirs = sorted(zip(a.tolist(), b.tolist(), map(tuple, s.tolist())))
    assert ours == theirs and len(ours) > 0
