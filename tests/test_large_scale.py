"""Cost measurement, export and KPM checks of notebook 06 (hforge_nb.large_scale)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import hbn_atoms, random_record, small_model

from hforge_nb.inference import ChunkConfig
from hforge_nb.kpm import KPMConfig
from hforge_nb.filtered_kpm import OverlapFilter
from hforge_nb.large_scale import (PeakMemory, kpm_check, large_cell_filtered_kpm, measure_prediction,
                                   overlap_eigenvalues_by_shell,
                                   smallest_overlap_eigenvalue, truncated_overlap_eigenvalues, tshs_round_trip_error,
                                   write_exports)


def test_counting_without_keeping_gives_the_same_sizes():
    atoms = hbn_atoms(rattle=0.05).repeat((2, 2, 1))
    record, kept = measure_prediction(small_model("equivariant"), atoms, ChunkConfig(chunk_atoms=5))
    none, counted = measure_prediction(small_model("equivariant"), atoms, ChunkConfig(chunk_atoms=5), keep=False)
    assert none is None
    assert (counted.n_blocks, counted.n_values) == (kept.n_blocks, kept.n_values) == (record.n_blocks, len(record.s_values))
    assert counted.values_GB == pytest.approx(16 * counted.n_values / 1e9)
    assert counted.ms_per_atom == pytest.approx(1e3 * counted.seconds / len(atoms))


def test_peak_memory_sees_an_allocation():
    with PeakMemory(interval=0.005) as memory:
        before = PeakMemory.current_GB()
        block = np.ones(50_000_000)  # 0.4 GB
        block.sum()
    assert memory.peak_GB >= before + 0.3


def test_exports_read_back_exactly(tmp_path):
    record = random_record(hbn_atoms(rattle=0.05))
    files = write_exports(record, tmp_path, "cell")
    assert sorted(files) == ["TSHS", "nc", "npz"] and all(p.exists() for p in files.values())
    assert tshs_round_trip_error(record, files["TSHS"]) < 1e-10


def test_kpm_check_reports_errors_against_the_exact_limit():
    record = random_record(hbn_atoms(rattle=0.05), seed=5)
    check = kpm_check(record, (2, 2, 1), np.linspace(-3, 3, 61), KPMConfig(n_moments=32, n_random=4))
    summary = check.summary()
    assert summary["kpm_repeats"] == [2, 2, 1] and summary["kpm_n_atoms"] == 16
    assert 0 < summary["kpm_l1_error_relative"] < 0.3
    assert smallest_overlap_eigenvalue(record) > 0


def test_large_cell_filtered_kpm_streamed_equals_the_kept_record_and_skips_the_exact_check():
    model, atoms, chunks = small_model("equivariant"), hbn_atoms(rattle=0.05).repeat((2, 2, 1)), ChunkConfig(5)
    energies, config = np.linspace(-10, 10, 41), KPMConfig(n_moments=16, n_random=2, lanczos_steps=20)
    overlap_filter = OverlapFilter(threshold=1e-2, degree=40)
    record, _ = measure_prediction(model, atoms, chunks)
    kept = large_cell_filtered_kpm(model, atoms, record, chunks, energies, config, overlap_filter, 10_000)
    streamed = large_cell_filtered_kpm(model, atoms, None, chunks, energies, config, overlap_filter, 10_000)
    assert kept.exact is not None and streamed.exact is None
    np.testing.assert_allclose(streamed.result.dos, kept.result.dos, atol=1e-8)
    assert "kpm_l1_error_relative" in kept.summary() and "kpm_l1_error_relative" not in streamed.summary()
    too_large = large_cell_filtered_kpm(model, atoms, record, chunks, energies, config, overlap_filter, 10)
    assert too_large.exact is None


def test_truncating_the_overlap_keeps_the_full_spectrum_beyond_its_reach():
    record = random_record(hbn_atoms(rattle=0.05), seed=5)
    reach = np.linalg.norm(record.pair_vectors, axis=1).max()
    smallest = truncated_overlap_eigenvalues(record, [1.0, reach + 0.1])
    assert smallest[reach + 0.1] == pytest.approx(smallest_overlap_eigenvalue(record), abs=1e-12)
    assert smallest[1.0] != pytest.approx(smallest[reach + 0.1])  # on-site blocks only: another spectrum


def test_overlap_shells_name_the_one_whose_errors_lower_the_spectrum():
    import dataclasses

    from hforge_nb.record import value_positions

    reference = random_record(hbn_atoms(rattle=0.05), seed=5)
    smallest = smallest_overlap_eigenvalue(reference)
    block, row, col = value_positions(reference.block_shapes)
    diagonal = reference.on_site[block] & (row == col)
    lowered = dataclasses.replace(reference, s_values=reference.s_values - 0.3 * diagonal)  # S - 0.3 at k = 0
    by_shell = overlap_eigenvalues_by_shell(lowered, reference)
    assert by_shell.pop("on-site") == pytest.approx(smallest - 0.3, abs=1e-10)
    assert by_shell and all(value == pytest.approx(smallest, abs=1e-12) for value in by_shell.values())


def test_gpaw_timings_keep_converged_amorphous_cells_with_summed_times():
    manifest = {"samples": [
        {"name": "a8", "kind": "amorphous", "status": "converged", "n_atoms": 8, "timings_s": {"scf": 2.0, "fourier": 1.0}},
        {"name": "a16", "kind": "amorphous", "status": "not-converged", "n_atoms": 16, "timings_s": {"scf": 9.0}},
        {"name": "hBN", "kind": "hBN", "status": "converged", "n_atoms": 4, "timings_s": {"scf": 1.0}}]}
    from hforge_nb.large_scale import gpaw_timings

    assert gpaw_timings(manifest) == [{"sample": "a8", "n_atoms": 8, "seconds": 3.0}]
