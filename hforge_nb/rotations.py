"""How orbitals, and so H and S blocks, transform under rotations and inversion.

SIESTA's real spherical harmonics (as sisl evaluates them) and e3nn's differ
by a fixed orthogonal change of basis per l, computed here once by fitting
one to the other on sample directions.  With it, the Wigner-D matrix of a
rotation in SIESTA's orbital order is D_siesta = C^T D_e3nn C, and rotating a
structure by Q turns every block into D_i(Q) H_ij D_j(Q)^T.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import scipy.linalg

from .basis import Basis, SpeciesBasis
from .record import HamiltonianRecord


def _sample_directions(n: int = 64) -> np.ndarray:
    """``[n, 3]`` unit vectors spread over the sphere (Fibonacci lattice)."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (1 + 5**0.5) * k
    rho = np.sqrt(1 - z**2)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)


def siesta_real_harmonics(l: int, directions: np.ndarray) -> np.ndarray:
    """``[n, 2l+1]`` SIESTA's real spherical harmonics (order m = -l..l) at unit ``directions`` ``[n, 3]``."""
    from sisl._core.orbital import _rspherical_harm  # SIESTA's convention, as sisl implements it

    theta = np.arctan2(directions[:, 1], directions[:, 0])
    return np.stack([_rspherical_harm(l, m, theta, directions[:, 2]) for m in range(-l, l + 1)], axis=1)


def e3nn_real_harmonics(l: int, directions: np.ndarray) -> np.ndarray:
    """``[n, 2l+1]`` e3nn's spherical harmonics (integral normalization) at unit ``directions``."""
    import torch

    from ._compat import import_o3

    values = import_o3().spherical_harmonics(l, torch.as_tensor(directions, dtype=torch.float64), normalize=True,
                                             normalization="integral")
    return values.numpy()


@functools.cache
def siesta_from_e3nn(l: int) -> np.ndarray:
    """``[2l+1, 2l+1]`` orthogonal C with Y_siesta(r) = C^T Y_e3nn(r) (column vectors)."""
    directions = _sample_directions()
    change, *_ = np.linalg.lstsq(e3nn_real_harmonics(l, directions), siesta_real_harmonics(l, directions), rcond=None)
    if np.abs(change.T @ change - np.eye(2 * l + 1)).max() > 1e-8:
        raise RuntimeError(f"SIESTA and e3nn harmonics of l={l} are not related by an orthogonal matrix")
    return change


def wigner_d(l: int, rotation: np.ndarray) -> np.ndarray:
    """``[2l+1, 2l+1]`` D(Q) in SIESTA's order: Y(Q r) = D(Q) Y(r).

    ``rotation`` is a 3x3 orthogonal matrix; an improper one (det = -1)
    includes inversion, which multiplies by the parity (-1)^l.
    """
    import torch

    from ._compat import import_o3

    rotation = np.asarray(rotation, dtype=float)
    parity = np.sign(np.linalg.det(rotation))
    proper = torch.as_tensor(rotation * parity, dtype=torch.float64)
    d_e3nn = import_o3().Irrep(l, 1).D_from_matrix(proper).numpy() * parity**l
    change = siesta_from_e3nn(l)
    return change.T @ d_e3nn @ change


def orbital_rotation(species: SpeciesBasis, rotation: np.ndarray) -> np.ndarray:
    """``[n_orbitals, n_orbitals]`` block-diagonal D(Q) over the species' shells."""
    return scipy.linalg.block_diag(*(wigner_d(shell.l, rotation) for shell in species.shells))


def structure_orbital_rotation(basis: Basis, species: tuple[str, ...], rotation: np.ndarray) -> np.ndarray:
    """``[n_orbitals, n_orbitals]`` D(Q) of a whole structure: its atoms' :func:`orbital_rotation` in order.

    ``species`` are the atoms' symbols, ``rotation`` ``[3, 3]``.  Rotating
    the structure by ``rotation`` turns its H(k) and S(k) into D H(k) D^T
    and D S(k) D^T (:func:`rotate_record`).
    """
    d_of = {sb.symbol: orbital_rotation(sb, np.asarray(rotation, dtype=float)) for sb in basis.species}
    return scipy.linalg.block_diag(*(d_of[symbol] for symbol in species))


def rotate_record(record: HamiltonianRecord, rotation: np.ndarray) -> HamiltonianRecord:
    """The record of the structure rotated by ``rotation`` (positions and cell, Å).

    Every block becomes D_i H_ij D_j^T, per spin component.  That is exact
    for unpolarized and polarized records; non-colinear and spin-orbit ones
    would also need the spin rotated, and are refused.
    """
    if record.spin.is_spin_box:
        raise ValueError(f"rotate_record does not rotate spin: {record.spin.value} records are not supported")
    rotation = np.asarray(rotation, dtype=float)
    d_of = {sb.symbol: orbital_rotation(sb, rotation) for sb in record.basis.species}
    h_values, s_values = np.empty_like(record.h_values), np.empty_like(record.s_values)
    species = np.array(record.species, dtype=object)
    row_species, col_species = species[record.pairs[:, 0]], species[record.pairs[:, 1]]
    for row in record.basis.symbols:
        for col in record.basis.symbols:
            blocks = np.flatnonzero((row_species == row) & (col_species == col))
            if len(blocks) == 0:
                continue
            d_i, d_j = d_of[row], d_of[col]
            index = record.block_offsets[blocks, None] + np.arange(len(d_i) * len(d_j))  # [n, n_i * n_j]
            h = record.h_values[index].reshape(len(blocks), len(d_i), len(d_j), -1).transpose(0, 3, 1, 2)
            s_block = record.s_values[index].reshape(len(blocks), len(d_i), len(d_j))
            rotated_h = d_i @ h @ d_j.T  # [n, spin, n_i, n_j]; matmul, not a 3-operand einsum (slow)
            h_values[index] = rotated_h.transpose(0, 2, 3, 1).reshape(len(blocks), -1, h.shape[1])
            s_values[index] = (d_i @ s_block @ d_j.T).reshape(len(blocks), -1)
    atoms = record.atoms.copy()
    atoms.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    atoms.positions = record.atoms.positions @ rotation.T
    return dataclasses.replace(record, atoms=atoms, h_values=h_values, s_values=s_values)


def random_rotation(rng: np.random.Generator, improper: bool = False) -> np.ndarray:
    """``[3, 3]`` a rotation drawn uniformly (Haar measure); with ``improper``, times inversion.

    Used for data augmentation (rotate a record with :func:`rotate_record`)
    and for equivariance checks.

    Examples
    --------
    >>> q = random_rotation(np.random.default_rng(0), improper=True)
    >>> bool(np.allclose(q @ q.T, np.eye(3))), round(float(np.linalg.det(q)), 6)
    (True, -1.0)
    """
    from scipy.spatial.transform import Rotation

    proper = Rotation.random(random_state=rng).as_matrix()
    return -proper if improper else proper
