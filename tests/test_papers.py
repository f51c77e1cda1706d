"""The papers/ index reads every number from the run's metrics and names where each figure came from."""

from __future__ import annotations

import json

import pytest

from hforge_nb.papers import HEADLINES, build_index, index_markdown, write_index


@pytest.fixture()
def run_dir(tmp_path):
    run = tmp_path / "run"
    notebooks = [{"notebook": "03_training.ipynb", "parameters": {"output_dir": str(run / "03_training"), "epochs": 80},
                  "seconds": 1.0},
                 {"notebook": "05_dft_vs_ml.ipynb", "parameters": {"output_dir": str(run / "05_dft_vs_ml")},
                  "seconds": 1.0}]
    (run / "03_training").mkdir(parents=True)
    (run / "05_dft_vs_ml").mkdir()
    (run / "run.json").write_text(json.dumps({"profile": "test", "git_commit": "abc123", "notebooks": notebooks}))
    summary = {"H_mae_meV": 12.5, "S_mae": 3.25e-4}  # the other summary keys are missing
    (run / "03_training" / "metrics.json").write_text(json.dumps({"test": {"equivariant": {"summary": summary}}}))
    figures = [{"stem": "bands_crystals", "files": ["bands_crystals.pdf", "bands_crystals.png"], "caption": "bands"}]
    (run / "05_dft_vs_ml" / "metrics.json").write_text(json.dumps(
        {"figures": figures, "figures_dir": str(tmp_path / "figs"), "bands": {"hBN": {"eigenvalue_mae_meV": 42.0}},
         "spectra": "filtered"}))
    return run


def test_headlines_are_the_metrics_values_and_missing_ones_are_left_out(run_dir):
    index = build_index(run_dir)
    values = {row["label"]: row["value"] for row in index["headlines"]}
    assert values == {"equivariant: H MAE, held-out cells of the training sizes": 12.5, "equivariant: S MAE": 3.25e-4,
                      "equivariant: eigenvalue MAE, hBN bands (notebook 05's spectra)": 42.0,
                      "notebook 05's spectra (filtered: each in its own S; projected: in the reference's)": "filtered"}
    assert all(row["source"].endswith("metrics.json: " + ".".join(h.keys)) for row in index["headlines"]
               for h in HEADLINES if h.label == row["label"])


def test_figures_name_their_notebook_parameters_and_files(run_dir, tmp_path):
    index = write_index(run_dir, tmp_path / "papers")
    (figure,) = index["figures"]
    assert figure["notebook"] == "notebooks/05_dft_vs_ml.ipynb" and figure["parameters"] == {}
    markdown = (tmp_path / "papers" / "index.md").read_text()
    assert markdown == index_markdown(index)
    assert "bands_crystals.pdf" in markdown and "| 12.5 | meV |" in markdown and "abc123" in markdown
    assert "| filtered |  |" in markdown
    assert json.loads((tmp_path / "papers" / "index.json").read_text())["profile"] == "test"
