"""The energy zero of H: the code's own zero raises every eigenvalue by E_F, and predictions made there score as before."""

import dataclasses

import numpy as np
import pytest
from conftest import hbn_atoms, random_record

from hforge_nb.energy_zero import ReferenceFermiZero, for_energy_zero, in_code_zero, require_fermi_zero
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
    diagonal_s = record.s_values[np.repeat(record.on_site, np.diff(record.block_offsets))].max()
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


def test_later_notebooks_refuse_models_of_another_zero(tmp_path):
    (tmp_path / "metrics.json").write_text('{"split": {}}')  # a run from before the parameter: E_F zero
    require_fermi_zero(tmp_path, "notebook 05")
    (tmp_path / "metrics.json").write_text('{"energy_zero": "code"}')
    with pytest.raises(ValueError, match="notebook 05 needs models trained with energy_zero='fermi'"):
        require_fermi_zero(tmp_path, "notebook 05")
