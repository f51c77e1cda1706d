"""Reference data sets: structures, GPAW-LCAO Hamiltonians and a manifest.

A data set is a folder::

    manifest.json          format "hforge-nb-dataset", version, settings, one entry per sample
    samples/<name>.npz     one HamiltonianRecord per converged sample (hforge-nb-record)
    entries/<name>.json    the manifest entry of every finished sample (resume markers)
    logs/<name>.txt        GPAW's log of every sample

Every sample is computed by :func:`compute_sample`, which writes its record
and then its entry, each atomically: a sample with an entry is done (or
failed for good, e.g. an SCF that did not converge) and is skipped when the
same plan runs again, so an interrupted run resumes where it stopped.
:func:`write_manifest` gathers the entries.  Samples whose SCF did not
converge keep an entry with ``status = "not-converged"`` and no record; the
readers leave them out.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import traceback
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import ase
import numpy as np

from ._atomic import write_json
from .crystals import cubic_bn, hexagonal_bn
from .errors import CorruptFileError
from .gpaw_memory import available_memory_GB, estimate_peak_memory_GB, workers_that_fit
from .gpaw_reference import (GPAWSettings, SCFNotConvergedError, gpaw_record, harris_record, off_grid_check,
                             off_grid_kpoint)
from .io import read_record, write_record
from .melt_quench import MeltQuenchSchedule, melt_quench
from .record import HamiltonianRecord, drop_small_blocks
from .worker_pool import spawn_pool
from .structure import StructureFingerprint
from .structure_stats import structure_stats

FORMAT = "hforge-nb-dataset"
VERSION = 1

#: The kinds of sample a plan can hold.
KINDS = ("amorphous", "hBN", "cBN", "rattled-hBN", "rattled-cBN")


@dataclass(frozen=True)
class SampleSpec:
    """How to make one sample.

    Attributes
    ----------
    name : str
        Unique name, also the file stem.
    kind : str
        One of :data:`KINDS`.
    split : str
        ``"train"``, ``"holdout"`` (larger cells for transferability) or ``"reference"`` (crystals).
    schedule : MeltQuenchSchedule or None
        The melt-and-quench run of amorphous samples.
    rattle : float
        Standard deviation (Å) of the random displacements of rattled crystals.
    seed : int
    """

    name: str
    kind: str
    split: str
    schedule: MeltQuenchSchedule | None = None
    rattle: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown sample kind {self.kind!r}; expected one of {KINDS}")

    @property
    def n_atoms(self) -> int:
        """Atoms of the sample's cell (without running the MD of an amorphous one)."""
        if self.kind == "amorphous":
            return self.schedule.n_atoms
        return len(make_structure(self)[0])


