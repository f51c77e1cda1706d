"""Notebook 00, the SIESTA tour: its configuration and the numbers it records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import io
from .bands import eigenvalue_deviation
from .basis import Basis
from .graph import block_coverage, build_pair_graph
from .paths import siesta_data_dir
from .record import HamiltonianRecord


@dataclass(frozen=True)
class TourConfig:
    """Parameters of notebook ``00_siesta_tour``.

    Attributes
    ----------
    calculation : str
        Folder name under the SIESTA data folder (``"Si_pdos_k"``, ...).
    k_path : str
        ASE special-point path (``"GXWKGLUWLK"``); empty for the lattice's default.
    n_kpoints : int
        Points along the path.
    energy_window : tuple of float
        Energies shown (eV, relative to E_F).
    fixed_cutoff : float
        A fixed graph cutoff (Å) compared with the orbital range.
    """

    calculation: str = "Si_pdos_k"
    k_path: str = ""
    n_kpoints: int = 100
    energy_window: tuple[float, float] = (-15.0, 10.0)
    fixed_cutoff: float = 3.0

    def __post_init__(self) -> None:
        if self.n_kpoints < 2:
            raise ValueError(f"n_kpoints must be at least 2, got {self.n_kpoints}")
        low, high = self.energy_window
        if not low < high:
            raise ValueError(f"energy_window must be (low, high) with low < high, got {self.energy_window}")
        object.__setattr__(self, "energy_window", (float(low), float(high)))


@dataclass(frozen=True)
class SiestaCalculation:
    """The files of one SIESTA calculation (``eig``/``kpoints`` may be absent)."""

    name: str
    fdf: Path
    eig: Path | None
    kpoints: Path | None


def find_siesta_calculation(name: str, root: Path | None = None) -> SiestaCalculation:
    """Locate a calculation folder's ``.fdf``, ``.EIG`` and ``.KP``."""
    folder = (root or siesta_data_dir()) / name
    fdfs = sorted(folder.glob("*.fdf"))
    if not fdfs:
        available = sorted(p.name for p in folder.parent.iterdir() if p.is_dir())
        raise FileNotFoundError(f"no SIESTA calculation {name!r} (no .fdf in {folder}); available: {available}")
    eig, kp = sorted(folder.glob("*.EIG")), sorted(folder.glob("*.KP"))
    return SiestaCalculation(name, fdfs[0], eig[0] if eig else None, kp[0] if kp else None)


def basis_table(basis: Basis) -> list[dict]:
    """One row per shell: species, label, n, l, zeta, polarization, radius (Å)."""
    return [
        {"species": sb.symbol, "shell": sh.label, "n": sh.n, "l": sh.l, "zeta": sh.zeta,
         "polarization": sh.polarization, "orbitals": sh.n_orbitals, "radius_A": round(sh.radius, 4),
         "irrep": sh.irrep}
        for sb in basis.species for sh in sb.shells
    ]


def siesta_eigenvalues(record: HamiltonianRecord, calc: SiestaCalculation) -> tuple[np.ndarray, np.ndarray] | None:
    """SIESTA's ``.EIG`` and the record's eigenvalues at the ``.KP`` k-points, or None without them."""
    if calc.eig is None or calc.kpoints is None:
        return None
    kpoints, _ = io.read_kpoints(calc.kpoints, record.atoms.cell.array)
    return io.read_eig(calc.eig), record.eigenvalues(kpoints)


def tour_metrics(record: HamiltonianRecord, calc: SiestaCalculation, config: TourConfig) -> dict:
    """The key numbers of the tour, for ``metrics.json``."""
    h_err, s_err = record.hermiticity_error()

    def coverage(reach: str, cutoff: float | None = None) -> dict:
        graph = build_pair_graph(record.atoms, record.basis, record.species, cutoff=cutoff, reach=reach)
        return block_coverage(record, graph).as_dict()

    metrics = {
        "calculation": calc.name,
        **record.metadata(),
        "irreps": {sb.symbol: sb.irreps for sb in record.basis.species},
        "hermiticity_error_eV": h_err,
        "hermiticity_correction_eV": record.provenance.settings.get("hermiticity_correction_eV"),
        "coverage_orbital_range": coverage("overlap"),
        "coverage_hamiltonian_range": coverage("hamiltonian"),
        f"coverage_fixed_{config.fixed_cutoff:g}A": coverage("overlap", config.fixed_cutoff),
    }
    eigenvalues = siesta_eigenvalues(record, calc)
    metrics["eig_vs_siesta"] = None if eigenvalues is None else eigenvalue_deviation(*eigenvalues)
    return metrics
