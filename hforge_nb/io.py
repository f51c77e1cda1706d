"""Readers and writers, in sisl's ``read_*``/``write_*`` style.

SIESTA input (``.fdf``, ``.HSX``, ``.TSHS``, ``.ion.xml``, ``.EIG``, ``.KP``)
is read through sisl; records are written as hforge-nb's own ``.npz``
(:func:`write_record`), as ``.TSHS`` for TBtrans and as sisl netCDF
(``.nc``).  Every writer is atomic (see :mod:`._atomic`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import warnings
import zipfile
from xml.etree import ElementTree
from pathlib import Path

import ase
from ase import units
import numpy as np

from ._atomic import atomic_path
from .basis import Basis, species_from_sisl_atom, species_to_sisl_atom
from .convert import check_orbital_counts, record_from_sisl, record_to_sisl
from .errors import BasisMismatchError, CorruptFileError, MissingBasisError
from .record import HamiltonianRecord, Provenance, hermitian_half, with_adjoint_blocks
from .spin import SpinKind

#: Version of the ``.npz`` record layout written by :func:`write_record`.
RECORD_FORMAT = "hforge-nb-record"
RECORD_FORMAT_VERSION = 2
#: ``metadata["blocks"]`` of a record stored as one block of every Hermitian pair (since v2).
HERMITIAN_HALF = "hermitian-half"

#: fdf keys kept in a record's provenance, with the unit each is stored in.
_FDF_SETTINGS = {"SystemLabel": None, "PAO.BasisSize": None, "XC.functional": None, "XC.authors": None,
                 "MeshCutoff": "Ry", "ElectronicTemperature": "eV", "Spin": None}


# ------------------------------------------------------------------ checks
def _existing(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def check_fortran_records(path: str | os.PathLike) -> int:
    """Walk a Fortran unformatted sequential file and count its records.

    Each record is framed by equal 4-byte length markers.  A truncated or
    corrupt file (``.HSX``, ``.TSHS``) raises :class:`CorruptFileError`
    naming the record and byte offset, before any Fortran reader sees it.
    """
    path = _existing(path, "file")
    size, position, count = path.stat().st_size, 0, 0
    with open(path, "rb") as stream:
        while position < size:
            head = stream.read(4)
            if len(head) < 4:
                raise CorruptFileError(f"{path.name} is truncated: {size - position} stray byte(s) after record {count}")
            length = abs(struct.unpack("<i", head)[0])
            if position + 8 + length > size:
                raise CorruptFileError(
                    f"{path.name} is truncated or corrupt: record {count} at byte {position} declares "
                    f"{length} bytes but only {size - position - 4} remain"
                )
            stream.seek(length, os.SEEK_CUR)
            if abs(struct.unpack("<i", stream.read(4))[0]) != length:
                raise CorruptFileError(f"{path.name} is corrupt: record {count} at byte {position} has mismatched markers")
            position += 8 + length
            count += 1
    if count == 0:
        raise CorruptFileError(f"{path.name} is empty")
    return count


def _read_sile(path: Path, method: str, *args, **kwargs):
    """Call a sisl sile reader, turning its failures into :class:`CorruptFileError`."""
    import sisl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sisl.SislWarning)
            return getattr(sisl.get_sile(str(path)), method)(*args, **kwargs)
    except (OSError, ValueError, IndexError, KeyError, sisl.SileError) as exc:
        raise CorruptFileError(f"could not read {path.name} with sisl ({method}): {exc}") from exc


def _has_reader(path: Path, method: str) -> bool:
    import sisl

    return hasattr(sisl.get_sile_class(str(path)), method)


# ------------------------------------------------------------------ basis
def read_basis(path: str | os.PathLike) -> Basis:
    """Read orbital bases from an ``.ion.xml`` (one species), an ``.fdf`` or an ``.HSX``.

    Radii come from ``.ion.xml`` files (an ``.fdf`` finds them beside it);
    an ``.HSX`` knows n, l, m and zeta but not the radii (left at 0).
    """
    path = _existing(path, "basis file")
    if path.name.endswith(".ion.xml"):
        species = species_from_sisl_atom(_read_sile(path, "read_basis"))
        return Basis((dataclasses.replace(species, projector_radius=read_projector_radius(path)),))
    if path.suffix == ".HSX":
        check_fortran_records(path)
        geometry = _read_sile(path, "read_geometry")
        return Basis(tuple(species_from_sisl_atom(a) for a in geometry.atoms.atom))
    if path.suffix == ".fdf":
        first_of_species: dict = {}
        for atom in _read_sile(path, "read_basis"):  # one entry per atom
            first_of_species.setdefault(str(atom.tag), atom)
        return Basis(tuple(species_from_sisl_atom(a) for a in first_of_species.values()))
    raise ValueError(f"cannot read a basis from {path.name}: use .ion.xml, .fdf or .HSX")


def read_projector_radius(path: str | os.PathLike) -> float:
    """Largest Kleinman-Bylander projector cutoff (Å) in a SIESTA ``.ion.xml`` (0 if none)."""
    path = _existing(path, "basis file")
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise CorruptFileError(f"{path.name} is not valid XML: {exc}") from exc
    cutoffs = [float(c.text) for c in root.findall("./kbs/projector/radfunc/cutoff")]
    return max(cutoffs, default=0.0) * units.Bohr


def find_ion_basis(folder: Path, labels) -> Basis:
    """Bases of ``labels`` from ``<label>.ion.xml`` files in ``folder``."""
    missing = [lab for lab in labels if not (folder / f"{lab}.ion.xml").is_file()]
    if missing:
        raise MissingBasisError(
            f"no basis for element(s)/species {missing}: expected {', '.join(m + '.ion.xml' for m in missing)} "
            f"in {folder}, or pass basis="
        )
    return Basis(tuple(read_basis(folder / f"{lab}.ion.xml").species[0] for lab in labels))


def _check_angular_momenta(basis: Basis, geometry, species) -> None:
    """Compare the basis' l of every orbital with the matrix file's, where it stores l (``.HSX``)."""
    for ia, label in enumerate(species):
        file_l = [getattr(o, "l", None) for o in geometry.atoms[ia].orbitals]
        if None in file_l:
            return  # .TSHS and .nc store no l
        expected = basis[label].orbital_l.tolist()
        if file_l != expected:
            raise BasisMismatchError(f"species {label}: the basis has orbitals with l={expected}, the matrix file l={file_l}")


# ------------------------------------------------------------------ SIESTA
def _matrix_file_of_fdf(fdf: Path) -> Path:
    label = _read_sile(fdf, "get", "SystemLabel", default="siesta")
    for suffix in (".HSX", ".TSHS"):
        candidate = fdf.with_name(f"{label}{suffix}")
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{fdf.name} (SystemLabel {label}) has neither {label}.HSX nor {label}.TSHS beside it")


def _fdf_settings(folder: Path) -> dict:
    fdfs = sorted(folder.glob("*.fdf"))
    if not fdfs:
        return {}
    settings = {}
    for key, unit in _FDF_SETTINGS.items():
        value = _read_sile(fdfs[0], "get", key, unit=unit) if unit else _read_sile(fdfs[0], "get", key)
        if value is not None:
            name = f"{key} [{unit}]" if unit else key
            settings[name] = value if isinstance(value, (int, float, bool)) else str(value)
    return settings


def read_siesta(path: str | os.PathLike, basis: Basis | None = None, symmetrize: bool = True) -> HamiltonianRecord:
    """Read a SIESTA calculation into a record.

    Parameters
    ----------
    path
        An ``.fdf`` (its ``SystemLabel.HSX`` or ``.TSHS`` is read), ``.HSX`` or ``.TSHS``.
    basis
        Orbital basis; by default read from the ``<species>.ion.xml`` files
        beside the matrix file (they carry the cutoff radii).
    symmetrize
        Replace H and S by (M + M^dagger)/2.  SIESTA's files are Hermitian
        only to about 1e-8 eV; the correction applied is kept in
        ``provenance.settings["hermiticity_correction_eV"]``.

    Raises
    ------
    FileNotFoundError, CorruptFileError, MissingBasisError, BasisMismatchError
    """
    path = _existing(path, "SIESTA file")
    matrix_file = _matrix_file_of_fdf(path) if path.suffix == ".fdf" else path
    if matrix_file.suffix not in (".HSX", ".TSHS"):
        raise ValueError(f"{matrix_file.name}: read_siesta reads .fdf, .HSX or .TSHS")
    settings = _fdf_settings(matrix_file.parent)
    record = _read_matrix_file(matrix_file, basis, Provenance(str(matrix_file), "SIESTA", settings))
    if not symmetrize:
        return record
    settings["hermiticity_correction_eV"] = max(record.hermiticity_error())
    return record.symmetrized()


def read_matrix_file(path: str | os.PathLike, basis: Basis, species=None) -> HamiltonianRecord:
    """Read a ``.TSHS`` or sisl netCDF ``.nc`` (for example one written by :func:`write_tshs`).

    A ``.TSHS`` stores no chemical elements: give ``species`` (one label per
    atom) or keep the calculation's ``.fdf`` beside it.
    """
    path = _existing(path, "matrix file")
    return _read_matrix_file(path, basis, Provenance(source=str(path), code="hforge-nb"), species)


def _species_labels(path: Path, geometry) -> list[str]:
    """Species label of every atom; a ``.TSHS`` takes them from an ``.fdf`` beside it."""
    if path.suffix != ".TSHS":
        return [str(geometry.atoms[ia].tag) for ia in range(geometry.na)]
    for fdf in sorted(path.parent.glob("*.fdf")):
        fdf_geometry = _read_sile(fdf, "read_geometry")
        if fdf_geometry is not None and fdf_geometry.na == geometry.na:
            return [str(fdf_geometry.atoms[ia].tag) for ia in range(geometry.na)]
    raise MissingBasisError(
        f"{path.name} stores no chemical elements and no .fdf with {geometry.na} atoms lies beside it: pass species="
    )


def _read_matrix_file(path: Path, basis: Basis | None, provenance: Provenance, species=None) -> HamiltonianRecord:
    """Shared body of the matrix readers: check, match the basis, read with sisl, convert."""
    import sisl

    if path.suffix in (".HSX", ".TSHS"):
        check_fortran_records(path)
    file_geometry = _read_sile(path, "read_geometry")
    species = list(species) if species is not None else _species_labels(path, file_geometry)
    if len(species) != file_geometry.na:
        raise BasisMismatchError(f"{len(species)} species labels for the {file_geometry.na} atoms of {path.name}")
    if basis is None:
        basis = find_ion_basis(path.parent, list(dict.fromkeys(species)))
    check_orbital_counts(basis, species, np.diff(file_geometry.firsto))
    _check_angular_momenta(basis, file_geometry, species)
    sisl_atoms = {sb.symbol: species_to_sisl_atom(sb) for sb in basis.species}
    geometry = sisl.Geometry(file_geometry.xyz, atoms=[sisl_atoms[s] for s in species], lattice=file_geometry.lattice)
    hamiltonian = _read_sile(path, "read_hamiltonian", geometry=geometry)
    fermi = _read_sile(path, "read_fermi_level") if _has_reader(path, "read_fermi_level") else 0.0
    return record_from_sisl(hamiltonian, basis=basis, fermi_level=float(np.ravel(fermi)[0]), provenance=provenance)


def read_eig(path: str | os.PathLike) -> np.ndarray:
    """SIESTA ``.EIG`` eigenvalues ``[n_spin, n_k, n_bands]`` in eV relative to E_F."""
    return np.asarray(_read_sile(_existing(path, "eigenvalue file"), "read_data"))


def read_kpoints(path: str | os.PathLike, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SIESTA ``.KP`` k-points ``[n_k, 3]`` (reduced, for ``cell`` in Å) and weights ``[n_k]``."""
    import sisl

    kpoints, weights = _read_sile(_existing(path, "k-point file"), "read_data", sisl.Lattice(cell))
    return np.asarray(kpoints), np.asarray(weights)


