"""Set-up consistency: the README's commands, CI, pyproject vs environment.yml, the pipeline."""

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
from conftest import notebook_parameters

from hforge_nb.pipeline import EARLIER_STAGE_CALL, Profile, numbered_notebooks, run_pipeline, stage_inputs

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


def test_profiles_name_existing_notebooks_and_their_parameters():
    stems = {p.stem for p in numbered_notebooks(ROOT / "notebooks")}
    for path in (ROOT / "profiles").glob("*.toml"):
        sections = Profile.read(path).parameters
        assert set(sections) <= stems, path.name
        for stem, values in sections.items():
            unknown = set(values) - notebook_parameters(stem)
            assert not unknown, f"{path.name} [{stem}]: {sorted(unknown)} are not parameters of the notebook"


def test_unreadable_profile_is_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[00_x\n")
    with pytest.raises(ValueError, match="cannot read profile .*bad.toml"):
        Profile.read(bad)


def test_stage_inputs_are_the_earlier_stages_a_notebook_reads():
    inputs = {notebook.stem: stage_inputs(notebook) for notebook in numbered_notebooks(ROOT / "notebooks")}
    assert inputs["05_dft_vs_ml"] == inputs["06_large_scale"] == {"03_training"}
    assert inputs["03_training"] == inputs["04_transferability"] == set()
    for notebook in numbered_notebooks(ROOT / "notebooks"):  # every call names its stage literally
        code = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"]
                         if c["cell_type"] == "code")
        assert len(re.findall(r"earlier_stage\(", code)) == len(EARLIER_STAGE_CALL.findall(code)), notebook.name


class _Recorder:
    """A stand-in for papermill: logs when each notebook starts and ends; fails the ones named in ``failing``."""

    def __init__(self, failing=()):
        self.events, self.failing, self.lock = [], set(failing), threading.Lock()

    def __call__(self, notebook, executed, parameters):
        with self.lock:
            self.events.append(("start", notebook.stem))
        time.sleep(0.05 if notebook.stem != "03_training" else 0.3)
        with self.lock:
            self.events.append(("end", notebook.stem))
        if notebook.stem in self.failing:
            raise RuntimeError(f"{notebook.stem} failed")

    def running_at_once(self) -> int:
        running, most = 0, 0
        for kind, _ in self.events:
            running += 1 if kind == "start" else -1
            most = max(most, running)
        return most


def test_pipeline_runs_two_notebooks_at_once_and_waits_for_what_they_read(tmp_path):
    recorder = _Recorder()
    summary = run_pipeline(Profile("tiny", {}), tmp_path / "run", jobs=2, runner=recorder)
    stems = [stem for _, stem in recorder.events]
    assert recorder.running_at_once() == 2
    for reader in ("05_dft_vs_ml", "06_large_scale"):
        assert recorder.events.index(("start", reader)) > recorder.events.index(("end", "03_training"))
    assert stems.index("04_transferability") < stems.index("05_dft_vs_ml")  # 04 ran beside 03
    assert [n["notebook"] for n in summary["notebooks"]] == [nb.name for nb in numbered_notebooks(ROOT / "notebooks")]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["wall_seconds"] == summary["wall_seconds"]
    one_at_a_time = _Recorder()
    run_pipeline(Profile("tiny", {}), tmp_path / "run1", jobs=1, runner=one_at_a_time)
    assert one_at_a_time.running_at_once() == 1


def test_a_failed_notebook_stops_the_run_and_keeps_what_finished(tmp_path):
    recorder = _Recorder(failing={"03_training"})
    with pytest.raises(RuntimeError, match="03_training failed"):
        run_pipeline(Profile("tiny", {}), tmp_path / "run", jobs=2, runner=recorder)
    started = {stem for kind, stem in recorder.events if kind == "start"}
    assert not started & {"05_dft_vs_ml", "06_large_scale"}
    recorded = [n["notebook"] for n in json.loads((tmp_path / "run" / "run.json").read_text())["notebooks"]]
    assert "04_transferability.ipynb" in recorded and "03_training.ipynb" not in recorded


