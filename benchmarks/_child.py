"""What the benchmark scripts share: one measurement per fresh process, and the machine it ran on.

A measurement runs in its own Python process so that its peak memory is its
own; it prints one JSON line last, which the parent reads.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys


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


def machine() -> dict:
    """CPU count and Python version, for a results file."""
    return {"cpus": os.cpu_count(), "python": platform.python_version()}
