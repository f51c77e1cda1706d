"""Set-up consistency: the README's commands, CI, pyproject vs environment.yml, the pipeline."""

import json
import re
import tomllib
from pathlib import Path

import pytest

from hforge_nb.pipeline import Profile, numbered_notebooks, run_pipeline

ROOT = Path(__file__).parent.parent


def _requirement_names(lines):
    return {re.split(r"[<>=!\[ ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-") for line in lines}


def test_environment_yml_lists_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _requirement_names(project["dependencies"] + project["optional-dependencies"]["dev"])
    env_lines = [line.strip()[2:] for line in (ROOT / "environment.yml").read_text().splitlines()
                 if line.strip().startswith("- ")]
    assert wanted <= _requirement_names(env_lines)


def test_torch_is_pinned_everywhere():
    for name in ("pyproject.toml", "environment.yml", "constraints.txt", "Makefile"):
        assert "torch==2.13.0" in (ROOT / name).read_text(), name


def test_ci_runs_the_readme_test_command():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make reproduce" in readme
    assert re.search(r"^exec make test$", ci, re.MULTILINE)


def _notebook_parameters(stem: str) -> set[str]:
    """Names assigned in the cell tagged ``parameters`` of a notebook's jupytext script."""
    cells = (ROOT / "notebooks" / f"{stem}.py").read_text().split("# %%")
    cell = next(c for c in cells if c.startswith(' tags=["parameters"]'))
    return set(re.findall(r"^([a-z_][a-z0-9_]*) = ", cell, re.MULTILINE))


def test_profiles_name_existing_notebooks_and_their_parameters():
    stems = {p.stem for p in numbered_notebooks(ROOT / "notebooks")}
    for path in (ROOT / "profiles").glob("*.toml"):
        sections = Profile.read(path).parameters
        assert set(sections) <= stems, path.name
        for stem, values in sections.items():
            unknown = set(values) - _notebook_parameters(stem)
            assert not unknown, f"{path.name} [{stem}]: {sorted(unknown)} are not parameters of the notebook"


def test_unreadable_profile_is_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[00_x\n")
    with pytest.raises(ValueError, match="cannot read profile .*bad.toml"):
        Profile.read(bad)


def test_pipeline_leaves_notebooks_and_metrics_in_the_run_folder(tmp_path, siesta_dir):
    profile = Profile("tiny", {"00_siesta_tour": {"calculation": "H2_hessian", "n_kpoints": 5}})
    earlier = {"notebook": "03_training.ipynb", "parameters": {}, "seconds": 1.0}  # a notebook not run again
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"notebooks": [earlier]}))
    summary = run_pipeline(profile, tmp_path / "run", only=["00_siesta_tour"])
    assert [n["notebook"] for n in summary["notebooks"]] == ["00_siesta_tour.ipynb", "03_training.ipynb"]
    assert summary["notebooks"][1] == earlier
    metrics = json.loads((tmp_path / "run" / "00_siesta_tour" / "metrics.json").read_text())
    assert metrics["calculation"] == "H2_hessian" and metrics["eig_vs_siesta"]["max_abs_eV"] < 1e-3
    assert (tmp_path / "run" / "00_siesta_tour.ipynb").is_file() and (tmp_path / "run" / "run.json").is_file()
