"""Melt-and-quench aBN and structure statistics."""

from __future__ import annotations

import json
from dataclasses import replace

import ase
import numpy as np
import pytest

from hforge_nb.chemical_order import bond_neighbours, count_homopolar, order_by_swaps, swap_change
from hforge_nb.crystals import cubic_bn, hexagonal_bn
from hforge_nb.md_order import main as md_order_main
from hforge_nb.md_order import order_rows, schedule_variants, summarize_order
from hforge_nb.melt_quench import MeltQuenchSchedule, crystal_start, cubic_box_length, melt_quench, potential_file
from hforge_nb.structure import same_structure
from hforge_nb.structure_stats import mass_density, structure_stats


def test_ideal_crystals_have_textbook_short_range_order():
    hbn, cbn = structure_stats(hexagonal_bn()), structure_stats(cubic_bn())
    assert (hbn.coordination_B, hbn.coordination_N, hbn.sp2_fraction, hbn.homopolar_fraction) == (3, 3, 1, 0)
    assert (cbn.coordination_B, cbn.sp3_fraction) == (4, 1)
    assert hbn.density == pytest.approx(2.28, abs=0.01) and cbn.density == pytest.approx(3.49, abs=0.01)


def test_crystal_start_has_the_target_density_and_composition():
    atoms = crystal_start(64, 2.1, seed=1)
    assert mass_density(atoms) == pytest.approx(2.1, rel=1e-9)
    assert atoms.get_chemical_formula() == "B32N32"


def test_box_length_gives_the_density():
    length = cubic_box_length(64, 2.1)
    mass = 32 * (10.811 + 14.007)  # amu
    assert mass * 1.66053906660 / length**3 == pytest.approx(2.1, rel=1e-3)


def test_ships_the_extep_potential(lammps):
    assert "Los et al. Phys. Rev. B 96, 184108" in potential_file().read_text()[:300]


def test_quench_makes_a_disordered_bonded_network(lammps):
    schedule = MeltQuenchSchedule(n_atoms=16, melt_time=1.0, anneal_time=0.5, quench_rate=2000.0, seed=4)
    result = melt_quench(schedule)
    stats = structure_stats(result.atoms)
    assert stats.density == pytest.approx(2.1, rel=1e-9)
    assert stats.min_distance > 1.2  # no overlapping atoms, no N2 molecules (1.11 Å)
    assert 2.5 < (stats.coordination_B + stats.coordination_N) / 2 < 4.0
    assert stats.sp2_fraction < 1.0  # no longer the crystal it started from (all sp3)
    assert result.energy_per_atom < -5.0 and np.isfinite(result.atoms.positions).all()


def test_same_seed_same_structure(lammps):
    schedule = MeltQuenchSchedule(n_atoms=8, melt_time=0.2, anneal_time=0.1, quench_rate=20000.0, seed=9)
    assert np.allclose(melt_quench(schedule).atoms.positions, melt_quench(schedule).atoms.positions)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_atoms": 7}, "even"),
    ({"n_atoms": 12}, "multiple of 8"),
    ({"density": 40.0}, "plausible"),
    ({"initial": "liquid"}, "initial"),
])
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MeltQuenchSchedule(**kwargs)


def test_same_structure_tells_repeats_from_different_cells():
    atoms = crystal_start(16, 2.1, seed=3)
    atoms.rattle(0.2, seed=1)  # no symmetry left: swapping elements gives another structure
    moved, swapped, stretched = atoms.copy(), atoms.copy(), atoms.copy()
    moved.positions[0, 2] += 0.01  # Å
    swapped.set_chemical_symbols(atoms.get_chemical_symbols()[::-1])
    stretched.set_cell(atoms.cell.array * 1.01, scale_atoms=True)
    assert not any(same_structure(atoms, other) for other in (moved, swapped, stretched, atoms * (2, 1, 1)))
    wrapped = atoms.copy()
    wrapped.positions[1] += atoms.cell[0] - atoms.cell[2]  # the same atom one cell over
    shifted = atoms.copy()
    shifted.positions += [1.3, -0.4, 2.2]  # the whole structure moved: another origin
    renumbered = atoms[np.random.default_rng(0).permutation(len(atoms))]
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90° about z
    rotated = ase.Atoms(atoms.get_chemical_symbols(), positions=atoms.positions @ rotation.T,
                        cell=atoms.cell.array @ rotation.T, pbc=True)
    mirrored = atoms.copy()
    mirrored.positions[:, 0] *= -1  # the cube is its own mirror image along x
    for repeat in (atoms.copy(), wrapped, shifted, renumbered, rotated, mirrored):
        assert same_structure(atoms, repeat)
    molecule = ase.Atoms("BN", positions=[[0, 0, 0], [1.4, 0, 0]])  # no cell: nothing wraps
    longer = molecule.copy()
    longer.positions[1, 0] += 1e-2
    assert same_structure(molecule, molecule.copy()) and not same_structure(molecule, longer)
    assert not same_structure(molecule, ase.Atoms("BN", positions=[[0, 0, 0], [1.4, 0, 0]], cell=[9, 9, 9], pbc=True))


# ------------------------------------------------------------ chemical order against the MD schedule
def test_schedule_variants_vary_one_setting_at_a_time():
    base = MeltQuenchSchedule(n_atoms=16)
    variants = schedule_variants(base, quench_rates=[30, base.quench_rate], densities=[2.4])
    assert variants == [base, replace(base, quench_rate=30.0), replace(base, density=2.4)]


