"""Parameter sweeps: run one notebook over a grid of parameters with papermill.

``python -m hforge_nb.sweep notebooks/04_transferability.ipynb --out runs/sweep04 \\
    --grid 'model_kinds=["equivariant"];["baseline"]' --grid seed=0,1,2 --set epochs=20``

runs the notebook once per point of the grid (the product of every
``--grid`` axis), each in its own folder ``<out>/<point name>/`` with the
point's parameters plus the fixed ``--set`` ones and ``output_dir`` set to
that folder; ``--profile`` adds the notebook's table of a profile file (see
:mod:`hforge_nb.pipeline`) under the ``--set`` ones. A point whose folder
already holds ``metrics.json`` (written last, atomically, by every numbered
notebook) is skipped, so an interrupted sweep resumes. Before a point runs,
``<out>/<point name>/sweep_point.json`` records every parameter it is given
(the fixed ones too) and the commit it runs. :func:`collect` then gathers
every point's metrics and that record into one table, ``<out>/sweep.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ._atomic import write_json
from .paths import git_commit, project_path

DONE_MARKER = "metrics.json"
#: What a point ran with, written before it runs: its parameters and the commit.
POINT_RECORD = "sweep_point.json"


@dataclass(frozen=True)
class SweepPoint:
    """One set of notebook parameters of a sweep, as ``(name, value)`` pairs in axis order."""

    items: tuple[tuple[str, object], ...]

    @property
    def parameters(self) -> dict:
        return dict(self.items)

    @property
    def name(self) -> str:
        """Folder name, e.g. ``model_kind=baseline,seed=1``."""
        return ",".join(f"{key}={_text(value)}" for key, value in self.items)


def _text(value) -> str:
    return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def grid(axes: dict[str, list]) -> list[SweepPoint]:
    """Every combination of the axes' values, the last axis varying fastest.

    >>> [p.name for p in grid({"kind": ["a", "b"], "seed": [0, 1]})]
    ['kind=a,seed=0', 'kind=a,seed=1', 'kind=b,seed=0', 'kind=b,seed=1']
    """
    for key, values in axes.items():
        if not values:
            raise ValueError(f"sweep axis {key!r} has no values")
    names = list(axes)
    return [SweepPoint(tuple(zip(names, combination))) for combination in itertools.product(*axes.values())]


def parse_value(text: str):
    """A command-line value as JSON if it parses (numbers, booleans, lists), else as a string.

    >>> parse_value("8"), parse_value("1e-2"), parse_value("[8, 16]"), parse_value("baseline")
    (8, 0.01, [8, 16], 'baseline')
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_axis(text: str) -> tuple[str, list]:
    """``"seed=0,1,2"`` -> ``("seed", [0, 1, 2])``; values separated by ``;`` when they hold commas."""
    key, sep, values = text.partition("=")
    if not sep or not key or not values:
        raise ValueError(f"a sweep axis is NAME=VALUE,VALUE,...; got {text!r}")
    separator = ";" if ";" in values else ","
    return key.strip(), [parse_value(v.strip()) for v in values.split(separator)]


def run_notebook(notebook: Path, executed: Path, parameters: dict) -> None:
    """Execute ``notebook`` with papermill into ``executed``, in the notebook's folder.

    The kernel keeps the CPU priority of the calling thread (:class:`.kernels.NiceKernelManager`).
    """
    import papermill

    from .kernels import NiceKernelManager

    papermill.execute_notebook(str(notebook), str(executed), parameters=parameters, cwd=str(notebook.parent),
                               kernel_name="python3", progress_bar=False, kernel_manager_class=NiceKernelManager)


def run_sweep(notebook: Path, points: list[SweepPoint], folder: Path, fixed: dict | None = None,
              runner=run_notebook) -> list[Path]:
    """Run ``notebook`` at every point not yet done; returns the folders of the points run now.

    ``runner(notebook, executed_path, parameters)`` executes one point
    (papermill by default); it must leave ``metrics.json`` in
    ``parameters["output_dir"]`` when it succeeds.
    """
    notebook, folder = project_path(notebook), project_path(folder)
    ran = []
    for point in points:
        point_folder = folder / point.name
        if (point_folder / DONE_MARKER).exists():
            print(f"[sweep] {point.name}: done before, skipped", flush=True)
            continue
        point_folder.mkdir(parents=True, exist_ok=True)
        parameters = {**(fixed or {}), **point.parameters, "output_dir": str(point_folder)}
        write_json(point_folder / POINT_RECORD, {"parameters": parameters, "git_commit": git_commit()})
        print(f"[sweep] {point.name}: running", flush=True)
        runner(notebook, point_folder / notebook.name, parameters)
        if not (point_folder / DONE_MARKER).exists():
            raise RuntimeError(f"{notebook.name} at {point.name} finished without writing {DONE_MARKER}")
        ran.append(point_folder)
    return ran


def collect(folder: Path, points: list[SweepPoint]) -> list[dict]:
    """One row per finished point, written to ``sweep.json``.

    A row holds the point's grid ``parameters``, its ``metrics.json`` and,
    as ``run``, its :data:`POINT_RECORD` (every parameter and the commit;
    empty for a point run before that record was written).
    """
    folder = project_path(folder)
    rows = []
    for point in points:
        path = folder / point.name / DONE_MARKER
        if path.exists():
            record = folder / point.name / POINT_RECORD
            rows.append({"point": point.name, "parameters": point.parameters,
                         "run": json.loads(record.read_text()) if record.exists() else {},
                         "metrics": json.loads(path.read_text())})
    write_json(folder / "sweep.json", {"format": "hforge-nb-sweep", "version": 1, "rows": rows})
    return rows


def read_sweep(folder: Path) -> dict:
    """The table :func:`collect` wrote: ``<folder>/sweep.json``, its ``rows`` one per finished point."""
    return json.loads((Path(folder) / "sweep.json").read_text())


def _profile_parameters(path: Path | None, stem: str) -> dict:
    """The profile's parameters of notebook ``stem`` (none without a profile)."""
    if path is None:
        return {}
    from .pipeline import Profile  # the pipeline runs notebooks through this module
    return Profile.read(project_path(path)).for_notebook(stem)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="sweep folder (one subfolder per point)")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2", help="a sweep axis")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a fixed parameter")
    parser.add_argument("--profile", type=Path, help="fixed parameters from this profile's table of the notebook")
    args = parser.parse_args(argv)
    points = grid(dict(parse_axis(axis) for axis in args.grid))
    fixed = {**_profile_parameters(args.profile, args.notebook.stem),
             **{key: values[0] for key, values in map(parse_axis, args.set)}}
    run_sweep(args.notebook, points, args.out, fixed)
    rows = collect(args.out, points)
    print(f"[sweep] {len(rows)} of {len(points)} points done -> {project_path(args.out) / 'sweep.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
