"""Parameter sweeps: the grid, skipping finished points, collecting metrics, and a real papermill run."""

import json
import subprocess

import nbformat
import pytest

from hforge_nb.paths import git_commit
from hforge_nb.sweep import collect, grid, main, parse_axis, run_sweep


def _fake_runner(calls):
    def run(notebook, executed, parameters):
        calls.append(parameters)
        out = parameters["output_dir"]
        (executed.parent / "metrics.json").write_text(json.dumps({"error": parameters["seed"] * 10 + 1}))
        assert str(executed.parent) == out
    return run


def test_axes_parse_numbers_lists_and_strings():
    assert parse_axis("seed=0,1,2") == ("seed", [0, 1, 2])
    assert parse_axis("model_kind=equivariant,baseline") == ("model_kind", ["equivariant", "baseline"])
    assert parse_axis("train_sizes=[8];[16]") == ("train_sizes", [[8], [16]])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_axis("seed")


def test_a_sweep_runs_every_point_once_and_resumes(tmp_path):
    points = grid({"kind": ["a", "b"], "seed": [0, 1]})
    calls = []
    ran = run_sweep(tmp_path / "nb.ipynb", points, tmp_path / "sweep", {"epochs": 3}, runner=_fake_runner(calls))
    assert len(ran) == 4 and [c["kind"] for c in calls] == ["a", "a", "b", "b"]
    assert all(c["epochs"] == 3 for c in calls)
    again = run_sweep(tmp_path / "nb.ipynb", points, tmp_path / "sweep", {"epochs": 3}, runner=_fake_runner(calls))
    assert again == [] and len(calls) == 4  # finished points are skipped
    rows = collect(tmp_path / "sweep", points)
    assert [row["metrics"]["error"] for row in rows] == [1, 11, 1, 11]
    stored = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert stored["rows"][3]["parameters"] == {"kind": "b", "seed": 1}
    run = stored["rows"][3]["run"]  # every parameter the point was given, the fixed ones too, and the commit
    point_folder = str(tmp_path / "sweep" / "kind=b,seed=1")
    assert run["parameters"] == {"epochs": 3, "kind": "b", "seed": 1, "output_dir": point_folder}
    assert run["git_commit"] == git_commit()


def test_a_point_run_before_its_record_was_kept_collects_without_one(tmp_path):
    points = grid({"seed": [0]})
    run_sweep(tmp_path / "nb.ipynb", points, tmp_path / "sweep", runner=_fake_runner([]))
    (tmp_path / "sweep" / "seed=0" / "sweep_point.json").unlink()
    assert collect(tmp_path / "sweep", points)[0]["run"] == {}


def test_a_point_that_writes_no_metrics_stops_the_sweep(tmp_path):
    with pytest.raises(RuntimeError, match="without writing metrics.json"):
        run_sweep(tmp_path / "nb.ipynb", grid({"seed": [0]}), tmp_path / "sweep",
                  runner=lambda notebook, executed, parameters: None)


def test_the_command_runs_a_parameterised_notebook_with_papermill(tmp_path):
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                 "display_name": "Python 3"}})
    parameters = nbformat.v4.new_code_cell("seed = 0\nscale = 1.0\noutput_dir = ''")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(
        "import json, pathlib\n"
        "pathlib.Path(output_dir, 'metrics.json').write_text(json.dumps({'value': seed * scale}))")]
    path = tmp_path / "toy.ipynb"
    nbformat.write(notebook, path)
    profile = tmp_path / "profile.toml"
    profile.write_text('[toy]\nscale = 3.0\nseed = 7\n[other]\nscale = 9.0\n')
    main([str(path), "--out", str(tmp_path / "runs"), "--grid", "seed=1,2", "--set", "scale=0.5"])
    table = json.loads((tmp_path / "runs" / "sweep.json").read_text())
    assert [row["metrics"]["value"] for row in table["rows"]] == [0.5, 1.0]
    main([str(path), "--out", str(tmp_path / "profiled"), "--grid", "seed=1,2", "--profile", str(profile)])
    table = json.loads((tmp_path / "profiled" / "sweep.json").read_text())
    assert [row["metrics"]["value"] for row in table["rows"]] == [3.0, 6.0]  # the grid's seed over the profile's
    assert [row["run"]["parameters"]["scale"] for row in table["rows"]] == [3.0, 3.0]  # the profile's, recorded
    assert (tmp_path / "runs" / "seed=2" / "toy.ipynb").exists()  # the executed notebook stays with its metrics


def test_the_commit_is_that_of_the_folder_checked_out_or_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"  # not a git checkout
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "first"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert git_commit(tmp_path) == head and len(head) == 40
