"""Reference H and S from GPAW in LCAO mode: exact real-space blocks H(R), S(R).

A self-consistent LCAO calculation only gives H(k), S(k) at its own k-points.
At the converged potential, GPAW can evaluate H(k), S(k) at any k without
diagonalising; on a Gamma-centred grid of N_1 x N_2 x N_3 points the inverse
Fourier transform

    H_ij(R) = 1/N_k sum_k H_ij(k) exp(-2 pi i k.R)

is exact for every block (i, j, R) as long as no two images of a pair in
range fall on the same grid point, which :func:`fourier_grid` guarantees from
the pair graph.  GPAW's H(k), like sisl's and ours, is
sum_R H_{i0,jR} exp(+2 pi i k.R), with R the image of the column atom j
(measured: the other sign puts B-N blocks at the wrong image, up to 10.7 Å
apart in cubic BN, while B-B and N-N blocks look right).

Conventions converted here, once:

- orbital order: GPAW lists an atom's shells s Z1, p Z1, s Z2, p Z2, d;
  SIESTA (and our records) s Z1, s Z2, p Z1, p Z2, d;
- real harmonics: GPAW's differ from SIESTA's by (-1)^m (fitted once on
  sample directions by :func:`harmonic_signs`, not assumed);
- units and zero: Hartree to eV, energies relative to the Fermi level.

:func:`harris_record` gives the same blocks at the potential of the
superposed neutral-atom densities, before any SCF step (the Harris
Hamiltonian), to tell what the geometry sets from what self-consistency
adds (:mod:`.error_anatomy`).

GPAW is imported inside the functions, so the rest of hforge-nb works without
it.  Set ``OPENBLAS_NUM_THREADS=1`` before GPAW runs (see the README).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import time
from dataclasses import asdict, dataclass, field, replace

import ase
import numpy as np

from .basis import Basis, OrbitalShell, SpeciesBasis
from .errors import HForgeError, MissingBasisError
from .graph import PairGraph, block_list, build_pair_graph
from .record import HamiltonianRecord, Provenance
from .structure import check_structure

BOHR = 0.529177210903  # Å
#: Reduced k-point, off every Fourier grid used here, at which conversions are checked.
OFF_GRID_KPOINT = (0.123, 0.271, 0.389)


class SCFNotConvergedError(HForgeError):
    """A self-consistent field run stopped before reaching its convergence criteria."""


@dataclass(frozen=True)
class GPAWSettings:
    """Settings of one GPAW-LCAO reference calculation.

    Attributes
    ----------
    xc : str
        Exchange-correlation functional.
    basis : str
        GPAW basis-set name (``"dzp"``: 13 orbitals per B or N atom).
    grid_spacing : float
        Real-space grid spacing h (Å); keep it fixed across a data set.
    kpoint_spacing : float
        Largest spacing between SCF k-points (Å^-1, 2 pi included):
        N_i = ceil(|b_i| / kpoint_spacing).
    density_tolerance : float
        GPAW's SCF density criterion (electrons per valence electron).
    max_iterations : int
        SCF iterations before the run counts as not converged.
    smearing : float
        Fermi-Dirac width (eV).
    chunk_size : int
        k-points per GPAW builder in the Fourier step (memory ~ chunk x M^2).
    """

    xc: str = "PBE"
    basis: str = "dzp"
    grid_spacing: float = 0.2
    kpoint_spacing: float = 0.5
    density_tolerance: float = 1e-5
    max_iterations: int = 300
    smearing: float = 0.05
    chunk_size: int = 32

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GPAWReference:
    """A converged reference calculation and what it cost.

    Attributes
    ----------
    record : HamiltonianRecord
        H(R), S(R) in SIESTA's orbital order, H in eV relative to E_F.
    energy : float
        Total (free) energy (eV).
    scf_kgrid, fourier_kgrid : tuple of int
    calculator : gpaw calculator
        The converged calculation (for further checks; not serialised).
    scf_iterations : int
    timings : dict
        Wall seconds of ``"scf"`` and ``"fourier"``.
    """

    record: HamiltonianRecord
    calculator: object
    energy: float
    scf_kgrid: tuple[int, int, int]
    fourier_kgrid: tuple[int, int, int]
    scf_iterations: int
    timings: dict = field(default_factory=dict)


# ---------------------------------------------------------------- basis
@functools.cache
def harmonic_signs(l: int) -> np.ndarray:
    """``[2l+1]`` signs turning GPAW's real harmonics into SIESTA's (Y_siesta = s * Y_gpaw)."""
    from gpaw.sphere.spherical_harmonics import Y

    from .rotations import _sample_directions, siesta_real_harmonics

    directions = _sample_directions()
    gpaw_values = np.array([[Y(l * l + m, *d) for m in range(2 * l + 1)] for d in directions])
    change, *_ = np.linalg.lstsq(gpaw_values, siesta_real_harmonics(l, directions), rcond=None)
    signs = np.round(np.diag(change))
    if not np.allclose(change, np.diag(signs), atol=1e-8):
        raise RuntimeError(f"GPAW and SIESTA harmonics of l={l} differ by more than signs")
    return signs


def _gpaw_shells(symbol: str, basis_name: str) -> list[tuple[int, int, bool, float]]:
    """(l, zeta, polarization, radius Å) of every GPAW basis function, in GPAW's order."""
    from gpaw.basis_data import Basis as GPAWBasis

    try:
        functions = GPAWBasis.read_xml(symbol, basis_name).bf_j
    except (OSError, RuntimeError) as error:
        raise MissingBasisError(f"GPAW has no {basis_name!r} basis for {symbol}: {error}") from error
    seen: dict[int, int] = {}
    shells = []
    for function in functions:
        seen[function.l] = seen.get(function.l, 0) + 1
        shells.append((function.l, seen[function.l], "polarization" in function.type, function.rc * BOHR))
    return shells


