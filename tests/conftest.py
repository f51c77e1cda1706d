"""Shared test systems: the real SIESTA calculations and small synthetic BN records."""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from hforge_nb import io
from hforge_nb.basis import Basis, SpeciesBasis, dzp_shells
from hforge_nb.graph import build_pair_graph
from hforge_nb.paths import INTERACTIVE_DIR_ENV, siesta_data_dir
from hforge_nb.profile_check import parameter_names
from hforge_nb.record import HamiltonianRecord, Provenance
from hforge_nb.spin import SpinKind

#: The SIESTA calculations in shared/data/siesta and their main fdf.
SIESTA_CASES = {
    "Si_pdos_k": "Si_pdos.fdf",
    "graphene_electrode": "electrode.fdf",
    "H2_hessian": "h2_hessian.fdf",
    "Bi_hexagonal_soc": "Bi_hexagonal.fdf",
}
NOTEBOOKS_NEEDING_SIESTA = {"00_siesta_tour.ipynb"}


def _siesta_dir_or_none():
    try:
        return siesta_data_dir()
    except FileNotFoundError:
        return None


def pytest_configure(config):
    """Notebooks run by nbval write to a fresh temporary folder instead of ``runs/interactive``.

    A test run then neither resumes from nor trips over checkpoints left
    there by hand, and leaves nothing in the checkout.  The kernels nbval
    starts inherit the variable.
    """
    if not os.environ.get(INTERACTIVE_DIR_ENV):
        config._hforge_interactive = tempfile.mkdtemp(prefix="hforge-nbval-")
        os.environ[INTERACTIVE_DIR_ENV] = config._hforge_interactive


