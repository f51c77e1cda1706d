"""DFT against ML for one structure: cell matrices, bands, DOS and eigenvalue pairs.

GPAW's ``dzp`` orbitals are nearly linearly dependent in dense BN, and
along those directions any error of H moves eigenvalues by eV, so the
spectra of a figure leave those directions out, in one of two ways
(:data:`SPECTRA`):

- ``"filtered"`` (:func:`filtered_spectrum_pair`): each record solved in
  the frame of its own S(k), dropping eigenvalues of S below the
  threshold, and measured from its own Fermi level at the reference's
  filling; notebook 03's headline eigenvalue errors
  (:func:`.evaluation.filtered_spectral_errors`) are these.  It uses
  nothing of the reference to diagonalize a prediction, so it is what a
  user of predicted H and S gets.
- ``"projected"`` (:func:`spectrum_pair`): both H's in the frame of the
  reference's S(k) (:func:`.evaluation.projected_eigenvalues`), in the
  zero the records hold (E_F = 0); a prediction borrows the reference's
  well-conditioned directions, and the errors of H along the kept
  directions of smallest S eigenvalue are magnified most.

Either way the reference goes through the same treatment as the
prediction, so the two curves of a figure are computed alike;
``threshold = 0`` keeps the whole basis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._atomic import atomic_path
from .evaluation import (density_of_states, difference_errors, filtered_spectral_errors, from_own_fermi_levels,
                         projected_eigenvalues, projected_spectral_errors)
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
    """Reference and predicted eigenvalues (eV, from E_F) at the same k-points.

    ``"projected"`` pairs are in the zero the records hold (the reference's
    E_F); ``"filtered"`` ones each from its own E_F at the reference's
    filling (mid-gap for a gapped spectrum).

    Attributes
    ----------
    kpoints : numpy.ndarray
        ``[n_k, 3]`` reduced coordinates.
    reference, predicted : numpy.ndarray
        ``[n_k, n_bands]``: ``"projected"``, NaN-padded where the projection
        keeps fewer bands; ``"filtered"``, the lowest bands both records keep.
    threshold : float
        Smallest S(k) eigenvalue kept.
    method : str
        How the pair was made, one of :data:`SPECTRA`.
    n_kept : tuple of float, optional
        ``"filtered"``: the mean number of directions of the reference's
        and of the prediction's S(k) kept per k-point; where the
        prediction keeps more, its spectrum holds states DFT has not.
    """

    kpoints: np.ndarray
    reference: np.ndarray
    predicted: np.ndarray
    threshold: float
    method: str = "projected"
    n_kept: tuple[float, float] | None = None

    def within(self, window: float) -> tuple[np.ndarray, np.ndarray]:
        """Reference and predicted eigenvalues ``[n]`` where the reference lies within ``window`` eV of E_F."""
        inside = np.abs(np.nan_to_num(self.reference, nan=np.inf)) <= window
        return self.reference[inside], self.predicted[inside]

    def errors(self, window: float) -> dict[str, float]:
        """MAE and max |predicted - reference| (meV) within ``window`` eV of E_F (and :attr:`n_kept`, if known)."""
        reference, predicted = self.within(window)
        kept = {} if self.n_kept is None else {"n_kept_reference": self.n_kept[0], "n_kept_predicted": self.n_kept[1]}
        return {**difference_errors(predicted - reference), "n_eigenvalues": int(reference.size), **kept}


def spectrum_pair(prediction: HamiltonianRecord, reference: HamiltonianRecord, kpoints: np.ndarray,
                  threshold: float = 1e-3) -> SpectrumPair:
    """Both records' eigenvalues at ``kpoints`` ``[n_k, 3]``, projected on the reference's S (see the module docstring)."""
    kpoints = np.atleast_2d(kpoints)
    return SpectrumPair(kpoints, padded(projected_eigenvalues(reference, reference, kpoints, threshold)),
                        padded(projected_eigenvalues(prediction, reference, kpoints, threshold)), threshold)


def filtered_spectrum_pair(prediction: HamiltonianRecord, reference: HamiltonianRecord, kpoints: np.ndarray,
                           threshold: float = 1e-2) -> SpectrumPair:
    """Both records' eigenvalues at ``kpoints`` ``[n_k, 3]``, each filtered in its own S (see the module docstring).

    Bands are matched from the bottom, so both arrays have as many bands
    as the record that keeps fewer at any k-point.
    """
    kpoints = np.atleast_2d(kpoints)
    kept_reference = projected_eigenvalues(reference, reference, kpoints, threshold)
    kept_predicted = projected_eigenvalues(prediction, prediction, kpoints, threshold)
    reference_bands, predicted_bands, _, _ = from_own_fermi_levels(kept_reference, kept_predicted)
    n_kept = (float(np.mean([len(e) for e in kept_reference])), float(np.mean([len(e) for e in kept_predicted])))
    return SpectrumPair(kpoints, reference_bands, predicted_bands, threshold, "filtered", n_kept)


#: The ways :class:`SpectraConfig` makes a :class:`SpectrumPair` (see the module docstring).
SPECTRA = ("filtered", "projected")


@dataclass(frozen=True)
class SpectraConfig:
    """How notebook 05 takes the spectra of its figures.

    Attributes
    ----------
    method : str
        One of :data:`SPECTRA`.
    filter_threshold : float
        Smallest S(k) eigenvalue kept by ``"filtered"`` (each record's own S).
    overlap_threshold : float
        Smallest reference S(k) eigenvalue kept by ``"projected"``.

    Examples
    --------
    >>> SpectraConfig().threshold
    0.01
    >>> SpectraConfig("diagonalized")
    Traceback (most recent call last):
    ...
    ValueError: unknown spectra 'diagonalized': use one of ('filtered', 'projected')
    """

    method: str = "filtered"
    filter_threshold: float = 1e-2
    overlap_threshold: float = 1e-3

    def __post_init__(self) -> None:
        if self.method not in SPECTRA:
            raise ValueError(f"unknown spectra {self.method!r}: use one of {SPECTRA}")

    @property
    def threshold(self) -> float:
        """The smallest S(k) eigenvalue the chosen method keeps."""
        return self.filter_threshold if self.method == "filtered" else self.overlap_threshold

    def pair(self, prediction: HamiltonianRecord, reference: HamiltonianRecord, kpoints: np.ndarray) -> SpectrumPair:
        """The :class:`SpectrumPair` of ``prediction`` against ``reference`` at ``kpoints`` ``[n_k, 3]``."""
        make = filtered_spectrum_pair if self.method == "filtered" else spectrum_pair
        return make(prediction, reference, kpoints, self.threshold)

    def reference_shift_meV(self, reference: HamiltonianRecord, kpoints: np.ndarray, window: float) -> float:
        """What the method does to the DFT spectrum itself (meV): the largest distance from a kept reference
        eigenvalue within ``window`` eV of E_F to the nearest eigenvalue of the whole basis."""
        if self.method == "filtered":
            return filtered_spectral_errors(reference, reference, kpoints, window, self.threshold)["filter_shift_meV"]
        return projected_spectral_errors(reference, reference, kpoints, window, self.threshold)["projection_shift_meV"]

    def describe(self) -> str:
        """Words for a caption: the method and its threshold."""
        frame = "each in its own S" if self.method == "filtered" else "in the reference's S"
        return f"{self.method}, {frame}, S eigenvalues from {self.threshold:g}"


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
