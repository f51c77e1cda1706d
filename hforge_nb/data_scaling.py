"""Errors against the number of training cells: a summary of notebook-03 sweeps over ``n_train`` or ``n_more_train``.

``python -m hforge_nb.data_scaling runs/sweep03-cells --figures-dir papers/figures``
reads the sweep's ``sweep.json`` (:mod:`hforge_nb.sweep`; several sweep
folders, such as one per seed run side by side, are read as one), scores every point
on the cells of ``more_test_dir`` that every point tested (a cell that one
point trained on is left out of all of them, so each point is scored on the
same cells), and writes ``error_vs_training_cells_03.{json,pdf,png}``: per
number of training cells, the mean over seeds and the seed range of the
equivariant model's H MAE (all values, on-site blocks, bonded pairs, meV) and
filtered eigenvalue MAE within the window around E_F (meV).
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path

import numpy as np

from ._atomic import write_json
from .paths import project_path, relative_to_project
from .sweep import read_sweep

STEM = "error_vs_training_cells_03"
#: Per-cell quantities summarized, with their place in a sample's metrics (``evaluation.evaluate``), all meV.
QUANTITIES = {
    "H_mae_meV": ("blocks", "H_meV", "overall", "mae"),
    "H_on_site_mae_meV": ("blocks", "H_meV", "on_site", "mae"),
    "H_bonded_mae_meV": ("blocks", "H_meV", "distance", "0-2 Å", "mae"),
    "eigenvalue_mae_filtered_meV": ("spectrum_filtered", "eigenvalue_mae_meV"),
}


def common_cells(rows: list[dict], kind: str = "equivariant") -> list[str]:
    """Names of the ``more_test`` cells that every sweep point scored (sorted)."""
    tested = [set(row["metrics"]["more_test"][kind]["samples"]) for row in rows]
    if not tested or not set.intersection(*tested):
        raise ValueError("the sweep's points share no more_test cells: run notebook 03 with more_test_dir")
    return sorted(set.intersection(*tested))


def point_errors(row: dict, cells: list[str], kind: str = "equivariant") -> dict[str, float]:
    """Each :data:`QUANTITIES` of one sweep point, averaged over ``cells``."""
    samples = row["metrics"]["more_test"][kind]["samples"]
    return {name: float(np.mean([functools.reduce(operator.getitem, keys, samples[cell]) for cell in cells]))
            for name, keys in QUANTITIES.items()}


def training_cell_count(row: dict) -> int:
    """How many cells a sweep point trained on: its split's training cells, those of ``more_train_dir`` included."""
    return len(row["metrics"]["split"]["train"])


def point_rows(rows: list[dict], cells: list[str], kind: str = "equivariant") -> list[dict]:
    """One row per sweep point: ``model``, ``n_train`` (:func:`training_cell_count`) and :func:`point_errors`
    on ``cells``.

    The rows :func:`.plotting.plot_error_vs_size` averages per ``n_train``.
    """
    return [{"model": kind, "n_train": training_cell_count(row), **point_errors(row, cells, kind)} for row in rows]


def summarize_rows(rows: list[dict], kind: str = "equivariant", target_meV: float = 20.0) -> dict:
    """Per ``n_train``: mean, min and max over the points (seeds) of every quantity, on the common cells.

    ``log_log_slope`` is the least-squares slope of log(mean filtered
    eigenvalue MAE) against log(n_train), and ``n_train_at_target`` where
    that line reaches ``target_meV``: how the error falls with data, an
    extrapolation, not a promise beyond the sizes swept.
    """
    cells = common_cells(rows, kind)
    by_size: dict[int, list[dict]] = {}
    for point in point_rows(rows, cells, kind):
        by_size.setdefault(point["n_train"], []).append(point)
    sizes = sorted(by_size)
    table = {str(n): {name: {"mean": float(np.mean([p[name] for p in by_size[n]])),
                             "min": float(min(p[name] for p in by_size[n])),
                             "max": float(max(p[name] for p in by_size[n])), "n_points": len(by_size[n])}
                      for name in QUANTITIES} for n in sizes}
    means = [table[str(n)]["eigenvalue_mae_filtered_meV"]["mean"] for n in sizes]
    slope, n_at_target = power_law_extrapolation(sizes, means, target_meV)
    return {"model": kind, "cells": cells, "n_train": sizes, "errors": table, "log_log_slope": slope,
            "target_eigenvalue_mae_meV": target_meV, "n_train_at_target": n_at_target}


def power_law_extrapolation(n_train: list[int], errors_meV: list[float], target_meV: float = 20.0
                            ) -> tuple[float, float]:
    """The least-squares slope of log(error) against log(n_train), and the n_train where that line reaches
    ``target_meV`` (infinite when the error does not fall); NaN for fewer than two sizes.

    An extrapolation of a learning curve, not a promise beyond the sizes measured.

    Examples
    --------
    >>> slope, n = power_law_extrapolation([10, 40], [200.0, 100.0])
    >>> round(slope, 3), round(n)
    (-0.5, 1000)
    """
    if len(n_train) < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.log(n_train), np.log(errors_meV), 1)
    n_at_target = float(np.exp((np.log(target_meV) - intercept) / slope)) if slope < 0 else float("inf")
    return float(slope), n_at_target


def summarize_sweep(sweep_dirs: str | Path | list, figures_dir: str | Path | None = None) -> dict:
    """:func:`summarize_rows` of the points of ``sweep_dirs`` (one folder or several), written with its figure.

    The summary and figure go to ``figures_dir``, or else to the first sweep folder.
    """
    from .comparison import save_figure
    from .plotting import plot_error_vs_size

    folders = [project_path(folder) for folder in ([sweep_dirs] if isinstance(sweep_dirs, (str, Path)) else sweep_dirs)]
    rows = [row for folder in folders for row in read_sweep(folder)["rows"]]
    summary = {"sweeps": [relative_to_project(folder) for folder in folders], **summarize_rows(rows),
               "points": [{"point": row["point"], "parameters": row["parameters"]} for row in rows]}
    folder = project_path(figures_dir) if figures_dir else folders[0]
    write_json(folder / f"{STEM}.json", summary)
    figure = plot_error_vs_size(point_rows(rows, summary["cells"], summary["model"]),
                                ("eigenvalue_mae_filtered_meV", "H_mae_meV"), x="n_train",
                                xlabel=f"training cells (scored on {len(summary['cells'])} unseen cells)")
    save_figure(figure, folder, STEM)
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m hforge_nb.data_scaling SWEEP_DIR [SWEEP_DIR ...] [--figures-dir DIR]``: :func:`summarize_sweep`."""
    import argparse

    parser = argparse.ArgumentParser(description="Errors of notebook-03 sweeps against the number of training cells")
    parser.add_argument("sweep_dirs", nargs="+", help="sweep folders, read as one")
    parser.add_argument("--figures-dir", default=None)
    args = parser.parse_args(argv)
    summary = summarize_sweep(args.sweep_dirs, args.figures_dir)
    for n in summary["n_train"]:
        row = summary["errors"][str(n)]
        print(f"{n:3d} cells: " + ", ".join(f"{name} {s['mean']:.1f} ({s['min']:.1f}-{s['max']:.1f})"
                                           for name, s in row.items()))
    print(f"log-log slope of the eigenvalue MAE: {summary['log_log_slope']:.2f}; the fitted line reaches "
          f"{summary['target_eigenvalue_mae_meV']:g} meV at {summary['n_train_at_target']:.3g} training cells")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
