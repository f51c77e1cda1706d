"""GPAW-LCAO reference data: conventions, exactness of H(R), S(R), convergence, data sets."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST_GPAW, hbn_atoms, random_record, write_record_v1

from hforge_nb import dataset, gpaw_memory
from hforge_nb._atomic import write_json
from hforge_nb.crystals import b2n2_cluster
from hforge_nb.errors import CorruptFileError, MissingBasisError
from hforge_nb.gpaw_reference import (
    GPAWSettings, SCFNotConvergedError, fourier_grid, gpaw_record, gpaw_species, grid_kpoints, harmonic_signs,
    harris_record, kpoint_deviation, off_grid_check, off_grid_matrix_error, orbital_permutation, planned_grid, real_space_grid,
    rotation_deviation, translation_deviation,
)
from hforge_nb.graph import build_pair_graph
from hforge_nb.io import read_record, write_record
from hforge_nb.record import drop_small_blocks, records_equal


# ------------------------------------------------------------ conventions
@pytest.mark.parametrize("l", [0, 1, 2])
def test_gpaw_harmonics_are_siestas_times_condon_shortley(gpaw, l):
    assert harmonic_signs(l).tolist() == [(-1.0) ** m for m in range(-l, l + 1)]


def test_gpaw_orbitals_reordered_like_siesta(gpaw):
    index, sign = orbital_permutation("B")
    # GPAW: s1 p1(3) s2 p2(3) d(5); SIESTA: s1 s2 p1(3) p2(3) d(5)
    assert index.tolist() == [0, 4, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12]
    assert sign.tolist() == [1, 1, -1, 1, -1, -1, 1, -1, 1, -1, 1, -1, 1]


def test_gpaw_dzp_is_sietas_dzp_shape(gpaw):
    for symbol in ("B", "N"):
        species = gpaw_species(symbol)
        assert species.n_orbitals == 13 and species.irreps == "2x0e+2x1o+1x2e"
        assert [s.label for s in species.shells] == ["2sZ1", "2sZ2", "2pZ1", "2pZ2", "3dZ1P"]
        assert 0 < species.projector_radius < species.max_radius
    assert gpaw_species("B").max_radius == pytest.approx(8.21875 * 0.529177210903)


def test_unknown_element_has_no_gpaw_basis(gpaw):
    with pytest.raises(MissingBasisError, match="Xx"):
        gpaw_species("Xx")


@pytest.mark.parametrize("grid", [(3, 1, 1), (4, 4, 1), (5, 2, 3)])
def test_grid_kpoints_hold_one_of_every_k_minus_k_pair(grid):
    grid = np.array(grid)
    chosen = np.round(grid_kpoints(grid) * grid).astype(int)
    covered = {tuple(k) for k in chosen} | {tuple((-k) % grid) for k in chosen}
    assert len(covered) == np.prod(grid)
    assert len(chosen) == len({tuple(k) for k in chosen})


def test_fourier_grid_gives_every_image_its_own_point(bn_record):
    graph = build_pair_graph(bn_record.atoms, bn_record.basis, reach="overlap")
    grid = np.array(fourier_grid(graph, bn_record.atoms.pbc))
    wrapped = graph.shifts % grid
    keys = {(i, j, *s) for (i, j), s in zip(graph.pairs, map(tuple, wrapped))}
    assert len(keys) == graph.n_edges


# ------------------------------------------------------------ exact H(R), S(R)
def test_h_and_s_of_cbn_match_gpaw_off_the_fourier_grid(cbn_reference):
    settings, reference = cbn_reference
    assert off_grid_check(reference, settings) < 1e-5
    assert off_grid_check(reference, settings, kpoint=(0.31, -0.07, 0.44)) < 1e-5


def test_cbn_record_is_hermitian_and_referenced_to_the_fermi_level(cbn_reference):
    _, reference = cbn_reference
    record = reference.record
    h_error, s_error = record.hermiticity_error()
    assert h_error < 1e-10 and s_error < 1e-12
    bands = record.eigenvalues(np.array([[0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0.0]]))[0]
    valence_top, conduction_bottom = bands[bands < 0].max(), bands[bands > 0].min()
    # PBE gap of cBN is about 4.5 eV (indirect Gamma-X); E_F lies inside it
    assert 3.5 < conduction_bottom - valence_top < 6.0


def test_harris_record_has_the_scf_overlap_and_lacks_the_charge_moved_to_n(cbn_reference):
    """S does not depend on the density; H at the neutral atoms' potential lacks the electrons that the
    SCF moves from B to N, whose repulsion raises N's orbital energies against B's."""
    from hforge_nb.error_anatomy import orbital_energies

    settings, reference = cbn_reference
    scf = reference.record
    harris = harris_record(scf.atoms, settings)
    assert harris.provenance.settings["potential"] == "harris" and harris.hermiticity_error()[0] < 1e-10
    assert np.array_equal(harris.pairs, scf.pairs) and np.array_equal(harris.shifts, scf.shifts)
    np.testing.assert_allclose(harris.s_values, scf.s_values, atol=1e-12)
    scf_h = scf.h_values[:, 0] + scf.fermi_level * scf.s_values  # [n_values] eV, in GPAW's zero as Harris's
    change = orbital_energies(harris.h_values[:, 0], harris) - orbital_energies(scf_h, scf)  # [n_atoms, 5] eV
    species = np.array(scf.species)
    n_less_b = change[species == "N"].mean(axis=0) - change[species == "B"].mean(axis=0)  # shells s, s, p, p, d
    assert n_less_b[[0, 2]].max() < -0.5


def test_matrices_match_gpaw_and_pin_the_phase_convention(cbn_reference):
    """H(k), S(k) themselves agree; with R on the other atom (the other sign) they would not."""
    import dataclasses

    settings, reference = cbn_reference
    h_error, s_error = off_grid_matrix_error(reference, settings)
    assert h_error < 1e-6 and s_error < 1e-8
    flipped = dataclasses.replace(reference, record=dataclasses.replace(reference.record,
                                                                        shifts=-reference.record.shifts))
    assert min(off_grid_matrix_error(flipped, settings)) > 1e-3


def test_atoms_outside_the_cell_keep_their_blocks(cbn_reference):
    """GPAW wraps atoms into the cell; the record keeps the positions given and labels images from them."""
    from hforge_nb.crystals import cubic_bn

    settings, reference = cbn_reference
    moved_by = np.zeros((8, 3), int)
    moved_by[1], moved_by[6] = (1, 0, 0), (0, -1, 2)  # lattice vectors: the same crystal
    atoms = cubic_bn(cubic=True)
    atoms.positions += moved_by @ atoms.cell.array
    moved = gpaw_record(atoms, settings)
    first, second = reference.record, moved.record
    # the block between the same two atoms at the same distance vector
    wanted = first.shifts - moved_by[first.pairs[:, 1]] + moved_by[first.pairs[:, 0]]
    index = second.find_blocks(first.pairs, wanted)
    assert (index >= 0).all() and second.n_blocks == first.n_blocks
    h_error = max(np.abs(first.block(b)[0] - second.block(c)[0]).max() for b, c in enumerate(index))
    assert h_error < 1e-8
    h_matrix_error, s_matrix_error = off_grid_matrix_error(moved, settings)
    assert h_matrix_error < 1e-6 and s_matrix_error < 1e-8


def test_translation_by_whole_grid_steps_leaves_h_and_by_half_steps_moves_it(cbn_reference):
    """Half a grid step shows the grid's egg-box error; whole steps map the grid onto itself (cBN: gap 4.5 eV)."""
    settings, reference = cbn_reference
    assert planned_grid(reference.record.atoms, settings) == real_space_grid(reference.calculator)
    half = translation_deviation(reference.record, settings, grid_steps=(0.5, 0.5, 0.5), window=4.0)
    whole = translation_deviation(reference.record, settings, grid_steps=(1.0, 2.0, -1.0), window=4.0)
    assert half["s_max_error"] < 1e-10 and whole["s_max_error"] < 1e-10  # S: two-centre integrals
    assert 0.01 < half["h_mae_meV"] and 1.0 < half["h_orbital_energy_mae_meV"] < 200.0
    assert whole["h_orbital_energy_mae_meV"] < 0.01 * half["h_orbital_energy_mae_meV"]
    assert half["eigenvalue_mae_meV"] > 10 * whole["eigenvalue_mae_meV"]


