"""Orbital conventions under rotations and inversion, pinned on SIESTA's harmonics and a real H2 run."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hforge_nb.rotations import _sample_directions, orbital_rotation, rotate_record, siesta_real_harmonics, wigner_d
from hforge_nb.spin import SpinKind

from conftest import BN_BASIS, hbn_atoms, random_record

ROTATIONS = [Rotation.random(random_state=seed).as_matrix() for seed in range(3)]
IMPROPER = [-q for q in ROTATIONS]  # rotation times inversion


@pytest.mark.parametrize("l", range(4))
@pytest.mark.parametrize("rotation", ROTATIONS + IMPROPER)
def test_wigner_d_rotates_siesta_harmonics(l, rotation):
    directions = _sample_directions(50)
    rotated = siesta_real_harmonics(l, directions @ rotation.T)
    assert np.abs(rotated - siesta_real_harmonics(l, directions) @ wigner_d(l, rotation).T).max() < 1e-12


def test_inversion_is_the_parity():
    for l in range(4):
        assert np.allclose(wigner_d(l, -np.eye(3)), (-1) ** l * np.eye(2 * l + 1), atol=1e-12)


def test_orbital_rotation_is_orthogonal_and_a_representation():
    q1, q2 = ROTATIONS[0], ROTATIONS[1]
    d1, d2, d12 = (orbital_rotation(BN_BASIS["B"], q) for q in (q1, q2, q2 @ q1))
    assert np.allclose(d1 @ d1.T, np.eye(13), atol=1e-12)
    assert np.allclose(d2 @ d1, d12, atol=1e-12)


def test_rotating_a_record_keeps_its_spectrum():
    record = random_record(hbn_atoms(rattle=0.05), seed=4)
    rotated = rotate_record(record, IMPROPER[0])
    k = np.array([0.1, 0.2, 0.3])  # reduced coordinates rotate with the cell
    assert np.abs(rotated.eigenvalues(k) - record.eigenvalues(k)).max() < 1e-10
    assert rotated.hermiticity_error()[0] < 1e-12


def test_rotating_a_polarized_record_rotates_each_spin_alone():
    record = random_record(hbn_atoms(rattle=0.05), spin=SpinKind.POLARIZED, seed=6)
    rotated = rotate_record(record, IMPROPER[0])
    k = np.array([0.1, 0.2, 0.3])
    before, after = record.eigenvalues(k), rotated.eigenvalues(k)  # [2, 1, n_bands]
    assert np.abs(before[0] - before[1]).max() > 0.1  # the two spins differ
    assert np.abs(after - before).max() < 1e-10


def test_siesta_h2_is_invariant_under_rotation_about_its_bond(siesta_record):
    """A real SIESTA H2: rotating about the bond maps the molecule onto itself.

    S is a two-centre integral and must be invariant to round-off; H carries
    the real-space grid's small egg-box error.  A generic rotation changes the
    blocks by far more, so this pins the orbital order and signs.
    """
    record = siesta_record("H2_hessian")
    bond = record.pair_vectors[(record.pairs[:, 0] != record.pairs[:, 1])][0]
    for angle in (0.3, np.pi / 2):
        rotated = rotate_record(record, Rotation.from_rotvec(angle * bond / np.linalg.norm(bond)).as_matrix())
        assert np.abs(rotated.s_values - record.s_values).max() < 1e-9
        assert np.abs(rotated.h_values - record.h_values).max() < 2e-3
    generic = rotate_record(record, ROTATIONS[0])
    assert np.abs(generic.h_values - record.h_values).max() > 0.1


def test_spinful_records_are_refused_not_rotated_wrongly():
    record = random_record(hbn_atoms(), spin=SpinKind.SPINORBIT, seed=5)
    with pytest.raises(ValueError, match="does not rotate spin: spin-orbit"):
        rotate_record(record, ROTATIONS[0])
