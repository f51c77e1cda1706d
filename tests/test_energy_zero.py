"""The energy zero of H: the code's own zero raises every eigenvalue by E_F, and predictions made there score as before."""

import dataclasses

import numpy as np
import pytest
from conftest import hbn_atoms, random_record

from hforge_nb.energy_zero import ModelZero, ReferenceFermiZero, for_energy_zero, in_code_zero, mean_fermi_level
from hforge_nb.evaluation import eigenvalues, evaluate, monkhorst_pack
from hforge_nb.record import drop_small_blocks
from hforge_nb.spin import SpinKind


@pytest.fixture(scope="module")
def record():
    base = drop_small_blocks(random_record(hbn_atoms(rattle=0.05, seed=3)), 1e-6)
    s_values = np.where(base.on_site[np.repeat(np.arange(base.n_blocks), np.diff(base.block_offsets))],
                        base.s_values, 0.1 * base.s_values)  # keep S well conditioned
    return dataclasses.replace(base, s_values=s_values, fermi_level=-3.25)


class _Oracle:
    """Predicts a fixed record: the reference itself, in some energy zero."""

    def __init__(self, prediction):
        self.prediction = prediction

    def predict(self, record):
        return self.prediction


def test_the_code_zero_raises_every_eigenvalue_by_the_fermi_level(record):
    kpoints = monkhorst_pack(record, 2)
    moved = in_code_zero(record)
    assert np.allclose(eigenvalues(moved, kpoints), eigenvalues(record, kpoints) - 3.25, atol=1e-9)
    assert moved.fermi_level == record.fermi_level and np.array_equal(moved.s_values, record.s_values)


def test_a_prediction_in_the_code_zero_scores_like_the_reference(record):
    perfect = evaluate(ReferenceFermiZero(_Oracle(in_code_zero(record))), {"cell": record}, n_kpoints=1)
    assert perfect["summary"]["H_mae_meV"] == pytest.approx(0.0, abs=1e-9)
    assert perfect["summary"]["eigenvalue_mae_filtered_meV"] == pytest.approx(0.0, abs=1e-6)
    unshifted = evaluate(_Oracle(in_code_zero(record)), {"cell": record}, n_kpoints=1)
    diagonal_s = record.s_values[record.per_value(record.on_site)].max()
    assert unshifted["summary"]["H_diagonal_mae_meV"] == pytest.approx(3250 * diagonal_s)  # E_F S, not moved back
    assert unshifted["summary"]["eigenvalue_mae_filtered_meV"] == pytest.approx(0.0, abs=1e-6)  # from own E_F


def test_unknown_zeros_and_spinful_records_are_refused(record):
    model = _Oracle(record)
    assert for_energy_zero(model, "fermi") is model and isinstance(for_energy_zero(model, "code"), ReferenceFermiZero)
    with pytest.raises(ValueError, match="unknown energy zero 'vacuum'"):
        for_energy_zero(model, "vacuum")
    spinful = dataclasses.replace(record, spin=SpinKind.NONCOLINEAR,
                                  h_values=np.repeat(record.h_values, 4, axis=1))
    with pytest.raises(ValueError, match="non-colinear record is not supported"):
        in_code_zero(spinful)


def test_later_notebooks_read_the_zero_of_the_models(tmp_path, record):
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"split": {}}')  # a run from before the parameter: E_F zero
    assert ModelZero.of_training(tmp_path) == ModelZero("fermi", 0.0)
    metrics.write_text('{"energy_zero": "code"}')  # before the training E_F was recorded
    with pytest.raises(ValueError, match="need training_fermi_level_eV.*run notebook 03 again"):
        ModelZero.of_training(tmp_path)
    cells = [record, dataclasses.replace(record, fermi_level=-2.75)]
    metrics.write_text(f'{{"energy_zero": "code", "training_fermi_level_eV": {mean_fermi_level(cells)}}}')
    zero = ModelZero.of_training(tmp_path)
    assert zero == ModelZero("code", -3.0) and zero.shift == 3.0
    assert isinstance(zero.for_references(_Oracle(record)), ReferenceFermiZero)
    kpoints = monkhorst_pack(record, 2)
    new_structure = zero.estimated_fermi_zero(in_code_zero(record))  # E_F -3.25 eV, estimated -3.0 eV
    # every eigenvalue sits where it would from the true E_F, minus the estimate's error of 0.25 eV
    assert np.allclose(eigenvalues(new_structure, kpoints), eigenvalues(record, kpoints) - 0.25, atol=1e-9)
    assert ModelZero().estimated_fermi_zero(record) is record
