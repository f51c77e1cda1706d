"""KPM density of states with the nearly linearly dependent part of the basis filtered out.

The plain KPM (:mod:`.kpm`) expands S^-1 H, whose spectrum must lie inside
the Chebyshev bounds.  A predicted S is not exactly positive definite, and
errors of a predicted H along the nearly null directions of S put states
thousands of eV away, so the plain expansion either fails or loses all
resolution.  Diagonalizing codes drop the eigenvectors of S below a
threshold (:func:`.evaluation.filtered_spectral_errors`); without
eigenvectors, the same is done with polynomials of S.  With a smooth cut
w(s) = (1 + tanh((s - t) / (t / 4))) / 2 at the threshold t and
f(s) = w(s) / sqrt(max(s, t / 2)), the operator

    B = f(S) H f(S) + E_park (1 - w(S)^2)

is symmetric in the orthonormal sense.  On the directions of S kept
(s >> t) f(S) = S^-1/2, so B has the eigenvalues of H c = E S c in the
kept part of the basis (as in canonical orthogonalization); the dropped
directions (s << t, negative ones included) sit at E_park, below the bands;
the few in between have f(s)^2 <= about 1/t, so nothing is amplified more
than 1/t and the spectrum stays bounded.  f(S) v and w(S) v come from one
Chebyshev recursion in S of ``degree`` sparse products, so the cost stays
linear in the number of orbitals.  The moments are then those of the
ordinary KPM of B (Weisse et al., Rev. Mod. Phys. 78, 275 (2006)).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse
from numpy.polynomial import chebyshev

from .kpm import (KPMConfig, KPMResult, _scale_and_centre, density_from_moments, eigenvalue_moments, ritz_bounds,
                  symmetric_operator_moments)
from .record import HamiltonianRecord


@dataclass(frozen=True)
class OverlapFilter:
    """Which directions of S a filtered KPM keeps, and how finely.

    Attributes
    ----------
    threshold : float
        Eigenvalue of S where the smooth cut is half way; directions below
        about half of it are dropped, above about twice it kept.
    degree : int
        Chebyshev degree of the functions of S; each application of B
        costs two recursions of this many products with S.
    parked_energy : float
        Energy (eV, relative to E_F) where the dropped directions go;
        below the bands, so that they stay out of the window of interest.
    """

    threshold: float = 1e-2
    degree: int = 300
    parked_energy: float = -40.0

    def __post_init__(self) -> None:
        if not self.threshold > 0 or self.degree < 2:
            raise ValueError(f"need threshold > 0 and degree >= 2, got {self.threshold} and {self.degree}")

    def weight(self, s: np.ndarray) -> np.ndarray:
        """w(s): 0 well below the threshold, 1 well above it."""
        return 0.5 * (1.0 + np.tanh((s - self.threshold) / (self.threshold / 4)))

    def inverse_root(self, s: np.ndarray) -> np.ndarray:
        """f(s) = w(s) / sqrt(max(s, threshold / 2)): s^-1/2 on the kept directions, 0 on the dropped ones."""
        return self.weight(s) / np.sqrt(np.maximum(s, self.threshold / 2))


def lanczos_bounds(apply, n: int, steps: int, seed: int = 0, margin: float = 0.01) -> tuple[float, float]:
    """Bounds of the spectrum of a symmetric operator ``apply`` (``[n, 1]`` -> ``[n, 1]``), by Lanczos.

    The extreme Ritz values are widened by their residual bound and by
    ``margin`` times the width.
    """
    q = np.random.default_rng(seed).standard_normal((n, 1))
    q /= np.linalg.norm(q)
    previous, beta, alphas, betas = np.zeros_like(q), 0.0, [], []
    for _ in range(min(steps, n)):
        w = apply(q)
        alphas.append(float(q[:, 0] @ w[:, 0]))
        w = w - alphas[-1] * q - beta * previous
        beta = float(np.linalg.norm(w))
        betas.append(beta)
        if beta < 1e-12:
            break
        previous, q = q, w / beta
    return ritz_bounds(alphas, betas, margin)


class FilteredOperator:
    """B = f(S) H f(S) + E_park (1 - w(S)^2) of sparse H and S (see the module docstring).

    Parameters
    ----------
    hamiltonian, overlap
        ``[n_orb, n_orb]`` sparse symmetric H (eV) and S; S need not be positive definite.
    overlap_filter
        The cut and the polynomial degree.
    lanczos_steps, seed
        The Lanczos run that brackets S's spectrum, where the polynomials are fitted.
    block_size : int or None
        Orbitals per atom when every atom has the same number: H and S are
        then stored as dense blocks (BSR), whose products are about three
        times faster than CSR's.  None: BSR matrices are kept with their
        own blocks, others stored as CSR.
    """

    def __init__(self, hamiltonian, overlap, overlap_filter: OverlapFilter = OverlapFilter(),
                 lanczos_steps: int = 60, seed: int = 0, block_size: int | None = None):
        def stored(matrix):
            if scipy.sparse.issparse(matrix) and matrix.format == "bsr" and (
                    block_size is None or matrix.blocksize == (block_size, block_size)):
                return matrix
            matrix = scipy.sparse.csr_matrix(matrix)
            return matrix.tobsr(blocksize=(block_size, block_size)) if block_size else matrix

        self.hamiltonian, self.overlap = stored(hamiltonian), stored(overlap)
        self.filter = overlap_filter
        low, high = lanczos_bounds(lambda v: self.overlap @ v, self.overlap.shape[0], lanczos_steps, seed)
        self.overlap_bounds = (min(low, 0.0), high)
        self.inverse_root = self._coefficients(overlap_filter.inverse_root)
        self.dropped = self._coefficients(lambda s: 1.0 - overlap_filter.weight(s) ** 2)

    def _coefficients(self, function) -> np.ndarray:
        """``[degree + 1]`` Chebyshev coefficients of ``function`` on S's bounds."""
        scale, centre = _scale_and_centre(self.overlap_bounds)
        return chebyshev.chebinterpolate(lambda x: function(scale * x + centre), self.filter.degree)

    def _series(self, vectors: np.ndarray, coefficient_sets: list[np.ndarray]) -> list[np.ndarray]:
        """sum_k c_k T_k(S~) ``vectors`` ``[n_orb, m]`` for every coefficient set, from one recursion."""
        scale, centre = _scale_and_centre(self.overlap_bounds)
        previous, current = vectors, (self.overlap @ vectors - centre * vectors) / scale
        results = [c[0] * previous + c[1] * current for c in coefficient_sets]
        for k in range(2, self.filter.degree + 1):
            previous, current = current, 2.0 * (self.overlap @ current - centre * current) / scale - previous
            for result, c in zip(results, coefficient_sets):
                result += c[k] * current
        return results

    def __matmul__(self, vectors: np.ndarray) -> np.ndarray:
        """B ``vectors`` ``[n_orb, m]``."""
        filtered, dropped = self._series(vectors, [self.inverse_root, self.dropped])
        (back,) = self._series(self.hamiltonian @ filtered, [self.inverse_root])
        return back + self.filter.parked_energy * dropped

    def dense(self) -> np.ndarray:
        """``[n_orb, n_orb]`` B with the same polynomials, from S's eigendecomposition (small cells only)."""
        values, vectors = np.linalg.eigh(self.overlap.toarray())
        scale, centre = _scale_and_centre(self.overlap_bounds)
        x = (values - centre) / scale
        root = (vectors * chebyshev.chebval(x, self.inverse_root)) @ vectors.T
        dropped = (vectors * chebyshev.chebval(x, self.dropped)) @ vectors.T
        return root @ self.hamiltonian.toarray() @ root + self.filter.parked_energy * dropped


