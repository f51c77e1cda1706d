"""Import e3nn safely on recent torch.

e3nn 0.4.4 (pinned by mace-torch) loads its constants with ``torch.load``,
which on torch >= 2.6 defaults to ``weights_only=True`` and refuses the
pickled ``slice`` objects in that file.  Allowing ``slice`` as a safe global
before the first import fixes it.  Import e3nn through this module only.
"""

from __future__ import annotations

import functools
from types import ModuleType


@functools.cache
def import_o3() -> ModuleType:
    """Return ``e3nn.o3``, registering ``slice`` as a safe torch global first."""
    import torch

    torch.serialization.add_safe_globals([slice])
    from e3nn import o3

    return o3
