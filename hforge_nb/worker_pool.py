"""Process pools whose workers end when the process that started them does.

A :class:`concurrent.futures.ProcessPoolExecutor` shuts its workers down
when it is closed, but not when its process is killed: a notebook kernel
stopped with its pipeline (SIGTERM, a papermill timeout, a closed terminal)
left its GPAW workers computing on their own, each with gigabytes of memory,
for an hour.  :func:`spawn_pool` starts workers that watch their parent and
exit as soon as it is gone: on Linux the kernel signals them
(``PR_SET_PDEATHSIG``), and everywhere a daemon thread checks the parent's
process id every ``poll_seconds``.  What a worker had already written stays
(outputs are written atomically); the sample it was computing is computed
again on the next run.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

#: prctl option that has the kernel signal a process when its parent thread exits (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def spawn_pool(max_workers: int, poll_seconds: float = 1.0) -> ProcessPoolExecutor:
    """A pool of ``max_workers`` spawned processes that exit when this process does.

    Spawned, not forked, so that no thread pool of torch or OpenBLAS is
    inherited.  ``poll_seconds``: how often each worker checks that its
    parent still runs (s).
    """
    return ProcessPoolExecutor(max_workers=max_workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=exit_with_parent, initargs=(os.getpid(), poll_seconds))


def exit_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """In a worker: end this process once ``parent_pid`` is no longer its parent.

    Asks the kernel for SIGTERM when the parent exits (Linux), then, since
    the parent may have gone before that request, starts a daemon thread
    that checks ``os.getppid()`` every ``poll_seconds`` (s) and exits with
    status 1 when it changes.
    """
    _request_parent_death_signal()
    threading.Thread(target=_watch_parent, args=(parent_pid, poll_seconds), daemon=True,
                     name="hforge-nb-parent-watch").start()


def _watch_parent(parent_pid: int, poll_seconds: float) -> None:
    """Exit this process (status 1, without clean-up) when its parent is no longer ``parent_pid``."""
    while os.getppid() == parent_pid:
        time.sleep(poll_seconds)
    os._exit(1)


def _request_parent_death_signal() -> bool:
    """Ask Linux to send this process SIGTERM when its parent exits; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
