"""Exceptions raised on bad input.

Every error names the problem and, where there is one, the file or element
involved, so that a user sweeping notebooks with papermill can tell at once
what to fix.  All derive from :class:`HForgeError`, itself a ``ValueError``.
"""


class HForgeError(ValueError):
    """Base class of hforge-nb's input errors."""


class CorruptFileError(HForgeError):
    """A file exists but is truncated, corrupt or not of the expected kind."""


class MissingBasisError(HForgeError):
    """An element or species has no orbital basis."""


class UnknownElementError(HForgeError):
    """A chemical symbol or atomic number that is not an element."""


class BasisMismatchError(HForgeError):
    """An orbital basis disagrees with a matrix (orbital count or angular momenta)."""


class NonFiniteValuesError(HForgeError):
    """A matrix, position or cell holds NaN or infinity."""


class OverlappingAtomsError(HForgeError):
    """Two atoms are closer than physically sensible."""