def pytest_unconfigure(config):
    folder = getattr(config, "_hforge_interactive", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(INTERACTIVE_DIR_ENV, None)


def pytest_collection_modifyitems(config, items):
    """Skip notebooks that read the shared SIESTA data when it is absent, saying so."""
    if _siesta_dir_or_none() is not None:
        return
    skip = pytest.mark.skip(reason="shared SIESTA data (../shared/data/siesta or $HFORGE_SIESTA_DATA) is absent")
    for item in items:
        if item.fspath.basename in NOTEBOOKS_NEEDING_SIESTA:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def siesta_dir():
    folder = _siesta_dir_or_none()
    if folder is None:
        pytest.skip("shared SIESTA data (../shared/data/siesta or $HFORGE_SIESTA_DATA) is absent")
    return folder


@functools.cache
def _read_case(folder, name):
    return io.read_siesta(folder / name / SIESTA_CASES[name])


@pytest.fixture(scope="session")
def siesta_record(siesta_dir):
    """``siesta_record(name)``: the record of one SIESTA calculation, read once."""
    return lambda name: _read_case(siesta_dir, name)


# ---------------------------------------------------------------- synthetic BN
BN_BASIS = Basis((
    SpeciesBasis("B", 5, dzp_shells(2, (3.0, 2.2, 3.6, 2.6, 3.6))),
    SpeciesBasis("N", 7, dzp_shells(2, (2.6, 1.9, 3.1, 2.2, 3.1))),
))


def notebook_parameters(stem: str) -> set[str]:
    """Names assigned in the cell tagged ``parameters`` of ``notebooks/<stem>.ipynb``."""
    return parameter_names(Path(__file__).parent.parent / "notebooks" / f"{stem}.ipynb")


def hbn_atoms(a: float = 2.504, c: float = 6.66, rattle: float = 0.0, seed: int = 0) -> Atoms:
    """hBN with two layers (4 atoms), optionally rattled (Å)."""
    cell = [[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, c]]
    frac = [[0, 0, 0], [1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]]
    atoms = Atoms("BNBN", scaled_positions=frac, cell=cell, pbc=True)
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


def random_record(atoms: Atoms, spin: SpinKind = SpinKind.UNPOLARIZED, seed: int = 0,
                  basis: Basis = BN_BASIS) -> HamiltonianRecord:
    """A Hermitian record on the orbital-range graph, with random blocks decaying with distance.

    S is made positive definite by a dominant on-site identity.
    """
    rng = np.random.default_rng(seed)
    graph = build_pair_graph(atoms, basis)
    n = len(atoms)
    pairs = np.concatenate([np.stack([np.arange(n), np.arange(n)], 1), graph.pairs])
    shifts = np.concatenate([np.zeros((n, 3), int), graph.shifts])
    counts = basis.orbital_counts(atoms.get_chemical_symbols())
    sizes = counts[pairs[:, 0]] * counts[pairs[:, 1]]
    distance = np.concatenate([np.zeros(n), graph.distances])
    decay = np.repeat(np.exp(-distance), sizes)
    h = rng.normal(size=(sizes.sum(), spin.n_components)) * decay[:, None]
    s = 0.05 * rng.normal(size=sizes.sum()) * decay
    on_site = np.repeat(np.arange(len(pairs)) < n, sizes)
    within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    diagonal = on_site & (within % (counts[pairs[:, 0]].repeat(sizes) + 1) == 0)
    s[diagonal] = 1.0
    record = HamiltonianRecord(atoms=atoms, basis=basis, species=atoms.get_chemical_symbols(), pairs=pairs,
                               shifts=shifts, h_values=h, s_values=s, spin=spin,
                               provenance=Provenance("synthetic", "tests"))
    return record.symmetrized()


@pytest.fixture
def bn_record():
    return random_record(hbn_atoms(rattle=0.05))


def write_record_v1(record: HamiltonianRecord, path: Path) -> Path:
    """``record`` as format v1 wrote it: every block stored, no ``blocks`` entry in the metadata."""
    io.write_record(record, path)
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    meta = {key: value for key, value in json.loads(str(arrays.pop("metadata"))).items() if key != "blocks"}
    np.savez_compressed(path, metadata=np.array(json.dumps({**meta, "version": 1})),
                        **{**arrays, "pairs": record.pairs, "shifts": record.shifts, "h_values": record.h_values,
                           "s_values": record.s_values})
    return path


# ------------------------------------------------------------------ GPAW
def _require(module: str, what: str):
    """Import ``module``; without it fail on CI (make test installs it) and skip elsewhere, saying why."""
    import importlib
    import os

    try:
        return importlib.import_module(module)
    except ImportError as error:
        message = f"{what} is not installed ({error}); `make test` installs it (extra 'dft')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def gpaw():
    return _require("gpaw", "GPAW")


@pytest.fixture(scope="session")
def lammps():
    from hforge_nb._compat import import_lammps

    try:
        return import_lammps()
    except ImportError:
        return _require("lammps", "LAMMPS")


#: Fast GPAW settings for tests: coarse grid and k-points.
FAST_GPAW = dict(grid_spacing=0.3, kpoint_spacing=1.5, density_tolerance=1e-5)


@pytest.fixture(scope="session")
def cbn_reference(gpaw):
    """GPAW-LCAO reference of the 8-atom cubic cBN cell (about 30 s), computed once."""
    from hforge_nb.crystals import cubic_bn
    from hforge_nb.gpaw_reference import GPAWSettings, gpaw_record

    settings = GPAWSettings(**FAST_GPAW)
    return settings, gpaw_record(cubic_bn(cubic=True), settings)


# ------------------------------------------------------------------ models
#: Small model settings for tests: both kinds build in about a second.
SMALL_MODEL = dict(r_max=3.0, channels=4, num_interactions=2, edge_cutoff=4.5, network_cutoff=3.5)


@functools.cache
def small_model(kind: str, dtype=None, seed: int = 0, **config_fields):
    """A small untrained model of ``kind`` on :data:`BN_BASIS` (float64 unless ``dtype``).

    ``config_fields`` override :data:`SMALL_MODEL` (``two_center=False``, ...).

    Its normalization is fitted to a synthetic hBN record, so outputs are of
    order one.  The three-center term's last maps, the partial charges
    (``coulomb_cutoff``) and the local potential's last layers
    (``local_potential_hidden``) start at zero in a new model; here they get
    random weights, so that every test sees the terms.
    Built once per arguments (a few seconds each): do not train it.
    """
    import torch

    from hforge_nb.models import BaselineConfig, EquivariantConfig, build_model

    torch.manual_seed(seed)
    fields = {**SMALL_MODEL, **config_fields}
    config = (EquivariantConfig(**fields, readout_channels=4) if kind == "equivariant"
              else BaselineConfig(**fields, hidden=16))
    model = build_model(kind, config, BN_BASIS, dtype=dtype or torch.float64)
    model.fit_statistics([random_record(hbn_atoms(rattle=0.05), seed=seed)])
    if model.three_center is not None:
        with torch.no_grad():
            for linear in model.three_center.linear.values():
                linear.weight.normal_(0.0, 0.3)
    if model.charges is not None:
        with torch.no_grad():
            model.charges.weight.normal_(0.0, 0.3)
            model.charges.bias.copy_(torch.tensor([0.4, -0.4], dtype=model.charges.bias.dtype))
    if model.local_potential is not None:
        with torch.no_grad():
            for mlp in model.local_potential.mlps:
                mlp[-1].weight.normal_(0.0, 0.5)
                mlp[-1].bias.normal_(0.0, 0.5)
    return model.eval()


def bn_cluster() -> Atoms:
    """A non-periodic, low-symmetry B3N3 cluster (Å)."""
    positions = [[0, 0, 0], [1.45, 0.1, 0], [2.1, 1.35, 0.2], [1.3, 2.5, -0.1], [-0.1, 2.4, 0.3], [-0.8, 1.2, 0.1]]
    return Atoms("BNBNBN", positions=positions, cell=[12, 12, 12], pbc=False)