@dataclass(frozen=True)
class DatasetPlan:
    """Which samples a data set holds, built from notebook parameters.

    Attributes
    ----------
    train_sizes, holdout_sizes : tuple of int
        Atoms per amorphous cell (multiples of 8), training and held-out.
    n_train_per_size : int or tuple of int
        Cells per training size: one count for every size, or one count per
        entry of ``train_sizes``.
    n_holdout_per_size : int
        Cells per held-out size.
    density : float
        g/cm^3 of the amorphous cells.
    schedule : MeltQuenchSchedule
        MD schedule shared by every amorphous cell (``n_atoms`` and ``seed`` set per cell).
    crystals : bool
        Include hBN and cBN.
    n_rattled : int
        Rattled copies of each crystal (supercells of 16 atoms).
    rattle : float
        Rattle amplitude (Å).
    seed : int
        Base seed; every sample's seed derives from it.
    """

    train_sizes: tuple[int, ...] = (8, 16)
    holdout_sizes: tuple[int, ...] = ()
    n_train_per_size: int | tuple[int, ...] = 1
    n_holdout_per_size: int = 1
    density: float = 2.1
    schedule: MeltQuenchSchedule = field(default_factory=MeltQuenchSchedule)
    crystals: bool = True
    n_rattled: int = 0
    rattle: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.n_train_per_size, (list, tuple)):
            object.__setattr__(self, "n_train_per_size", tuple(int(n) for n in self.n_train_per_size))
            if len(self.n_train_per_size) != len(self.train_sizes):
                raise ValueError(f"n_train_per_size has {len(self.n_train_per_size)} counts for "
                                 f"{len(self.train_sizes)} training sizes {self.train_sizes}")

    def cells_per_size(self) -> list[tuple[str, int, int]]:
        """``(split, atoms, cells)`` for every amorphous size of the plan, training sizes first."""
        train_counts = (self.n_train_per_size if isinstance(self.n_train_per_size, tuple)
                        else (self.n_train_per_size,) * len(self.train_sizes))
        return ([("train", size, count) for size, count in zip(self.train_sizes, train_counts)]
                + [("holdout", size, self.n_holdout_per_size) for size in self.holdout_sizes])

    def samples(self) -> list[SampleSpec]:
        """Every sample of the plan, in a fixed order.

        Examples
        --------
        >>> [s.name for s in DatasetPlan((8, 16), n_train_per_size=(1, 2), crystals=False).samples()]
        ['aBN-0008-train-00', 'aBN-0016-train-00', 'aBN-0016-train-01']
        """
        specs = []
        for split, size, count in self.cells_per_size():
            for k in range(count):
                seed = self.seed + 1000 * size + k + (500 if split == "holdout" else 0)
                schedule = replace(self.schedule, n_atoms=size, density=self.density, seed=seed)
                specs.append(SampleSpec(f"aBN-{size:04d}-{split}-{k:02d}", "amorphous", split, schedule, seed=seed))
        if self.crystals:
            specs += [SampleSpec("hBN", "hBN", "reference"), SampleSpec("cBN", "cBN", "reference")]
            for crystal in ("hBN", "cBN"):
                specs += [SampleSpec(f"{crystal}-rattled-{k:02d}", f"rattled-{crystal}", "train", rattle=self.rattle,
                                     seed=self.seed + 7 * k + 1) for k in range(self.n_rattled)]
        return specs


@dataclass(frozen=True)
class StoragePolicy:
    """How records are stored: blocks kept and number precision.

    Attributes
    ----------
    tolerance : float
        Off-site blocks whose every |H| (eV) and |S| is below it are not
        stored (:func:`~hforge_nb.record.drop_small_blocks`).
    precision : str
        ``"float64"`` or ``"float32"``.

    The eigenvalue change this causes at an off-grid k-point is measured for
    every sample and kept in the manifest (``storage_error_eV``).
    """

    tolerance: float = 0.0
    precision: str = "float64"


def make_structure(spec: SampleSpec) -> tuple[ase.Atoms, dict]:
    """The structure of ``spec`` and how it was made (MD energy and time for amorphous cells)."""
    if spec.kind == "amorphous":
        result = melt_quench(spec.schedule)
        made = {"md_energy_per_atom_eV": result.energy_per_atom, "md_seconds": result.wall_seconds,
                "md_steps": result.n_steps, "schedule": spec.schedule.as_dict()}
        if result.swaps is not None:
            made["homopolar_bonds_before_swaps"] = result.swaps.homopolar_before
            made["homopolar_bonds_after_swaps"] = result.swaps.homopolar_after
        return result.atoms, made
    crystal = hexagonal_bn() if spec.kind.endswith("hBN") else cubic_bn()
    if spec.kind.startswith("rattled"):
        crystal = crystal.repeat((2, 2, 1) if spec.kind.endswith("hBN") else (2, 2, 2))
        crystal.rattle(spec.rattle, seed=spec.seed)
    return crystal, {"rattle_A": spec.rattle}


def store_record(record: HamiltonianRecord, path: Path, storage: StoragePolicy, window: float = 10.0) -> dict:
    """Write ``record`` under ``storage``; return the eigenvalue changes (eV) this caused off the Fourier grid.

    ``storage_error_eV`` covers the bands up to ``window`` eV above E_F;
    ``storage_error_all_bands_eV`` all of them.  The highest bands (100 eV
    and more above E_F in a DZP basis) sit on the smallest eigenvalues of S
    (about 2e-5 for cBN), which amplify rounding: float32 S moves them by up
    to 0.1 eV while the bands below E_F + 10 eV move by about 1e-6 eV.
    """
    write_record(drop_small_blocks(record, storage.tolerance), path, storage.precision)
    k = off_grid_kpoint(record.atoms.pbc)[None, :]
    exact = record.eigenvalues(k)
    change = np.abs(read_record(path).eigenvalues(k) - exact)
    return {"storage_error_eV": float(change[exact <= window].max()),
            "storage_error_all_bands_eV": float(change.max())}


