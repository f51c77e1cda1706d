"""Density of states of large non-orthogonal Hamiltonians by the kernel polynomial method (KPM).

In a non-orthogonal basis the energies solve H c = E S c: they are the
eigenvalues of A = S^-1 H, and the density of states is
rho(E) = Tr delta(E - A).  The KPM expands it in Chebyshev polynomials of
A scaled into (-1, 1), A~ = (A - b) / a,

    rho(E) = [g_0 mu_0 + 2 sum_n g_n mu_n T_n(x)] / (pi a sqrt(1 - x^2)),  x = (E - b) / a,

with Jackson damping g_n and moments mu_n = Tr T_n(A~), estimated
stochastically.  The plain estimate r^T T_n(A~) r over random +-1 vectors r
is unbiased but, when S is ill-conditioned (GPAW's ``dzp`` S in dense BN has
eigenvalues near 6e-5), its variance explodes, because T_n(A~) is similar
to a symmetric matrix only through S^(+-1/2).  So each r is first mapped to
x = X r with X X^T = S^-1, X = D (D S D)^(-1/2) (D the inverse square roots
of S's on-site blocks; the inverse square root by Lanczos), and
mu_n = mean of x^T S T_n(A~) x = r^T T_n(X^T H X) r, a symmetric matrix,
whose error falls as 1 / sqrt(n_random n_orbitals).
Every step of the Chebyshev recursion applies A, that is H and then a
solve with S, by conjugate gradients preconditioned with the inverse
on-site blocks of S.  Only sparse products appear: the cost is linear in
the number of orbitals.  The bounds a, b come from a Lanczos run in the
S inner product, where A is self-adjoint.

Reference: A. Weisse, G. Wellein, A. Alvermann and H. Fehske, "The kernel
polynomial method", Rev. Mod. Phys. 78, 275 (2006).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse

from .errors import HForgeError
from .record import HamiltonianRecord, supercell_kpoints


class OverlapNotPositiveDefiniteError(HForgeError):
    """S has a zero or negative eigenvalue: H c = E S c has no finite spectrum to expand."""


_NOT_POSITIVE = ("S is not positive definite (v^T S v <= 0 for a vector of the solver), so H c = E S c has "
                 "no bounded spectrum; a predicted S needs a more accurate model")


@dataclass(frozen=True)
class KPMConfig:
    """Settings of a KPM density of states.

    Attributes
    ----------
    n_moments : int
        Chebyshev moments; the energy resolution is about pi a / n_moments
        (``KPMResult.resolution_eV``).
    n_random : int
        Random vectors of the stochastic trace.
    seed : int
        Seed of the random vectors.
    solver_tolerance : float
        Relative residual at which the conjugate-gradient solves with S stop.
    solver_max_iterations : int
        Cap on conjugate-gradient iterations per solve.
    lanczos_steps : int
        Steps of the Lanczos run that brackets the spectrum.
    bound_margin : float
        Fraction of the spectral width added on each side of the bounds.
    """

    n_moments: int = 256
    n_random: int = 8
    seed: int = 0
    solver_tolerance: float = 1e-9
    solver_max_iterations: int = 2000
    lanczos_steps: int = 40
    bound_margin: float = 0.01

    def __post_init__(self) -> None:
        if self.n_moments < 2 or self.n_random < 1 or self.lanczos_steps < 2:
            raise ValueError("need n_moments >= 2, n_random >= 1 and lanczos_steps >= 2")


class OverlapSolver:
    """Solves S X = B for many right-hand sides at once by preconditioned conjugate gradients.

    Parameters
    ----------
    overlap
        ``[n_orb, n_orb]`` sparse S, symmetric positive definite.
    orbital_counts
        ``[n_atoms]`` orbitals of every atom: the preconditioner inverts the on-site blocks.
    tolerance
        Relative residual ``|B - S X| / |B|`` of every column at which to stop.
    max_iterations
        Cap per solve.  A solve that reaches it returns its last iterate and
        is counted in ``unconverged``; ``worst_residual`` keeps the largest
        relative residual any solve returned.
    """

    def __init__(self, overlap, orbital_counts: np.ndarray, tolerance: float = 1e-9, max_iterations: int = 1000):
        self.overlap = scipy.sparse.csr_matrix(overlap)
        self.tolerance, self.max_iterations = tolerance, max_iterations
        self.preconditioner = _on_site_blocks_power(self.overlap, orbital_counts, -1.0)
        self.iterations: list[int] = []
        self.unconverged, self.worst_residual = 0, 0.0

    def norm(self, vector: np.ndarray) -> float:
        """sqrt(v^T S v) of ``vector`` ``[n_orb]``; raises if S is not positive along it."""
        square = float(vector @ (self.overlap @ vector))
        if square < 0:
            raise OverlapNotPositiveDefiniteError(_NOT_POSITIVE)
        return float(np.sqrt(square))

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``[n_orb, m]`` X with S X = ``rhs`` ``[n_orb, m]``."""
        x = np.zeros_like(rhs)
        residual = rhs.copy()
        z = self.preconditioner @ residual
        direction, rz = z.copy(), np.einsum("ij,ij->j", residual, z)
        target = self.tolerance * np.linalg.norm(rhs, axis=0)
        for iteration in range(1, self.max_iterations + 1):
            s_direction = self.overlap @ direction
            curvature = np.einsum("ij,ij->j", direction, s_direction)
            if np.any(curvature <= 0):
                raise OverlapNotPositiveDefiniteError(_NOT_POSITIVE)
            step = rz / curvature
            x += direction * step
            residual -= s_direction * step
            if np.all(np.linalg.norm(residual, axis=0) <= target):
                break
            z = self.preconditioner @ residual
            rz_new = np.einsum("ij,ij->j", residual, z)
            direction = z + direction * (rz_new / rz)
            rz = rz_new
        self._record(iteration, residual, target)
        return x

    def _record(self, iterations: int, residual: np.ndarray, target: np.ndarray) -> None:
        """Book-keeping of one solve: iterations, whether every column met the tolerance, worst residual."""
        norms = np.linalg.norm(residual, axis=0)
        self.iterations.append(iterations)
        self.unconverged += int(np.any(norms > target))
        relative = norms / np.maximum(target / self.tolerance, np.finfo(float).tiny)
        self.worst_residual = max(self.worst_residual, float(relative.max(initial=0.0)))


