"""Transferability tables: sizes, ratios and the baseline/equivariant factor from hand-made evaluations."""

import json
from types import SimpleNamespace

import pytest
from conftest import hbn_atoms, random_record

from hforge_nb.dataset import FORMAT, VERSION
from hforge_nb.evaluation import SUMMARY_KEYS
from hforge_nb.transferability import (ERROR_COLUMNS, advantage, distinct_transfer_split, error_table, transfer_roles,
                                      transfer_split)


def _sample(h_mae):
    """An evaluation entry with every column of the table; H MAE ``h_mae`` meV, the rest 1."""
    entry = {}
    for column in ERROR_COLUMNS:
        path = SUMMARY_KEYS[column]
        node = entry
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = h_mae if column == "H_mae_meV" else 1.0
    return entry


def test_error_rows_carry_size_ratios_and_the_factor_between_models():
    records = {"a16": SimpleNamespace(n_atoms=16), "a64": SimpleNamespace(n_atoms=64)}
    evaluations = {"equivariant": {"samples": {"a16": _sample(2.0), "a64": _sample(4.0)}},
                   "baseline": {"samples": {"a16": _sample(6.0), "a64": _sample(20.0)}}}
    rows = error_table(evaluations, records, train_size=8)
    assert [(r["model"], r["sample"], r["size_ratio"]) for r in rows] == [
        ("equivariant", "a16", 2.0), ("equivariant", "a64", 8.0), ("baseline", "a16", 2.0), ("baseline", "a64", 8.0)]
    assert advantage(rows) == {"a16": pytest.approx(3.0), "a64": pytest.approx(5.0)}


def test_too_few_cells_of_the_training_size_are_refused():
    records = {"a8": SimpleNamespace(n_atoms=8), "a64": SimpleNamespace(n_atoms=64)}
    with pytest.raises(ValueError, match="1 amorphous cells of 8 atoms"):
        transfer_split(records, {"a8": "train", "a64": "holdout"}, 8, n_train=1, n_validation=1)


def test_a_repeated_training_structure_never_validates():
    cells = {f"a8-{seed}": random_record(hbn_atoms(rattle=0.05, seed=seed)) for seed in range(3)}
    cells["a8-9"] = random_record(cells["a8-0"].atoms[[3, 2, 1, 0]])  # a8-0 renumbered, last by name
    cells["a32"] = random_record(hbn_atoms(rattle=0.05, seed=5).repeat((2, 2, 1)))
    splits = {name: "holdout" if name == "a32" else "train" for name in cells}
    split, repeats = distinct_transfer_split(cells, splits, 4, n_train=2)
    assert (split.train, split.validation, split.test) == (("a8-0", "a8-1"), ("a8-2",), ("a32",))
    assert repeats == {"a8-9": "a8-0"}
    assert transfer_split(cells, splits, 4, n_train=2).validation == ("a8-9",)  # what names alone would pick
    with pytest.raises(ValueError, match="3 amorphous cells of 4 atoms cannot give 3"):
        distinct_transfer_split(cells, splits, 4, n_train=3)


def test_rattled_crystals_of_the_training_size_neither_train_nor_validate(tmp_path):
    # the full profile's data: 16-atom aBN cells and 16-atom rattled hBN cells, which sort last by name
    manifest = ([{"name": f"aBN-0016-train-0{i}", "kind": "amorphous", "split": "train"} for i in range(3)]
                + [{"name": "aBN-0064-holdout-00", "kind": "amorphous", "split": "holdout"},
                   {"name": "hBN", "kind": "hBN", "split": "reference"}]
                + [{"name": f"hBN-rattled-0{i}", "kind": "rattled-hBN", "split": "train"} for i in range(2)])
    (tmp_path / "manifest.json").write_text(json.dumps({"format": FORMAT, "version": VERSION, "samples": manifest}))
    records = {s["name"]: SimpleNamespace(n_atoms=64 if "0064" in s["name"] else 4 if s["name"] == "hBN" else 16)
               for s in manifest}
    split = transfer_split(records, transfer_roles(tmp_path, records), 16, n_train=0)
    assert (split.train, split.validation) == (("aBN-0016-train-00", "aBN-0016-train-01"), ("aBN-0016-train-02",))
    assert split.test == ("aBN-0064-holdout-00", "hBN")
    by_split = {s["name"]: s["split"] for s in manifest}  # what the data set's splits alone would pick
    assert transfer_split(records, by_split, 16, n_train=0).validation == ("hBN-rattled-01",)


def _sweep_point(seed: int, ratio: float) -> dict:
    rows = [{"model": model, "sample": "a64", "n_atoms": 64, "size_ratio": 8.0, "H_mae_meV": value, "S_mae": 1e-3}
            for model, value in (("equivariant", 10.0), ("baseline", 10.0 * ratio))]
    return {"point": f"seed={seed}", "parameters": {"seed": seed},
            "metrics": {"rows": rows, "baseline_over_equivariant_H_mae": {"a64": ratio},
                        "split": {"train_size": 8}, "parameters": {"seed": seed}}}


def test_seed_sweep_summary_gives_the_spread_of_the_ratios(tmp_path):
    import json

    from hforge_nb.transferability import ratio_statistics, summarize_sweep, sweep_rows

    sweep = {"format": "hforge-nb-sweep", "version": 1, "rows": [_sweep_point(0, 1.5), _sweep_point(1, 2.5)]}
    assert ratio_statistics(sweep) == {"a64": {"mean": 2.0, "min": 1.5, "max": 2.5, "n": 2}}
    assert {row["point"] for row in sweep_rows(sweep)} == {"seed=0", "seed=1"}
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    summary = summarize_sweep(tmp_path)
    assert (tmp_path / "error_vs_size_seeds.pdf").exists() and (tmp_path / "summary.json").exists()
    assert summary["points"] == [{"seed": 0}, {"seed": 1}]


def test_training_size_figure_takes_n_train_from_each_point(tmp_path):
    import json

    from hforge_nb.transferability import summarize_training_sizes, training_size_rows

    points = []
    for n_train, ratio in ((1, 3.0), (4, 1.5)):
        point = _sweep_point(0, ratio)
        point["metrics"]["parameters"]["n_train"] = n_train
        points.append(point)
    sweep = {"format": "hforge-nb-sweep", "version": 1, "rows": points}
    rows = training_size_rows([sweep], "a64")
    assert sorted((row["model"], row["n_train"]) for row in rows) == [
        ("baseline", 1), ("baseline", 4), ("equivariant", 1), ("equivariant", 4)]
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    summary = summarize_training_sizes([tmp_path], "a64", tmp_path)
    assert (tmp_path / "error_vs_training_cells.pdf").exists() and len(summary["rows"]) == 4
