"""Band structures and eigenvalue comparisons of records."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .record import HamiltonianRecord


@dataclass(frozen=True)
class KPath:
    """A path through the Brillouin zone.

    Attributes
    ----------
    kpoints : numpy.ndarray
        ``[n_k, 3]`` reduced coordinates.
    distance : numpy.ndarray
        ``[n_k]`` cumulative path length (1/Å), the x axis of band plots.
    label_positions : numpy.ndarray
        Path length of every special point.
    labels : tuple of str
    """

    kpoints: np.ndarray
    distance: np.ndarray
    label_positions: np.ndarray
    labels: tuple[str, ...]


def kpath(record: HamiltonianRecord, path: str = "", n_kpoints: int = 100) -> KPath:
    """A k-path for the record's cell through ASE's special points.

    ``path`` is ASE's notation (``"GXWKGLUWLK"``, ``"GMKG"``; ``","`` breaks
    the line); empty means the default path of the cell's Bravais lattice.
    """
    bandpath = record.atoms.cell.bandpath(path or None, npoints=n_kpoints, pbc=record.atoms.pbc)
    x, label_x, labels = bandpath.get_linear_kpoint_axis()
    labels = tuple("Γ" if name == "G" else name for name in labels)
    return KPath(np.asarray(bandpath.kpts), np.asarray(x), np.asarray(label_x), labels)


def band_structure(record: HamiltonianRecord, path: KPath) -> np.ndarray:
    """Eigenvalues ``[n_spin, n_k, n_bands]`` (eV, relative to E_F) along ``path``."""
    return record.eigenvalues(path.kpoints)


def eigenvalue_deviation(reference: np.ndarray, computed: np.ndarray) -> dict[str, float]:
    """Max and mean |difference| (eV) between two ``[..., n_bands]`` eigenvalue arrays.

    Only the bands both hold are compared (SIESTA's ``.EIG`` may list fewer).

    Examples
    --------
    >>> eigenvalue_deviation(np.array([[0.0, 1.0]]), np.array([[0.0, 1.002, 5.0]]))
    {'max_abs_eV': 0.002, 'mean_abs_eV': 0.001, 'n_compared': 2}
    """
    n_bands = min(reference.shape[-1], computed.shape[-1])
    diff = np.abs(np.asarray(reference)[..., :n_bands] - np.asarray(computed)[..., :n_bands])
    return {"max_abs_eV": round(float(diff.max()), 12), "mean_abs_eV": round(float(diff.mean()), 12),
            "n_compared": int(diff.size)}
