"""DFT against ML for one structure: cell matrices, bands, DOS and eigenvalue pairs.

The spectra of a prediction are taken in the well-conditioned part of the
reference's basis (:func:`.evaluation.projected_eigenvalues`): GPAW's
``dzp`` orbitals are nearly linearly dependent in dense BN, and along
those directions any error of H moves eigenvalues by eV.  The reference's
own spectra go through the same projection, so the two curves of a figure
are computed the same way; ``threshold = 0`` keeps the whole basis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._atomic import atomic_path
from .evaluation import density_of_states, difference_errors, projected_eigenvalues
from .record import HamiltonianRecord, value_positions


def cell_matrices(record: HamiltonianRecord, shift=(0, 0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """Dense H (eV) and S ``[n_orb, n_orb]`` of the blocks i -> j + ``shift`` (the home cell by default).

    Blocks the record lacks are zero; with several spin components, H is the first.
    """
    chosen = np.all(record.shifts == np.asarray(shift), axis=1)  # [n_blocks]
    block, row, col = value_positions(record.block_shapes)
    keep = chosen[block]
    first = record.orbital_offsets
    rows = first[record.pairs[block[keep], 0]] + row[keep]
    cols = first[record.pairs[block[keep], 1]] + col[keep]
    h, s = np.zeros((record.n_orbitals,) * 2), np.zeros((record.n_orbitals,) * 2)
    h[rows, cols], s[rows, cols] = record.h_values[keep, 0], record.s_values[keep]
    return h, s


def padded(rows: list[np.ndarray]) -> np.ndarray:
    """``[n_k, max_len]`` array of per-k eigenvalues of varying length, NaN-padded."""
    width = max((len(r) for r in rows), default=0)
    result = np.full((len(rows), width), np.nan)
    for k, values in enumerate(rows):
        result[k, : len(values)] = values
    return result


@dataclass(frozen=True)
class SpectrumPair:
    """Reference and predicted eigenvalues (eV, E_F = 0) at the same k-points.

    Attributes
    ----------
    kpoints : numpy.ndarray
        ``[n_k, 3]`` reduced coordinates.
    reference, predicted : numpy.ndarray
        ``[n_k, n_bands]``, NaN-padded where the projection keeps fewer bands.
    threshold : float
        Smallest reference S(k) eigenvalue kept.
    """

    kpoints: np.ndarray
    reference: np.ndarray
    predicted: np.ndarray
    threshold: float

    def within(self, window: float) -> tuple[np.ndarray, np.ndarray]:
        """Reference and predicted eigenvalues ``[n]`` where the reference lies within ``window`` eV of E_F."""
        inside = np.abs(np.nan_to_num(self.reference, nan=np.inf)) <= window
        return self.reference[inside], self.predicted[inside]

    def errors(self, window: float) -> dict[str, float]:
        """MAE and max |predicted - reference| (meV) within ``window`` eV of E_F."""
        reference, predicted = self.within(window)
        return {**difference_errors(predicted - reference), "n_eigenvalues": int(reference.size)}


def spectrum_pair(prediction: HamiltonianRecord, reference: HamiltonianRecord, kpoints: np.ndarray,
                  threshold: float = 1e-3) -> SpectrumPair:
    """Both records' eigenvalues at ``kpoints`` ``[n_k, 3]``, projected on the reference's S (see the module docstring)."""
    kpoints = np.atleast_2d(kpoints)
    return SpectrumPair(kpoints, padded(projected_eigenvalues(reference, reference, kpoints, threshold)),
                        padded(projected_eigenvalues(prediction, reference, kpoints, threshold)), threshold)


def dos_pair(pair: SpectrumPair, window: float, broadening: float = 0.1,
             n_points: int = 601) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy grid ``[n_points]`` (eV) over ±``window`` and the reference and predicted DOS (states/eV per k-point)."""
    grid = np.linspace(-window, window, n_points)
    return grid, density_of_states(pair.reference, grid, broadening), density_of_states(pair.predicted, grid, broadening)


def save_figure(fig, folder, stem: str, formats: tuple[str, ...] = ("pdf", "png"), dpi: int = 200) -> list[str]:
    """Write ``fig`` as ``folder/stem.<format>`` for every format, atomically; returns the file names."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for fmt in formats:
        with atomic_path(folder / f"{stem}.{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        names.append(f"{stem}.{fmt}")
    return names
