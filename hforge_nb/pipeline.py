"""The main job: run every numbered notebook in order with papermill.

``python -m hforge_nb.pipeline --profile profiles/default.toml --run-dir runs/default``
executes ``notebooks/NN_*.ipynb`` in number order, each with the parameters
of its section in the profile plus ``output_dir = <run-dir>/<notebook>``, and
leaves the executed notebooks, their outputs and ``run.json`` (what ran, how
long, with which parameters) in the run folder; a whole run then writes the
``papers/`` index (:mod:`.papers`).  Notebooks hand work on
through files in that folder only.

With ``--jobs 2`` (the default) two notebooks run side by side, each on one
core (the profiles set one torch thread per notebook): a notebook starts,
in number order, once every earlier notebook of the run whose output it
reads has finished.  What a notebook reads is found in its code: the
notebook names it passes to :func:`.paths.earlier_stage`.  On Linux, the
notebooks that no other notebook of the run waits for run at a lower CPU
priority (nice + :data:`BACKGROUND_NICE`, which :func:`.sweep.run_notebook`
carries into each kernel's own session), so that when more processes
than cores compete, the notebook the others wait for (notebook 03, whose
models 05 and 06 read) is slowed least; ``run.json`` marks the others
``"background": true``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
import tomllib
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from ._atomic import write_json
from .paths import git_commit, project_root
from . import papers
from .profile_check import check_sample_references, parameter_defaults
from .sweep import run_notebook

NOTEBOOK_PATTERN = re.compile(r"^\d\d_.+\.ipynb$")
#: A call ``earlier_stage(..., "NN_name", ...)`` in a notebook's code: the notebook reads NN_name's output.
EARLIER_STAGE_CALL = re.compile(r"earlier_stage\([^)]*?[\"'](\d\d_\w+)[\"']")
#: Nice increment of the notebooks no other notebook of the run reads (on Linux; 0 leaves priorities alone).
BACKGROUND_NICE = 10


@dataclass(frozen=True)
class Profile:
    """Parameters for every notebook, read from a TOML file with one table per notebook."""

    name: str
    parameters: dict

    @classmethod
    def read(cls, path: Path) -> "Profile":
        try:
            content = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read profile {path}: {exc}") from exc
        return cls(Path(path).stem, content)

    def for_notebook(self, stem: str) -> dict:
        return dict(self.parameters.get(stem, {}))


def numbered_notebooks(folder: Path) -> list[Path]:
    """``NN_*.ipynb`` in ``folder``, in number order."""
    return sorted(p for p in folder.iterdir() if NOTEBOOK_PATTERN.match(p.name))


def stage_inputs(notebook: Path) -> set[str]:
    """Stems of the earlier notebooks whose output folders ``notebook`` reads (its ``earlier_stage`` calls)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    return set(EARLIER_STAGE_CALL.findall(code))


def inputs_in_run(notebooks: list[Path]) -> dict[str, set[str]]:
    """Per notebook stem, the stems of the other ``notebooks`` whose output it reads (:func:`stage_inputs`)."""
    in_run = {notebook.stem for notebook in notebooks}
    return {notebook.stem: stage_inputs(notebook) & in_run for notebook in notebooks}


def _run_one(runner, notebook: Path, run_dir: Path, parameters: dict) -> dict:
    """Execute one notebook of the run with ``runner``; its entry in ``run.json``."""
    started = time.perf_counter()
    print(f"[hforge-nb] {notebook.name} with {parameters}", flush=True)
    runner(notebook, run_dir / notebook.name, parameters)
    return {"notebook": notebook.name, "parameters": parameters, "seconds": round(time.perf_counter() - started, 1)}


def _at_lower_priority(function, increment: int):
    """``function()`` run in a thread of its own whose CPU priority is lowered by ``increment``; its result.

    Linux keeps a nice value per thread, and the processes a thread starts
    (a notebook's kernel, and the kernel's own workers) inherit it; the
    calling thread keeps its priority.  Elsewhere, or with ``increment``
    0, ``function`` runs as it is.  An error of ``function`` is raised here.
    """
    if increment <= 0 or sys.platform != "linux":
        return function()
    outcome = {}

    def lowered() -> None:
        thread = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + increment)
            outcome["result"] = function()
        except BaseException as error:  # handed to the caller below
            outcome["error"] = error

    worker = threading.Thread(target=lowered)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _ready(pending: list[Path], inputs: dict[str, set[str]], done: set[str], free: int) -> list[Path]:
    """Up to ``free`` of ``pending`` (in number order) whose inputs in this run have all finished."""
    return [notebook for notebook in pending if inputs[notebook.stem] <= done][:free]


