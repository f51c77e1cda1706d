"""Taking a prediction's errors apart: hand-made errors land where they were put."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import hbn_atoms, random_record, small_model

from hforge_nb.error_anatomy import (anatomy, bonded_neighbour_means, exact_part_errors, less_species_means,
                                     orbital_energies, orbital_energy_errors, pair_features,
                                     pair_model_orbital_energies, self_consistent_split, shuffled_errors,
                                     value_classes, window_state_norms)
from hforge_nb.evaluation import monkhorst_pack
from hforge_nb.record import value_positions


@pytest.fixture(scope="module")
def reference():
    return random_record(hbn_atoms(rattle=0.05), seed=3)


def _diagonal(record):
    """``[n_values]`` bool: the on-site diagonal values (orbital energies)."""
    block, row, col = value_positions(record.block_shapes)
    return record.on_site[block] & (row == col)


def _with_diagonal(record, per_atom_orbital):
    """``record`` whose orbital energies are ``per_atom_orbital(atom, orbital)`` (eV)."""
    block, row, _ = value_positions(record.block_shapes)
    h = record.h_values[:, 0].copy()
    for value in np.flatnonzero(_diagonal(record)):
        h[value] = per_atom_orbital(record.pairs[block[value], 0], row[value])
    return dataclasses.replace(record, h_values=h[:, None])


def _orthonormal(record, scale=1.0):
    """``record`` with S = ``scale`` times the identity."""
    return dataclasses.replace(record, s_values=scale * _diagonal(record).astype(float))


def test_states_of_an_orthonormal_basis_have_unit_norm_and_a_scaled_overlap_scales_it(reference):
    kpoints = monkhorst_pack(reference, 2)
    everything = 1e3  # eV: a window that takes every state
    norms = window_state_norms(_orthonormal(reference), kpoints, window=everything)
    assert len(norms) == reference.n_orbitals * len(kpoints)
    np.testing.assert_allclose(norms, 1.0, atol=1e-12)
    np.testing.assert_allclose(window_state_norms(_orthonormal(reference, 4.0), kpoints, window=everything), 0.25,
                               atol=1e-12)


def test_shuffling_keeps_the_sizes_of_each_class_of_errors(reference):
    assert shuffled_errors(reference, reference).h_values == pytest.approx(reference.h_values, abs=0)
    diagonal = _diagonal(reference)
    predicted = dataclasses.replace(reference, h_values=reference.h_values + 0.007 * diagonal[:, None])
    first, second = (shuffled_errors(predicted, reference, seed) for seed in (0, 1))
    for shuffled in (first, second):
        errors = (shuffled.h_values - reference.h_values)[:, 0]
        np.testing.assert_allclose(np.abs(errors[diagonal]), 0.007, atol=1e-15)
        assert np.abs(errors[~diagonal]).max() == 0.0
    assert not np.allclose(first.h_values, second.h_values)  # signs drawn anew
    classes = value_classes(reference)
    assert all(label.endswith("|diagonal") for label in classes[diagonal])
    assert not any(label.endswith("|diagonal") for label in classes[~diagonal])


def test_exact_on_site_blocks_remove_an_on_site_error_and_exact_off_site_blocks_keep_it(reference):
    kpoints = monkhorst_pack(reference, 2)
    on_site = reference.per_value(reference.on_site)
    noise = np.random.default_rng(0).normal(size=on_site.size) * 0.05 * on_site
    predicted = dataclasses.replace(reference, h_values=reference.h_values + noise[:, None]).symmetrized()
    errors = exact_part_errors(predicted, reference, kpoints, window=5.0)
    assert errors["exact_on_site"] == pytest.approx(0.0, abs=1e-9)
    assert errors["exact_off_site"] == pytest.approx(errors["prediction"]) and errors["prediction"] > 1.0


def test_orbital_energies_average_each_shell_of_the_diagonal(reference):
    record = _with_diagonal(reference, lambda atom, orbital: 10.0 * atom + orbital)  # 13 dzp orbitals: s s ppp ppp ddddd
    shells = orbital_energies(record.h_values[:, 0], record)
    expected = np.array([[10.0 * a + o for o in (0, 1, 3, 6, 10)] for a in range(record.n_atoms)])
    np.testing.assert_allclose(shells, expected)


def test_an_error_on_one_atom_is_counted_against_its_species_mean(reference):
    error = 0.3  # eV on every orbital energy of atom 0 (B); a cell-wide shift of N's
    predicted = _with_diagonal(reference, lambda atom, orbital: (
        reference.h_values[_diagonal(reference), 0][13 * atom + orbital] + (error if atom == 0 else 0.0)
        + (0.5 if reference.species[atom] == "N" else 0.0)))
    result = orbital_energy_errors(predicted, reference)
    n_boron = reference.species.count("B")
    expected = np.where(np.arange(reference.n_atoms) == 0, error * (1 - 1 / n_boron),
                        np.where(np.array(reference.species) == "B", -error / n_boron, 0.0))
    np.testing.assert_allclose(result["errors"], np.repeat(expected[:, None], 5, axis=1), atol=1e-12)


def test_the_bonded_neighbours_of_hbn_are_the_other_atom_of_the_layer():
    atoms = hbn_atoms()  # B0 N1 in one layer, B2 N3 in the other
    np.testing.assert_allclose(bonded_neighbour_means(np.array([1.0, 2.0, 3.0, 4.0]), atoms), [2.0, 1.0, 4.0, 3.0])


def test_the_pair_model_fits_its_own_cell_and_carries_a_constant_to_other_cells():
    training = random_record(hbn_atoms(rattle=0.1, seed=1), seed=1)
    features = pair_features(training.atoms, ("B", "N"))
    assert features.shape == (4, 2 * 17) and np.all(features >= 0)
    fitted = pair_model_orbital_energies([training], [training], ridge=1e-10)[0]
    np.testing.assert_allclose(fitted, orbital_energies(training.h_values[:, 0], training), atol=1e-5)
    constant = _with_diagonal(training, lambda atom, orbital: -3.0 if training.species[atom] == "B" else 2.0)
    other = random_record(hbn_atoms(rattle=0.2, seed=5), seed=5)
    carried = pair_model_orbital_energies([constant], [other])[0]
    np.testing.assert_allclose(carried, np.where(np.array(other.species) == "B", -3.0, 2.0)[:, None].repeat(5, 1))


def test_the_self_consistent_split_puts_a_harris_error_where_it_was_put(reference):
    """Harris H = the reference but for atom 0 (B, +0.3 eV) and atom 1 (N, -0.2 eV) on every orbital energy; a
    training cell whose Harris H is its reference, so the pair model of the rest predicts nothing."""
    moved = {0: 0.3, 1: -0.2}
    diagonal = reference.h_values[_diagonal(reference), 0]
    harris = _with_diagonal(reference, lambda atom, orbital: diagonal[13 * atom + orbital] + moved.get(atom, 0.0))
    training = random_record(hbn_atoms(rattle=0.1, seed=1), seed=1)
    energies = orbital_energies(reference.h_values[:, 0], reference)
    split = self_consistent_split({"train": training}, {"test": reference}, {"train": training, "test": harris},
                                  predicted={"test": orbital_energies(harris.h_values[:, 0], harris)})
    for key in ("harris", "harris_plus_pair_model_of_rest"):  # each species has two atoms: errors of +-shift / 2
        assert split[key]["B"]["mae_meV_per_shell"] == pytest.approx([150.0] * 5)
        assert split[key]["N"]["mae_meV_per_shell"] == pytest.approx([100.0] * 5)
    spread = np.abs(less_species_means(energies, np.array(reference.species)))
    assert split["species_means"]["B"]["mae_meV_per_shell"] == pytest.approx(1000 * spread[[0, 2]].mean(axis=0))
    assert split["model_error_correlation"]["self_consistent"] == pytest.approx({"B": -1.0, "N": -1.0})
    assert set(split["pair_model_of_harris"]) == {"B", "N"} and set(split["harris_reference_correlation"]) == {"B", "N"}


def test_anatomy_of_a_model_reports_every_measure(reference):
    model = small_model("equivariant")
    other = random_record(hbn_atoms(rattle=0.05, seed=2), seed=4)
    result = anatomy(model, {"train": other}, {"test": reference})
    cell = result["cells"]["test"]
    assert set(cell) == {"window_state_norm_median", "window_state_norm_max", "prediction", "exact_on_site",
                         "exact_off_site", "shuffled_errors"}
    assert all(np.isfinite(value) for value in cell.values())
    assert set(result["orbital_energies"]) == {"test", "training", "pair_model_test"}
    assert result["orbital_energies"]["test"]["B"]["n_atoms"] == 2
