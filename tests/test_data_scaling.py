"""Errors against the number of training cells, from a notebook-03 sweep over n_train."""

import json

import numpy as np
import pytest

from hforge_nb.data_scaling import STEM, common_cells, main, power_law_extrapolation, summarize_rows


def _sample(h: float, eigenvalue: float) -> dict:
    return {"blocks": {"H_meV": {"overall": {"mae": h}, "on_site": {"mae": 10 * h},
                                 "distance": {"0-2 Å": {"mae": 5 * h}}}},
            "spectrum_filtered": {"eigenvalue_mae_meV": eigenvalue}}


def _row(n_train: int, seed: int, cells: dict[str, tuple[float, float]], n_more_train: int = 0) -> dict:
    samples = {name: _sample(*values) for name, values in cells.items()}
    train = [f"t-{k}" for k in range(n_train)] + [f"more/t-{k}" for k in range(n_more_train)]
    return {"point": f"n_train={n_train},seed={seed}", "parameters": {"n_train": n_train, "seed": seed},
            "metrics": {"split": {"train": train}, "more_test": {"equivariant": {"samples": samples}}}}


ROWS = [
    _row(2, 0, {"a": (4.0, 400.0), "b": (6.0, 600.0), "c": (1.0, 1.0)}),
    _row(2, 1, {"a": (2.0, 200.0), "b": (4.0, 400.0), "c": (1.0, 1.0)}),
    _row(8, 0, {"a": (1.0, 100.0), "b": (3.0, 150.0)}),  # cell c trained here: left out of every point
]


def test_points_are_scored_on_the_cells_all_of_them_tested():
    assert common_cells(ROWS) == ["a", "b"]
    summary = summarize_rows(ROWS)
    two, eight = summary["errors"]["2"], summary["errors"]["8"]
    assert two["H_mae_meV"] == {"mean": 4.0, "min": 3.0, "max": 5.0, "n_points": 2}
    assert two["H_bonded_mae_meV"]["mean"] == 20.0 and two["H_on_site_mae_meV"]["max"] == 50.0
    assert two["eigenvalue_mae_filtered_meV"]["mean"] == 400.0 and eight["eigenvalue_mae_filtered_meV"]["mean"] == 125.0
    assert summary["log_log_slope"] == pytest.approx(np.log(125 / 400) / np.log(4))
    # the line falls by a factor 400/125 per four times the cells, so 32 cells reach 125 * 125/400 meV
    assert summarize_rows(ROWS, target_meV=125 * 125 / 400)["n_train_at_target"] == pytest.approx(32)
    with pytest.raises(ValueError, match="share no more_test cells"):
        common_cells([ROWS[0], _row(4, 0, {"z": (1.0, 1.0)})])


def test_an_error_that_does_not_fall_never_reaches_the_target_and_one_size_gives_no_line():
    slope, n_at_target = power_law_extrapolation([4, 16], [100.0, 100.0])
    assert slope == pytest.approx(0.0, abs=1e-12) and n_at_target == float("inf")
    assert power_law_extrapolation([4, 16], [100.0, 200.0])[1] == float("inf")
    assert all(np.isnan(power_law_extrapolation([4], [100.0])))


def test_cells_of_more_train_dir_count_as_training_cells():
    rows = [*ROWS, _row(2, 0, {"a": (0.5, 50.0), "b": (0.5, 50.0)}, n_more_train=30)]
    summary = summarize_rows(rows)
    assert summary["n_train"] == [2, 8, 32]
    assert summary["errors"]["32"]["eigenvalue_mae_filtered_meV"] == {"mean": 50.0, "min": 50.0, "max": 50.0,
                                                                       "n_points": 1}
    assert summary["errors"]["2"]["H_mae_meV"]["n_points"] == 2  # the 32-cell point is not counted at n_train = 2


def test_the_command_writes_the_summary_and_its_figure(tmp_path):
    (tmp_path / "sweep.json").write_text(json.dumps({"format": "hforge-nb-sweep", "version": 1, "rows": ROWS}))
    assert main([str(tmp_path), "--figures-dir", str(tmp_path / "figures")]) == 0
    stored = json.loads((tmp_path / "figures" / f"{STEM}.json").read_text())
    assert stored["n_train"] == [2, 8] and stored["cells"] == ["a", "b"] and len(stored["points"]) == 3
    assert (tmp_path / "figures" / f"{STEM}.png").stat().st_size > 0


def test_several_sweep_folders_are_read_as_one(tmp_path):
    for name, rows in (("seed0", [ROWS[0], ROWS[2]]), ("seed1", [ROWS[1]])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "sweep.json").write_text(json.dumps({"format": "hforge-nb-sweep", "version": 1,
                                                                "rows": rows}))
    assert main([str(tmp_path / "seed0"), str(tmp_path / "seed1")]) == 0
    stored = json.loads((tmp_path / "seed0" / f"{STEM}.json").read_text())  # beside the first sweep
    assert stored["errors"] == summarize_rows(ROWS)["errors"] and len(stored["sweeps"]) == 2