# ------------------------------------------------------------------ records
def write_record(record: HamiltonianRecord, path: str | os.PathLike, precision: str = "float64") -> Path:
    """Write a record as a compressed ``.npz`` (format ``hforge-nb-record`` v2), atomically.

    ``precision="float32"`` stores H and S values in single precision (half
    the size; relative rounding 6e-8); they are read back as float64.  A
    Hermitian record (every block with its (j, i, -R) partner, equal to
    :data:`.record.HERMITIAN_STORAGE_TOLERANCE`) is stored as one block of
    each pair, half the size again; :func:`read_record` rebuilds the rest.
    """
    if precision not in ("float64", "float32"):
        raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
    half = hermitian_half(record)
    stored = record if half is None else half
    meta = {
        "format": RECORD_FORMAT, "version": RECORD_FORMAT_VERSION,
        "basis": record.basis.to_dict(), "species": list(record.species), "spin": record.spin.value,
        "fermi_level_eV": record.fermi_level, "pbc": record.atoms.pbc.tolist(),
        "blocks": "all" if half is None else HERMITIAN_HALF,
        "provenance": {"source": record.provenance.source, "code": record.provenance.code,
                       "settings": record.provenance.settings},
    }
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as stream:
            np.savez_compressed(
                stream, metadata=np.array(json.dumps(meta)), numbers=record.atoms.numbers,
                positions=record.atoms.positions, cell=record.atoms.cell.array, pairs=stored.pairs,
                shifts=stored.shifts, h_values=stored.h_values.astype(precision),
                s_values=stored.s_values.astype(precision),
            )
    return Path(path)


