"""Where things are: the project root and the commit checked out there, run folders and the shared SIESTA test data."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

#: Environment variable that points at the SIESTA example folder.
SIESTA_DATA_ENV = "HFORGE_SIESTA_DATA"
#: Environment variable that moves the default output folders of notebooks run by hand
#: (``runs/interactive``); the tests point it at a temporary folder.
INTERACTIVE_DIR_ENV = "HFORGE_INTERACTIVE_DIR"


def project_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml``)."""
    return Path(__file__).resolve().parent.parent


def git_commit(root: str | os.PathLike | None = None) -> str:
    """The commit checked out at ``root`` (the project root by default), or ``"unknown"`` outside git."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root or project_root(), capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def project_path(path: str | os.PathLike) -> Path:
    """``path`` as given if absolute, else taken from the project root (notebooks run in ``notebooks/``).

    Examples
    --------
    >>> project_path("data/aBN-dzp") == project_root() / "data" / "aBN-dzp"
    True
    """
    path = Path(path)
    return path if path.is_absolute() else project_root() / path


def relative_to_project(path: str | os.PathLike) -> str:
    """``path`` relative to the project root when inside it, else as given."""
    try:
        return str(Path(path).resolve().relative_to(project_root()))
    except ValueError:
        return str(path)


def output_folder(output_dir: str, notebook: str) -> Path:
    """A notebook's output folder, created if needed.

    An empty ``output_dir`` means ``<root>/runs/interactive/<notebook>``
    (or ``$HFORGE_INTERACTIVE_DIR/<notebook>``); a relative one is taken
    from the project root.
    """
    interactive = Path(os.environ.get(INTERACTIVE_DIR_ENV) or Path("runs") / "interactive")
    folder = Path(output_dir) if output_dir else interactive / notebook
    folder = folder if folder.is_absolute() else project_root() / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def earlier_stage(folder: str, out: Path, notebook: str, needed: str) -> Path:
    """The output folder of an earlier notebook whose file ``needed`` this one reads.

    An empty ``folder`` means the sibling of this notebook's output folder
    ``out`` (``<run>/<notebook>``, as the main job lays out a run).  Raises
    ``FileNotFoundError`` naming the notebook to run first when
    ``needed`` is not there.

    Examples
    --------
    >>> earlier_stage("", project_root() / "05_dft_vs_ml", "hforge_nb", "paths.py") == project_root() / "hforge_nb"
    True
    """
    stage = project_path(folder) if folder else out.parent / notebook
    if not (stage / needed).exists():
        raise FileNotFoundError(f"{stage / needed} not found: run notebook {notebook} first with "
                                f"output_dir={str(stage)!r}, or point this notebook at its output folder")
    return stage


def siesta_data_dir() -> Path:
    """The folder of real SIESTA calculations (``shared/data/siesta``).

    Looked up from ``$HFORGE_SIESTA_DATA`` or, by default, beside the
    checkout (``<root>/../shared/data/siesta``).  Raises
    ``FileNotFoundError`` with the places searched when it is absent.
    """
    candidates = []
    if os.environ.get(SIESTA_DATA_ENV):
        candidates.append(Path(os.environ[SIESTA_DATA_ENV]))
    candidates.append(project_root().parent / "shared" / "data" / "siesta")
    for folder in candidates:
        if folder.is_dir():
            return folder
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"SIESTA example data not found (searched {searched}); "
        f"set ${SIESTA_DATA_ENV} to the folder holding Si_pdos_k/, graphene_electrode/, ..."
    )