def test_denser_scf_kpoints_move_h_but_not_s(cbn_reference):
    settings, reference = cbn_reference
    deviation = kpoint_deviation(reference.record, settings, kpoint_spacing=0.8, window=4.0)
    assert deviation["scf_kgrid"] == [2, 2, 2] and deviation["denser_scf_kgrid"] == [3, 3, 3]
    assert deviation["s_max_error"] < 1e-10  # S does not depend on the density
    assert 0.1 < deviation["h_orbital_energy_mae_meV"] and 0.0 < deviation["eigenvalue_mae_meV"] < 100.0


def test_rotated_cluster_gives_wigner_d_rotated_blocks(gpaw):
    """GPAW on a rotated structure gives D(Q) H D(Q)^T: the orbital conventions are SIESTA's."""
    # the grid's egg-box error in H grows fast with h; at h = 0.2 Å it is about 0.01 eV
    deviation = rotation_deviation(GPAWSettings(**{**FAST_GPAW, "grid_spacing": 0.2}))
    assert deviation["s_error"] < 1e-6
    assert deviation["h_error_eV"] < 0.02 < deviation["h_change_eV"]


def test_unconverged_scf_is_refused(gpaw):
    settings = GPAWSettings(**{**FAST_GPAW, "max_iterations": 2})
    with pytest.raises(SCFNotConvergedError, match="not converged in 2 iterations"):
        gpaw_record(b2n2_cluster(), settings)