def spectral_bounds(hamiltonian, solver: OverlapSolver, steps: int, seed: int = 0,
                    margin: float = 0.01) -> tuple[float, float]:
    """Lower and upper bound (eV) of the eigenvalues of H c = E S c, by Lanczos in the S inner product.

    The extreme Ritz values are widened by their residual bound
    ``beta_m |y_m|`` and then by ``margin`` times the width.
    """
    n = hamiltonian.shape[0]
    q = np.random.default_rng(seed).standard_normal((n, 1))
    q /= solver.norm(q[:, 0])
    previous, beta = np.zeros_like(q), 0.0
    alphas, betas = [], []
    for _ in range(min(steps, n)):
        h_q = hamiltonian @ q
        alpha = float(q[:, 0] @ h_q[:, 0])
        w = solver.solve(h_q) - alpha * q - beta * previous
        beta = solver.norm(w[:, 0])
        alphas.append(alpha)
        betas.append(beta)
        if beta < 1e-12:
            break
        previous, q = q, w / beta
    return ritz_bounds(alphas, betas, margin)


def ritz_bounds(alphas: list[float], betas: list[float], margin: float) -> tuple[float, float]:
    """Bounds from a Lanczos tridiagonal: the extreme Ritz values widened by their residual bounds
    ``beta_m |y_m|`` and then by ``margin`` times the width."""
    ritz, vectors = scipy.linalg.eigh_tridiagonal(np.array(alphas), np.array(betas[:-1]))
    residual = abs(betas[-1]) * np.abs(vectors[-1])
    low, high = ritz[0] - residual[0], ritz[-1] + residual[-1]
    pad = margin * (high - low) + 1e-9
    return float(low - pad), float(high + pad)