def test_order_summary_per_setting():
    rows = [{"quench_rate": 100.0, "density": 2.1, "homopolar_fraction": h} for h in (0.0, 0.3, 0.6)]
    rows += [{"quench_rate": 10.0, "density": 2.1, "homopolar_fraction": 0.0}]
    assert summarize_order(rows) == [
        {"quench_rate": 100.0, "density": 2.1, "n_cells": 3, "mean_homopolar_fraction": pytest.approx(0.3),
         "n_without_homopolar_bonds": 1},
        {"quench_rate": 10.0, "density": 2.1, "n_cells": 1, "mean_homopolar_fraction": 0.0,
         "n_without_homopolar_bonds": 1}]


def test_md_order_rows_are_the_cells_melt_quench_makes(lammps):
    base = MeltQuenchSchedule(n_atoms=8, melt_time=0.2, anneal_time=0.1, quench_rate=20000.0)
    rows = order_rows(schedule_variants(base, densities=[2.4]), range(2, 4))
    assert [(r["density"], r["seed"]) for r in rows] == [(2.1, 2), (2.1, 3), (2.4, 2), (2.4, 3)]
    direct = structure_stats(melt_quench(replace(base, density=2.4, seed=3)).atoms)
    assert rows[3]["homopolar_fraction"] == pytest.approx(direct.homopolar_fraction)
    assert rows[3]["sp3_fraction"] == pytest.approx(direct.sp3_fraction)


def test_md_order_command_writes_cells_and_summary(lammps, tmp_path):
    out = tmp_path / "order" / "md_order.json"
    assert md_order_main(["--n-atoms", "8", "--seeds", "1", "--densities", "2.4", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert [(c["density"], c["seed"]) for c in written["cells"]] == [(2.1, 1), (2.4, 1)]
    assert [s["mean_homopolar_fraction"] for s in written["summary"]] == [
        c["homopolar_fraction"] for c in written["cells"]]
    assert written["base_schedule"]["n_atoms"] == 8


# ------------------------------------------------------------ B-N swaps towards chemical order
def _scrambled_cbn(seed: int = 0) -> ase.Atoms:
    """A 64-atom cBN supercell with half its sites given the other element: many homopolar bonds."""
    atoms = cubic_bn(cubic=True).repeat((2, 2, 2))
    symbols = np.array(atoms.get_chemical_symbols())
    rng = np.random.default_rng(seed)
    boron, nitrogen = rng.choice(np.flatnonzero(symbols == "B"), 8), rng.choice(np.flatnonzero(symbols == "N"), 8)
    symbols[boron], symbols[nitrogen] = "N", "B"
    atoms.set_chemical_symbols(symbols)
    return atoms


def test_swaps_restore_the_order_of_a_scrambled_crystal():
    scrambled = _scrambled_cbn()
    result = order_by_swaps(scrambled, seed=1)
    assert result.homopolar_before > 20 and result.homopolar_after == 0
    assert structure_stats(result.atoms).homopolar_fraction == 0.0
    assert result.n_bonds == 128  # four bonds per atom, each counted once
    assert result.atoms.get_chemical_formula() == scrambled.get_chemical_formula()
    assert np.array_equal(result.atoms.positions, scrambled.positions)
    homopolar = structure_stats(scrambled).homopolar_fraction * result.n_bonds
    assert result.homopolar_before == pytest.approx(homopolar)


def test_swap_change_is_the_change_in_homopolar_bonds():
    atoms = crystal_start(16, 2.1, seed=2)
    atoms.rattle(0.3, seed=3)
    atoms.set_chemical_symbols(np.random.default_rng(4).permutation(atoms.get_chemical_symbols()))
    neighbours = bond_neighbours(atoms)
    is_boron = np.array(atoms.get_chemical_symbols()) == "B"
    for boron in np.flatnonzero(is_boron):
        for nitrogen in np.flatnonzero(~is_boron):
            swapped = is_boron.copy()
            swapped[[boron, nitrogen]] = [False, True]
            expected = count_homopolar(swapped, neighbours) - count_homopolar(is_boron, neighbours)
            assert swap_change(is_boron, neighbours, boron, nitrogen) == expected


def test_swaps_refuse_other_elements():
    with pytest.raises(ValueError, match=r"B and N only, got \['C'\]"):
        order_by_swaps(ase.Atoms("BNC", positions=np.eye(3) * 1.4, cell=[9, 9, 9], pbc=True), seed=0)


def test_quench_with_swaps_has_fewer_homopolar_bonds(lammps):
    schedule = MeltQuenchSchedule(n_atoms=16, seed=16200)  # notebook 01's schedule; 9 of 23 bonds homopolar
    plain, ordered = melt_quench(schedule), melt_quench(replace(schedule, homopolar_swaps=True))
    assert plain.swaps is None and ordered.swaps.homopolar_before > ordered.swaps.homopolar_after
    assert structure_stats(plain.atoms).homopolar_fraction > 0.3  # ExTeP keeps many homopolar bonds
    assert structure_stats(ordered.atoms).homopolar_fraction < 0.2  # also after the relaxation
    assert ordered.atoms.get_chemical_formula() == "B8N8" and structure_stats(ordered.atoms).min_distance > 1.2
    again = order_by_swaps(plain.atoms, seed=schedule.seed)  # the swaps melt_quench made, reproduced
    assert again.atoms.get_chemical_symbols() == ordered.atoms.get_chemical_symbols()
    assert np.array_equal(again.atoms.positions, ordered.swaps.atoms.positions)
