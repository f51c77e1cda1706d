"""Long-range electrostatics: the damped shifted-force site potentials and the term they add to H."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase.build import bulk
from conftest import bn_cluster, hbn_atoms, random_record, small_model

from hforge_nb.electrostatics import (COULOMB_EV_ANGSTROM, coulomb_matrix, dsf_pair_kernel, neutralized,
                                      site_potentials)
from hforge_nb.evaluation import aligned_values

COULOMB = dict(coulomb_cutoff=6.0, coulomb_damping=0.3)


@pytest.fixture(scope="module")
def periodic_record():
    return random_record(hbn_atoms(rattle=0.08, seed=3), seed=2)


def _potentials(atoms, charges, cutoff=10.0, damping=0.25) -> np.ndarray:
    index, values = coulomb_matrix(atoms, cutoff, damping)
    return site_potentials(torch.as_tensor(charges), torch.as_tensor(index), torch.as_tensor(values)).numpy()


def test_rock_salt_site_potential_gives_the_madelung_constant():
    """Ewald's value for rock salt, 1.747565 (over the nearest-neighbour distance), to 0.2 %."""
    a = 5.64  # Å, NaCl
    atoms = bulk("NaCl", "rocksalt", a=a)
    phi = _potentials(atoms, np.array([1.0, -1.0]))  # [2] V
    madelung = -phi[0] * (a / 2) / COULOMB_EV_ANGSTROM
    assert madelung == pytest.approx(1.747565, rel=2e-3)
    assert phi[1] == pytest.approx(-phi[0], rel=1e-12)


def test_a_repeated_cell_has_the_same_site_potentials():
    atoms = hbn_atoms(rattle=0.1)
    charges = np.where(np.array(atoms.get_chemical_symbols()) == "B", 0.7, -0.7)
    repeated = atoms.repeat((2, 1, 1))
    np.testing.assert_allclose(_potentials(repeated, np.tile(charges, 2)),
                               np.tile(_potentials(atoms, charges), 2), atol=1e-10)


def test_the_kernel_and_its_slope_vanish_at_the_cutoff():
    r = np.array([8.0 - 1e-6, 8.0, 9.0])
    kernel = dsf_pair_kernel(r, 0.25, 8.0)
    assert abs(kernel[0]) < 1e-9 and kernel[1] == 0.0 and kernel[2] == 0.0


def test_charges_are_made_neutral_per_structure():
    charges = torch.tensor([1.0, 2.0, 3.0, -1.0, 5.0])
    batch = torch.tensor([0, 0, 0, 1, 1])
    neutral = neutralized(charges, batch, 2)
    np.testing.assert_allclose(neutral.numpy(), [-1.0, 0.0, 1.0, -3.0, 3.0])


def test_the_term_is_minus_the_mean_site_potential_times_s(periodic_record):
    """H of a model with charges = H with the charges set to zero - (phi_i + phi_j) / 2 S_ij, phi by hand."""
    model = small_model("equivariant", **COULOMB)
    uncharged = copy.deepcopy(model)
    with torch.no_grad():
        uncharged.charges.weight.zero_()
        uncharged.charges.bias.zero_()
    charged, plain = model.predict(periodic_record), uncharged.predict(periodic_record)
    graph = model.graph([periodic_record])
    charges = model.charges(graph, model.node_features(graph)).detach().numpy()
    assert abs(charges.sum()) < 1e-12 and np.abs(charges).max() > 0.1
    phi = _potentials(periodic_record.atoms, charges, 6.0, 0.3)
    mean_phi = 0.5 * (phi[plain.pairs[:, 0]] + phi[plain.pairs[:, 1]])  # [n_blocks] V
    expected = plain.h_values[:, 0] - np.repeat(mean_phi, np.diff(plain.block_offsets)) * plain.s_values
    np.testing.assert_allclose(charged.h_values[:, 0], expected, atol=1e-10)
    np.testing.assert_array_equal(charged.s_values, plain.s_values)


def test_batched_structures_get_their_own_neutral_charges(periodic_record):
    model = small_model("equivariant", **COULOMB)
    cluster = random_record(bn_cluster(), seed=1)
    one = [model(model.graph([r])).h for r in (periodic_record, cluster)]
    both = model(model.graph([periodic_record, cluster])).h
    np.testing.assert_allclose(both.detach().numpy(), torch.cat(one).detach().numpy(), atol=1e-10)
