"""Neighbour search in periodic and finite structures: a k-d tree over the atoms and their periodic images.

ASE's ``neighbor_list`` costs tens of milliseconds per call even for small
cells; padding the cell with the images within reach and querying a
k-d tree is exact for any cell shape, and much faster (it is what
prediction of large structures and the model graph use).
"""

from __future__ import annotations

import ase
import numpy as np
from scipy.spatial import cKDTree


class PeriodicImages:
    """The structure's atoms plus every periodic image within ``reach`` (Å) of the cell, in a k-d tree.

    Attributes
    ----------
    positions : numpy.ndarray
        ``[n_padded, 3]`` Å, the home cell's atoms first.
    atom : numpy.ndarray
        ``[n_padded]`` int, the home-cell atom of every point.
    image : numpy.ndarray
        ``[n_padded, 3]`` int, its lattice image relative to the wrapped home cell.
    home : numpy.ndarray
        ``[n_atoms, 3]`` Å, the atoms wrapped into the cell.
    wrap : numpy.ndarray
        ``[n_atoms, 3]`` int, the lattice vector wrapping took off every atom's given position.
    """

    def __init__(self, atoms: ase.Atoms, reach: float):
        cell = atoms.cell.array
        fractional = atoms.cell.scaled_positions(atoms.positions) if atoms.pbc.any() else np.zeros((len(atoms), 3))
        self.wrap = np.where(atoms.pbc, np.floor(fractional), 0).astype(np.int64)
        fractional = fractional - self.wrap
        spacings = face_spacings(cell) if atoms.pbc.any() else np.ones(3)
        margin = np.where(atoms.pbc, reach / spacings, 0.0)  # [3] reach in cell fractions
        ranges = [np.arange(-int(np.ceil(m)), int(np.ceil(m)) + 1) for m in margin]
        images = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
        images = images[np.argsort(np.abs(images).sum(axis=1), kind="stable")]  # (0, 0, 0) first
        atom, image = [], []
        for shift in images:
            shifted = fractional + shift
            inside = np.all((shifted >= -margin) & (shifted < 1.0 + margin), axis=1)
            atom.append(np.flatnonzero(inside))
            image.append(np.broadcast_to(shift, (len(atom[-1]), 3)))
        self.atom, self.image = np.concatenate(atom), np.concatenate(image).astype(np.int64)
        self.home = fractional @ cell if atoms.pbc.any() else atoms.positions.copy()  # [n_atoms, 3] wrapped
        self.positions = self.home[self.atom] + self.image @ cell
        self.tree = cKDTree(self.positions)

    def within(self, atoms_i: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Points (padded indices) closer than ``radius`` (Å) to each of ``atoms_i``: ``(i, point)``, self excluded."""
        found = self.tree.query_ball_point(self.home[atoms_i], radius)
        counts = np.fromiter((len(f) for f in found), dtype=np.int64, count=len(found))
        i = np.repeat(atoms_i, counts)
        point = np.concatenate([np.asarray(f, dtype=np.int64) for f in found]) if len(found) else np.zeros(0, np.int64)
        keep = ~((self.atom[point] == i) & ~self.image[point].any(axis=1))
        return i[keep], point[keep]

    def shifts(self, i: np.ndarray, point: np.ndarray) -> np.ndarray:
        """``[n, 3]`` int lattice images R of the pairs (i, point) in the given (unwrapped) positions' frame."""
        return self.image[point] - self.wrap[self.atom[point]] + self.wrap[i]


def face_spacings(cell: np.ndarray) -> np.ndarray:
    """``[3]`` Å, distance between opposite faces of the cell along each lattice vector."""
    volume = abs(np.linalg.det(cell))
    return volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)


def pair_vectors(atoms: ase.Atoms, i: np.ndarray, j: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """``[n, 3]`` Å from atom i to the image R of atom j: x_j + R @ cell - x_i, with the given positions."""
    return atoms.positions[j] + shifts @ atoms.cell.array - atoms.positions[i]


def neighbour_pairs(atoms: ase.Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered pair (i, j, R) of atoms closer than ``cutoff`` (Å), an atom and itself (R = 0) excluded.

    The same pairs as ASE's ``neighbor_list("ijS", atoms, cutoff)``.

    Returns
    -------
    i, j, shifts
        ``[n]`` int, ``[n]`` int and ``[n, 3]`` int lattice images R of j
        (r_ij = x_j + R @ cell - x_i with the given positions).

    Examples
    --------
    >>> from ase.build import bulk
    >>> i, j, shifts = neighbour_pairs(bulk("Si", "diamond", a=5.43), 2.5)
    >>> len(i), sorted(set(i.tolist()))  # four bonds per atom
    (8, [0, 1])
    """
    if atoms.pbc.any() and abs(np.linalg.det(atoms.cell.array)) < 1e-9:  # a periodic slab or wire without a full cell
        from ase.neighborlist import neighbor_list

        i, j, shifts = neighbor_list("ijS", atoms, float(cutoff))
        return i, j, shifts.astype(np.int64)
    images = PeriodicImages(atoms, cutoff)
    i, point = images.within(np.arange(len(atoms)), cutoff)
    return i, images.atom[point], images.shifts(i, point)
