"""Spin kinds of a Hamiltonian and the layout of their real components.

Matrices are stored, as in sisl and SIESTA, as real components per orbital
pair: 1 (unpolarized), 2 (up, down), 4 (non-colinear) or 8 (spin-orbit).
For the spinful kinds the 2x2 spin box of orbital pair (i, j) is

==============  ===================  ===================
kind            H_uu, H_dd            H_ud, H_du
==============  ===================  ===================
non-colinear    c0, c1                c2 + i c3, c2 - i c3
spin-orbit      c0 + i c4, c1 + i c5  c2 + i c3, c6 + i c7
==============  ===================  ===================
"""

from __future__ import annotations

import enum

import numpy as np


class SpinKind(str, enum.Enum):
    """The spin treatment of an electronic-structure calculation."""

    UNPOLARIZED = "unpolarized"
    POLARIZED = "polarized"
    NONCOLINEAR = "non-colinear"
    SPINORBIT = "spin-orbit"

    @property
    def n_components(self) -> int:
        """Number of real matrix components stored per orbital pair."""
        return {"unpolarized": 1, "polarized": 2, "non-colinear": 4, "spin-orbit": 8}[self.value]

    @property
    def is_spin_box(self) -> bool:
        """True where H(k) is a 2x2 spin-box matrix of size 2 n_orbitals."""
        return self in (SpinKind.NONCOLINEAR, SpinKind.SPINORBIT)

    @property
    def adjoint_map(self) -> tuple[np.ndarray, np.ndarray]:
        """Component permutation and signs of the Hermitian adjoint.

        Hermiticity reads ``H[c](R)_ij = sign[c] * H[perm[c]](-R)_ji``.

        Examples
        --------
        >>> perm, sign = SpinKind.SPINORBIT.adjoint_map
        >>> perm.tolist(), sign.tolist()
        ([0, 1, 6, 7, 4, 5, 2, 3], [1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0, -1.0])
        """
        if self is SpinKind.SPINORBIT:
            perm = np.array([0, 1, 6, 7, 4, 5, 2, 3])
            sign = np.array([1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0, -1.0])
            return perm, sign
        n = self.n_components
        return np.arange(n), np.ones(n)

    @classmethod
    def from_sisl(cls, spin) -> "SpinKind":
        """Convert a ``sisl.Spin``; Nambu (superconducting) matrices are refused."""
        if spin.is_spinorbit:
            return cls.SPINORBIT
        if spin.is_noncolinear:
            return cls.NONCOLINEAR
        if spin.is_polarized:
            return cls.POLARIZED
        if spin.is_unpolarized:
            return cls.UNPOLARIZED
        raise ValueError(f"unsupported sisl spin configuration {spin!r}")

    def to_sisl(self):
        """The matching ``sisl.Spin``."""
        import sisl

        return sisl.Spin(self.value)


def spin_box(components: np.ndarray, kind: SpinKind) -> np.ndarray:
    """Assemble complex spin-box matrices from real components.

    Parameters
    ----------
    components
        ``[..., n_i, n_j, n_components]`` real values (eV).
    kind
        A spin-box kind (non-colinear or spin-orbit).

    Returns
    -------
    numpy.ndarray
        ``[..., 2 n_i, 2 n_j]`` complex, orbital-major with interleaved spin
        (row ``2 i + s``), as sisl orders it.
    """
    c = components
    if kind is SpinKind.SPINORBIT:
        uu, dd = c[..., 0] + 1j * c[..., 4], c[..., 1] + 1j * c[..., 5]
        ud, du = c[..., 2] + 1j * c[..., 3], c[..., 6] + 1j * c[..., 7]
    elif kind is SpinKind.NONCOLINEAR:
        uu, dd = c[..., 0] + 0j, c[..., 1] + 0j
        ud, du = c[..., 2] + 1j * c[..., 3], c[..., 2] - 1j * c[..., 3]
    else:
        raise ValueError(f"{kind.value} matrices have no spin box")
    *lead, ni, nj = uu.shape
    box = np.empty((*lead, 2 * ni, 2 * nj), dtype=complex)
    box[..., 0::2, 0::2], box[..., 1::2, 1::2] = uu, dd
    box[..., 0::2, 1::2], box[..., 1::2, 0::2] = ud, du
    return box
