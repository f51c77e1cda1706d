"""Peak memory of one GPAW reference calculation, estimated from the cell size, against what the machine has.

A data set plan can hold cells too large for the machine: GPAW's peak
memory grows faster than the number of atoms (9.4 GB at 128 atoms here),
and a worker killed for lack of memory takes hours of work with it and
leaves only "a process in the process pool was terminated abruptly".
:func:`estimate_peak_memory_GB` interpolates the peak resident memory
measured here, per single-threaded process, at the settings the data
were made with until commit e9eb27e (PBE, ``dzp``, h = 0.25 Å, k-point
spacing 1.0 1/Å): 8 to 32 and 128 atoms from
``benchmarks/results/gpaw_cost.json``, 64 atoms from the manifest of
``data/aBN-dzp`` at that commit.  Finer grids and denser k-point sets
need more: at the committed data's h = 0.2 Å and 0.5 1/Å its manifest
has peaks of 0.49 to 0.56 GB at 8 atoms, 0.83 to 0.90 GB at 16, 1.52 GB
at 32 and 3.97 GB at 64 (12 to 35 % more).
"""

from __future__ import annotations

import os

import numpy as np

#: (atoms, peak resident memory in GB) of one GPAW-LCAO sample here, at h = 0.25 Å and 1.0 1/Å.
MEASURED_PEAK_GB = ((8, 0.44), (16, 0.67), (32, 1.24), (64, 3.35), (128, 9.37))


def estimate_peak_memory_GB(n_atoms: int) -> float:
    """Peak memory (GB) of one GPAW sample of ``n_atoms``: a power law between the measured sizes.

    Beyond 128 atoms the power law of 64 to 128 atoms (exponent 1.48)
    continues; below 8 atoms the 8-atom value holds (small crystal cells
    take more k-points).

    Examples
    --------
    >>> estimate_peak_memory_GB(64)
    3.35
    >>> estimate_peak_memory_GB(216)
    20.37
    """
    n_atoms = max(n_atoms, MEASURED_PEAK_GB[0][0])
    atoms, memory = (np.log(np.array(column, dtype=float)) for column in zip(*MEASURED_PEAK_GB))
    segment = int(np.clip(np.searchsorted(atoms, np.log(n_atoms)) - 1, 0, len(atoms) - 2))
    slope = (memory[segment + 1] - memory[segment]) / (atoms[segment + 1] - atoms[segment])
    return round(float(np.exp(memory[segment] + slope * (np.log(n_atoms) - atoms[segment]))), 2)


def available_memory_GB() -> float | None:
    """Memory (GB) the machine can give now: ``MemAvailable`` of ``/proc/meminfo``, else physical memory, else None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return None


def workers_that_fit(estimate_GB: float, workers: int, memory_GB: float) -> int:
    """At most ``workers``, and as many processes as can each hold ``estimate_GB`` in ``memory_GB`` (at least 1).

    Examples
    --------
    >>> workers_that_fit(9.4, workers=2, memory_GB=15.0), workers_that_fit(0.7, workers=2, memory_GB=15.0)
    (1, 2)
    """
    fitting = int(memory_GB // estimate_GB) if estimate_GB > 0 else workers
    return max(1, min(workers, fitting))