# ------------------------------------------------------------ data sets
def test_unconverged_sample_is_flagged_and_left_out(gpaw, tmp_path):
    spec = dataset.SampleSpec("cBN", "cBN", "reference")
    settings = GPAWSettings(**{**FAST_GPAW, "max_iterations": 2})
    entry = dataset.compute_sample(spec, settings, tmp_path)
    assert entry["status"] == "not-converged" and "file" not in entry
    assert not (tmp_path / "samples").exists()
    plan = dataset.DatasetPlan(train_sizes=(), crystals=False)
    manifest = dataset.write_manifest(plan, settings, dataset.StoragePolicy(), tmp_path)
    assert manifest["totals"]["n_converged"] == 0


def test_the_settings_of_a_data_set_are_read_back_from_its_manifest(tmp_path):
    settings = GPAWSettings(**FAST_GPAW)
    dataset.write_manifest(dataset.DatasetPlan(train_sizes=(), crystals=False), settings, dataset.StoragePolicy(),
                           tmp_path)
    assert dataset.read_gpaw_settings(tmp_path) == settings


def test_harris_records_are_computed_once_and_then_read(tmp_path, monkeypatch, bn_record):
    computed = []
    monkeypatch.setattr(dataset, "harris_record", lambda atoms, settings, source: computed.append(source) or bn_record)
    first = dataset.harris_records({"cell": bn_record}, GPAWSettings(), tmp_path)
    again = dataset.harris_records({"cell": bn_record}, GPAWSettings(), tmp_path)
    assert computed == ["cell (Harris)"] and (tmp_path / "cell.npz").exists()
    assert records_equal(first["cell"], bn_record) and records_equal(again["cell"], bn_record)


def test_finished_samples_are_not_recomputed(tmp_path):
    plan = dataset.DatasetPlan(train_sizes=(8,), crystals=False)
    name = plan.samples()[0].name
    done = {"name": name, "status": "not-converged", "error": "marker", "n_atoms": 8}
    (tmp_path / "entries").mkdir()
    (tmp_path / "entries" / f"{name}.json").write_text(json.dumps(done))
    manifest = dataset.build_dataset(plan, GPAWSettings(), tmp_path, progress=False)
    assert manifest["samples"] == [done] and not (tmp_path / "logs").exists()


