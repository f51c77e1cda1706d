"""The kernel polynomial method on non-orthogonal matrices, against exact diagonalization."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import hbn_atoms, random_record

from hforge_nb.kpm import (
    KPMConfig,
    OverlapNotPositiveDefiniteError,
    OverlapSolver,
    chebyshev_moments,
    density_from_moments,
    eigenvalue_moments,
    exact_kpm_dos,
    jackson_kernel,
    kpm_dos,
    operator_moments,
    spectral_bounds,
    symmetric_operator_moments,
)
from hforge_nb.record import repeat_record, supercell_kpoints


@pytest.fixture(scope="module")
def record():
    """A 4-atom non-orthogonal BN record (52 orbitals) with S far from the identity."""
    return random_record(hbn_atoms(rattle=0.05), seed=5)


def _solver(record, tolerance=1e-12):
    _, overlap = record.sparse_matrices_at_k()
    return OverlapSolver(overlap, record.atom_orbital_counts, tolerance)


def test_overlap_is_far_from_the_identity(record):
    _, overlap = record.sparse_matrices_at_k()
    off_diagonal = overlap - np.diag(overlap.diagonal())
    assert np.abs(off_diagonal).max() > 0.05  # ignoring S would change the spectrum


def test_lanczos_bounds_bracket_the_generalized_spectrum(record):
    hamiltonian, _ = record.sparse_matrices_at_k()
    eigenvalues = record.eigenvalues(np.zeros((1, 3))).ravel()
    low, high = spectral_bounds(hamiltonian, _solver(record), steps=40)
    assert low < eigenvalues.min() and eigenvalues.max() < high
    assert high - low < 1.1 * np.ptp(eigenvalues)


def test_full_trace_moments_equal_the_exact_ones(record):
    """Unit vectors make the trace exact (their mean is Tr / n): the moments of S^-1 H are its eigenvalues'."""
    hamiltonian, _ = record.sparse_matrices_at_k()
    eigenvalues = record.eigenvalues(np.zeros((1, 3))).ravel()
    bounds = (eigenvalues.min() - 1.0, eigenvalues.max() + 1.0)
    moments = chebyshev_moments(hamiltonian, _solver(record), bounds, 64, np.eye(record.n_orbitals))
    np.testing.assert_allclose(moments * record.n_orbitals, eigenvalue_moments(eigenvalues, bounds, 64), atol=1e-7)


@pytest.mark.parametrize("n_moments", [2, 3, 8, 33])
def test_moments_of_a_symmetric_operator_by_doubling_equal_the_plain_recursion(n_moments):
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((40, 40))
    matrix = matrix + matrix.T  # [40, 40] symmetric
    values = np.linalg.eigvalsh(matrix)
    bounds, vectors = (values[0] - 0.5, values[-1] + 0.5), rng.standard_normal((40, 3))
    products = []

    def apply(v):
        products.append(1)
        return matrix @ v

    doubled = symmetric_operator_moments(apply, bounds, n_moments, vectors)
    assert len(products) == n_moments // 2  # half of the plain recursion's n_moments - 1
    np.testing.assert_allclose(doubled, operator_moments(lambda v: matrix @ v, bounds, n_moments, vectors),
                               atol=1e-10)


def test_exact_moments_integrate_to_the_number_of_orbitals(record):
    eigenvalues = record.eigenvalues(np.zeros((1, 3))).ravel()
    bounds = (eigenvalues.min() - 0.5, eigenvalues.max() + 0.5)
    energies = np.linspace(*bounds, 20001)
    dos = density_from_moments(eigenvalue_moments(eigenvalues, bounds, 128), bounds, energies)
    assert np.trapezoid(dos, energies) == pytest.approx(record.n_orbitals, rel=2e-3)
    assert jackson_kernel(128)[0] == pytest.approx(1.0)


def test_stochastic_dos_of_a_supercell_converges_to_exact_diagonalization(record):
    """27 copies (1404 orbitals): the stochastic error falls with more vectors and ends within 5 %."""
    big = repeat_record(record, (3, 3, 3))
    energies = np.linspace(-4, 4, 161)
    errors = []
    for n_random in (2, 32):
        result = kpm_dos(big, energies, KPMConfig(n_moments=64, n_random=n_random, solver_tolerance=1e-10))
        exact = exact_kpm_dos(record, result, (3, 3, 3))
        errors.append(np.abs(result.dos - exact).max() / exact.max())
    assert errors[1] < 0.05 and errors[1] < 0.5 * errors[0]
    assert result.resolution_eV == pytest.approx(np.pi * 0.5 * np.ptp(result.bounds) / 64)


def test_repeated_record_folds_the_cell_k_grid_onto_gamma(record):
    big = repeat_record(record, (2, 3, 1))
    supercell = np.sort(big.eigenvalues(np.zeros((1, 3))).ravel())
    folded = np.sort(record.eigenvalues(supercell_kpoints((2, 3, 1))).ravel())
    np.testing.assert_allclose(supercell, folded, atol=1e-10)
    home = np.linalg.norm(record.pair_vectors, axis=1)
    np.testing.assert_allclose(np.linalg.norm(big.pair_vectors, axis=1), np.tile(home, 6), atol=1e-10)


def test_an_overlap_that_is_not_positive_definite_is_named(record):
    broken = dataclasses.replace(record, s_values=np.where(record.on_site.repeat(np.diff(record.block_offsets)),
                                                          -record.s_values, record.s_values))
    with pytest.raises(OverlapNotPositiveDefiniteError, match="not positive definite"):
        kpm_dos(broken, np.linspace(-1, 1, 5), KPMConfig(n_moments=4, n_random=1))


def test_solver_counts_solves_that_stop_at_the_iteration_cap(record):
    _, overlap = record.sparse_matrices_at_k()
    rhs = np.random.default_rng(0).standard_normal((record.n_orbitals, 3))
    capped = OverlapSolver(overlap, record.atom_orbital_counts, tolerance=1e-12, max_iterations=2)
    capped.solve(rhs)
    assert capped.unconverged == 1 and capped.worst_residual > 1e-12
    full = OverlapSolver(overlap, record.atom_orbital_counts, tolerance=1e-10)
    x = full.solve(rhs)
    assert full.unconverged == 0 and full.worst_residual <= 1e-10
    relative = np.linalg.norm(rhs - overlap @ x, axis=0) / np.linalg.norm(rhs, axis=0)
    assert relative.max() == pytest.approx(full.worst_residual, rel=1e-6)


def test_kpm_warns_when_solves_stop_at_the_cap(record):
    config = KPMConfig(n_moments=8, n_random=1, solver_tolerance=1e-12, solver_max_iterations=3, lanczos_steps=10)
    with pytest.warns(RuntimeWarning, match="stopped at 3 iterations"):
        result = kpm_dos(record, np.linspace(-5, 5, 11), config)
    assert result.summary()["kpm_unconverged_solves"] > 0
