"""Transferability tables: sizes, ratios and the baseline/equivariant factor from hand-made evaluations."""

from types import SimpleNamespace

import pytest

from hforge_nb.evaluation import SUMMARY_KEYS
from hforge_nb.transferability import ERROR_COLUMNS, advantage, error_table, transfer_split


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