def test_samples_too_large_for_the_memory_are_not_started(tmp_path):
    plan = dataset.DatasetPlan(train_sizes=(), holdout_sizes=(128,), crystals=False)
    manifest = dataset.build_dataset(plan, GPAWSettings(), tmp_path, progress=False, memory_GB=8.0)
    (refused,) = manifest["failed"]
    assert refused["name"] == "aBN-0128-holdout-00" and refused["error"].startswith("MemoryError: not started")
    assert "9.4 GB for 128 atoms" in refused["error"] and "8.0 GB are available" in refused["error"]
    assert manifest["samples"] == [] and not (tmp_path / "logs").exists()  # nothing was computed
    assert json.loads((tmp_path / "manifest.json").read_text())["failed"] == [refused]


def test_a_killed_worker_is_named_and_finished_samples_are_kept(tmp_path, monkeypatch):
    class KilledPool(concurrent.futures.ThreadPoolExecutor):
        """Finishes the first sample (a prepared entry) and then loses its worker, as the OOM killer does."""

        def __init__(self, max_workers):
            super().__init__(max_workers)
            self.calls = 0

        def submit(self, function, spec, *args):
            self.calls += 1
            future = concurrent.futures.Future()
            if self.calls == 1:
                entry = {"name": spec.name, "status": "not-converged", "error": "marker", "n_atoms": 8}
                write_json(tmp_path / "entries" / f"{spec.name}.json", entry)
                future.set_result(entry)
            else:
                future.set_exception(concurrent.futures.process.BrokenProcessPool("terminated abruptly"))
            return future

    monkeypatch.setattr(dataset, "spawn_pool", KilledPool)
    plan = dataset.DatasetPlan(train_sizes=(8,), n_train_per_size=2, crystals=False)
    with pytest.raises(RuntimeError, match="worker process died without an error .* kept in"):
        dataset.build_dataset(plan, GPAWSettings(), tmp_path, progress=False, memory_GB=8.0)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [entry["name"] for entry in manifest["samples"]] == ["aBN-0008-train-00"]


def test_memory_estimate_follows_the_measured_sizes():
    for n_atoms, peak in gpaw_memory.MEASURED_PEAK_GB:
        assert gpaw_memory.estimate_peak_memory_GB(n_atoms) == pytest.approx(peak)
    sizes = [2, 8, 12, 24, 48, 96, 216, 512]
    estimates = [gpaw_memory.estimate_peak_memory_GB(n) for n in sizes]
    assert estimates == sorted(estimates) and estimates[0] == estimates[1]  # never falls; flat below 8 atoms
    assert 0.44 < gpaw_memory.estimate_peak_memory_GB(12) < 0.67  # between its neighbours
    assert gpaw_memory.workers_that_fit(9.4, workers=2, memory_GB=24.0) == 2
    assert gpaw_memory.workers_that_fit(20.4, workers=2, memory_GB=24.0) == 1
    assert gpaw_memory.workers_that_fit(0.0, workers=2, memory_GB=24.0) == 2
    assert gpaw_memory.available_memory_GB() > 0


def test_large_samples_run_fewer_at_a_time_after_the_others():
    specs = dataset.DatasetPlan(train_sizes=(16,), n_train_per_size=2, holdout_sizes=(128,), crystals=False).samples()
    groups, refused = dataset._memory_groups(specs, workers=2, memory_GB=15.0)  # two 16-atom runs fit, one 128
    assert [(n, [s.name for s in group]) for n, group in groups] == [
        (2, ["aBN-0016-train-00", "aBN-0016-train-01"]), (1, ["aBN-0128-holdout-00"])]
    assert refused == []
    assert dataset._memory_groups(specs, workers=2, memory_GB=None) == ([(2, specs)], [])


