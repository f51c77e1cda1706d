"""Pool workers end with the process that started them (hforge_nb.worker_pool)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hforge_nb.worker_pool import spawn_pool

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see processes")

#: A parent that starts one sleeping worker and dies without closing its pool, as a killed process would.
ORPHANING_PARENT = textwrap.dedent("""
    import os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    from pathlib import Path

    from hforge_nb import worker_pool


    def record_pid_and_sleep(path):
        Path(path).write_text(str(os.getpid()))
        time.sleep(120)


    def watch_by_polling_only(parent_pid):
        worker_pool._request_parent_death_signal = lambda: False
        worker_pool.exit_with_parent(parent_pid, poll_seconds=0.1)


    if __name__ == "__main__":
        pid_file, how = sys.argv[1], sys.argv[2]
        if how == "spawn_pool":
            pool = worker_pool.spawn_pool(1, poll_seconds=0.1)
        else:
            pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=watch_by_polling_only,
                                       initargs=(os.getpid(),))
        pool.submit(record_pid_and_sleep, pid_file)
        while not Path(pid_file).exists():
            time.sleep(0.05)
        os._exit(0)
""")


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (read from /proc)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _orphaned_worker_pid(tmp_path: Path, how: str) -> int:
    """Run :data:`ORPHANING_PARENT` to its end; the process id of the worker it left."""
    script, pid_file = tmp_path / "parent.py", tmp_path / "worker.pid"
    script.write_text(ORPHANING_PARENT)
    subprocess.run([sys.executable, str(script), str(pid_file), how], check=True, timeout=120,
                   cwd=Path(__file__).resolve().parents[1])
    return int(pid_file.read_text())


def _wait_until_gone(pid: int, seconds: float) -> bool:
    """Whether ``pid`` stopped running within ``seconds`` (s)."""
    deadline = time.monotonic() + seconds
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _running(pid)


@pytest.mark.parametrize("how", ["spawn_pool", "polling_only"])
def test_worker_exits_when_its_parent_dies(tmp_path, how):
    worker = _orphaned_worker_pid(tmp_path, how)
    assert _wait_until_gone(worker, 20.0), f"worker {worker} still runs after its parent died ({how})"


def _square(x: int) -> int:
    return x * x


def test_pool_computes_while_its_parent_lives():
    with spawn_pool(2, poll_seconds=0.1) as pool:
        time.sleep(0.5)  # several polls of the watch
        assert list(pool.map(_square, range(5))) == [0, 1, 4, 9, 16]
