"""Before a run: do the samples a profile names exist where its notebooks will look?

Some parameters name one sample of a data set: notebook 05's DOS cell and
band-structure crystals, notebook 06's KPM cell.  A name the data set lacks
fails only when its notebook reaches it, which in a full run is hours after
the start.  :func:`check_sample_references` finds such names before any
notebook runs, from what each notebook will read: the samples that this
run's notebook 01 plans (:class:`.dataset.DatasetPlan`) when a notebook
reads its output folder, otherwise the manifest of the data set folder
already on disk.  A folder that neither this run makes nor holds a manifest
is left to the notebook, whose reader names it.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from . import dataset

#: Parameters that name samples of the notebook's ``data_dir``, per notebook stem.
SAMPLE_PARAMETERS = {"05_dft_vs_ml": ("crystals", "dos_sample"), "06_large_scale": ("kpm_sample",)}
#: Notebook 01's parameters that decide the names of the samples it makes.
PLAN_PARAMETERS = ("train_sizes", "holdout_sizes", "n_train_per_size", "n_holdout_per_size", "crystals", "n_rattled")
DATASET_STAGE = "01_dataset"


def _parameter_assignments(notebook: Path) -> list[ast.Assign]:
    """The plain ``name = value`` statements of the cell tagged ``parameters`` of ``notebook`` (.ipynb)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    return [statement for statement in ast.parse("".join(cell["source"])).body
            if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name)]


def parameter_names(notebook: Path) -> set[str]:
    """Every name the cell tagged ``parameters`` of ``notebook`` (.ipynb) assigns, literal or not.

    >>> from hforge_nb.paths import project_root
    >>> "kpm_sample" in parameter_names(project_root() / "notebooks" / "06_large_scale.ipynb")
    True
    """
    return {statement.targets[0].id for statement in _parameter_assignments(notebook)}


def parameter_defaults(notebook: Path) -> dict:
    """The literal values assigned in the cell tagged ``parameters`` of ``notebook`` (.ipynb), by name.

    >>> from hforge_nb.paths import project_root
    >>> parameter_defaults(project_root() / "notebooks" / "06_large_scale.ipynb")["kpm_sample"]
    'aBN-0032-holdout-00'
    """
    defaults = {}
    for statement in _parameter_assignments(notebook):
        try:
            defaults[statement.targets[0].id] = ast.literal_eval(statement.value)
        except ValueError:  # not a literal: nothing to check
            pass
    return defaults


def planned_samples(parameters: dict) -> set[str]:
    """Names of the samples notebook 01 makes with ``parameters`` (its defaults and the profile's values)."""
    plan = {name: parameters[name] for name in PLAN_PARAMETERS if name in parameters}
    for sizes in ("train_sizes", "holdout_sizes", "n_train_per_size"):
        if isinstance(plan.get(sizes), list):
            plan[sizes] = tuple(plan[sizes])
    return {spec.name for spec in dataset.DatasetPlan(**plan).samples()}


def _resolved(path: str, root: Path) -> Path:
    return (Path(path) if Path(path).is_absolute() else root / path).resolve()


def _named_samples(stem: str, parameters: dict) -> list[tuple[str, str]]:
    """``(parameter, sample name)`` of every sample that ``parameters`` of notebook ``stem`` name."""
    named = []
    for parameter in SAMPLE_PARAMETERS.get(stem, ()):
        value = parameters.get(parameter)
        names = value if isinstance(value, list) else [value] if value else []
        named += [(parameter, name) for name in names]
    return named


def _samples_in(folder: Path, made_here: dict[Path, set[str]]) -> set[str] | None:
    """Sample names ``folder`` will hold: planned by this run (plus any already there), on disk, or ``None``."""
    has_manifest = (folder / "manifest.json").exists()
    on_disk = ({s["name"] for s in dataset.read_manifest(folder)["samples"] if s["status"] == "converged"}
               if has_manifest else set())
    if folder in made_here:
        return made_here[folder] | on_disk
    return on_disk if has_manifest else None


def missing_samples(parameters: dict[str, dict], root: Path) -> list[str]:
    """What is wrong with the sample names of a run's notebooks, one sentence each (empty: nothing).

    ``parameters``: per notebook stem of the run, the parameters it will
    run with (defaults, then the run's ``output_dir``, then the profile's).
    """
    made_here = {}
    if DATASET_STAGE in parameters:
        made_here[_resolved(parameters[DATASET_STAGE]["output_dir"], root)] = planned_samples(parameters[DATASET_STAGE])
    problems = []
    for stem, values in parameters.items():
        named = _named_samples(stem, values)
        if not named:
            continue
        folder = _resolved(values.get("data_dir", ""), root)
        available = _samples_in(folder, made_here)
        problems += [f"{stem}: {parameter} = {name!r} is not a sample of {folder} "
                     f"({'planned by this run' if folder in made_here else 'its manifest'})"
                     for parameter, name in named if available is not None and name not in available]
    return problems


def check_sample_references(parameters: dict[str, dict], root: Path) -> None:
    """Raise ``ValueError`` naming every sample a run's notebooks name and their data set lacks (:func:`missing_samples`)."""
    problems = missing_samples(parameters, root)
    if problems:
        raise ValueError("the profile names samples its data sets lack; nothing was run:\n  " + "\n  ".join(problems))