def test_memory_points_are_the_measured_ones():
    root = Path(__file__).parents[1]
    benchmark = json.loads((root / "benchmarks" / "results" / "gpaw_cost.json").read_text())["samples"]
    measured = {s["n_atoms"]: round(s["peak_rss_GB"], 2) for s in benchmark}
    measured[64] = 3.35  # aBN-0064-holdout-00 in the manifest of data/aBN-dzp at commit e9eb27e (h = 0.25 Å)
    assert measured == dict(gpaw_memory.MEASURED_PEAK_GB)
    committed = json.loads((root / "data" / "aBN-dzp" / "manifest.json").read_text())["samples"]
    peak_64 = next(s["peak_rss_GB"] for s in committed if s["name"] == "aBN-0064-holdout-00")
    assert measured[64] < peak_64 < 1.35 * measured[64]  # the finer grid of the committed data needs more, as said


def test_sample_atoms_are_known_before_the_structure_is_made():
    specs = dataset.DatasetPlan(train_sizes=(8,), holdout_sizes=(64,), crystals=True, n_rattled=1).samples()
    assert {s.name: s.n_atoms for s in specs} == {"aBN-0008-train-00": 8, "aBN-0064-holdout-00": 64, "hBN": 4,
                                                  "cBN": 2, "hBN-rattled-00": 16, "cBN-rattled-00": 16}


def test_corrupt_entry_is_named(tmp_path):
    (tmp_path / "entries").mkdir()
    (tmp_path / "entries" / "x.json").write_text("{trunc")
    with pytest.raises(CorruptFileError, match="x.json"):
        dataset.finished_entries(tmp_path)


def test_missing_or_foreign_manifest_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="01_dataset"):
        dataset.read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CorruptFileError, match="hforge-nb-dataset"):
        dataset.read_manifest(tmp_path)


def test_plan_names_are_unique_and_splits_kept_apart():
    plan = dataset.DatasetPlan(train_sizes=(8, 16), n_train_per_size=3, holdout_sizes=(64,), n_rattled=2)
    specs = plan.samples()
    assert len({s.name for s in specs}) == len(specs) == 3 * 2 + 1 + 2 + 4
    assert {s.split for s in specs if s.kind == "amorphous" and s.schedule.n_atoms == 64} == {"holdout"}
    assert len({s.seed for s in specs if s.kind == "amorphous"}) == 7


def test_plan_with_a_count_per_size_keeps_the_seeds_of_a_plan_with_one_count():
    one_count = {s.name: s.seed for s in dataset.DatasetPlan(train_sizes=(8, 16), n_train_per_size=3).samples()}
    per_size = {s.name: s.seed for s in dataset.DatasetPlan(train_sizes=(8, 16), n_train_per_size=[3, 5]).samples()}
    assert {name: per_size[name] for name in one_count} == one_count  # extending a size keeps its first cells
    assert sorted(set(per_size) - set(one_count)) == ["aBN-0016-train-03", "aBN-0016-train-04"]
    with pytest.raises(ValueError, match="n_train_per_size has 1 counts for 2 training sizes"):
        dataset.DatasetPlan(train_sizes=(8, 16), n_train_per_size=[3])


def test_unknown_sample_kind_is_refused():
    with pytest.raises(ValueError, match="unknown sample kind 'wBN'"):
        dataset.SampleSpec("x", "wBN", "train")


# ------------------------------------------------------------ storage
def test_unseen_records_leave_out_repeats_under_other_names_and_other_sizes():
    cells = {f"cell-{seed}": random_record(hbn_atoms(rattle=0.05, seed=seed)) for seed in range(3)}
    used = {"renamed-cell-0": cells["cell-0"], "cell-1": cells["cell-1"]}
    assert sorted(dataset.unseen_records(cells, used)) == ["cell-2"]
    assert dataset.unseen_records(cells, used, sizes={8}) == {}
    shifted = cells["cell-2"].atoms.copy()
    shifted.positions += [0.7, 0.2, -1.1]  # Å: the same structure from another origin
    assert dataset.unseen_records(cells, {"shifted-cell-2": random_record(shifted)}).keys() == {"cell-0", "cell-1"}


def test_distinct_records_keep_the_first_name_of_each_structure():
    cells = {f"cell-{seed}": random_record(hbn_atoms(rattle=0.05, seed=seed)) for seed in range(2)}
    renumbered = random_record(cells["cell-0"].atoms[[2, 1, 0, 3]])
    kept, repeats = dataset.distinct_records({**cells, "cell-2": renumbered, "a-cell": cells["cell-1"]})
    assert sorted(kept) == ["a-cell", "cell-0"] and repeats == {"cell-1": "a-cell", "cell-2": "cell-0"}
    assert dataset.distinct_records(cells) == (cells, {})


