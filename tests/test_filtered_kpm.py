"""The filtered KPM: B = f(S) H f(S) + E_park (1 - w(S)^2) against dense linear algebra."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.linalg
from conftest import hbn_atoms, random_record

from hforge_nb.evaluation import canonical_frame
from hforge_nb.filtered_kpm import FilteredOperator, OverlapFilter, exact_filtered_dos, filtered_kpm_dos
from hforge_nb.kpm import KPMConfig, OverlapNotPositiveDefiniteError, kpm_dos


@pytest.fixture(scope="module")
def record():
    """A 4-atom non-orthogonal BN record (52 orbitals)."""
    return random_record(hbn_atoms(rattle=0.05), seed=5)


def _shifted_overlap(record, depth: float):
    """The record with S - depth * 1 (every S eigenvalue lowered by ``depth``)."""
    diagonal = np.zeros(len(record.s_values))
    for b in np.flatnonzero(record.on_site):
        start, n = record.block_offsets[b], record.block_shapes[b, 0]
        diagonal[start + np.arange(n) * (n + 1)] = 1.0
    return dataclasses.replace(record, s_values=record.s_values - depth * diagonal)


def _overlap_eigenvalues(record):
    return np.linalg.eigvalsh(record.sparse_matrices_at_k()[1].toarray())


def test_keeping_every_direction_gives_the_generalized_eigenvalues(record):
    hamiltonian, overlap = record.sparse_matrices_at_k()
    smallest = _overlap_eigenvalues(record)[0]
    operator = FilteredOperator(hamiltonian, overlap, OverlapFilter(threshold=smallest / 20, degree=400))
    expected = scipy.linalg.eigh(hamiltonian.toarray(), overlap.toarray(), eigvals_only=True)
    np.testing.assert_allclose(np.linalg.eigvalsh(operator.dense()), expected, atol=1e-6)
    vectors = np.random.default_rng(0).standard_normal((record.n_orbitals, 3))
    np.testing.assert_allclose(operator @ vectors, operator.dense() @ vectors, atol=1e-9)
    blocked = FilteredOperator(hamiltonian, overlap, OverlapFilter(threshold=smallest / 20, degree=400), block_size=13)
    assert blocked.overlap.format == "bsr" and operator.overlap.format == "csr"
    np.testing.assert_allclose(blocked @ vectors, operator @ vectors, atol=1e-9)


def test_dropped_directions_are_parked_and_the_kept_ones_solved_in_the_canonical_frame(record):
    values = _overlap_eigenvalues(record)
    i = int(np.argmax(np.diff(values[:12])))  # the widest gap among the lowest eigenvalues of S
    gap = values[i + 1] - values[i]
    shifted = _shifted_overlap(record, values[i])  # S - values[i]: i + 1 eigenvalues <= 0, the next one = gap
    hamiltonian, overlap = shifted.sparse_matrices_at_k()
    overlap_filter = OverlapFilter(threshold=gap / 20, degree=800, parked_energy=-50.0)
    spectrum = np.linalg.eigvalsh(FilteredOperator(hamiltonian, overlap, overlap_filter).dense())
    parked = np.abs(spectrum + 50.0) < 0.5
    assert parked.sum() == i + 1
    frame = canonical_frame(overlap.toarray(), overlap_filter.threshold)
    kept = np.linalg.eigvalsh(frame.T @ hamiltonian.toarray() @ frame)
    assert len(kept) == record.n_orbitals - (i + 1)
    np.testing.assert_allclose(np.sort(spectrum[~parked]), kept, atol=0.1)  # eV, of a 94 eV wide spectrum


def test_an_indefinite_overlap_still_gives_a_bounded_spectrum_and_the_exact_moments(record):
    depth = _overlap_eigenvalues(record)[0] + 1e-3  # S - depth has one negative eigenvalue
    broken = _shifted_overlap(record, depth)
    energies = np.linspace(-3, 3, 61)
    with pytest.raises(OverlapNotPositiveDefiniteError):
        kpm_dos(broken, energies, KPMConfig(n_moments=8, n_random=1))
    config = KPMConfig(n_moments=48, n_random=64, seed=2)
    result, operator = filtered_kpm_dos(broken, energies, config, OverlapFilter(threshold=5e-3, degree=200))
    spectrum = np.linalg.eigvalsh(operator.dense())
    assert result.bounds[0] < spectrum.min() and spectrum.max() < result.bounds[1]
    assert np.ptp(spectrum) < 200.0  # eV: nothing amplified beyond about |H| / threshold
    assert result.moments[0] == pytest.approx(record.n_orbitals)  # r^T r of +-1 vectors
    exact = exact_filtered_dos(broken, result, operator)
    assert np.trapezoid(np.abs(result.dos - exact), energies) < 0.15 * np.trapezoid(exact, energies)


def test_block_sparse_matrices_are_kept_as_they_are_and_others_stored_as_csr(record):
    hamiltonian, overlap = record.block_sparse_matrices_at_gamma()  # 13 x 13 blocks
    kept = FilteredOperator(hamiltonian, overlap, OverlapFilter(degree=20))
    assert kept.overlap.format == "bsr" and kept.overlap.blocksize == (13, 13)
    assert kept.hamiltonian is hamiltonian and kept.overlap is overlap
    assert FilteredOperator(hamiltonian.tocsr(), overlap.tocsr(), OverlapFilter(degree=20)).overlap.format == "csr"


def test_bad_filters_are_refused():
    with pytest.raises(ValueError, match="threshold"):
        OverlapFilter(threshold=0.0)
    with pytest.raises(ValueError, match="degree"):
        OverlapFilter(degree=1)
