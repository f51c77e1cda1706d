"""Notebook hygiene: one parameters cell, stripped outputs, .ipynb in sync with its jupytext .py.

nbval itself executes every notebook (``--nbval-lax`` in pyproject.toml).
"""

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_and_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_paired_script_is_in_sync(path):
    script = path.with_suffix(".py")
    assert script.is_file(), f"{script.name} (jupytext pair) is missing"
    from_ipynb = [c.source for c in jupytext.read(path).cells]
    from_script = [c.source for c in jupytext.read(script).cells]
    assert from_ipynb == from_script, f"run `jupytext --sync {path.name}`"


def test_notebooks_are_numbered_without_gaps():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(len(numbers)))
