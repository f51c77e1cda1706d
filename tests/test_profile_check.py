"""The check before a run that the samples a profile names exist where its notebooks look."""

import json
from pathlib import Path

import pytest

from hforge_nb import dataset
from hforge_nb.pipeline import Profile, numbered_notebooks, run_pipeline
from hforge_nb.profile_check import missing_samples, parameter_defaults, parameter_names, planned_samples

ROOT = Path(__file__).parent.parent


def _write_manifest(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True)
    samples = [{"name": name, "status": "converged"} for name in names]
    (folder / "manifest.json").write_text(json.dumps({"format": dataset.FORMAT, "version": dataset.VERSION,
                                                      "samples": samples}))
    return folder


def _run_parameters(profile: Profile, run_dir: Path) -> dict[str, dict]:
    """What every notebook of a whole run gets, as the pipeline passes it, with the notebook's defaults."""
    return {nb.stem: {**parameter_defaults(nb), "output_dir": str(run_dir / nb.stem), **profile.for_notebook(nb.stem)}
            for nb in numbered_notebooks(ROOT / "notebooks")}


def test_parameter_names_include_every_assignment_of_the_parameters_cell():
    names = parameter_names(ROOT / "notebooks" / "01_dataset.ipynb")
    assert {"memory_GB", "train_sizes", "output_dir"} <= names  # capitals too (a regex over [a-z_] missed memory_GB)
    assert set(parameter_defaults(ROOT / "notebooks" / "01_dataset.ipynb")) <= names


def test_parameter_defaults_are_the_parameters_cell_literals():
    defaults = parameter_defaults(ROOT / "notebooks" / "05_dft_vs_ml.ipynb")
    assert defaults["crystals"] == ["hBN", "cBN"] and defaults["dos_sample"] == "aBN-0064-holdout-00"
    assert defaults["data_dir"] == "data/aBN-dzp"


def test_planned_samples_by_hand():
    parameters = {"train_sizes": [8], "n_train_per_size": 2, "holdout_sizes": [16], "crystals": False, "seed": 3}
    assert planned_samples(parameters) == {"aBN-0008-train-00", "aBN-0008-train-01", "aBN-0016-holdout-00"}


def test_a_sample_the_data_set_lacks_is_named(tmp_path):
    data = _write_manifest(tmp_path / "data", ["aBN-0064-holdout-00"])
    run = {"05_dft_vs_ml": {"data_dir": str(data), "crystals": ["hBN"], "dos_sample": "aBN-0064-holdout-00"},
           "06_large_scale": {"data_dir": str(data), "kpm_sample": "aBN-0032-holdout-07"}}
    problems = missing_samples(run, ROOT)
    assert len(problems) == 2
    assert problems[0].startswith("05_dft_vs_ml: crystals = 'hBN' is not a sample of") and "its manifest" in problems[0]
    assert problems[1].startswith("06_large_scale: kpm_sample = 'aBN-0032-holdout-07'")


def test_samples_this_run_makes_count_and_unknown_folders_are_left_to_the_notebook(tmp_path):
    made = {"train_sizes": [8], "holdout_sizes": [32], "crystals": True, "output_dir": str(tmp_path / "01")}
    reader = {"data_dir": str(tmp_path / "01"), "crystals": ["cBN"], "kpm_sample": "aBN-0032-holdout-00"}
    assert missing_samples({"01_dataset": made, "05_dft_vs_ml": reader, "06_large_scale": reader}, ROOT) == []
    assert missing_samples({"01_dataset": {**made, "crystals": False}, "05_dft_vs_ml": reader}, ROOT) == [
        f"05_dft_vs_ml: crystals = 'cBN' is not a sample of {(tmp_path / '01').resolve()} (planned by this run)"]
    assert missing_samples({"05_dft_vs_ml": reader}, ROOT) == []  # no manifest there, and no notebook 01 to make it
    assert missing_samples({"05_dft_vs_ml": {**reader, "dos_sample": "", "crystals": []}}, ROOT) == []


def test_every_committed_profile_names_samples_its_data_sets_have():
    for path in sorted((ROOT / "profiles").glob("*.toml")):
        profile = Profile.read(path)
        assert missing_samples(_run_parameters(profile, ROOT / "runs" / path.stem), ROOT) == [], path.name


def test_a_profile_naming_a_missing_sample_runs_nothing_and_keeps_the_run_folder(tmp_path):
    calls = []
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=r"nothing was run:\n  06_large_scale: kpm_sample = 'aBN-9999-holdout-00'"):
        run_pipeline(Profile("bad", {"06_large_scale": {"kpm_sample": "aBN-9999-holdout-00"}}), run_dir,
                     runner=lambda *args: calls.append(args))
    assert calls == [] and not run_dir.exists()
    run_dir.mkdir()
    (run_dir / "run.json").write_text('{"notebooks": []}')
    with pytest.raises(ValueError, match="aBN-9999-holdout-00"):
        run_pipeline(Profile("bad", {"05_dft_vs_ml": {"dos_sample": "aBN-9999-holdout-00"}}), run_dir,
                     only=["05_dft_vs_ml"], runner=lambda *args: calls.append(args))
    assert calls == [] and (run_dir / "run.json").read_text() == '{"notebooks": []}'