def test_notebooks_that_read_each_other_are_refused(tmp_path, monkeypatch):
    from hforge_nb import pipeline

    reads = {"03_training": {"05_dft_vs_ml"}, "05_dft_vs_ml": {"03_training"}}
    monkeypatch.setattr(pipeline, "stage_inputs", lambda notebook: reads.get(notebook.stem, set()))
    recorder = _Recorder()
    with pytest.raises(ValueError, match=r"03_training.ipynb.*05_dft_vs_ml.ipynb.*read each other's output"):
        run_pipeline(Profile("tiny", {}), tmp_path / "run", jobs=2, runner=recorder)
    assert not {stem for _, stem in recorder.events} & {"03_training", "05_dft_vs_ml"}


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


def test_notebooks_nobody_waits_for_run_at_lower_priority(tmp_path):
    """On Linux, 03 (which 05 and 06 read) keeps its priority; the others, and what they start, run niced."""
    from hforge_nb.pipeline import BACKGROUND_NICE

    if sys.platform != "linux":
        pytest.skip("priorities per thread are Linux's")
    own = os.getpriority(os.PRIO_PROCESS, 0)
    seen = {}

    def runner(notebook, executed, parameters):  # the priority a notebook's kernel would start with
        child = subprocess.run([sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"],
                               capture_output=True, text=True, check=True)
        seen[notebook.stem] = int(child.stdout)

    summary = run_pipeline(Profile("tiny", {}), tmp_path / "run", jobs=2, runner=runner)
    assert seen.pop("03_training") == own
    assert BACKGROUND_NICE > 0 and own < 19  # or there is nothing to lower
    assert set(seen.values()) == {min(own + BACKGROUND_NICE, 19)}
    assert {n["notebook"] for n in summary["notebooks"] if n.get("background")} == {f"{s}.ipynb" for s in seen}
    assert os.getpriority(os.PRIO_PROCESS, 0) == own  # the pipeline itself keeps its priority
    one_at_a_time = run_pipeline(Profile("tiny", {}), tmp_path / "run1", jobs=1, runner=runner)
    assert set(seen.values()) == {own} and not any(n.get("background") for n in one_at_a_time["notebooks"])


def test_a_kernel_started_niced_keeps_its_priority_in_its_own_session():
    """Jupyter puts each kernel in a session (autogroup) of its own; its nice value must carry over to it."""
    from hforge_nb.kernels import NiceKernelManager, autogroup_nice
    from hforge_nb.pipeline import BACKGROUND_NICE, _at_lower_priority

    if autogroup_nice(os.getpid()) is None:
        pytest.skip("this kernel has no autogroups (/proc/<pid>/autogroup)")
    managers = []

    def start() -> int:
        manager = NiceKernelManager(kernel_name="python3")
        managers.append(manager)
        asyncio.run(manager.start_kernel())
        return manager.provisioner.pid

    niced, plain = _at_lower_priority(start, BACKGROUND_NICE), start()
    try:
        assert autogroup_nice(niced) == autogroup_nice(os.getpid()) + BACKGROUND_NICE
        assert autogroup_nice(plain) == autogroup_nice(os.getpid())
        assert os.getsid(niced) != os.getsid(os.getpid())  # its own session, which nice alone would not reach
    finally:
        for manager in managers:
            asyncio.run(manager.shutdown_kernel(now=True))


def test_benchmark_results_record_the_machine_and_the_commit():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import _child
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from hforge_nb.paths import git_commit

    recorded = _child.provenance()
    assert recorded["git_commit"] == git_commit() and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", recorded["date_utc"])
    assert recorded["git_dirty"] in (True, False, None)
    assert (recorded["git_dirty"] is None) == (recorded["git_commit"] == "unknown")  # both read the same checkout
    assert _child.machine()["cpu"] and _child.machine()["cpus"] == os.cpu_count()
