"""What the benchmark scripts share: one measurement per fresh process, the machine and the commit it ran on.

A measurement runs in its own Python process so that its peak memory is its
own; it prints one JSON line last, which the parent reads.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_child(script: str, arguments: list, threads: int = 1) -> dict:
    """Run ``python script *arguments`` with ``threads`` OpenMP threads (BLAS single-threaded); its last line as JSON.

    A child that fails raises ``RuntimeError`` with the end of its standard
    error, so the cause is not lost behind a bare exit status.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), *map(str, arguments)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(map(str, arguments))} failed ({done.returncode}):\n"
                           + "\n".join(done.stderr.strip().splitlines()[-20:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "unknown"


def machine() -> dict:
    """CPU model and count and Python version, for a results file."""
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version()}


def _tracked_changes() -> bool | None:
    """Whether tracked files outside ``benchmarks/results/`` differ from the commit (None outside git)."""
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                 ":!benchmarks/results"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return bool(status.stdout.strip())


def provenance() -> dict:
    """What a results file was measured with: the commit (``git_dirty`` when tracked files outside
    ``benchmarks/results/`` had changes) and when.

    Timings depend on the code as much as on the machine, so every results
    file records the commit its numbers came from.
    """
    from hforge_nb.paths import git_commit

    return {"git_commit": git_commit(ROOT), "git_dirty": _tracked_changes(),
            "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