def test_fewer_training_cells_leave_validation_and_test_cells_unchanged():
    from types import SimpleNamespace
    records = {f"cell-{n:03d}-{k:02d}": SimpleNamespace(n_atoms=n) for n in (8, 16) for k in range(6)}
    every, fewer = dataset.split_by_size(records), dataset.split_by_size(records, n_train=2)
    assert (fewer.validation, fewer.test) == (every.validation, every.test)
    assert fewer.train == ("cell-008-00", "cell-008-01", "cell-016-00", "cell-016-01")
    assert set(fewer.train) < set(every.train) and len(every.train) == 8
    with pytest.raises(ValueError, match="cannot give 1 for validation, 1 for testing and 5 for training"):
        dataset.split_by_size(records, n_train=5)
    with pytest.raises(ValueError, match="n_train must be 0"):
        dataset.split_by_size(records, n_train=-1)


def test_a_repeated_training_structure_is_never_the_test_cell():
    cells = {f"cell-{seed}": random_record(hbn_atoms(rattle=0.05, seed=seed)) for seed in range(3)}
    cells["cell-9"] = random_record(cells["cell-0"].atoms[[3, 2, 1, 0]])  # cell-0 renumbered, last by name
    split, repeats = dataset.distinct_split(cells)
    assert split.as_dict() == {"train": ["cell-0"], "validation": ["cell-1"], "test": ["cell-2"]}
    assert repeats == {"cell-9": "cell-0"}
    assert dataset.split_by_size(cells).test == ("cell-9",)  # what splitting by name alone would test on