def filtered_kpm_dos(record: HamiltonianRecord, energies: np.ndarray, config: KPMConfig = KPMConfig(),
                     overlap_filter: OverlapFilter = OverlapFilter()) -> tuple[KPMResult, FilteredOperator]:
    """KPM density of states (states/eV/atom) of a record's filtered H and S at k = 0, and the operator used.

    ``KPMResult.solver_iterations`` holds the products with S per
    application of B (there are no solves).
    """
    block_size = record.basis.common_orbital_count(record.species)
    hamiltonian, overlap = (record.sparse_matrices_at_k() if block_size is None
                            else record.block_sparse_matrices_at_gamma())
    return filtered_kpm_dos_of_matrices(hamiltonian, overlap, record.n_atoms, energies, config, overlap_filter,
                                        block_size=block_size)


def filtered_kpm_dos_of_matrices(hamiltonian, overlap, n_atoms: int, energies: np.ndarray,
                                 config: KPMConfig = KPMConfig(), overlap_filter: OverlapFilter = OverlapFilter(),
                                 block_size: int | None = None) -> tuple[KPMResult, FilteredOperator]:
    """:func:`filtered_kpm_dos` of sparse ``[n_orb, n_orb]`` H (eV) and S of ``n_atoms`` atoms.

    For matrices streamed from a prediction without a record
    (:func:`.inference.predict_gamma_matrices`, BSR, used as they are);
    ``block_size`` as in :class:`FilteredOperator`.
    """
    start = time.perf_counter()
    operator = FilteredOperator(hamiltonian, overlap, overlap_filter, seed=config.seed, block_size=block_size)
    n_orbitals = operator.overlap.shape[0]
    bounds = lanczos_bounds(operator.__matmul__, n_orbitals, config.lanczos_steps, config.seed, config.bound_margin)
    random = np.random.default_rng(config.seed + 1).choice([-1.0, 1.0], size=(n_orbitals, config.n_random))
    moments = symmetric_operator_moments(operator.__matmul__, bounds, config.n_moments, random)
    dos = density_from_moments(moments, bounds, energies) / n_atoms
    result = KPMResult(np.asarray(energies, dtype=float), dos, moments, bounds,
                       np.pi * _scale_and_centre(bounds)[0] / config.n_moments, n_atoms, n_orbitals,
                       float(2 * overlap_filter.degree), 0, 0.0, time.perf_counter() - start)
    return result, operator


def exact_filtered_dos(record: HamiltonianRecord, result: KPMResult, operator: FilteredOperator) -> np.ndarray:
    """``[n_E]`` states/eV/atom: ``result``'s kernel and bounds on the exact eigenvalues of the same B.

    What the filtered KPM converges to with infinitely many random vectors.
    """
    moments = eigenvalue_moments(np.linalg.eigvalsh(operator.dense()), result.bounds, len(result.moments))
    return density_from_moments(moments, result.bounds, result.energies) / record.n_atoms