def jackson_kernel(n_moments: int) -> np.ndarray:
    """``[n_moments]`` Jackson damping factors g_n (Weisse et al., Eq. 71)."""
    n = np.arange(n_moments)
    q = np.pi / (n_moments + 1)
    return ((n_moments - n + 1) * np.cos(q * n) + np.sin(q * n) / np.tan(q)) / (n_moments + 1)


def chebyshev_moments(hamiltonian, solver: OverlapSolver, bounds: tuple[float, float], n_moments: int,
                      vectors: np.ndarray, left: np.ndarray | None = None) -> np.ndarray:
    """``[n_moments]`` mu_n: the mean over the columns x of ``vectors`` ``[n_orb, m]`` of l^T T_n(A~) x.

    ``left`` ``[n_orb, m]`` holds the l (default: the x themselves).
    """
    return operator_moments(lambda v: solver.solve(hamiltonian @ v), bounds, n_moments, vectors, left)


def operator_moments(apply, bounds: tuple[float, float], n_moments: int, vectors: np.ndarray,
                     left: np.ndarray | None = None) -> np.ndarray:
    """``[n_moments]`` mean over the columns x of ``vectors`` of l^T T_n(A~) x, A = ``apply`` scaled into (-1, 1)."""
    scale, centre = _scale_and_centre(bounds)
    left = vectors if left is None else left

    def scaled(v):
        return (apply(v) - centre * v) / scale

    moments = np.zeros(n_moments)
    previous, current = vectors, scaled(vectors)
    moments[0] = np.einsum("ij,ij->", left, previous) / vectors.shape[1]
    moments[1] = np.einsum("ij,ij->", left, current) / vectors.shape[1]
    for n in range(2, n_moments):
        previous, current = current, 2.0 * scaled(current) - previous
        moments[n] = np.einsum("ij,ij->", left, current) / vectors.shape[1]
    return moments


