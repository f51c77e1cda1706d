"""Notebook kernels that keep the CPU priority they were started with.

Jupyter starts every kernel in a session of its own, and Linux, with
``kernel.sched_autogroup_enabled``, schedules each session as one group
that gets a fair share of the CPU whatever the nice values of its
processes: a kernel started from a niced process (``nice papermill ...``,
or :mod:`.pipeline`'s background notebooks) keeps its nice value, yet
competes as an equal with every other session.  :class:`NiceKernelManager`
gives the kernel's session (its autogroup) the kernel's own nice value
once it has started, so that the priority holds.
"""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_client import AsyncKernelManager


def autogroup_nice(pid: int) -> int | None:
    """Nice value of the autogroup of process ``pid``; None where Linux has no autogroups (or no such process).

    >>> autogroup_nice(-1) is None
    True
    """
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def lower_autogroup(pid: int, nice: int) -> bool:
    """Set the autogroup of process ``pid`` to ``nice`` if that lowers its priority; whether it is set now."""
    current = autogroup_nice(pid)
    if current is None or nice <= current:
        return False
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
    except OSError:  # autogroups off, or not allowed: the process keeps its share
        return False
    return True


class NiceKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels' sessions get the nice value their kernel was started with."""

    async def _async_post_start_kernel(self, **kw) -> None:
        await super()._async_post_start_kernel(**kw)
        pid = getattr(self.provisioner, "pid", None)
        if pid is not None:
            lower_autogroup(pid, os.getpriority(os.PRIO_PROCESS, pid))
