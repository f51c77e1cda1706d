"""Figures drawn from training logs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from hforge_nb.plotting import plot_learning_curves  # noqa: E402


def _log(val_loss: float) -> list[dict]:
    return [{"epoch": e, "train_loss": 1.0 / e, "val_loss": val_loss / e, "val_h_mae_meV": 10.0 * val_loss / e}
            for e in (1, 2, 3)]


def test_learning_curves_leave_out_the_validation_of_a_model_trained_without_it():
    fig = plot_learning_curves({"validated": _log(2.0), "unvalidated": _log(float("nan"))})
    ax_loss, ax_mae = fig.axes
    assert [line.get_label() for line in ax_loss.get_lines()] == ["validated train", "validated validation",
                                                                   "unvalidated train"]
    assert [line.get_label() for line in ax_mae.get_lines()] == ["validated"]
    assert list(ax_loss.get_lines()[1].get_ydata()) == [2.0, 1.0, 2.0 / 3]


def test_learning_curves_say_when_no_model_was_validated():
    fig = plot_learning_curves({"unvalidated": _log(float("nan"))})
    ax_loss, ax_mae = fig.axes
    assert not ax_mae.get_lines() and ax_mae.get_legend() is None
    assert [text.get_text() for text in ax_mae.texts] == ["trained without validation cells"]