def _principal_n(atomic_number: int, l: int, polarization: bool) -> int:
    """Principal quantum number of a valence (or polarization) shell of a main-group element."""
    period = sum(atomic_number > z for z in (2, 10, 18, 36, 54, 86)) + 1
    return period + (1 if polarization else 0) - (1 if l == 2 and not polarization else 0)


def _shell_order(shells: list[tuple[int, int, bool, float]]) -> list[int]:
    """GPAW shell indices in SIESTA's order: by l, then zeta (polarization last within l)."""
    return sorted(range(len(shells)), key=lambda k: (shells[k][0], shells[k][2], shells[k][1]))


@functools.cache
def gpaw_species(symbol: str, basis_name: str = "dzp", xc: str = "PBE") -> SpeciesBasis:
    """One species' GPAW basis in SIESTA's order, with radii and projector radius (Å)."""
    from ase.data import atomic_numbers
    from gpaw.setup import create_setup

    if symbol not in atomic_numbers:
        raise MissingBasisError(f"{symbol!r} is not a chemical element")
    shells = _gpaw_shells(symbol, basis_name)
    z = atomic_numbers[symbol]
    ordered = [
        OrbitalShell(_principal_n(z, shells[k][0], shells[k][2]), shells[k][0], shells[k][1], shells[k][2], shells[k][3])
        for k in _shell_order(shells)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        setup = create_setup(symbol, xc)
    projector = max(p.get_cutoff() for p in setup.pt_j) * BOHR
    return SpeciesBasis(symbol, z, tuple(ordered), projector_radius=projector)


def gpaw_basis(symbols, basis_name: str = "dzp", xc: str = "PBE") -> Basis:
    """The :class:`Basis` of every distinct symbol, as GPAW's ``basis_name`` defines it."""
    return Basis(tuple(gpaw_species(s, basis_name, xc) for s in sorted(set(symbols))))


@functools.cache
def orbital_permutation(symbol: str, basis_name: str = "dzp") -> tuple[np.ndarray, np.ndarray]:
    """Index and sign arrays ``[n_orbitals]``: orbital k of ours is sign[k] * GPAW orbital index[k]."""
    shells = _gpaw_shells(symbol, basis_name)
    first = np.concatenate([[0], np.cumsum([2 * l + 1 for l, *_ in shells])])
    index, sign = [], []
    for k in _shell_order(shells):
        l = shells[k][0]
        index.extend(range(first[k], first[k] + 2 * l + 1))
        sign.extend(harmonic_signs(l))
    return np.array(index), np.array(sign)


# ---------------------------------------------------------------- k-grids
def scf_kgrid(atoms: ase.Atoms, spacing: float) -> tuple[int, int, int]:
    """Monkhorst-Pack sizes with k-point spacing at most ``spacing`` (Å^-1); 1 along non-periodic axes."""
    reciprocal = 2 * np.pi * np.linalg.norm(atoms.cell.reciprocal(), axis=1)
    return tuple(int(max(1, math.ceil(b / spacing))) if p else 1 for b, p in zip(reciprocal, atoms.pbc))


def fourier_grid(graph: PairGraph, pbc) -> tuple[int, int, int]:
    """Smallest Gamma-centred grid on which every image in ``graph`` has its own R: N_i = 2 max|R_i| + 1."""
    largest = np.abs(graph.shifts).max(axis=0) if graph.n_edges else np.zeros(3, int)
    return tuple(int(2 * m + 1) if p else 1 for m, p in zip(largest, pbc))


def grid_kpoints(grid) -> np.ndarray:
    """``[n_k, 3]`` reduced k-points of the Gamma-centred ``grid``, one of each (k, -k) pair.

    Returns the representatives only: H(-k) = conj(H(k)) since H(R) is real.

    Examples
    --------
    >>> grid_kpoints((3, 1, 1)).tolist()
    [[0.0, 0.0, 0.0], [0.3333333333333333, 0.0, 0.0]]
    """
    grid = np.asarray(grid)
    integers = np.stack(np.meshgrid(*[np.arange(n) for n in grid], indexing="ij"), -1).reshape(-1, 3)
    partner = (-integers) % grid
    flat = np.ravel_multi_index(integers.T, grid)
    keep = flat <= np.ravel_multi_index(partner.T, grid)
    return integers[keep] / grid


# ---------------------------------------------------------------- GPAW runs
def _gpaw_parameters(settings: GPAWSettings, kpts, **extra) -> dict:
    return dict(
        mode={"name": "lcao", **extra.pop("mode", {})},
        basis=settings.basis,
        xc=settings.xc,
        kpts=kpts,
        occupations={"name": "fermi-dirac", "width": settings.smearing},
        **extra,
    )


def _scf_parameters(atoms: ase.Atoms, settings: GPAWSettings) -> dict:
    """GPAW's parameters of :func:`run_scf` that set the calculation: its k-points and real-space grid."""
    kgrid = scf_kgrid(atoms, settings.kpoint_spacing)
    return _gpaw_parameters(settings, {"size": kgrid, "gamma": True}, h=settings.grid_spacing)


def run_scf(atoms: ase.Atoms, settings: GPAWSettings, log: str | None = None):
    """Self-consistent GPAW-LCAO run; returns the ASE calculator.

    Raises
    ------
    SCFNotConvergedError
        If the SCF stops at ``settings.max_iterations`` unconverged.
    """
    from gpaw import GPAW, KohnShamConvergenceError

    atoms = atoms.copy()
    calc = GPAW(
        **_scf_parameters(atoms, settings),
        convergence={"density": settings.density_tolerance},
        maxiter=settings.max_iterations,
        txt=log,
    )
    atoms.calc = calc
    try:
        atoms.get_potential_energy()
    except KohnShamConvergenceError as error:
        raise SCFNotConvergedError(
            f"{atoms.get_chemical_formula()}: SCF not converged in {settings.max_iterations} iterations"
        ) from error
    return calc


def real_space_grid(calc) -> tuple[int, int, int]:
    """Points of the converged calculation's real-space grid along each cell vector."""
    return tuple(int(n) for n in calc.dft.density.nt_sR.desc.size)


def planned_grid(atoms: ase.Atoms, settings: GPAWSettings) -> tuple[int, int, int]:
    """Points of the real-space grid along each cell vector that :func:`run_scf` gives ``atoms``, without a run.

    GPAW picks the grid from the cell and ``settings.grid_spacing``; this builds
    the calculation's components from :func:`run_scf`'s parameters and reads their grid
    (equal to :func:`real_space_grid` of the converged run; a test checks it).
    """
    from gpaw.dft import Parameters

    builder = Parameters(**_scf_parameters(atoms, settings)).dft_component_builder(atoms)
    return tuple(int(n) for n in builder.grid.size)


def _matrices_builder(calc, settings: GPAWSettings, kpoints: np.ndarray):
    """A GPAW LCAO builder at explicit ``kpoints`` on the SCF's real-space grid."""
    from gpaw.dft import Parameters

    gpts = real_space_grid(calc)
    parameters = Parameters(
        **_gpaw_parameters(settings, kpoints, mode={"force_complex_dtype": True}),
        gpts=gpts,
        symmetry="off",
    )
    return parameters.dft_component_builder(calc.dft.atoms)


def gpaw_matrices(calc, settings: GPAWSettings, kpoints: np.ndarray):
    """Yield (k ``[3]``, H(k) eV ``[M, M]``, S(k) ``[M, M]``) in GPAW's orbital order and phase.

    The k-points are evaluated in chunks of ``settings.chunk_size``; all use
    the SCF's converged potential.
    """
    from ase.units import Ha

    potential = calc.dft.potential
    calculator = None
    for start in range(0, len(kpoints), settings.chunk_size):
        builder = _matrices_builder(calc, settings, kpoints[start : start + settings.chunk_size])
        basis = builder.create_basis_set()
        wave_functions = builder.create_ibz_wave_functions(basis, potential)
        if calculator is None:
            calculator = builder.create_hamiltonian_operator().create_hamiltonian_matrix_calculator(potential)
        for wfs in wave_functions:
            yield wfs.kpt_c.copy(), calculator.calculate_matrix(wfs).data * Ha, wfs.S_MM.data.copy()


# ---------------------------------------------------------------- H(R)
def _cell_orbital_map(species, basis_name: str) -> tuple[np.ndarray, np.ndarray]:
    """``[M]`` GPAW orbital index and harmonic sign of every orbital of ours, over the cell."""
    index, sign, offset = [], [], 0
    for symbol in species:
        local, local_sign = orbital_permutation(symbol, basis_name)
        index.append(local + offset)
        sign.append(local_sign)
        offset += len(local)
    return np.concatenate(index), np.concatenate(sign)


def _value_layout(pairs: np.ndarray, counts: np.ndarray, orbital_index: np.ndarray,
                  orbital_sign: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GPAW row, GPAW column and sign ``[n_values]`` of every value of the blocks ``pairs``.

    Values are laid out block after block, each block row-major, as in
    :class:`HamiltonianRecord`; the sign is the product of the row's and the
    column's harmonic signs.
    """
    first = np.concatenate([[0], np.cumsum(counts)])
    rows, cols, signs = [], [], []
    for i, j in pairs:
        row, col = slice(first[i], first[i + 1]), slice(first[j], first[j + 1])
        grid_rows, grid_cols = np.meshgrid(orbital_index[row], orbital_index[col], indexing="ij")
        rows.append(grid_rows.ravel())
        cols.append(grid_cols.ravel())
        signs.append(np.outer(orbital_sign[row], orbital_sign[col]).ravel())
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(signs)


def _fourier_transform(calc, settings: GPAWSettings, rows: np.ndarray, cols: np.ndarray,
                       value_shifts: np.ndarray, grid) -> tuple[np.ndarray, np.ndarray]:
    """1/N_k sum_k M(k)[rows, cols] exp(-2 pi i k.R) for M = H (eV) and S, complex ``[n_values]``.

    Only one k of every (k, -k) pair is evaluated; its partner adds the
    complex conjugate.
    """
    grid = np.asarray(grid)
    kpoints = grid_kpoints(grid)
    h_sum, s_sum = np.zeros(len(rows), complex), np.zeros(len(rows), complex)
    n_seen = 0
    for k, hk, sk in gpaw_matrices(calc, settings, kpoints):
        phase = np.exp(-2j * np.pi * (value_shifts @ k))
        integer_k = np.round(k * grid).astype(int) % grid
        self_partner = np.array_equal((-integer_k) % grid, integer_k)
        for total, matrix in ((h_sum, hk), (s_sum, sk)):
            term = matrix[rows, cols] * phase
            total += term if self_partner else 2 * term.real
        n_seen += 1
    if n_seen != len(kpoints):
        raise RuntimeError(f"GPAW returned {n_seen} k-points for the {len(kpoints)} asked")
    n_k = int(np.prod(grid))
    return h_sum / n_k, s_sum / n_k


def home_cell_offsets(atoms: ase.Atoms) -> np.ndarray:
    """``[n_atoms, 3]`` integer lattice vectors n_i by which each atom lies outside GPAW's home cell.

    GPAW wraps every atom into the cell along periodic axes (ASE's
    ``get_scaled_positions()``), so its H(k) labels images from the wrapped
    positions r_i - n_i . cell: a block (i, j, R) of ours, with R counted
    from the positions as given, is GPAW's (i, j, R + n_j - n_i).

    Examples
    --------
    >>> atoms = ase.Atoms("BN", scaled_positions=[[0.25, 0, 0], [1.5, -0.5, 0.0]], cell=np.eye(3) * 3, pbc=True)
    >>> home_cell_offsets(atoms).tolist()
    [[0, 0, 0], [1, -1, 0]]
    """
    return np.rint(atoms.get_scaled_positions(wrap=False) - atoms.get_scaled_positions()).astype(int)


def _record_from_gpaw(calc, settings: GPAWSettings, atoms: ase.Atoms, basis: Basis, graph: PairGraph,
                      grid, kgrid, source: str, fermi_level: float | None = None) -> HamiltonianRecord:
    """The record of every on-site block and every block of ``graph`` (H in eV relative to ``fermi_level``).

    ``fermi_level`` (eV, GPAW's zero): None takes the calculation's own.
    """
    species = tuple(atoms.get_chemical_symbols())
    counts = basis.orbital_counts(species)
    index, sign = _cell_orbital_map(species, settings.basis)
    pairs, shifts = block_list(graph)
    rows, cols, signs = _value_layout(pairs, counts, index, sign)
    offsets = home_cell_offsets(atoms)
    gpaw_shifts = shifts + offsets[pairs[:, 1]] - offsets[pairs[:, 0]]  # [n_blocks, 3] GPAW's images
    value_shifts = np.repeat(gpaw_shifts, counts[pairs[:, 0]] * counts[pairs[:, 1]], axis=0)
    h, s = _fourier_transform(calc, settings, rows, cols, value_shifts, grid)
    fermi_level = float(calc.get_fermi_level()) if fermi_level is None else fermi_level
    provenance = Provenance(source=source, code=f"GPAW {_gpaw_version()}", settings={
        **settings.as_dict(), "fourier_kgrid": list(grid), "scf_kgrid": list(kgrid),
    })
    return HamiltonianRecord(
        atoms=atoms.copy(), basis=basis, species=species, pairs=pairs, shifts=shifts,
        h_values=signs * (h.real - fermi_level * s.real), s_values=signs * s.real,
        fermi_level=fermi_level, provenance=provenance,
    )


def _gpaw_version() -> str:
    import gpaw

    return gpaw.__version__


def gpaw_record(atoms: ase.Atoms, settings: GPAWSettings = GPAWSettings(), log: str | None = None,
                source: str = "") -> GPAWReference:
    """Run GPAW-LCAO on ``atoms`` and return every block within Hamiltonian reach as a record.

    Parameters
    ----------
    atoms
        Structure (Å); non-periodic axes are treated at Gamma.
    settings
        Functional, basis, grid, k-points and SCF criteria.
    log
        GPAW's text log file (None: silent).
    source
        Where the structure came from, for the provenance.

    Raises
    ------
    SCFNotConvergedError
        If the SCF does not converge: such a sample must not enter a data set.
    """
    check_structure(atoms)
    basis = gpaw_basis(atoms.get_chemical_symbols(), settings.basis, settings.xc)
    start = time.perf_counter()
    calc = run_scf(atoms, settings, log)
    scf_seconds = time.perf_counter() - start
    graph = build_pair_graph(atoms, basis, reach="hamiltonian")
    grid = fourier_grid(graph, atoms.pbc)
    kgrid = scf_kgrid(atoms, settings.kpoint_spacing)
    record = _record_from_gpaw(calc, settings, atoms, basis, graph, grid, kgrid, source)
    return GPAWReference(
        record=record,
        calculator=calc,
        energy=float(calc.get_potential_energy()),
        scf_kgrid=kgrid,
        fourier_kgrid=grid,
        scf_iterations=int(calc.dft.scf_loop.niter),
        timings={"scf": scf_seconds, "fourier": time.perf_counter() - start - scf_seconds},
    )


def harris_record(atoms: ase.Atoms, settings: GPAWSettings = GPAWSettings(), source: str = "") -> HamiltonianRecord:
    """H and S of ``atoms`` at the potential of the superposed neutral-atom densities, without an SCF step.

    The Harris Hamiltonian: what the geometry gives before self-consistency
    moves charge between the atoms.  Its blocks are those of
    :func:`gpaw_record` on the same settings (S is the same; H differs by
    what self-consistency adds).  There is no Fermi level without an SCF,
    so H is in GPAW's own energy zero (``fermi_level = 0``) and the
    provenance's ``settings`` say ``"potential": "harris"``.
    """
    from gpaw import GPAW

    check_structure(atoms)
    basis = gpaw_basis(atoms.get_chemical_symbols(), settings.basis, settings.xc)
    atoms = atoms.copy()
    calc = GPAW(**_scf_parameters(atoms, settings), txt=None)
    atoms.calc = calc
    calc.initialize(atoms)  # density and potential from the atoms' own; no SCF iteration
    graph = build_pair_graph(atoms, basis, reach="hamiltonian")
    record = _record_from_gpaw(calc, settings, atoms, basis, graph, fourier_grid(graph, atoms.pbc),
                               scf_kgrid(atoms, settings.kpoint_spacing), source, fermi_level=0.0)
    settings_used = {**record.provenance.settings, "potential": "harris"}
    return replace(record, provenance=replace(record.provenance, settings=settings_used))


def off_grid_kpoint(pbc, kpoint=OFF_GRID_KPOINT) -> np.ndarray:
    """``[3]`` the reduced ``kpoint`` with its non-periodic components set to 0."""
    return np.where(pbc, np.asarray(kpoint, float), 0.0)


def _gpaw_matrices_at(reference: GPAWReference, settings: GPAWSettings, kpoint) -> tuple:
    """(k ``[3]``, H(k) eV, S(k)) from GPAW at the off-grid ``kpoint``, in GPAW's orbital order."""
    k = off_grid_kpoint(reference.record.atoms.pbc, kpoint)
    (_, hk, sk), = gpaw_matrices(reference.calculator, settings, k[None, :])
    return k, hk, sk


def off_grid_check(reference: GPAWReference, settings: GPAWSettings, kpoint=OFF_GRID_KPOINT) -> float:
    """Largest |eigenvalue difference| (eV) at an off-grid ``kpoint`` between H(R), S(R) and GPAW's H(k), S(k).

    Non-periodic axes are set to 0.  This checks the whole conversion:
    grid size (no aliasing), phases, orbital order and E_F reference.
    """
    import scipy.linalg

    k, hk, sk = _gpaw_matrices_at(reference, settings, kpoint)
    gpaw_bands = scipy.linalg.eigvalsh(hk, sk) - reference.record.fermi_level
    ours = reference.record.eigenvalues(k[None, :])[0, 0]
    return float(np.abs(gpaw_bands - ours).max())


def off_grid_matrix_error(reference: GPAWReference, settings: GPAWSettings,
                          kpoint=OFF_GRID_KPOINT) -> tuple[float, float]:
    """Largest |H_ours(k) - H_GPAW(k)| (eV) and |S_ours(k) - S_GPAW(k)| at an off-grid ``kpoint``.

    Unlike eigenvalues, which are the same at k and -k, the matrices also pin
    the phase convention (which atom carries the image R) and the signs of
    the orbitals.
    """
    record = reference.record
    k, hk, sk = _gpaw_matrices_at(reference, settings, kpoint)
    index, sign = _cell_orbital_map(record.species, settings.basis)
    counts = record.basis.orbital_counts(record.species)
    atom_phase = np.exp(2j * np.pi * (home_cell_offsets(record.atoms) @ k))  # GPAW's wrapped images to ours
    orbital_factor = sign * np.repeat(atom_phase, counts)
    to_ours = lambda m: orbital_factor[:, None] * m[np.ix_(index, index)] * orbital_factor.conj()[None, :]  # noqa: E731
    h_ours, s_ours = record.matrices_at_k(k)
    s_gpaw = to_ours(sk)
    h_gpaw = to_ours(hk) - record.fermi_level * s_gpaw
    return float(np.abs(h_ours - h_gpaw).max()), float(np.abs(s_ours - s_gpaw).max())


def rotation_deviation(settings: GPAWSettings, euler_degrees=(37.0, 71.0, -23.0)) -> dict:
    """How far GPAW's blocks are from rotating covariantly, on a B2N2 cluster.

    GPAW runs on the cluster and on a copy rotated by ``euler_degrees``
    (z, y, x); every block of the second should be D_i(Q) M_ij D_j(Q)^T of
    the first.  S does so to round-off; H carries the error of integrating
    the potential on the real-space grid (egg-box effect), which grows with
    ``settings.grid_spacing``.

    Returns
    -------
    dict
        ``s_error``, ``h_error_eV``: largest deviation from the rotated
        blocks; ``h_change_eV``: largest change of an H block under the
        rotation (what a wrong convention would leave unexplained).
    """
    from scipy.spatial.transform import Rotation

    from .crystals import b2n2_cluster
    from .rotations import orbital_rotation

    atoms = b2n2_cluster()
    rotation = Rotation.from_euler("zyx", euler_degrees, degrees=True).as_matrix()
    rotated = atoms.copy()
    centre = atoms.get_center_of_mass()
    rotated.positions = (atoms.positions - centre) @ rotation.T + centre
    first, second = gpaw_record(atoms, settings).record, gpaw_record(rotated, settings).record
    s_error = h_error = h_change = 0.0
    for b, (i, j) in enumerate(first.pairs):
        h, s = first.block(b)
        h_rot, s_rot = second.block(second.find_blocks(first.pairs[b], first.shifts[b])[0])
        d_i, d_j = (orbital_rotation(first.species_basis(a), rotation) for a in (i, j))
        s_error = max(s_error, np.abs(d_i @ s @ d_j.T - s_rot).max())
        h_error = max(h_error, np.abs(d_i @ h[:, :, 0] @ d_j.T - h_rot[:, :, 0]).max())
        h_change = max(h_change, np.abs(h[:, :, 0] - h_rot[:, :, 0]).max())
    return {"s_error": float(s_error), "h_error_eV": float(h_error), "h_change_eV": float(h_change)}


def translation_deviation(record: HamiltonianRecord, settings: GPAWSettings, grid_steps=(0.5, 0.5, 0.5),
                          **measures) -> dict:
    """How far GPAW's H moves when the whole structure moves by a fraction of a grid step.

    Translating every atom changes nothing physical, so any change of H
    is the error of integrating the potential on the real-space grid
    (egg-box effect): the floor below which no translation-invariant
    model can bring its error against this data.  GPAW runs again on the
    structure of ``record`` (a reference made with ``settings``, as
    :func:`gpaw_record` makes it or read from a data set) moved by
    ``grid_steps`` (fractions of its grid's step along each cell vector,
    :func:`planned_grid`); whole steps map the grid onto itself and leave H
    as it was, to the SCF's tolerance.

    Returns
    -------
    dict
        ``shift_A`` (the translation ``[3]``, Å) and the measures of
        :func:`~hforge_nb.evaluation.reference_deviation` (keyword
        arguments ``measures`` go to it) of the moved record against
        ``record``.
    """
    from .evaluation import reference_deviation

    steps = record.atoms.cell.array / np.array(planned_grid(record.atoms, settings))[:, None]  # [3, 3] Å
    shift = np.asarray(grid_steps, float) @ steps  # [3] Å
    moved = record.atoms.copy()
    moved.positions += shift
    translated = gpaw_record(moved, settings).record
    return {"shift_A": shift.tolist(), **reference_deviation(translated, record, **measures)}


def kpoint_deviation(record: HamiltonianRecord, settings: GPAWSettings, kpoint_spacing: float,
                     **measures) -> dict:
    """How far the reference lies from one whose SCF sampled k more densely.

    The SCF's k-points set the density and so H at every k: a cell sampled
    coarsely carries an error that depends on the whole periodic cell,
    not on each atom's surroundings.  GPAW runs again on the structure of
    ``record`` (a reference made with ``settings``) with SCF k-point
    spacing ``kpoint_spacing`` (Å^-1).

    Returns
    -------
    dict
        ``scf_kgrid`` and ``denser_scf_kgrid`` (the two SCF grids) and the
        measures of :func:`~hforge_nb.evaluation.reference_deviation`
        (keyword arguments ``measures`` go to it) of ``record``
        against the denser calculation.
    """
    from .evaluation import reference_deviation

    denser = gpaw_record(record.atoms, replace(settings, kpoint_spacing=kpoint_spacing))
    return {"scf_kgrid": list(scf_kgrid(record.atoms, settings.kpoint_spacing)),
            "denser_scf_kgrid": list(denser.scf_kgrid), **reference_deviation(record, denser.record, **measures)}
