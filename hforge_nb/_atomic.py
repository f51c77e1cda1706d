"""Atomic file writes: a reader never sees a half-written file.

Everything hforge-nb writes (records, metrics, checkpoints, exports) goes
through :func:`atomic_path`: the content is written to a temporary file in
the destination folder and moved over the destination only once complete,
so an interrupted or failed write leaves any earlier file untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` on success.

    The temporary name keeps ``path``'s suffix, so writers that choose a
    format from the file extension (sisl, numpy) still work.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _to_jsonable(value: Any) -> Any:
    """Convert numpy scalars and arrays (recursively) to plain Python."""
    if isinstance(value, Mapping):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, content: Mapping[str, Any]) -> Path:
    """Write ``content`` as indented JSON, atomically; numpy values allowed."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_to_jsonable(content), indent=2, allow_nan=True) + "\n")
    return Path(path)