def test_rattled_crystals_train_and_never_validate_or_test(tmp_path):
    # the full profile's data: rattled hBN cells as large as the aBN cells, and last by name
    cells = {f"aBN-{seed}": random_record(hbn_atoms(rattle=0.05, seed=seed)) for seed in range(3)}
    cells.update({f"hBN-rattled-0{seed}": random_record(hbn_atoms(rattle=0.1, seed=10 + seed)) for seed in range(2)})
    manifest = {"format": dataset.FORMAT, "version": dataset.VERSION, "samples": [
        {"name": name, "split": "train", "kind": "rattled-hBN" if "rattled" in name else "amorphous"} for name in cells]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    rattled = dataset.rattled_crystal_names(tmp_path)
    assert rattled == {"hBN-rattled-00", "hBN-rattled-01"}
    split, _ = dataset.distinct_split(cells, train_only=rattled)
    assert split.as_dict() == {"train": ["aBN-0", "hBN-rattled-00", "hBN-rattled-01"], "validation": ["aBN-1"],
                               "test": ["aBN-2"]}
    assert dataset.distinct_split(cells)[0].test == ("hBN-rattled-01",)  # what the split by size alone tests on


def test_more_training_cells_leave_out_repeats_of_each_other_and_of_the_test_cells(tmp_path, monkeypatch):
    cells = {f"cell-{seed}": random_record(hbn_atoms(rattle=0.05, seed=seed)) for seed in range(3)}
    new = random_record(hbn_atoms(rattle=0.05, seed=5))
    extra = {"a": new, "b": random_record(new.atoms[[1, 0, 3, 2]]), "c": random_record(cells["cell-2"].atoms[::-1])}
    monkeypatch.setattr(dataset, "read_samples", lambda folder, split: extra if split == "train" else {})
    split = dataset.DataSplit(("cell-0",), ("cell-1",), ("cell-2",))
    more, added, repeats = dataset.more_training_cells(tmp_path / "extra", split, cells)
    assert more == dataset.DataSplit(("cell-0", "extra/a"), ("cell-1",), ("cell-2",)) and list(added) == ["extra/a"]
    assert repeats == {"extra/b": "extra/a", "extra/c": "cell-2"}


def test_a_limit_adds_the_first_distinct_cells_of_the_other_folder(tmp_path, monkeypatch):
    cells = {f"cell-{seed}": random_record(hbn_atoms(rattle=0.05, seed=seed)) for seed in range(3)}
    extra = {"a": random_record(cells["cell-2"].atoms[::-1]),  # a repeat: not counted by the limit
             **{name: random_record(hbn_atoms(rattle=0.05, seed=seed)) for name, seed in (("c", 7), ("b", 6))}}
    monkeypatch.setattr(dataset, "read_samples", lambda folder, split: extra if split == "train" else {})
    split = dataset.DataSplit(("cell-0",), ("cell-1",), ("cell-2",))
    one, added, _ = dataset.more_training_cells(tmp_path / "extra", split, cells, limit=1)
    assert one.train == ("cell-0", "extra/b") and list(added) == ["extra/b"]  # the first by name
    assert dataset.more_training_cells(tmp_path / "extra", split, cells, limit=5)[0].train == (
        "cell-0", "extra/b", "extra/c")  # a limit above the cells adds them all
    with pytest.raises(ValueError, match="limit must be 0"):
        dataset.more_training_cells(tmp_path / "extra", split, cells, limit=-1)


def test_stored_records_lose_less_than_a_microvolt(bn_record, tmp_path):
    policy = dataset.StoragePolicy(tolerance=1e-8, precision="float32")
    errors = dataset.store_record(bn_record, tmp_path / "r.npz", policy)
    stored = read_record(tmp_path / "r.npz")
    assert errors["storage_error_eV"] <= errors["storage_error_all_bands_eV"] < 1e-4
    assert stored.hermiticity_error()[0] < 1e-6
    assert records_equal(stored, drop_small_blocks(bn_record, 1e-8), atol=2e-6)  # float32, blocks in (i, j, R) order


def test_rewriting_a_v1_data_set_halves_its_records_and_changes_no_value(bn_record, tmp_path):
    path = write_record_v1(bn_record, tmp_path / "samples" / "x.npz")
    entry = {"name": "x", "status": "converged", "file": "samples/x.npz", "file_MB": path.stat().st_size / 1e6}
    write_json(tmp_path / "entries" / "x.json", entry)
    write_json(tmp_path / "entries" / "y.json", {"name": "y", "status": "not-converged"})
    assert dataset.rewrite_records(tmp_path, "float64") == ["x"]
    rewritten = json.loads((tmp_path / "entries" / "x.json").read_text())
    assert rewritten["file_MB"] == path.stat().st_size / 1e6 < 0.6 * entry["file_MB"]
    assert records_equal(read_record(path), bn_record)


def test_dropping_small_blocks_keeps_on_site_blocks_and_hermiticity(bn_record):
    dropped = drop_small_blocks(bn_record, tolerance=np.inf)
    assert dropped.n_blocks == bn_record.n_atoms
    assert (dropped.pairs[:, 0] == dropped.pairs[:, 1]).all() and not dropped.shifts.any()
    assert dropped.hermiticity_error() == (0.0, 0.0)


def test_unknown_precision_is_refused(bn_record, tmp_path):
    with pytest.raises(ValueError, match="precision"):
        write_record(bn_record, tmp_path / "r.npz", precision="float16")


def test_committed_data_set_is_complete_checked_and_small():
    from hforge_nb.paths import project_root

    folder = project_root() / "data" / "aBN-dzp"
    manifest = dataset.read_manifest(folder)
    assert {s["split"] for s in manifest["samples"]} == {"train", "holdout", "reference"}
    assert all(s["status"] == "converged" for s in manifest["samples"])
    assert manifest["totals"]["max_off_grid_error_eV"] < 1e-5
    assert manifest["totals"]["max_storage_error_eV"] < 1e-5
    assert sum(p.stat().st_size for p in folder.rglob("*")) < 80e6  # the design allows "tens of MB at most"; 60 MB with the 32-atom cell
    holdout = dataset.read_samples(folder, split="holdout")
    assert sorted(r.n_atoms for r in holdout.values()) == [32, 64]
    for record in holdout.values():
        assert record.basis["B"].n_orbitals == 13 and record.hermiticity_error()[0] < 1e-5


def _manifest_sample(name: str, n_atoms: int, homopolar: float, md: float, dft: float, kind: str = "amorphous",
                     status: str = "converged") -> dict:
    """A manifest entry with only what :func:`dataset.energy_table` reads (energies per atom, eV)."""
    return {"name": name, "kind": kind, "status": status, "n_atoms": n_atoms,
            "structure": {"homopolar_fraction": homopolar}, "made": {"md_energy_per_atom_eV": md},
            "energy_eV": dft * n_atoms}


def test_energy_ranks_of_md_and_dft_are_compared_per_size():
    samples = [_manifest_sample(f"c16-{k}", 16, h, md, dft)  # DFT rises with homopolar bonds, the MD falls
               for k, (h, md, dft) in enumerate([(0.0, -6.1, -7.9), (0.2, -6.5, -7.1), (0.4, -6.9, -6.4)])]
    samples += [_manifest_sample("c16-repeat", 16, 0.0, -9.0, -9.0), _manifest_sample("c8-0", 8, 0.1, -6.0, -7.0),
                _manifest_sample("hBN", 16, 0.0, -7.0, -8.0, kind="hBN"),
                _manifest_sample("c16-failed", 16, 0.5, -7.0, 0.0, status="not-converged")]
    rows = dataset.energy_table({"samples": samples}, leave_out={"c16-repeat"})
    assert [row["name"] for row in rows] == ["c16-0", "c16-1", "c16-2", "c8-0"]
    assert rows[0]["dft_energy_per_atom_eV"] == pytest.approx(-7.9)
    agreement = dataset.energy_rank_agreement(rows)
    assert agreement[16] == pytest.approx({"n_cells": 3, "md_vs_dft": -1.0, "homopolar_vs_md": -1.0,
                                           "homopolar_vs_dft": 1.0})
    assert agreement[8]["n_cells"] == 1 and np.isnan(agreement[8]["md_vs_dft"])
    with_repeat = dataset.energy_rank_agreement(dataset.energy_table({"samples": samples}))
    assert with_repeat[16]["n_cells"] == 4 and with_repeat[16]["md_vs_dft"] != pytest.approx(-1.0)


def test_manifest_table_has_one_row_per_converged_sample_and_the_totals():
    from hforge_nb.manifest_table import COLUMNS, markdown_table

    structure = {"density": 2.1, "coordination_B": 3.0, "coordination_N": 2.75, "homopolar_fraction": 0.25,
                 "sp2_fraction": 0.875, "sp3_fraction": 0.125}
    done = {"name": "aBN-0008-train-00", "split": "train", "n_atoms": 8, "status": "converged",
            "structure": structure, "scf_kgrid": [3, 3, 3], "scf_iterations": 11,
            "timings_s": {"scf": 91.6, "fourier": 19.5}, "peak_rss_GB": 0.444, "off_grid_error_eV": 1.24e-10,
            "storage_error_eV": 9.96e-07, "file_MB": 1.054}
    failed = {**done, "name": "aBN-0008-train-01", "status": "not-converged"}
    totals = {"n_samples": 2, "n_converged": 1, "n_atoms": 8, "gpaw_seconds": 111.1, "size_MB": 1.054,
              "max_off_grid_error_eV": 1.24e-10, "max_storage_error_eV": 9.96e-07,
              "max_storage_error_all_bands_eV": 0.0105}
    lines = markdown_table({"samples": [done, failed], "totals": totals}).splitlines()
    assert lines[0].count("|") == len(COLUMNS) + 1
    assert lines[2] == ("| aBN-0008-train-00 | train | 8 | 2.10 | 3.00 | 2.75 | 0.25 | 0.88 | 0.12 | 3 x 3 x 3 | 11 "
                        "| 92 + 20 | 0.44 | 1.2e-10 | 1.0e-06 | 1.1 |")
    assert len(lines) == 5 and lines[3] == ""  # the failed sample has no row
    assert lines[4].startswith("Totals: 1 of 2 samples converged, 8 atoms, 111 s of GPAW")