def read_record(path: str | os.PathLike) -> HamiltonianRecord:
    """Read a record written by :func:`write_record` (v1 or v2)."""
    path = _existing(path, "record file")
    try:
        with np.load(path, allow_pickle=False) as content:
            arrays = {key: content[key] for key in content.files}
        meta = json.loads(str(arrays.pop("metadata")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(f"{path.name} is not a readable hforge-nb record: {exc}") from exc
    if meta.get("format") != RECORD_FORMAT or meta.get("version", 0) > RECORD_FORMAT_VERSION:
        raise CorruptFileError(f"{path.name}: unknown record format {meta.get('format')!r} v{meta.get('version')}")
    atoms = ase.Atoms(numbers=arrays["numbers"], positions=arrays["positions"], cell=arrays["cell"], pbc=meta["pbc"])
    record = HamiltonianRecord(
        atoms=atoms, basis=Basis.from_dict(meta["basis"]), species=tuple(meta["species"]),
        pairs=arrays["pairs"], shifts=arrays["shifts"], h_values=arrays["h_values"], s_values=arrays["s_values"],
        spin=SpinKind(meta["spin"]), fermi_level=meta["fermi_level_eV"], provenance=Provenance(**meta["provenance"]),
    )
    return with_adjoint_blocks(record) if meta.get("blocks", "all") == HERMITIAN_HALF else record


def _write_with_sisl(record: HamiltonianRecord, path: str | os.PathLike, suffix: str) -> Path:
    path = Path(path)
    if path.suffix != suffix:
        raise ValueError(f"{path.name}: expected a {suffix} file name")
    with atomic_path(path) as tmp:
        record_to_sisl(record).write(str(tmp))
    return path


def write_tshs(record: HamiltonianRecord, path: str | os.PathLike) -> Path:
    """Write H and S as a SIESTA/TBtrans ``.TSHS`` (E_F = 0: energies are already relative to it)."""
    return _write_with_sisl(record, path, ".TSHS")


def write_netcdf(record: HamiltonianRecord, path: str | os.PathLike) -> Path:
    """Write H and S as a sisl/SIESTA netCDF file (``.nc``)."""
    return _write_with_sisl(record, path, ".nc")


# ------------------------------------------------------------------ models
#: Marker and version of model files written by :func:`write_model`.
MODEL_FORMAT = "hforge-nb-model"
MODEL_FORMAT_VERSION = 1
# Configuration fields added after version 1 was fixed, with the value that
# files written before them mean (the feature did not exist yet).
_ABSENT_CONFIG_FIELDS = {"two_center": False, "crystal_field": False, "network_cutoff": None, "h_crystal_field": False,
                         "three_center_cutoff": None, "coulomb_cutoff": None}


def write_model(model, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Save a :class:`.HamiltonianModel` (kind, config, basis, dtype, weights), atomically.

    ``metadata`` (plain data: numbers, strings, lists, dicts) is stored
    alongside, for example how and on what the model was trained.
    """
    import torch

    try:
        json.dumps(metadata or {}, allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"model metadata must be plain data (numbers, strings, lists, dicts): {exc}") from exc
    content = {
        "format": MODEL_FORMAT, "version": MODEL_FORMAT_VERSION, "kind": model.kind,
        "config": dataclasses.asdict(model.config), "basis": model.basis.to_dict(),
        "dtype": str(model.dtype).removeprefix("torch."), "state_dict": model.state_dict(),
        "metadata": dict(metadata or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(content, tmp)
    return Path(path)


def _load_model_file(path: Path) -> dict:
    """The content of a model file, loaded without unpickling code; :class:`CorruptFileError` otherwise."""
    import torch

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load of foreign bytes fails in many ways (pickle, zip, struct, ...)
        raise CorruptFileError(f"{path.name} is not a readable hforge-nb model file "
                               f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(content, dict) or content.get("format") != MODEL_FORMAT:
        raise CorruptFileError(f"{path.name} is not an hforge-nb model (no {MODEL_FORMAT!r} marker)")
    if content.get("version", 0) > MODEL_FORMAT_VERSION:
        raise CorruptFileError(f"{path.name}: model format v{content.get('version')} is newer than this hforge-nb")
    return content


def read_model(path: str | os.PathLike):
    """Load a model written by :func:`write_model`, in evaluation mode.

    Raises :class:`CorruptFileError` for a file that is not a model, is
    truncated, or whose weights do not fit its recorded configuration.
    """
    import torch

    from .models import MODEL_KINDS

    path = _existing(path, "model file")
    content = _load_model_file(path)
    if content["kind"] not in MODEL_KINDS:
        raise CorruptFileError(f"{path.name}: unknown model kind {content['kind']!r}")
    model_class, config_class = MODEL_KINDS[content["kind"]]
    try:
        config = config_class(**{**_ABSENT_CONFIG_FIELDS, **content["config"]})
        model = model_class(config, Basis.from_dict(content["basis"]), dtype=getattr(torch, content["dtype"]))
        model.load_state_dict(content["state_dict"])
    except (TypeError, RuntimeError, KeyError) as exc:
        raise CorruptFileError(f"{path.name}: the stored weights do not fit the stored model "
                               f"(written by another version of hforge-nb? retrain it): {exc}") from exc
    return model.eval()


def read_model_metadata(path: str | os.PathLike) -> dict:
    """The ``metadata`` a model file was written with."""
    return dict(_load_model_file(_existing(path, "model file")).get("metadata", {}))