def run_pipeline(profile: Profile, run_dir: Path, only: list[str] | None = None, jobs: int = 1,
                 runner=run_notebook) -> dict:
    """Execute the notebooks, up to ``jobs`` at a time; returns (and writes) the run summary.

    ``runner(notebook, executed_path, parameters)`` executes one notebook
    (papermill by default).
    A notebook that fails stops the run: the notebooks still running finish
    and are recorded, none starts after it, and its error is raised.  A
    profile that names samples its data sets lack raises before any
    notebook runs (:func:`.profile_check.check_sample_references`).
    """
    root = project_root()
    run_dir = run_dir if run_dir.is_absolute() else root / run_dir
    summary = {"profile": profile.name, "git_commit": git_commit(root), "jobs": jobs, "notebooks": []}
    if only and (run_dir / "run.json").exists():  # keep the record of the notebooks not run again
        earlier = json.loads((run_dir / "run.json").read_text())["notebooks"]
        summary["notebooks"] = [n for n in earlier if Path(n["notebook"]).stem not in only]
    notebooks = [nb for nb in numbered_notebooks(root / "notebooks") if not only or nb.stem in only]
    parameters = {nb.stem: {"output_dir": str(run_dir / nb.stem), **profile.for_notebook(nb.stem)} for nb in notebooks}
    check_sample_references({nb.stem: {**parameter_defaults(nb), **parameters[nb.stem]} for nb in notebooks}, root)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    inputs = inputs_in_run(notebooks)
    waited_for = set().union(*inputs.values())

    def run(notebook: Path) -> dict:
        given = parameters[notebook.stem]
        if jobs < 2 or notebook.stem in waited_for:
            return _run_one(runner, notebook, run_dir, given)
        entry = _at_lower_priority(lambda: _run_one(runner, notebook, run_dir, given), BACKGROUND_NICE)
        return {**entry, "background": True}

    _run_in_order(notebooks, inputs, max(1, jobs), run, lambda entry: _record(summary, entry, run_dir))
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    write_json(run_dir / "run.json", summary)
    return summary


def _run_in_order(notebooks: list[Path], inputs: dict[str, set[str]], jobs: int, run, record) -> None:
    """``run(notebook)`` for each of ``notebooks``, ``jobs`` at a time, each once what it reads has run.

    ``inputs``: per notebook stem, the stems it reads (:func:`inputs_in_run`).

    ``record(entry)`` takes what ``run`` returned for each notebook that
    finished.  The first error stops new starts; the notebooks still
    running finish (and are recorded), then it is raised.
    """
    pending, done, running, errors = list(notebooks), set(), {}, []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            for notebook in _ready(pending, inputs, done, jobs - len(running)):
                pending.remove(notebook)
                running[pool.submit(run, notebook)] = notebook
            if not running:
                raise ValueError(f"notebooks {[nb.name for nb in pending]} read each other's output: no order runs them")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                notebook = running.pop(future)
                if future.exception() is not None:
                    errors.append(future.exception())
                    pending.clear()
                    continue
                done.add(notebook.stem)
                record(future.result())
    if errors:
        raise errors[0]


def _record(summary: dict, entry: dict, run_dir: Path) -> None:
    """Add a finished notebook's entry to the summary and write ``run.json``."""
    summary["notebooks"].append(entry)
    summary["notebooks"].sort(key=lambda n: n["notebook"])
    write_json(run_dir / "run.json", summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=Path, default=project_root() / "profiles" / "default.toml")
    parser.add_argument("--run-dir", type=Path, default=Path("runs") / "default")
    parser.add_argument("--only", nargs="*", help="notebook stems to run (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run side by side (default: 2)")
    args = parser.parse_args(argv)
    summary = run_pipeline(Profile.read(args.profile), args.run_dir, args.only, args.jobs)
    ran = [n for n in summary["notebooks"] if not args.only or Path(n["notebook"]).stem in args.only]
    print(f"[hforge-nb] ran {len(ran)} notebook(s) in {summary['wall_seconds']:.0f} s, {args.jobs} at a time "
          f"-> {args.run_dir}")
    if not args.only:  # a whole run: index its figures and numbers in papers/
        papers.main(["--run-dir", str(args.run_dir)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
