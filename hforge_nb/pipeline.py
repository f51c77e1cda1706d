"""The main job: run every numbered notebook in order with papermill.

``python -m hforge_nb.pipeline --profile profiles/default.toml --run-dir runs/default``
executes ``notebooks/NN_*.ipynb`` in number order, each with the parameters
of its section in the profile plus ``output_dir = <run-dir>/<notebook>``, and
leaves the executed notebooks, their outputs and ``run.json`` (what ran, how
long, with which parameters) in the run folder; a whole run then writes the
``papers/`` index (:mod:`.papers`).  Notebooks hand work on
through files in that folder only.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ._atomic import write_json
from .paths import project_root
from . import papers
from .sweep import run_notebook

NOTEBOOK_PATTERN = re.compile(r"^\d\d_.+\.ipynb$")


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


def _git_commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_pipeline(profile: Profile, run_dir: Path, only: list[str] | None = None) -> dict:
    """Execute the notebooks; returns (and writes) the run summary."""
    root = project_root()
    run_dir = run_dir if run_dir.is_absolute() else root / run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = {"profile": profile.name, "git_commit": _git_commit(root), "notebooks": []}
    if only and (run_dir / "run.json").exists():  # keep the record of the notebooks not run again
        earlier = json.loads((run_dir / "run.json").read_text())["notebooks"]
        summary["notebooks"] = [n for n in earlier if Path(n["notebook"]).stem not in only]
    for notebook in numbered_notebooks(root / "notebooks"):
        if only and notebook.stem not in only:
            continue
        parameters = {"output_dir": str(run_dir / notebook.stem), **profile.for_notebook(notebook.stem)}
        started = time.perf_counter()
        print(f"[hforge-nb] {notebook.name} with {parameters}", flush=True)
        run_notebook(notebook, run_dir / notebook.name, parameters)
        summary["notebooks"].append({"notebook": notebook.name, "parameters": parameters,
                                     "seconds": round(time.perf_counter() - started, 1)})
        summary["notebooks"].sort(key=lambda n: n["notebook"])
        write_json(run_dir / "run.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=Path, default=project_root() / "profiles" / "default.toml")
    parser.add_argument("--run-dir", type=Path, default=Path("runs") / "default")
    parser.add_argument("--only", nargs="*", help="notebook stems to run (default: all)")
    args = parser.parse_args(argv)
    summary = run_pipeline(Profile.read(args.profile), args.run_dir, args.only)
    ran = [n for n in summary["notebooks"] if not args.only or Path(n["notebook"]).stem in args.only]
    total = sum(n["seconds"] for n in ran)
    print(f"[hforge-nb] ran {len(ran)} notebook(s) in {total:.0f} s -> {args.run_dir}")
    if not args.only:  # a whole run: index its figures and numbers in papers/
        papers.main(["--run-dir", str(args.run_dir)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
