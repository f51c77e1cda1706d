"""DFT-vs-ML comparison data: home-cell matrices, filtered and projected spectra, DOS and figure files."""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import hbn_atoms, random_record

from hforge_nb.comparison import (SpectraConfig, cell_matrices, dos_pair, filtered_spectrum_pair, padded, save_figure,
                                  spectrum_pair)
from hforge_nb.evaluation import filtered_spectral_errors, monkhorst_pack


@pytest.fixture(scope="module")
def reference():
    return random_record(hbn_atoms(rattle=0.05), seed=5)


def test_the_image_matrices_sum_to_the_gamma_point_matrices(reference):
    h_gamma, s_gamma = reference.matrices_at_k(np.zeros(3))
    images = [cell_matrices(reference, shift) for shift in np.unique(reference.shifts, axis=0)]
    assert np.allclose(sum(h for h, _ in images), h_gamma.real) and np.allclose(sum(s for _, s in images), s_gamma.real)
    h_home, _ = cell_matrices(reference)
    assert np.allclose(h_home, h_home.T)  # the home cell is Hermitian on its own


def test_a_prediction_equal_to_the_reference_has_no_error_and_a_shift_by_c_s_errs_by_c(reference):
    kpoints = monkhorst_pack(reference, 2)
    same = spectrum_pair(reference, reference, kpoints, threshold=1e-3)
    assert same.errors(5.0)["eigenvalue_max_meV"] == 0.0 and same.errors(5.0)["n_eigenvalues"] > 0
    shifted = dataclasses.replace(reference, h_values=reference.h_values + 0.01 * reference.s_values[:, None])
    pair = spectrum_pair(shifted, reference, kpoints, threshold=1e-3)
    assert pair.errors(5.0)["eigenvalue_mae_meV"] == pytest.approx(10.0, abs=1e-6)
    grid, dos_ref, dos_pred = dos_pair(same, 5.0)
    assert np.array_equal(dos_ref, dos_pred) and dos_ref.shape == grid.shape


def _perturbed(reference, size: float, seed: int = 1):
    """The reference with Hermitian random noise of ``size`` eV on H."""
    noise = np.random.default_rng(seed).normal(size=reference.h_values.shape) * size
    return dataclasses.replace(reference, h_values=reference.h_values + noise).symmetrized()


def test_filtered_spectra_do_not_see_the_energy_zero_and_match_notebook_03s_errors(reference):
    kpoints = monkhorst_pack(reference, 2)
    shifted = dataclasses.replace(reference, h_values=reference.h_values + 0.3 * reference.s_values[:, None])
    moved = filtered_spectrum_pair(shifted, reference, kpoints)
    assert moved.method == "filtered" and moved.errors(5.0)["n_eigenvalues"] > 0
    assert moved.errors(5.0)["eigenvalue_max_meV"] == pytest.approx(0.0, abs=1e-9)  # each from its own E_F
    assert spectrum_pair(shifted, reference, kpoints).errors(5.0)["eigenvalue_mae_meV"] == pytest.approx(300.0)
    noisy = _perturbed(reference, 0.05)
    pair = filtered_spectrum_pair(noisy, reference, kpoints, threshold=1e-2)
    headline = filtered_spectral_errors(noisy, reference, kpoints, window=2.0, threshold=1e-2)
    assert pair.errors(2.0)["eigenvalue_mae_meV"] == pytest.approx(headline["eigenvalue_mae_meV"], rel=1e-12)
    assert pair.errors(2.0)["n_eigenvalues"] == headline["n_eigenvalues"] and headline["eigenvalue_mae_meV"] > 1.0
    n_orbitals = reference.n_orbitals
    assert pair.errors(2.0)["n_kept_reference"] == n_orbitals - headline["n_dropped_reference"]
    assert pair.errors(2.0)["n_kept_predicted"] == n_orbitals - headline["n_dropped_prediction"]


def test_spectra_config_makes_the_pair_it_names(reference):
    kpoints = monkhorst_pack(reference, 1)
    noisy = _perturbed(reference, 0.05)
    for method, make, threshold in (("filtered", filtered_spectrum_pair, 1e-2), ("projected", spectrum_pair, 1e-3)):
        pair, expected = SpectraConfig(method).pair(noisy, reference, kpoints), make(noisy, reference, kpoints, threshold)
        assert pair.method == method and pair.threshold == threshold
        assert np.array_equal(pair.predicted, expected.predicted, equal_nan=True)
    with pytest.raises(ValueError, match="unknown spectra 'exact'"):
        SpectraConfig("exact")


def test_padded_rows_and_figure_files(tmp_path):
    rows = padded([np.array([1.0, 2.0]), np.array([3.0])])
    assert rows.shape == (2, 2) and np.isnan(rows[1, 1])
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    assert save_figure(fig, tmp_path, "line") == ["line.pdf", "line.png"]
    assert (tmp_path / "line.pdf").read_bytes()[:4] == b"%PDF" and (tmp_path / "line.png").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["line.pdf", "line.png"]  # no temporary files left
    plt.close(fig)
