"""Transferability: train on cells of one size, test on larger cells and on crystals.

:func:`transfer_split` picks the training, validation and test samples from
a data set (:func:`distinct_transfer_split`, notebook 04's, after leaving
out repeated structures); :func:`error_table` turns :func:`.evaluation.evaluate` results
into one row per (model, test sample) with the sample's size relative to the
training cells, the rows that notebook 04, the sweeps and the paper figures
read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import distinct_records, is_rattled_crystal, read_manifest
from .evaluation import summary_value
from .record import HamiltonianRecord

#: Columns of :func:`error_table`: the keys of :data:`.evaluation.SUMMARY_KEYS` it keeps per sample.
ERROR_COLUMNS = ("H_mae_meV", "H_on_site_mae_meV", "H_off_site_mae_meV", "H_bonded_mae_meV", "H_diagonal_mae_meV",
                 "S_mae", "eigenvalue_mae_meV", "eigenvalue_mae_reference_S_meV", "eigenvalue_mae_projected_meV",
                 "eigenvalue_mae_filtered_meV")


@dataclass(frozen=True)
class TransferSplit:
    """Sample names: training and validation cells of one size, and the test samples.

    ``test`` holds every amorphous cell larger than the training cells and,
    if asked, the crystals (``reference`` samples), which no model saw.
    """

    train_size: int
    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"train_size": self.train_size, "train": list(self.train), "validation": list(self.validation),
                "test": list(self.test)}


def transfer_roles(folder: Path, records: dict[str, HamiltonianRecord]) -> dict[str, str]:
    """Name -> data-set split (``"train"``, ``"holdout"``, ``"reference"``) of the samples in ``records`` that
    :func:`transfer_split` may use, from the manifest of the data set ``folder``.

    The rattled crystals (:func:`.dataset.is_rattled_crystal`) are left
    out: the split counts, trains and validates on amorphous cells only,
    and a model trained on rattled crystals would have seen the crystals it
    is tested on.
    """
    return {sample["name"]: sample["split"] for sample in read_manifest(folder)["samples"]
            if sample["name"] in records and not is_rattled_crystal(sample)}


def transfer_split(records: dict[str, HamiltonianRecord], splits: dict[str, str], train_size: int, n_train: int,
                   n_validation: int = 1, crystals: bool = True) -> TransferSplit:
    """Training cells of ``train_size`` atoms, and every larger amorphous cell and the crystals to test on.

    Parameters
    ----------
    records
        Samples by name.
    splits
        Name -> ``"train"``, ``"holdout"`` or ``"reference"`` (:func:`transfer_roles` of the data set's
        manifest); names not in ``records``, and any other role, are left out.
    train_size
        Atoms per training cell.
    n_train, n_validation
        Cells of that size used (sorted by name: the first ``n_train`` train,
        the last ``n_validation`` validate); ``n_train = 0``: all but those.

    Examples
    --------
    >>> from types import SimpleNamespace as R
    >>> records = {"a8-0": R(n_atoms=8), "a8-1": R(n_atoms=8), "a8-2": R(n_atoms=8), "a64": R(n_atoms=64),
    ...            "hBN": R(n_atoms=4)}
    >>> splits = {"a8-0": "train", "a8-1": "train", "a8-2": "train", "a64": "holdout", "hBN": "reference"}
    >>> transfer_split(records, splits, 8, n_train=2).as_dict()
    {'train_size': 8, 'train': ['a8-0', 'a8-1'], 'validation': ['a8-2'], 'test': ['a64', 'hBN']}
    >>> transfer_split(records, splits, 8, n_train=0) == transfer_split(records, splits, 8, n_train=2)
    True
    """
    amorphous = {name for name, split in splits.items() if split in ("train", "holdout") and name in records}
    same_size = sorted(name for name in amorphous if records[name].n_atoms == train_size)
    n_train = n_train or len(same_size) - n_validation
    if n_train < 1 or len(same_size) < n_train + n_validation:
        raise ValueError(f"{len(same_size)} amorphous cells of {train_size} atoms cannot give {n_train} for "
                         f"training and {n_validation} for validation")
    larger = sorted((name for name in amorphous if records[name].n_atoms > train_size),
                    key=lambda name: (records[name].n_atoms, name))
    crystal_names = (sorted(name for name, split in splits.items() if split == "reference" and name in records)
                     if crystals else [])
    return TransferSplit(train_size, tuple(same_size[:n_train]), tuple(same_size[len(same_size) - n_validation:]),
                         tuple(larger + crystal_names))


def distinct_transfer_split(records: dict[str, HamiltonianRecord], splits: dict[str, str], train_size: int,
                            n_train: int, n_validation: int = 1,
                            crystals: bool = True) -> tuple[TransferSplit, dict[str, str]]:
    """Notebook 04's split: :func:`transfer_split` of the records' distinct structures, and the repeats left out.

    Small cells from melt-and-quench often freeze into one structure from
    several seeds (:func:`.dataset.distinct_records`); split by name alone,
    a repeat could train and validate, so that early stopping and the saved
    weights would be chosen on a training structure.  The repeats map each
    dropped name to the kept name it repeats.
    """
    distinct, repeats = distinct_records(records)
    return transfer_split(distinct, splits, train_size, n_train, n_validation, crystals), repeats


def error_table(evaluations: dict[str, dict], records: dict[str, HamiltonianRecord], train_size: int) -> list[dict]:
    """One row per (model, test sample): its size, size ratio to the training cells, and errors.

    ``evaluations`` maps a model name to an :func:`.evaluation.evaluate` result.
    """
    rows = []
    for model, evaluation in evaluations.items():
        for name, sample in evaluation["samples"].items():
            rows.append({"model": model, "sample": name, "n_atoms": records[name].n_atoms,
                         "size_ratio": records[name].n_atoms / train_size,
                         **{column: summary_value(sample, column) for column in ERROR_COLUMNS}})
    return rows


def advantage(rows: list[dict], column: str = "H_mae_meV", better: str = "equivariant",
              other: str = "baseline") -> dict[str, float]:
    """Per test sample, ``other``'s error over ``better``'s (above 1: ``better`` wins)."""
    errors = {model: {row["sample"]: row[column] for row in rows if row["model"] == model} for model in (better, other)}
    ratios = {name: errors[other][name] / error for name, error in sorted(errors[better].items())
              if name in errors[other] and error > 0}
    return {name: ratio for name, ratio in ratios.items() if np.isfinite(ratio)}


# ------------------------------------------------------------- seed sweeps
def sweep_rows(sweep: dict) -> list[dict]:
    """Every :func:`error_table` row of a notebook-04 sweep (``sweep.json``), tagged with its point."""
    return [{**row, "point": point["point"]} for point in sweep["rows"] for row in point["metrics"]["rows"]]


def ratio_statistics(sweep: dict) -> dict[str, dict]:
    """Per test sample, baseline H MAE over equivariant H MAE across the sweep's points: mean, min, max, n."""
    ratios: dict[str, list[float]] = {}
    for point in sweep["rows"]:
        for sample, ratio in point["metrics"]["baseline_over_equivariant_H_mae"].items():
            ratios.setdefault(sample, []).append(ratio)
    return {sample: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v)), "n": len(v)}
            for sample, v in sorted(ratios.items())}


