"""Beyond DFT: the cost of predicting large samples, their export, and checks of the KPM on them.

Notebook 06 calls these; the benchmark ``benchmarks/large_scale.py`` runs
:func:`measure_prediction` once per size in its own process.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import ase
import numpy as np

from . import io
from .evaluation import dos_difference
from .filtered_kpm import OverlapFilter, exact_filtered_dos, filtered_kpm_dos, filtered_kpm_dos_of_matrices
from .inference import ChunkConfig, chunked_provenance, predict_gamma_matrices, predict_in_chunks, record_from_chunks
from .kpm import KPMConfig, KPMResult, exact_kpm_dos, kpm_dos
from .record import HamiltonianRecord, keep_blocks, repeat_record


class PeakMemory:
    """Context manager: the largest resident memory (GB) of this process while it is open.

    A thread samples ``/proc/self/statm`` every ``interval`` seconds (Linux);
    elsewhere ``peak_GB`` stays NaN.
    """

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak_GB = interval, float("nan")
        self._stop = threading.Event()

    @staticmethod
    def current_GB() -> float:
        """Resident memory of this process now (GB), NaN where ``/proc`` is missing."""
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
        except OSError:
            return float("nan")
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e9

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_GB = max(self.peak_GB, self.current_GB())

    def __enter__(self) -> "PeakMemory":
        self.peak_GB = self.current_GB()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_GB = max(self.peak_GB, self.current_GB())


@dataclass(frozen=True)
class PredictionCost:
    """Time and memory of one chunked prediction.

    Attributes
    ----------
    n_atoms, n_blocks, n_values : int
        Size of the structure and of its predicted H (S has as many values).
    seconds : float
        Wall time of the prediction (node features, blocks, assembly if kept).
    peak_rss_GB : float
        Largest resident memory of the process during it.
    values_GB : float
        Memory the H and S values take as float64.
    """

    n_atoms: int
    n_blocks: int
    n_values: int
    seconds: float
    peak_rss_GB: float
    values_GB: float

    @property
    def ms_per_atom(self) -> float:
        return 1e3 * self.seconds / self.n_atoms

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "ms_per_atom": self.ms_per_atom}


def measure_prediction(model, atoms: ase.Atoms, config: ChunkConfig = ChunkConfig(),
                       keep: bool = True) -> tuple[HamiltonianRecord | None, PredictionCost]:
    """Predict ``atoms`` chunk by chunk and measure it; ``keep=False`` counts the blocks and drops them.

    Without keeping, memory stays that of one chunk, which is how sizes
    whose matrices do not fit in memory are timed.
    """
    chunks, n_blocks, n_values = [], 0, 0
    with PeakMemory() as memory:
        start = time.perf_counter()
        for chunk in predict_in_chunks(model, atoms, config):
            n_blocks, n_values = n_blocks + len(chunk.pairs), n_values + len(chunk.h_values)
            if keep:
                chunks.append(chunk)
        record = record_from_chunks(atoms, model.basis, chunks, chunked_provenance(model, config)) if keep else None
        seconds = time.perf_counter() - start
    return record, PredictionCost(len(atoms), n_blocks, n_values, seconds, memory.peak_GB, 16 * n_values / 1e9)


def gpaw_timings(manifest: dict) -> list[dict]:
    """``sample``, ``n_atoms`` and GPAW ``seconds`` (SCF + Fourier step) of a data set's converged aBN cells.

    ``manifest`` is :func:`.dataset.read_manifest`'s result.
    """
    return [{"sample": s["name"], "n_atoms": s["n_atoms"], "seconds": sum(s["timings_s"].values())}
            for s in manifest["samples"] if s.get("status") == "converged" and s["kind"] == "amorphous"]


def write_exports(record: HamiltonianRecord, folder: str | os.PathLike, stem: str) -> dict[str, Path]:
    """The record as ``<stem>.TSHS`` (TBtrans), ``<stem>.nc`` (sisl netCDF) and ``<stem>.npz`` (hforge-nb, float32)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "TSHS": io.write_tshs(record, folder / f"{stem}.TSHS"),
        "nc": io.write_netcdf(record, folder / f"{stem}.nc"),
        "npz": io.write_record(record, folder / f"{stem}.npz", precision="float32"),
    }


def tshs_round_trip_error(record: HamiltonianRecord, path: str | os.PathLike, kpoint=(0.1, 0.2, 0.3)) -> float:
    """Largest |H(k)| difference (eV) between ``record`` and the ``.TSHS`` read back through sisl."""
    back = io.read_matrix_file(path, record.basis, species=record.species)
    written, read = record.sparse_matrices_at_k(kpoint), back.sparse_matrices_at_k(kpoint)
    return float(max(abs(a - b).max() for a, b in zip(written, read)))