def symmetric_operator_moments(apply, bounds: tuple[float, float], n_moments: int, vectors: np.ndarray) -> np.ndarray:
    """:func:`operator_moments` (with ``left`` the vectors themselves) of a symmetric ``apply``, at half the cost.

    With v_k = T_k(A~) x, T_2k = 2 T_k^2 - T_0 and T_2k+1 = 2 T_k+1 T_k - T_1
    give mu_2k = 2 v_k.v_k - mu_0 and mu_2k+1 = 2 v_k+1.v_k - mu_1 (Weisse et
    al., Rev. Mod. Phys. 78, 275 (2006), Eq. 34), so n_moments moments take
    about n_moments / 2 products with A instead of n_moments - 1.
    """
    scale, centre = _scale_and_centre(bounds)
    count = vectors.shape[1]

    def scaled(v):
        return (apply(v) - centre * v) / scale

    def dot(a, b):
        return np.einsum("ij,ij->", a, b) / count

    moments = np.zeros(n_moments)
    previous, current = vectors, scaled(vectors)
    moments[0], moments[1] = dot(vectors, vectors), dot(vectors, current)
    for k in range(1, (n_moments + 1) // 2):  # current = v_k, previous = v_k-1
        moments[2 * k] = 2.0 * dot(current, current) - moments[0]
        if 2 * k + 1 < n_moments:
            previous, current = current, 2.0 * scaled(current) - previous
            moments[2 * k + 1] = 2.0 * dot(current, previous) - moments[1]
    return moments


def inverse_square_root_factor(solver: OverlapSolver, orbital_counts: np.ndarray, vectors: np.ndarray,
                               tolerance: float = 1e-6, max_steps: int = 3000) -> np.ndarray:
    """``[n_orb, m]`` X r for the columns r of ``vectors``, where X = D (D S D)^(-1/2) and X X^T = S^-1.

    D holds the inverse square roots of S's on-site blocks; (D S D)^(-1/2) r
    comes from a Lanczos run on D S D per column, stopped when the result
    changes by less than ``tolerance`` (relative) over 10 steps.
    """
    root = _on_site_blocks_power(solver.overlap, orbital_counts, -0.5)
    normalized = root @ solver.overlap @ root
    return root @ np.stack([_lanczos_inverse_sqrt(normalized, v, tolerance, max_steps) for v in vectors.T], axis=1)


def _lanczos_inverse_sqrt(matrix, vector: np.ndarray, tolerance: float, max_steps: int) -> np.ndarray:
    """M^(-1/2) v for symmetric positive definite sparse M, by Lanczos (no reorthogonalization)."""
    norm = np.linalg.norm(vector)
    basis, alphas, betas = [vector / norm], [], []
    previous_result = None
    for step in range(1, max_steps + 1):
        w = matrix @ basis[-1] - (betas[-1] * basis[-2] if betas else 0.0)
        alphas.append(float(basis[-1] @ w))
        w -= alphas[-1] * basis[-1]
        betas.append(float(np.linalg.norm(w)))
        if step % 10 == 0 or betas[-1] < 1e-14 or step == max_steps:
            values, vecs = scipy.linalg.eigh_tridiagonal(np.array(alphas), np.array(betas[:-1]))
            if values[0] <= 0:
                raise OverlapNotPositiveDefiniteError(_NOT_POSITIVE)
            coefficients = vecs @ (vecs[0] / np.sqrt(values)) * norm
            result = np.stack(basis, axis=1) @ coefficients
            if previous_result is not None and np.linalg.norm(result - previous_result) <= tolerance * np.linalg.norm(result):
                return result
            if betas[-1] < 1e-14:
                return result
            previous_result = result
        basis.append(w / betas[-1])
    return result


def _on_site_blocks_power(overlap, orbital_counts: np.ndarray, power: float):
    """Block-diagonal sparse matrix of S's on-site blocks raised to ``power`` (symmetric, by eigendecomposition)."""
    offsets = np.concatenate([[0], np.cumsum(orbital_counts)])
    blocks = []
    for start, stop in zip(offsets[:-1], offsets[1:]):
        values, vectors = np.linalg.eigh(overlap[start:stop, start:stop].toarray())
        if values[0] <= 0:
            raise OverlapNotPositiveDefiniteError(f"on-site S block of orbitals {start}..{stop - 1} is not positive definite")
        blocks.append((vectors * values**power) @ vectors.T)
    return scipy.sparse.block_diag(blocks, format="csr")


def _scale_and_centre(bounds: tuple[float, float]) -> tuple[float, float]:
    """a and b (eV) mapping [low, high] onto [-1, 1]."""
    low, high = bounds
    return 0.5 * (high - low), 0.5 * (high + low)


def eigenvalue_moments(eigenvalues: np.ndarray, bounds: tuple[float, float], n_moments: int) -> np.ndarray:
    """``[n_moments]`` exact mu_n = sum_k T_n(x_k) of known ``eigenvalues`` (eV): the KPM of exact diagonalization."""
    scale, centre = _scale_and_centre(bounds)
    x = (np.asarray(eigenvalues, dtype=float).reshape(-1) - centre) / scale
    if np.abs(x).max() >= 1:
        raise ValueError("eigenvalues outside the bounds")
    return np.cos(np.arange(n_moments)[:, None] * np.arccos(x)[None, :]).sum(axis=1)


def density_from_moments(moments: np.ndarray, bounds: tuple[float, float], energies: np.ndarray) -> np.ndarray:
    """``[n_E]`` states/eV at ``energies`` (eV) from Chebyshev ``moments``, Jackson-damped."""
    scale, centre = _scale_and_centre(bounds)
    x = (np.asarray(energies, dtype=float) - centre) / scale
    inside = np.abs(x) < 1
    n = np.arange(len(moments))
    weights = jackson_kernel(len(moments)) * moments * np.where(n == 0, 1.0, 2.0)
    series = np.cos(np.outer(np.arccos(np.clip(x, -1, 1)), n)) @ weights
    return np.where(inside, series / (np.pi * scale * np.sqrt(np.clip(1 - x * x, 1e-300, None))), 0.0)


@dataclass(frozen=True)
class KPMResult:
    """A KPM density of states.

    Attributes
    ----------
    energies : numpy.ndarray
        ``[n_E]`` eV relative to E_F.
    dos : numpy.ndarray
        ``[n_E]`` states / eV / atom.
    moments : numpy.ndarray
        ``[n_moments]`` stochastic Chebyshev moments (total, not per atom).
    bounds : tuple of float
        Spectral bounds (eV) used for the scaling.
    resolution_eV : float
        pi a / n_moments, the width of the Jackson kernel near the band centre.
    n_atoms, n_orbitals : int
    solver_iterations : float
        Mean conjugate-gradient iterations per solve with S.
    unconverged_solves : int
        Solves that stopped at ``solver_max_iterations`` above the tolerance
        (0 when the moments used converged solves only).
    worst_solver_residual : float
        Largest relative residual |B - S X| / |B| a solve returned.
    seconds : float
        Wall time of bounds and moments.
    """

    energies: np.ndarray
    dos: np.ndarray
    moments: np.ndarray
    bounds: tuple[float, float]
    resolution_eV: float
    n_atoms: int
    n_orbitals: int
    solver_iterations: float
    unconverged_solves: int
    worst_solver_residual: float
    seconds: float

    def summary(self) -> dict:
        """Scalars for a metrics file."""
        return {"kpm_bounds_eV": list(self.bounds), "kpm_resolution_eV": self.resolution_eV,
                "kpm_n_moments": len(self.moments), "kpm_solver_iterations": self.solver_iterations,
                "kpm_unconverged_solves": self.unconverged_solves,
                "kpm_worst_solver_residual": self.worst_solver_residual, "kpm_seconds": self.seconds,
                "kpm_n_orbitals": self.n_orbitals, "kpm_n_atoms": self.n_atoms}


def kpm_dos(record: HamiltonianRecord, energies: np.ndarray, config: KPMConfig = KPMConfig()) -> KPMResult:
    """KPM density of states (states/eV/atom) of a record's H and S at k = 0 (see the module docstring)."""
    start = time.perf_counter()
    hamiltonian, overlap = record.sparse_matrices_at_k()
    solver = OverlapSolver(overlap, record.atom_orbital_counts, config.solver_tolerance, config.solver_max_iterations)
    bounds = spectral_bounds(hamiltonian, solver, config.lanczos_steps, config.seed, config.bound_margin)
    rng = np.random.default_rng(config.seed + 1)
    random = rng.choice([-1.0, 1.0], size=(record.n_orbitals, config.n_random))
    vectors = inverse_square_root_factor(solver, record.atom_orbital_counts, random)
    moments = chebyshev_moments(hamiltonian, solver, bounds, config.n_moments, vectors, overlap @ vectors)
    dos = density_from_moments(moments, bounds, energies) / record.n_atoms
    if solver.unconverged:
        warnings.warn(f"{solver.unconverged} of {len(solver.iterations)} solves with S stopped at "
                      f"{config.solver_max_iterations} iterations (worst relative residual "
                      f"{solver.worst_residual:.2e}, asked {config.solver_tolerance:.0e}); the moments are "
                      "less accurate: raise solver_max_iterations", RuntimeWarning, stacklevel=2)
    return KPMResult(np.asarray(energies, dtype=float), dos, moments, bounds,
                     np.pi * _scale_and_centre(bounds)[0] / config.n_moments, record.n_atoms, record.n_orbitals,
                     float(np.mean(solver.iterations)), solver.unconverged, solver.worst_residual,
                     time.perf_counter() - start)


def exact_kpm_dos(cell: HamiltonianRecord, result: KPMResult, repeats=(1, 1, 1)) -> np.ndarray:
    """``[n_E]`` states/eV/atom: the same kernel and bounds as ``result`` on exactly diagonalized energies.

    ``result`` is the KPM of ``repeat_record(cell, repeats)``; its k = 0
    energies are the cell's on the grid of :func:`.supercell_kpoints`, so
    only the cell is diagonalized.  This is what the KPM converges to with
    infinitely many random vectors: the difference from ``result.dos`` is
    the stochastic (and solver) error.
    """
    kpoints = supercell_kpoints(repeats)
    moments = eigenvalue_moments(cell.eigenvalues(kpoints), result.bounds, len(result.moments))
    return density_from_moments(moments, result.bounds, result.energies) / (cell.n_atoms * len(kpoints))