def summarize_sweep(folder, figures_dir=None) -> dict:
    """Error-against-size figure (spread over seeds and cells) and ratio statistics of a notebook-04 sweep.

    Reads ``<folder>/sweep.json``; writes ``<folder>/summary.json`` and the
    figure ``error_vs_size_seeds`` (PDF, PNG) to ``figures_dir`` (default
    ``folder``), with the same summary beside it as
    ``error_vs_size_seeds.json`` (the sweep's points and parameters), so
    that it traces back.
    """
    from pathlib import Path

    from ._atomic import write_json
    from .comparison import save_figure
    from .plotting import plot_error_vs_size
    from .sweep import read_sweep

    folder = Path(folder)
    sweep = read_sweep(folder)
    rows = sweep_rows(sweep)
    train_sizes = {point["metrics"]["split"]["train_size"] for point in sweep["rows"]}
    figures = Path(figures_dir) if figures_dir else folder
    save_figure(plot_error_vs_size(rows, train_size=min(train_sizes)), figures, "error_vs_size_seeds")
    summary = {"sweep": str(folder), "points": [p["parameters"] for p in sweep["rows"]],
               "parameters": [p["metrics"]["parameters"] for p in sweep["rows"]],
               "baseline_over_equivariant_H_mae": ratio_statistics(sweep),
               "figure": {"stem": "error_vs_size_seeds", "folder": str(figures)}}
    write_json(folder / "summary.json", summary)
    write_json(figures / "error_vs_size_seeds.json", summary)  # the figure's provenance beside it
    return summary


def training_size_rows(sweeps: list[dict], sample: str) -> list[dict]:
    """The rows of test ``sample`` from notebook-04 sweeps, each with its point's ``n_train``."""
    return [{**row, "n_train": point["metrics"]["parameters"]["n_train"], "point": point["point"]}
            for sweep in sweeps for point in sweep["rows"] for row in point["metrics"]["rows"]
            if row["sample"] == sample]


def summarize_training_sizes(folders, sample: str, figures_dir) -> dict:
    """Figure ``error_vs_training_cells`` (error on ``sample`` against training cells) from sweeps over ``n_train``.

    Reads every ``<folder>/sweep.json``; writes the figure (PDF, PNG) and
    ``error_vs_training_cells.json`` (points, parameters, rows) to ``figures_dir``.
    """
    from pathlib import Path

    from ._atomic import write_json
    from .comparison import save_figure
    from .plotting import plot_error_vs_size
    from .sweep import read_sweep

    sweeps = [read_sweep(f) for f in folders]
    rows = training_size_rows(sweeps, sample)
    figure = plot_error_vs_size(rows, x="n_train", xlabel=f"training cells (test: {sample})")
    save_figure(figure, figures_dir, "error_vs_training_cells")
    summary = {"sweeps": [str(f) for f in folders], "sample": sample,
               "points": [p["metrics"]["parameters"] for s in sweeps for p in s["rows"]],
               "rows": [{k: row[k] for k in ("model", "n_train", "point", "H_mae_meV", "S_mae")} for row in rows]}
    write_json(Path(figures_dir) / "error_vs_training_cells.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m hforge_nb.transferability SWEEP_DIR [--figures-dir DIR]``: :func:`summarize_sweep`."""
    import argparse

    parser = argparse.ArgumentParser(description="Summarize a seed sweep of notebook 04")
    parser.add_argument("sweep_dir", nargs="+", help="sweep folders; several with --vs-training")
    parser.add_argument("--figures-dir", default=None)
    parser.add_argument("--vs-training", metavar="SAMPLE", help="plot the error on SAMPLE against n_train instead")
    args = parser.parse_args(argv)
    if args.vs_training:
        summarize_training_sizes(args.sweep_dir, args.vs_training, args.figures_dir or args.sweep_dir[0])
        return 0
    summary = summarize_sweep(args.sweep_dir[0], args.figures_dir)
    for sample, stats in summary["baseline_over_equivariant_H_mae"].items():
        print(f"{sample}: baseline/equivariant H MAE {stats['mean']:.2f} ({stats['min']:.2f}-{stats['max']:.2f}, "
              f"{stats['n']} seeds)")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
