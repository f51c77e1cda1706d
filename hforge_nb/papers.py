"""The ``papers/`` index: every figure and headline number, traced to the notebook, parameters and run.

``python -m hforge_nb.papers --run-dir runs/default`` reads the run's
``run.json`` (written by :mod:`.pipeline`) and every notebook's
``metrics.json``, and writes ``papers/index.md`` and ``papers/index.json``.
Figures are the ``figures`` entries notebooks record in their metrics;
headline numbers are read from the metrics by :data:`HEADLINES`, never
typed.  The main job calls it after the notebooks.
"""

from __future__ import annotations

import argparse
import functools
import json
import operator
import sys
from dataclasses import dataclass
from pathlib import Path

from ._atomic import atomic_path, write_json
from .paths import project_root, relative_to_project


@dataclass(frozen=True)
class Headline:
    """One number of the index: a label, the notebook whose metrics hold it, its key path and unit."""

    label: str
    notebook: str
    keys: tuple[str, ...]
    unit: str = ""


def _summary(kind: str, key: str, label: str, unit: str) -> Headline:
    return Headline(f"{kind}: {label}", "03_training", ("test", kind, "summary", key), unit)


#: The headline numbers, in the order the index lists them.
HEADLINES = tuple(
    [_summary(kind, key, label, unit) for kind in ("equivariant", "baseline") for key, label, unit in (
        ("H_mae_meV", "H MAE, held-out cells of the training sizes", "meV"),
        ("H_bonded_mae_meV", "H MAE, bonded pairs (0-2 Å)", "meV"),
        ("H_bonded_reference_meV", "mean abs(H), bonded pairs (0-2 Å), reference", "meV"),
        ("H_on_site_mae_meV", "H MAE, on-site blocks", "meV"),
        ("S_mae", "S MAE", ""),
        ("eigenvalue_mae_filtered_meV", "eigenvalue MAE within the window, filtered", "meV"),
        ("eigenvalue_mae_filtered_random_noise_meV", "same, random noise of the same H MAE", "meV"),
        ("eigenvalue_mae_projected_meV", "eigenvalue MAE within the window, projected", "meV"),
        ("eigenvalue_mae_projected_random_noise_meV", "same, random noise of the same H MAE", "meV"))]
    + [Headline(f"baseline H MAE over equivariant H MAE, {sample}, models trained on small cells", "04_transferability",
                ("baseline_over_equivariant_H_mae", sample)) for sample in ("aBN-0064-holdout-00", "hBN", "cBN")]
    + [Headline("notebook 05's spectra (filtered: each in its own S; projected: in the reference's)", "05_dft_vs_ml",
                ("spectra",)),
       Headline("equivariant: eigenvalue MAE, hBN bands (notebook 05's spectra)", "05_dft_vs_ml",
                ("bands", "hBN", "eigenvalue_mae_meV"), "meV"),
       Headline("equivariant: eigenvalue MAE, cBN bands (notebook 05's spectra)", "05_dft_vs_ml",
                ("bands", "cBN", "eigenvalue_mae_meV"), "meV"),
       Headline("equivariant: eigenvalue MAE, held-out aBN cell of the DOS (notebook 05's spectra)", "05_dft_vs_ml",
                ("dos", "eigenvalue_mae_meV"), "meV"),
       Headline("equivariant: DOS difference, held-out aBN cell (0 = same, 2 = disjoint)", "05_dft_vs_ml",
                ("dos", "dos_difference")),
       Headline("large cell: prediction time per atom", "06_large_scale", ("large_cell", "ms_per_atom"), "ms"),
       Headline("GPAW time over ML time, largest reference cell", "06_large_scale", ("gpaw_over_ml_largest_cell",)),
       Headline("KPM against exact diagonalization, L1 difference (most random vectors)", "06_large_scale",
                ("kpm_l1_best",)),
       Headline("smallest eigenvalue of S at k = 0, DFT", "06_large_scale", ("overlap", "reference_min_S_eigenvalue")),
       Headline("smallest eigenvalue of S at k = 0, ML", "06_large_scale", ("overlap", "predicted_min_S_eigenvalue"))])