def compute_sample(spec: SampleSpec, settings: GPAWSettings, folder: Path,
                   storage: StoragePolicy = StoragePolicy()) -> dict:
    """Make, compute, check and store one sample; returns (and writes) its manifest entry."""
    folder = Path(folder)
    atoms, made = make_structure(spec)
    entry = {"name": spec.name, "kind": spec.kind, "split": spec.split, "n_atoms": len(atoms),
             "formula": atoms.get_chemical_formula(), "structure": structure_stats(atoms).as_dict(), "made": made}
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    try:
        reference = gpaw_record(atoms, settings, log=str(folder / "logs" / f"{spec.name}.txt"), source=spec.name)
    except SCFNotConvergedError as error:
        entry.update(status="not-converged", error=str(error))
    else:
        entry.update(_reference_entry(reference, settings))
        path = folder / "samples" / f"{spec.name}.npz"
        entry.update(store_record(reference.record, path, storage))
        entry.update(status="converged", file=f"samples/{spec.name}.npz", file_MB=path.stat().st_size / 1e6)
    write_json(folder / "entries" / f"{spec.name}.json", entry)
    return entry


def rewrite_records(folder: str | Path, precision: str) -> list[str]:
    """Write every converged sample of ``folder`` again in the current record format; the names rewritten.

    For data sets made before a format change (format v2 stores one block of
    every Hermitian pair, half the size of v1).  Values keep ``precision``
    (that of the set: rewriting float32 values as float32 changes none), and
    each sample's entry gets its new ``file_MB``; run notebook 01 on the
    folder again afterwards to gather the entries into the manifest.
    """
    folder, names = Path(folder), []
    for name, entry in finished_entries(folder).items():
        if entry.get("status") != "converged":
            continue
        path = folder / entry["file"]
        write_record(read_record(path), path, precision)
        write_json(folder / "entries" / f"{name}.json", {**entry, "file_MB": path.stat().st_size / 1e6})
        names.append(name)
    return names