@dataclass(frozen=True)
class KPMCheck:
    """A KPM DOS of a supercell of a reference cell against exact diagonalization of the cell.

    Attributes
    ----------
    result : KPMResult
        The KPM of the supercell.
    exact : numpy.ndarray or None
        ``[n_E]`` states/eV/atom, the same kernel on the exact energies;
        None for a cell too large to diagonalize.
    repeats : tuple of int
    """

    result: KPMResult
    exact: np.ndarray | None
    repeats: tuple[int, int, int]

    def summary(self) -> dict:
        """Scalars for a metrics file: errors relative to the largest exact DOS (when known), cost, resolution."""
        summary = {**self.result.summary(), "kpm_repeats": list(self.repeats)}
        if self.exact is None:
            return summary
        difference = np.abs(self.result.dos - self.exact)
        return {**summary, "kpm_max_error_relative": float(difference.max() / self.exact.max()),
                "kpm_l1_error_relative": dos_difference(self.result.dos, self.exact, self.result.energies)}


def kpm_check(cell: HamiltonianRecord, repeats, energies: np.ndarray, config: KPMConfig) -> KPMCheck:
    """KPM of ``cell`` repeated ``repeats`` times against the exact KPM limit (:func:`.exact_kpm_dos`)."""
    repeats = tuple(int(n) for n in repeats)
    result = kpm_dos(repeat_record(cell, repeats), energies, config)
    return KPMCheck(result, exact_kpm_dos(cell, result, repeats), repeats)


def filtered_kpm_check(record: HamiltonianRecord, energies: np.ndarray, config: KPMConfig,
                       overlap_filter: OverlapFilter, max_exact_orbitals: int | None = None) -> KPMCheck:
    """Filtered KPM of ``record`` at k = 0 against exact diagonalization of the same filtered operator.

    Unlike :func:`kpm_check`, it runs on any S, a predicted one too
    (:mod:`.filtered_kpm`).  A record with more than ``max_exact_orbitals``
    orbitals (None: no limit) gets its KPM DOS alone (``exact`` None).
    """
    result, operator = filtered_kpm_dos(record, energies, config, overlap_filter)
    small = max_exact_orbitals is None or record.n_orbitals <= max_exact_orbitals
    return KPMCheck(result, exact_filtered_dos(record, result, operator) if small else None, (1, 1, 1))


def large_cell_filtered_kpm(model, atoms: ase.Atoms, record: HamiltonianRecord | None, chunks: ChunkConfig,
                            energies: np.ndarray, config: KPMConfig, overlap_filter: OverlapFilter,
                            max_exact_orbitals: int, energy_shift: float = 0.0) -> KPMCheck:
    """Filtered KPM DOS of a large predicted cell: of ``record`` if it was kept, else streamed from the model.

    Without a record, H and S at k = 0 come from
    :func:`.inference.predict_gamma_matrices`, which holds only the two
    matrices (about half the memory of a record plus its matrices), and
    there is no exact check; ``energy_shift`` (eV) times S is added to
    the streamed H, as :meth:`.energy_zero.ModelZero.estimated_fermi_zero`
    adds it to a kept record.
    """
    if record is not None:
        return filtered_kpm_check(record, energies, config, overlap_filter, max_exact_orbitals)
    hamiltonian, overlap = predict_gamma_matrices(model, atoms, chunks)
    hamiltonian = hamiltonian + energy_shift * overlap if energy_shift else hamiltonian
    result, _ = filtered_kpm_dos_of_matrices(hamiltonian, overlap, len(atoms), energies, config, overlap_filter)
    return KPMCheck(result, None, (1, 1, 1))


def smallest_overlap_eigenvalue(record: HamiltonianRecord) -> float:
    """Smallest eigenvalue of S at k = 0 (dense: for cells small enough to diagonalize)."""
    _, overlap = record.sparse_matrices_at_k()
    return float(np.linalg.eigvalsh(overlap.toarray())[0])


def overlap_eigenvalues_by_shell(prediction: HamiltonianRecord, reference: HamiltonianRecord) -> dict[str, float]:
    """Smallest eigenvalue of S at k = 0 of the reference with the predicted S put in one distance shell at a time.

    Keys are the shells of :func:`.evaluation.distance_shells` (``"on-site"``,
    ``"0-2 Å"``, ...): a negative value names a shell whose errors alone
    make S indefinite.
    """
    from .evaluation import aligned_values, distance_shells

    _, predicted = aligned_values(prediction, reference)  # [n_values]
    shell_of_value = reference.per_value(distance_shells(reference))
    smallest = {}
    for shell in np.unique(shell_of_value):
        mixed = np.where(shell_of_value == shell, predicted, reference.s_values)
        smallest[str(shell)] = smallest_overlap_eigenvalue(dataclasses.replace(reference, s_values=mixed))
    return smallest


def truncated_overlap_eigenvalues(record: HamiltonianRecord, cutoffs) -> dict[float, float]:
    """Smallest eigenvalue of S at k = 0 keeping only blocks closer than each of ``cutoffs`` (Å)."""
    distances = np.linalg.norm(record.pair_vectors, axis=1)
    smallest = {}
    for cutoff in cutoffs:
        truncated = keep_blocks(record, record.on_site | (distances < cutoff))
        smallest[float(cutoff)] = smallest_overlap_eigenvalue(truncated)
    return smallest
