"""Metrics against hand-computed cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import hbn_atoms, random_record

from hforge_nb.evaluation import (band_gap, block_errors, distance_shells, eigenvalue_errors_by_shell,
                                  filtered_spectral_errors, monkhorst_pack, projected_spectral_errors,
                                  reference_deviation, smallest_overlap_eigenvalue, spectra_by_chemical_order,
                                  spectral_errors, value_labels)
from hforge_nb.record import drop_small_blocks


@pytest.fixture(scope="module")
def reference():
    return random_record(hbn_atoms(rattle=0.05), seed=3)


def _on_site(record):
    return (record.pairs[:, 0] == record.pairs[:, 1]) & ~record.shifts.any(axis=1)


def test_a_constant_on_site_shift_shows_up_only_on_site(reference):
    on_site_values = reference.per_value(_on_site(reference))
    shifted = reference.h_values + 0.004 * on_site_values[:, None]  # 4 meV on every on-site value
    errors = block_errors(dataclasses.replace(reference, h_values=shifted), reference)["H_meV"]
    assert errors["on_site"]["mae"] == pytest.approx(4.0) and errors["on_site"]["rmse"] == pytest.approx(4.0)
    assert errors["off_site"]["mae"] == 0.0
    assert errors["overall"]["mae"] == pytest.approx(4.0 * on_site_values.mean())
    assert errors["overall"]["n_values"] == reference.h_values.shape[0]


def test_orbital_energy_errors_are_the_on_site_diagonal(reference):
    shifted = reference.h_values.copy()
    for b in np.flatnonzero(_on_site(reference)):  # 3 meV on every orbital energy, nothing else
        n = reference.block_shapes[b, 0]
        shifted[reference.block_offsets[b]:reference.block_offsets[b + 1], 0] += 0.003 * np.eye(n).ravel()
    errors = block_errors(dataclasses.replace(reference, h_values=shifted), reference)["H_meV"]
    assert errors["diagonal"]["mae"] == pytest.approx(3.0)
    assert errors["diagonal"]["n_values"] == reference.n_orbitals
    assert errors["on_site"]["mae"] == pytest.approx(3.0 * reference.n_orbitals / errors["on_site"]["n_values"])


def test_missing_blocks_count_as_zero(reference):
    pruned = drop_small_blocks(reference, tolerance=0.05)  # drops the far, small blocks
    errors = block_errors(pruned, reference)
    kept = pruned.n_blocks < reference.n_blocks
    missing = reference.find_blocks(pruned.pairs, pruned.shifts)
    lost = np.ones(reference.n_blocks, bool)
    lost[missing] = False
    lost_values = np.repeat(lost, np.diff(reference.block_offsets))
    assert kept and errors["H_meV"]["overall"]["mae"] == pytest.approx(
        1000 * np.abs(reference.h_values[lost_values]).sum() / reference.h_values.size)


def test_orbital_channels_of_a_dzp_block_are_counted_by_hand(reference):
    labels = value_labels(reference)
    first = slice(0, 13 * 13)  # block 0: B-B on-site, shells s s p p d
    channels, counts = np.unique(labels["channel"][first], return_counts=True)
    # s: 2 orbitals, p: 6, d: 5 -> s-s 4, s-p 2*2*6, s-d 2*2*5, p-p 36, p-d 2*6*5, d-d 25
    assert dict(zip(channels, counts)) == {"s-s": 4, "s-p": 24, "s-d": 20, "p-p": 36, "p-d": 60, "d-d": 25}
    assert set(labels["species"]) == {"B-B", "B-N", "N-B", "N-N"} and labels["on_site"][first].all()


def test_h_plus_c_times_s_shifts_every_eigenvalue_by_c(reference):
    shifted = dataclasses.replace(reference, h_values=reference.h_values + 0.025 * reference.s_values[:, None])
    errors = spectral_errors(shifted, reference, monkhorst_pack(reference, 2), window=5.0)
    assert errors["n_eigenvalues"] > 0 and errors["positive_definite_S"]
    assert errors["eigenvalue_mae_meV"] == pytest.approx(25.0, abs=1e-6)
    assert errors["eigenvalue_max_meV"] == pytest.approx(25.0, abs=1e-6)
    same = spectral_errors(reference, reference, monkhorst_pack(reference, 2))
    assert same["eigenvalue_max_meV"] == 0.0 and same["dos_difference"] == 0.0


def test_band_gap_and_an_indefinite_overlap():
    assert band_gap(np.array([[-1.0, -0.2, 0.5, 2.0], [-0.9, -0.3, 0.4, 1.0]])) == pytest.approx(0.6)
    record = random_record(hbn_atoms(), seed=1)
    broken = dataclasses.replace(record, s_values=-record.s_values)
    assert spectral_errors(broken, record, monkhorst_pack(record, 1))["positive_definite_S"] is False


def test_random_noise_yardstick_grows_with_the_noise(reference):
    kpoints = monkhorst_pack(reference, 1)
    from hforge_nb.evaluation import noisy_reference, smallest_overlap_eigenvalue

    small, large = (spectral_errors(noisy_reference(reference, mae), reference, kpoints, window=5.0)["eigenvalue_mae_meV"]
                    for mae in (1e-5, 1e-3))
    assert 0 < small < large
    assert 0 < smallest_overlap_eigenvalue(reference, kpoints) <= 1.0


def test_distance_shells_split_the_errors_and_hold_the_reference_size(reference):
    shells = distance_shells(reference)
    distances = np.linalg.norm(reference.pair_vectors, axis=1)
    assert (shells[reference.on_site] == "on-site").all()
    assert set(shells[~reference.on_site & (distances < 2.0)]) == {"0-2 Å"}
    assert set(shells[distances >= 6.0]) <= {"6+ Å"}
    bonded = np.repeat(shells == "0-2 Å", np.diff(reference.block_offsets))
    shifted = reference.h_values + 0.004 * bonded[:, None]  # +4 meV on the bonded pairs only
    errors = block_errors(dataclasses.replace(reference, h_values=shifted), reference)["H_meV"]["distance"]
    assert list(errors)[0] == "on-site" and errors["on-site"]["mae"] == 0.0
    assert errors["0-2 Å"]["mae"] == pytest.approx(4.0)
    assert errors["0-2 Å"]["reference_mean_abs"] == pytest.approx(1000 * np.abs(reference.h_values[bonded, 0]).mean())
    assert all(entry["mae"] == 0.0 for label, entry in errors.items() if label != "0-2 Å")


def test_projection_keeps_h_plus_c_s_a_shift_by_c_and_costs_nothing_when_it_drops_nothing(reference):
    kpoints = monkhorst_pack(reference, 2)
    shifted = dataclasses.replace(reference, h_values=reference.h_values + 0.025 * reference.s_values[:, None])
    everything = projected_spectral_errors(shifted, reference, kpoints, window=5.0, threshold=0.0)
    assert everything["n_dropped_per_k"] == 0 and everything["projection_shift_meV"] < 1e-6
    assert everything["eigenvalue_mae_meV"] == pytest.approx(25.0, abs=1e-6)
    # X^H (H + c S) X = X^H H X + c for any kept subspace
    threshold = float(np.median(np.linalg.eigvalsh(reference.matrices_at_k(np.zeros(3))[1])))
    reduced = projected_spectral_errors(shifted, reference, kpoints, window=5.0, threshold=threshold)
    assert reduced["n_dropped_per_k"] > 0 and reduced["projection_shift_meV"] > 0
    assert reduced["eigenvalue_max_meV"] == pytest.approx(25.0, abs=1e-6)


def test_filtering_reads_h_plus_c_s_as_a_moved_fermi_level_not_an_error(reference):
    kpoints = monkhorst_pack(reference, 2)
    shifted = dataclasses.replace(reference, h_values=reference.h_values + 0.025 * reference.s_values[:, None])
    errors = filtered_spectral_errors(shifted, reference, kpoints, window=5.0, threshold=0.0)
    assert errors["n_eigenvalues"] > 0 and errors["n_dropped_prediction"] == errors["n_dropped_reference"] == 0
    assert errors["eigenvalue_max_meV"] == pytest.approx(0.0, abs=1e-6) and errors["filter_shift_meV"] < 1e-6
    assert errors["fermi_level_offset_eV"] == pytest.approx(0.025, abs=1e-9)
    bent = dataclasses.replace(reference, h_values=reference.h_values * 1.01)  # not a shift: a real error
    assert filtered_spectral_errors(bent, reference, kpoints, window=5.0, threshold=0.0)["eigenvalue_mae_meV"] > 1.0


def test_reference_deviation_of_a_moved_energy_zero_is_in_h_but_not_in_the_spectrum(reference):
    """Two calculations that differ by c S: every orbital energy moves by c, no eigenvalue from its own E_F."""
    moved = dataclasses.replace(reference, h_values=reference.h_values + 0.025 * reference.s_values[:, None])
    deviation = reference_deviation(moved, reference, window=5.0, threshold=0.0)
    assert deviation["h_orbital_energy_mae_meV"] == pytest.approx(25.0)  # S_ii = 1
    assert deviation["eigenvalue_mae_meV"] == pytest.approx(0.0, abs=1e-6) and deviation["s_max_error"] == 0.0
    assert reference_deviation(reference, reference)["h_mae_meV"] == 0.0


def test_filtering_removes_the_directions_where_a_predicted_overlap_is_not_positive(reference):
    kpoints = monkhorst_pack(reference, 1)
    depth = smallest_overlap_eigenvalue(reference, kpoints) + 1e-3
    diagonal = np.zeros(len(reference.s_values))
    for b in np.flatnonzero(reference.on_site):
        start, n = reference.block_offsets[b], reference.block_shapes[b, 0]
        diagonal[start + np.arange(n) * (n + 1)] = 1.0
    indefinite = dataclasses.replace(reference, s_values=reference.s_values - depth * diagonal)  # S - depth * 1
    assert spectral_errors(indefinite, reference, kpoints, window=5.0)["positive_definite_S"] is False
    errors = filtered_spectral_errors(indefinite, reference, kpoints, window=5.0, threshold=2e-3)
    assert np.isfinite(errors["eigenvalue_mae_meV"]) and errors["n_eigenvalues"] > 0
    assert errors["n_dropped_prediction"] >= 1 + errors["n_dropped_reference"]


def test_eigenvalue_errors_by_shell_name_the_shell_that_was_changed(reference):
    """1% more H on the bonded pairs only: only the 0-2 Å entry moves eigenvalues; S unchanged costs nothing."""
    kpoints = monkhorst_pack(reference, 2)
    bonded = np.repeat(distance_shells(reference) == "0-2 Å", np.diff(reference.block_offsets))
    changed = dataclasses.replace(reference, h_values=reference.h_values * np.where(bonded, 1.01, 1.0)[:, None])
    by_shell = eigenvalue_errors_by_shell(changed, reference, kpoints, window=5.0, threshold=1e-3)
    assert set(by_shell) == {*set(distance_shells(reference)), "S"}
    whole = filtered_spectral_errors(changed, reference, kpoints, window=5.0, threshold=1e-3)["eigenvalue_mae_meV"]
    assert by_shell["0-2 Å"] == pytest.approx(whole, rel=1e-9) and whole > 1.0
    assert all(mae < 1e-6 for shell, mae in by_shell.items() if shell != "0-2 Å")


def test_spectra_by_chemical_order_count_wrong_bonds_and_skip_unscored_cells(reference):
    swapped = reference.atoms.copy()
    swapped.set_chemical_symbols(["B"] * len(swapped))  # every bond homopolar
    records = {"hBN": reference, "all B": dataclasses.replace(reference, atoms=swapped), "unscored": reference}
    scored = {name: {"spectrum_filtered": filtered_spectral_errors(reference, reference, monkhorst_pack(reference, 1))}
              for name in ("hBN", "all B")}
    rows = spectra_by_chemical_order(records, scored, "test")
    assert [row["cell"] for row in rows] == ["hBN", "all B"] and {row["set"] for row in rows} == {"test"}
    assert [row["homopolar_fraction"] for row in rows] == [0.0, 1.0]
    assert rows[0]["gap_predicted_eV"] == rows[0]["gap_reference_eV"] and rows[0]["eigenvalue_mae_filtered_meV"] == 0.0