def _reference_entry(reference, settings: GPAWSettings) -> dict:
    """What the manifest keeps of one converged GPAW calculation."""
    import resource

    record = reference.record
    return {
        "energy_eV": reference.energy,
        "fermi_level_eV": record.fermi_level,
        "scf_iterations": reference.scf_iterations,
        "scf_kgrid": list(reference.scf_kgrid),
        "fourier_kgrid": list(reference.fourier_kgrid),
        "n_blocks": record.n_blocks,
        "n_orbitals": record.n_orbitals,
        "off_grid_error_eV": off_grid_check(reference, settings),
        "hermiticity_error_eV": record.hermiticity_error()[0],
        "timings_s": reference.timings,
        "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }


def _safe_compute(spec: SampleSpec, settings: GPAWSettings, folder: Path, storage: StoragePolicy) -> dict:
    """:func:`compute_sample` that returns a failure entry (not written) instead of raising."""
    try:
        return compute_sample(spec, settings, folder, storage)
    except Exception as error:  # reported by build_dataset; the sample is retried on the next run
        return {"name": spec.name, "status": "failed", "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc()}


def finished_entries(folder: Path) -> dict[str, dict]:
    """The entries of samples already done in ``folder`` (converged or not converged)."""
    entries = {}
    for path in sorted((Path(folder) / "entries").glob("*.json")):
        try:
            entries[path.stem] = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise CorruptFileError(f"{path}: not valid JSON ({error}); delete it to recompute that sample") from error
    return entries


def build_dataset(plan: DatasetPlan, settings: GPAWSettings, folder: Path, workers: int = 1,
                  storage: StoragePolicy = StoragePolicy(), shard: tuple[int, int] = (0, 1),
                  progress: bool = True, memory_GB: float | None = None) -> dict:
    """Compute every sample of ``plan`` not yet in ``folder``, ``workers`` processes at a time; write the manifest.

    Parameters
    ----------
    shard
        (k, n): compute only samples k, k + n, k + 2n, ... of the plan, so
        that n jobs (for example a cluster array job) share the work; a last
        run with (0, 1) finds them all done and writes the full manifest.
    memory_GB
        Memory the samples may take (GB); None: what the machine has
        available now (:func:`.gpaw_memory.available_memory_GB`).

    Each worker runs single-threaded (``OPENBLAS_NUM_THREADS=1``).  Samples
    that raise keep no entry, are listed under ``"failed"`` in the returned
    manifest and are tried again on the next run.  So are samples whose
    estimated peak memory (:func:`.gpaw_memory.estimate_peak_memory_GB`)
    exceeds ``memory_GB``, which are not started; samples of a size of
    which ``workers`` processes would not fit in ``memory_GB`` run fewer at
    a time, after the others.  A worker that dies without
    an error (killed, often for lack of memory) stops the run with a
    ``RuntimeError``; the samples finished before are kept.
    """
    from tqdm import tqdm  # text bars: notebooks run without ipywidgets

    folder = Path(folder)
    done = finished_entries(folder)
    index, count = shard
    todo = [spec for spec in plan.samples()[index::count] if spec.name not in done]
    memory_GB = available_memory_GB() if memory_GB is None else memory_GB
    groups, failed = _memory_groups(todo, workers, memory_GB)
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"
    bar = tqdm(total=sum(len(specs) for _, specs in groups), disable=not progress, desc="reference calculations")
    try:
        for n_workers, specs in groups:
            failed += _compute_samples(specs, n_workers, settings, folder, storage, bar)
    except concurrent.futures.process.BrokenProcessPool as error:
        write_manifest(plan, settings, storage, folder, failed)
        available = "unknown" if memory_GB is None else f"{memory_GB:.1f} GB"
        raise RuntimeError(f"a GPAW worker process died without an error (killed, often for lack of memory; "
                           f"available: {available}); the samples finished are kept in {folder} and the "
                           "next run resumes; try fewer workers") from error
    finally:
        bar.close()
    return write_manifest(plan, settings, storage, folder, failed)


def _compute_samples(specs: list[SampleSpec], workers: int, settings: GPAWSettings, folder: Path,
                     storage: StoragePolicy, bar) -> list[dict]:
    """Compute ``specs`` in ``workers`` spawned processes, advancing ``bar``; return the failure entries.

    The workers exit when this process does (:func:`.worker_pool.spawn_pool`).
    """
    failed = []
    with spawn_pool(workers) as pool:
        futures = [pool.submit(_safe_compute, spec, settings, folder, storage) for spec in specs]
        for future in concurrent.futures.as_completed(futures):
            entry = future.result()
            bar.update()
            if entry["status"] == "failed":
                failed.append(entry)
    return failed


def _memory_groups(specs: list[SampleSpec], workers: int,
                   memory_GB: float | None) -> tuple[list[tuple[int, list[SampleSpec]]], list[dict]]:
    """``specs`` grouped by how many of their processes fit in ``memory_GB`` (at most ``workers``), most first,
    and a failure entry for each spec whose estimated GPAW peak memory alone exceeds ``memory_GB``."""
    if memory_GB is None:
        return ([(max(1, workers), specs)] if specs else []), []
    groups: dict[int, list[SampleSpec]] = {}
    refused = []
    for spec in specs:
        needed = estimate_peak_memory_GB(spec.n_atoms)
        if needed <= memory_GB:
            groups.setdefault(workers_that_fit(needed, workers, memory_GB), []).append(spec)
        else:
            refused.append({"name": spec.name, "status": "failed", "error": (
                f"MemoryError: not started: GPAW needs about {needed:.1f} GB for {spec.n_atoms} atoms "
                f"(gpaw_memory.estimate_peak_memory_GB) and {memory_GB:.1f} GB are available; "
                "run it on a machine with more memory or leave its size out of the plan")})
    return sorted(groups.items(), key=lambda group: -group[0]), refused


def write_manifest(plan: DatasetPlan, settings: GPAWSettings, storage: StoragePolicy, folder: Path,
                   failed: list | None = None) -> dict:
    """Gather the entries of ``plan``'s samples into ``manifest.json`` (atomically) and return it."""
    entries = finished_entries(folder)
    samples = [entries[spec.name] for spec in plan.samples() if spec.name in entries]
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "plan": asdict(plan),
        "gpaw_settings": settings.as_dict(),
        "storage": asdict(storage),
        "samples": samples,
        "failed": failed or [],
        "totals": _totals(samples),
    }
    write_json(Path(folder) / "manifest.json", manifest)
    return manifest


def _totals(samples: list[dict]) -> dict:
    converged = [s for s in samples if s["status"] == "converged"]
    return {
        "n_samples": len(samples),
        "n_converged": len(converged),
        "n_not_converged": len(samples) - len(converged),
        "n_atoms": int(sum(s["n_atoms"] for s in converged)),
        "gpaw_seconds": float(sum(sum(s["timings_s"].values()) for s in converged)),
        "max_off_grid_error_eV": float(max((s["off_grid_error_eV"] for s in converged), default=0.0)),
        "max_storage_error_eV": float(max((s["storage_error_eV"] for s in converged), default=0.0)),
        "max_storage_error_all_bands_eV": float(max((s["storage_error_all_bands_eV"] for s in converged),
                                                    default=0.0)),
        "size_MB": float(sum(s["file_MB"] for s in converged)),
    }


def read_manifest(folder: Path) -> dict:
    """The manifest of a data set folder, checked for format and version."""
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no data set manifest (run notebooks/01_dataset first)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CorruptFileError(f"{path}: not valid JSON ({error})") from error
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise CorruptFileError(f"{path}: not a {FORMAT} v{VERSION} manifest")
    return manifest


def read_samples(folder: Path, split: str | None = None) -> dict[str, HamiltonianRecord]:
    """The records of the converged samples (of one ``split``, or all), by name."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    return {s["name"]: read_record(folder / s["file"]) for s in manifest["samples"]
            if s["status"] == "converged" and split in (None, s["split"])}


def read_gpaw_settings(folder: Path) -> GPAWSettings:
    """The GPAW settings a data set folder was computed with (from its manifest)."""
    return GPAWSettings(**read_manifest(folder)["gpaw_settings"])


def harris_records(records: dict[str, HamiltonianRecord], settings: GPAWSettings,
                   folder: Path) -> dict[str, HamiltonianRecord]:
    """The Harris record (:func:`.gpaw_reference.harris_record`) of each of ``records``, by name.

    Each is read from ``folder/<name>.npz`` when there, else computed with
    ``settings`` and written there (atomically), so an interrupted run
    keeps what it has computed.
    """
    folder = Path(folder)
    harris = {}
    for name, record in records.items():
        path = folder / f"{name}.npz"
        if not path.exists():
            write_record(harris_record(record.atoms, settings, source=f"{name} (Harris)"), path)
        harris[name] = read_record(path)
    return harris


def structure_table(manifest: dict) -> list[dict]:
    """One row per sample: name, kind, split and its structure statistics."""
    return [{"name": s["name"], "kind": s["kind"], "split": s["split"], "status": s["status"], **s["structure"]}
            for s in manifest["samples"]]


def energy_table(manifest: dict, leave_out: Collection[str] = ()) -> list[dict]:
    """One row per converged amorphous sample: homopolar-bond fraction and energy per atom (eV), MD and DFT.

    Every amorphous cell is half B, half N, so the energies per atom rank
    the cells; each column has its own zero (ExTeP's separated atoms,
    GPAW's reference atoms), so only differences within a column mean
    anything.  Samples named in ``leave_out`` (repeated structures, say,
    which would count one cell twice) are left out.
    """
    return [{"name": s["name"], "n_atoms": s["n_atoms"], "homopolar_fraction": s["structure"]["homopolar_fraction"],
             "md_energy_per_atom_eV": s["made"]["md_energy_per_atom_eV"],
             "dft_energy_per_atom_eV": s["energy_eV"] / s["n_atoms"]}
            for s in manifest["samples"]
            if s["kind"] == "amorphous" and s["status"] == "converged" and s["name"] not in leave_out]


def energy_rank_agreement(rows: list[dict]) -> dict[int, dict]:
    """Per cell size (atoms): Spearman rank correlations between the columns of :func:`energy_table`.

    ``md_vs_dft`` is 1 when the MD potential orders the cells by energy as
    DFT does; ``homopolar_vs_md`` and ``homopolar_vs_dft`` say whether
    each energy rises with the fraction of homopolar bonds.  NaN with
    fewer than three cells of a size.
    """
    from scipy.stats import spearmanr

    pairs = {"md_vs_dft": ("md_energy_per_atom_eV", "dft_energy_per_atom_eV"),
             "homopolar_vs_md": ("homopolar_fraction", "md_energy_per_atom_eV"),
             "homopolar_vs_dft": ("homopolar_fraction", "dft_energy_per_atom_eV")}
    agreement = {}
    for n_atoms in sorted({row["n_atoms"] for row in rows}):
        cells = [row for row in rows if row["n_atoms"] == n_atoms]
        agreement[n_atoms] = {"n_cells": len(cells), **{
            name: float(spearmanr([c[a] for c in cells], [c[b] for c in cells]).statistic) if len(cells) >= 3
            else float("nan") for name, (a, b) in pairs.items()}}
    return agreement


@dataclass(frozen=True)
class DataSplit:
    """Names of the samples used for training, validation (early stopping) and testing."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]

    def as_dict(self) -> dict[str, list[str]]:
        return {"train": list(self.train), "validation": list(self.validation), "test": list(self.test)}

    def test_cells_only(self) -> "DataSplit":
        """The test cells as training, validation and test cells alike: a check of how closely a model can fit
        them, not a held-out score.

        Examples
        --------
        >>> DataSplit(train=("a", "b"), validation=("c",), test=("d",)).test_cells_only().as_dict()
        {'train': ['d'], 'validation': ['d'], 'test': ['d']}
        """
        return DataSplit(train=self.test, validation=self.test, test=self.test)


def unseen_records(candidates: dict[str, HamiltonianRecord], used: dict[str, HamiltonianRecord],
                   sizes: set[int] | None = None) -> dict[str, HamiltonianRecord]:
    """The ``candidates`` whose structure is none of ``used`` (:func:`.structure.same_structure`), of ``sizes`` atoms.

    For testing on more cells than a data set holds: a second folder made by
    notebook 01 with more cells per size repeats the first cells (same
    seeds), and those, like any structure a model was trained, validated or
    tested on, even moved or renumbered, are left out.

    Examples
    --------
    >>> import ase
    >>> from types import SimpleNamespace as R
    >>> cell = lambda x: R(atoms=ase.Atoms("BN", positions=[[0, 0, 0], [x, 0, 0]], cell=[4, 4, 4], pbc=True),
    ...                    n_atoms=2)
    >>> sorted(unseen_records({"a": cell(1.4), "b": cell(1.5)}, {"x": cell(1.4)}))
    ['b']
    """
    seen = _fingerprints(used)
    return {name: record for name, record in candidates.items()
            if (sizes is None or record.n_atoms in sizes)
            and _first_match(StructureFingerprint.of(record.atoms), seen) is None}


def _fingerprints(records: dict[str, HamiltonianRecord]) -> dict[str, StructureFingerprint]:
    """The :class:`.structure.StructureFingerprint` of every record, by name."""
    return {name: StructureFingerprint.of(record.atoms) for name, record in records.items()}


def _first_match(fingerprint: StructureFingerprint, known: dict[str, StructureFingerprint]) -> str | None:
    """The name of the first of ``known`` with ``fingerprint``'s structure, or None."""
    return next((name for name, other in known.items() if fingerprint.matches(other)), None)


def distinct_records(records: dict[str, HamiltonianRecord]) -> tuple[dict[str, HamiltonianRecord], dict[str, str]]:
    """The records without repeated structures, and each dropped repeat's name with the kept name it repeats.

    Of every structure (:func:`.structure.same_structure`), the record first
    in name order is kept.  Small cells from melt-and-quench often freeze into
    the same ordered structure from different seeds; a repeat in both the
    training and the test cells would score the model on what it was fitted
    to.

    Examples
    --------
    >>> import ase
    >>> from types import SimpleNamespace as R
    >>> cell = lambda x, y: R(atoms=ase.Atoms("BN", positions=[[y, 0, 0], [x + y, 0, 0]], cell=[4, 4, 4], pbc=True))
    >>> kept, repeats = distinct_records({"a": cell(1.4, 0), "b": cell(1.5, 0), "c": cell(1.4, 2)})
    >>> sorted(kept), repeats
    (['a', 'b'], {'c': 'a'})
    """
    kept: dict[str, StructureFingerprint] = {}
    repeats = {}
    for name in sorted(records):
        fingerprint = StructureFingerprint.of(records[name].atoms)
        original = _first_match(fingerprint, kept)
        if original is None:
            kept[name] = fingerprint
        else:
            repeats[name] = original
    return {name: records[name] for name in kept}, repeats


def more_training_cells(folder: str | Path, split: DataSplit, records: dict[str, HamiltonianRecord],
                        limit: int = 0) -> tuple[DataSplit, dict[str, HamiltonianRecord], dict[str, str]]:
    """``split`` with the distinct training cells of another data folder added to its training cells.

    The cells of ``folder`` (notebook 01, split "train") are named
    ``<folder name>/<sample>``.  Left out are the cells whose structure
    repeats another of them (:func:`distinct_records`) or any cell of
    ``records`` (the data set ``split`` was made from, its validation and
    test cells included).  With ``limit > 0`` only the first ``limit`` of the
    remaining cells by name are added, so a smaller limit adds a subset of a
    larger one's cells.

    Returns
    -------
    DataSplit
        ``split`` with the added names at the end of its training cells.
    dict
        The added records by their new names.
    dict
        Each left-out name with the name of the cell it repeats.
    """
    if limit < 0:
        raise ValueError(f"limit must be 0 (all) or positive, not {limit}")
    folder = Path(folder)
    candidates = {f"{folder.name}/{name}": record for name, record in read_samples(folder, "train").items()}
    added, repeats = distinct_records(candidates)
    known = _fingerprints(records)
    for name in list(added):
        original = _first_match(StructureFingerprint.of(added[name].atoms), known)
        if original is not None:
            repeats[name] = original
            del added[name]
    if limit:
        added = {name: added[name] for name in list(added)[:limit]}
    return replace(split, train=split.train + tuple(added)), added, repeats


def distinct_split(records: dict[str, HamiltonianRecord], n_validation: int = 1, n_test: int = 1,
                   n_train: int = 0, train_only: frozenset[str] = frozenset()) -> tuple[DataSplit, dict[str, str]]:
    """Notebook 03's split: :func:`split_by_size` of the records' distinct structures, and the repeats left out
    (:func:`distinct_records`: each repeat's name with the kept name it repeats).

    The distinct records named in ``train_only`` (the rattled crystals,
    :func:`rattled_crystal_names`) train and never validate or test: the
    split scores held-out amorphous cells.
    """
    distinct, repeats = distinct_records(records)
    amorphous = {name: record for name, record in distinct.items() if name not in train_only}
    split = split_by_size(amorphous, n_validation, n_test, n_train)
    extra = tuple(sorted(name for name in distinct if name in train_only))
    return DataSplit(split.train + extra, split.validation, split.test), repeats


def is_rattled_crystal(sample: dict) -> bool:
    """Whether a manifest entry is a training sample that is not an amorphous cell: a rattled crystal of ``n_rattled``."""
    return sample["split"] == "train" and sample["kind"] != "amorphous"


def rattled_crystal_names(folder: Path) -> frozenset[str]:
    """Names of a data set's rattled crystals (:func:`is_rattled_crystal`), from its manifest."""
    return frozenset(sample["name"] for sample in read_manifest(folder)["samples"] if is_rattled_crystal(sample))


def split_by_size(records: dict[str, HamiltonianRecord], n_validation: int = 1, n_test: int = 1,
                  n_train: int = 0) -> DataSplit:
    """Split records per number of atoms: of each size, the last ``n_test`` names (sorted) test, the ``n_validation``
    before them validate, and the rest train, or only the first ``n_train`` of the rest when ``n_train > 0``
    (the others are left unused, so test and validation cells do not change with ``n_train``).

    Examples
    --------
    >>> from types import SimpleNamespace as R
    >>> records = {f"a-{n}-{k}": R(n_atoms=n) for n in (8, 16) for k in range(4)}
    >>> split_by_size(records).as_dict()["test"]
    ['a-8-3', 'a-16-3']
    >>> split_by_size(records, n_train=1).as_dict()["train"]
    ['a-8-0', 'a-16-0']
    """
    if n_train < 0:
        raise ValueError(f"n_train must be 0 (all) or positive, not {n_train}")
    train, validation, test = [], [], []
    sizes = sorted({r.n_atoms for r in records.values()})
    for size in sizes:
        names = sorted(name for name, r in records.items() if r.n_atoms == size)
        if len(names) < n_validation + n_test + max(n_train, 1):
            raise ValueError(f"{len(names)} samples of {size} atoms cannot give {n_validation} for validation, "
                             f"{n_test} for testing and {max(n_train, 1) if n_train else 'at least one'} for training")
        cut_test, cut_val = len(names) - n_test, len(names) - n_test - n_validation
        train += names[:n_train or cut_val]
        validation += names[cut_val:cut_test]
        test += names[cut_test:]
    return DataSplit(tuple(train), tuple(validation), tuple(test))