def _read_metrics(run_dir: Path, stem: str) -> dict | None:
    path = run_dir / stem / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else None


def headline_values(run_dir: Path) -> list[dict]:
    """Every :data:`HEADLINES` number found in the run's metrics (missing ones are left out)."""
    rows = []
    for headline in HEADLINES:
        metrics = _read_metrics(run_dir, headline.notebook)
        try:
            value = functools.reduce(operator.getitem, headline.keys, metrics)
        except (KeyError, TypeError):
            continue
        source = relative_to_project(run_dir / headline.notebook / "metrics.json")
        rows.append({"label": headline.label, "value": value, "unit": headline.unit, "notebook": headline.notebook,
                     "source": f"{source}: {'.'.join(headline.keys)}"})
    return rows


def figure_entries(run_dir: Path, run: dict) -> list[dict]:
    """One entry per figure a notebook of the run recorded, with the notebook's parameters."""
    entries = []
    for notebook in run["notebooks"]:
        stem = Path(notebook["notebook"]).stem
        metrics = _read_metrics(run_dir, stem) or {}
        parameters = {k: v for k, v in notebook["parameters"].items() if k != "output_dir"}
        for figure in metrics.get("figures", []):
            entries.append({**figure, "notebook": f"notebooks/{notebook['notebook']}", "parameters": parameters,
                             "figures_dir": relative_to_project(metrics.get("figures_dir", run_dir / stem))})
    return entries


def build_index(run_dir: Path) -> dict:
    """The index of a run folder: run, commit, figures and headline numbers."""
    run = json.loads((run_dir / "run.json").read_text())
    return {"format": "hforge-nb-papers-index", "version": 1, "run": relative_to_project(run_dir),
            "profile": run["profile"], "git_commit": run["git_commit"],
            "figures": figure_entries(run_dir, run), "headlines": headline_values(run_dir)}


def _format(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def index_markdown(index: dict) -> str:
    """The index as Markdown (``papers/index.md``)."""
    lines = ["# papers/ index", "",
             f"Made by `python -m hforge_nb.papers` from run `{index['run']}` (profile `{index['profile']}`, "
             f"commit `{index['git_commit'][:10]}`). Do not edit: run the main job again.", "",
             "## Figures", "", "| file | what it shows | notebook | parameters |", "|---|---|---|---|"]
    for figure in index["figures"]:
        files = ", ".join(f"`{figure['figures_dir']}/{name}`" for name in figure["files"])
        parameters = "; ".join(f"{k}={json.dumps(v)}" for k, v in figure["parameters"].items()) or "defaults"
        lines.append(f"| {files} | {figure['caption']} | `{figure['notebook']}` | {parameters} |")
    lines += ["", "## Headline numbers", "", "| quantity | value | unit | read from |", "|---|---|---|---|"]
    lines += [f"| {row['label']} | {_format(row['value'])} | {row['unit']} | `{row['source']}` |"
              for row in index["headlines"]]
    return "\n".join(lines) + "\n"


def write_index(run_dir: Path, papers_dir: Path) -> dict:
    """Write ``index.md`` and ``index.json`` into ``papers_dir`` (atomically); returns the index."""
    index = build_index(run_dir)
    write_json(papers_dir / "index.json", index)
    with atomic_path(papers_dir / "index.md") as tmp:
        tmp.write_text(index_markdown(index))
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs") / "default")
    parser.add_argument("--papers-dir", type=Path, default=project_root() / "papers")
    args = parser.parse_args(argv)
    run_dir = args.run_dir if args.run_dir.is_absolute() else project_root() / args.run_dir
    index = write_index(run_dir, args.papers_dir)
    print(f"[hforge-nb] papers index: {len(index['figures'])} figure(s), {len(index['headlines'])} number(s) "
          f"-> {args.papers_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
