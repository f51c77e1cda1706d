"""How far a predicted record is from its reference: block errors and spectral errors.

Block errors compare H (meV) and S value by value over the reference's
blocks; a block the prediction lacks (beyond the model's cutoff) counts as
zero.  They are split on-site vs off-site, by species pair and by the
angular momenta of the two orbitals (s-s, s-p, ..., p-d, d-d; s-p holds
both s-p and p-s elements), and by the distance of the atom pair
(:data:`DISTANCE_SHELLS`, each with the reference's mean |value| beside
it: the MAE over all values is dominated by the hundreds of distant pairs
per atom whose values are tiny).  Spectral errors compare eigenvalues
within a window around the Fermi level (E_F = 0 in records), the band gap
and the density of states; :func:`projected_eigenvalues` does so in the
part of the basis that is not nearly linearly dependent.
"""

from __future__ import annotations

import dataclasses
import functools
import operator

import numpy as np
import scipy.linalg

from .basis import L_LETTERS
from .record import HamiltonianRecord, value_positions
from .structure_stats import structure_stats

#: Å, upper edges of the distance shells of off-site block errors (the last shell is open).
DISTANCE_SHELLS = (2.0, 3.0, 4.0, 5.0, 6.0)
#: Labels of the shells, nearest first: on-site blocks, then one per interval of :data:`DISTANCE_SHELLS`.
SHELL_NAMES = ("on-site", *(f"{a:g}-{b:g} Å" for a, b in zip((0.0, *DISTANCE_SHELLS[:-1]), DISTANCE_SHELLS)),
               f"{DISTANCE_SHELLS[-1]:g}+ Å")


def aligned_values(prediction: HamiltonianRecord, reference: HamiltonianRecord) -> tuple[np.ndarray, np.ndarray]:
    """Predicted H ``[n_values]`` (eV) and S ``[n_values]`` in the reference's value layout (0 where absent)."""
    match = prediction.find_blocks(reference.pairs, reference.shifts)
    sizes = np.diff(reference.block_offsets)
    found = np.repeat(match >= 0, sizes)
    within = np.arange(reference.block_offsets[-1]) - np.repeat(reference.block_offsets[:-1], sizes)
    source = np.repeat(prediction.block_offsets[:-1][np.maximum(match, 0)], sizes) + within
    h = np.where(found, prediction.h_values[np.where(found, source, 0), 0], 0.0)
    s = np.where(found, prediction.s_values[np.where(found, source, 0)], 0.0)
    return h, s


def value_labels(record: HamiltonianRecord) -> dict[str, np.ndarray]:
    """Per value of the record: ``on_site`` and ``diagonal`` (bool), ``species`` (``"B-N"``), ``channel`` (``"s-p"``),
    ``distance`` (``"on-site"``, ``"0-2 Å"``, ..., ``"6+ Å"``).

    ``diagonal`` marks the orbital energies: the diagonal of on-site blocks.
    """
    block, row, col = value_positions(record.block_shapes)
    symbols = list(record.basis.symbols)
    species_index = record.basis.species_indices(record.species)
    species_i, species_j = species_index[record.pairs[block, 0]], species_index[record.pairs[block, 1]]
    l_row, l_col = np.zeros_like(row), np.zeros_like(col)
    for k, symbol in enumerate(symbols):
        l_row[species_i == k] = record.basis[symbol].orbital_l[row[species_i == k]]
        l_col[species_j == k] = record.basis[symbol].orbital_l[col[species_j == k]]
    n_l = int(max(l_row.max(initial=0), l_col.max(initial=0))) + 1
    channel_names = np.array([f"{L_LETTERS[a]}-{L_LETTERS[b]}" for a in range(n_l) for b in range(n_l)], dtype=object)
    pair_names = np.array([f"{a}-{b}" for a in symbols for b in symbols], dtype=object)
    on_site = record.on_site[block]
    return {"on_site": on_site, "diagonal": on_site & (row == col),
            "species": pair_names[species_i * len(symbols) + species_j],
            "channel": channel_names[np.minimum(l_row, l_col) * n_l + np.maximum(l_row, l_col)],
            "distance": distance_shells(record)[block]}


def distance_shells(record: HamiltonianRecord) -> np.ndarray:
    """``[n_blocks]`` label of every block's distance shell (:data:`DISTANCE_SHELLS`)."""
    names = np.array(SHELL_NAMES, dtype=object)
    distances = np.linalg.norm(record.pair_vectors, axis=1)  # [n_blocks] Å
    return np.where(record.on_site, names[0], names[1 + np.searchsorted(DISTANCE_SHELLS, distances, side="right")])


def _mae_rmse(errors: np.ndarray, scale: float) -> dict[str, float]:
    return {"mae": float(np.abs(errors).mean() * scale), "rmse": float(np.sqrt(np.square(errors).mean()) * scale),
            "n_values": int(errors.size)}


def block_errors(prediction: HamiltonianRecord, reference: HamiltonianRecord) -> dict:
    """MAE and RMSE of H (meV) and S (dimensionless), overall and split, over the reference's values.

    Returns
    -------
    dict
        ``{"H_meV": {...}, "S": {...}}``, each with ``overall``, ``on_site``,
        ``off_site``, ``diagonal`` (orbital energies), ``species`` (by pair),
        ``channel`` (by orbital angular momenta) and ``distance`` (by
        shell), every entry ``{"mae", "rmse", "n_values"}``; ``distance``
        entries also hold ``reference_mean_abs``, the mean |reference value|
        of the shell in the same unit.
    """
    h_pred, s_pred = aligned_values(prediction, reference)
    labels = value_labels(reference)
    result = {}
    for name, target, prediction_values, scale in (("H_meV", reference.h_values[:, 0], h_pred, 1000.0),
                                                   ("S", reference.s_values, s_pred, 1.0)):
        errors = prediction_values - target
        result[name] = {
            "overall": _mae_rmse(errors, scale),
            "on_site": _mae_rmse(errors[labels["on_site"]], scale),
            "off_site": _mae_rmse(errors[~labels["on_site"]], scale),
            "diagonal": _mae_rmse(errors[labels["diagonal"]], scale),
            **{key: {label: _mae_rmse(errors[labels[key] == label], scale) for label in sorted(set(labels[key]))}
               for key in ("species", "channel")},
            "distance": {label: {**_mae_rmse(errors[labels["distance"] == label], scale),
                                 "reference_mean_abs": float(np.abs(target[labels["distance"] == label]).mean() * scale)}
                         for label in SHELL_NAMES if label in set(labels["distance"])},
        }
    return result


def monkhorst_pack(record: HamiltonianRecord, n_k: int) -> np.ndarray:
    """``[n, 3]`` reduced k-points of an n_k-per-direction Gamma-centred grid (1 along non-periodic axes).

    ``record`` is anything with the structure as ``.atoms`` (a record or a :class:`.StructureBlocks`).
    """
    counts = [n_k if periodic else 1 for periodic in record.atoms.pbc]
    axes = [np.arange(n) / n for n in counts]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def eigenvalues(record: HamiltonianRecord, kpoints: np.ndarray) -> np.ndarray:
    """``[n_k, n_bands]`` eigenvalues (eV) of a spin-unpolarized record; NaN rows where S(k) is not positive definite."""
    result = []
    for k in np.atleast_2d(kpoints):
        h, s = record.matrices_at_k(k)
        try:
            result.append(scipy.linalg.eigh(h, s, eigvals_only=True))
        except np.linalg.LinAlgError:
            result.append(np.full(len(h), np.nan))
    return np.array(result)


def band_gap(energies: np.ndarray) -> float:
    """Lowest state above E_F = 0 minus highest below (eV), over all k-points; 0 for a metal."""
    above, below = energies[energies > 0], energies[energies <= 0]
    if above.size == 0 or below.size == 0:
        return float("nan")
    return float(max(above.min() - below.max(), 0.0))


def density_of_states(energies: np.ndarray, grid: np.ndarray, broadening: float) -> np.ndarray:
    """``[n_grid]`` Gaussian-broadened DOS (states/eV per k-point) of ``energies`` ``[n_k, n_bands]`` (eV)."""
    finite = energies[np.isfinite(energies)]
    weights = np.exp(-0.5 * ((grid[:, None] - finite[None, :]) / broadening) ** 2)
    return weights.sum(axis=1) / (broadening * np.sqrt(2 * np.pi) * len(energies))


def dos_difference(dos: np.ndarray, reference: np.ndarray, energies: np.ndarray) -> float:
    """Integral of |dos - reference| over ``energies`` relative to that of ``reference`` (0 same, 2 disjoint).

    >>> energies = np.linspace(0.0, 1.0, 11)
    >>> dos_difference(2 * np.ones(11), np.ones(11), energies)
    1.0
    """
    return float(np.trapezoid(np.abs(dos - reference), energies) / np.trapezoid(reference, energies))


def difference_errors(difference: np.ndarray) -> dict[str, float]:
    """``eigenvalue_mae_meV`` and ``eigenvalue_max_meV`` of eigenvalue differences (eV); NaN when there are none."""
    if not difference.size:
        return {"eigenvalue_mae_meV": float("nan"), "eigenvalue_max_meV": float("nan")}
    return {"eigenvalue_mae_meV": float(np.abs(difference).mean() * 1000),
            "eigenvalue_max_meV": float(np.abs(difference).max() * 1000)}


def spectral_errors(prediction: HamiltonianRecord, reference: HamiltonianRecord, kpoints: np.ndarray,
                    window: float = 2.0, broadening: float = 0.1, reference_energies: np.ndarray | None = None) -> dict:
    """Eigenvalue, gap and DOS errors of a prediction (eV, E_F = 0).

    Bands are compared by index; a band counts when its reference energy
    lies within ``window`` (eV) of E_F.  The DOS difference is the
    integral of |DOS_pred - DOS_ref| over [-window, window] divided by that
    of DOS_ref (0 is perfect, 2 is disjoint), both DOS over all bands.  ``positive_definite_S`` is
    False when the predicted S(k) has a non-positive eigenvalue at a k-point
    (its eigenvalues are then NaN and the errors NaN).  ``reference_energies``
    ``[n_k, n_bands]``, the reference's :func:`eigenvalues` at ``kpoints``,
    saves computing them again when several predictions meet one reference.
    """
    e_ref = eigenvalues(reference, kpoints) if reference_energies is None else reference_energies
    e_pred = eigenvalues(prediction, kpoints)
    inside = np.abs(e_ref) <= window
    difference = np.abs(e_pred - e_ref)[inside]
    grid = np.linspace(-window, window, 401)
    dos_ref, dos_pred = density_of_states(e_ref, grid, broadening), density_of_states(e_pred, grid, broadening)
    return {
        "window_eV": window, "n_kpoints": len(kpoints), "n_eigenvalues": int(inside.sum()),
        **difference_errors(difference),
        "gap_reference_eV": band_gap(e_ref), "gap_predicted_eV": band_gap(e_pred),
        "dos_difference": dos_difference(dos_pred, dos_ref, grid),
        "positive_definite_S": bool(np.isfinite(e_pred).all()),
    }


def smallest_overlap_eigenvalue(record: HamiltonianRecord, kpoints: np.ndarray) -> float:
    """Smallest eigenvalue of S(k) over ``kpoints``: how nearly linearly dependent the basis is."""
    return min(float(np.linalg.eigvalsh(record.matrices_at_k(k)[1])[0]) for k in np.atleast_2d(kpoints))


def noisy_reference(reference: HamiltonianRecord, h_mae: float, seed: int = 0) -> HamiltonianRecord:
    """The reference with Hermitian Gaussian noise of mean absolute size ``h_mae`` (eV) on every H value.

    A yardstick for a model's eigenvalue errors: with a nearly singular S,
    even uncorrelated noise of a fraction of a meV moves eigenvalues near
    E_F by far more (the reference S is kept).
    """
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=reference.h_values.shape) * h_mae * np.sqrt(np.pi / 2)  # E|x| = sigma sqrt(2/pi)
    return dataclasses.replace(reference, h_values=reference.h_values + noise).symmetrized()


def canonical_frame(s_reference: np.ndarray, threshold: float) -> np.ndarray:
    """X ``[n, n_kept]`` = U_kept s_kept^(-1/2): the reference S's eigenvectors with eigenvalue >= ``threshold``.

    Canonical orthogonalization (Löwdin): X^H S X = 1, and X^H H X has the
    eigenvalues of H c = E S c with the nearly linearly dependent
    combinations of orbitals removed.
    """
    overlap_eigenvalues, vectors = np.linalg.eigh(s_reference)
    keep = overlap_eigenvalues >= threshold
    return vectors[:, keep] / np.sqrt(overlap_eigenvalues[keep])


def canonical_frames(reference: HamiltonianRecord, kpoints: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Per k-point, the :func:`canonical_frame` of the reference's S(k), to share between projections."""
    return [canonical_frame(reference.matrices_at_k(k)[1], threshold) for k in np.atleast_2d(kpoints)]


def projected_eigenvalues(record: HamiltonianRecord, reference: HamiltonianRecord, kpoints: np.ndarray,
                          threshold: float, frames: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Per k-point, eigenvalues (eV) of ``record``'s H in the :func:`canonical_frame` X of the reference's S (X^H H X).

    ``frames``: the reference's :func:`canonical_frames` at ``threshold``,
    when already computed.
    """
    result = []
    for index, k in enumerate(np.atleast_2d(kpoints)):
        if frames is not None:
            h, frame = record.matrices_at_k(k)[0], frames[index]
        else:
            h, s = record.matrices_at_k(k)
            frame = canonical_frame(s if reference is record else reference.matrices_at_k(k)[1], threshold)
        result.append(np.linalg.eigvalsh(frame.conj().T @ h @ frame))
    return result


def largest_shift_meV(kept: list[np.ndarray], full: np.ndarray, window: float) -> float:
    """Largest distance (meV), over k-points, from a kept eigenvalue within ``window`` of E_F to the nearest
    eigenvalue of the whole basis at the same k: what projecting or filtering costs a spectrum; NaN without any."""
    shifts = [np.abs(e[np.abs(e) <= window][:, None] - e_full[None, :]).min(axis=1) for e, e_full in zip(kept, full)]
    shift = np.concatenate(shifts) if shifts else np.zeros(0)
    return float(shift.max() * 1000) if shift.size else float("nan")


def projected_spectral_errors(prediction: HamiltonianRecord, reference: HamiltonianRecord, kpoints: np.ndarray,
                              window: float = 2.0, threshold: float = 1e-3,
                              reference_energies: np.ndarray | None = None,
                              frames: list[np.ndarray] | None = None,
                              reference_projected: list[np.ndarray] | None = None) -> dict:
    """Eigenvalue errors (meV) of the predicted H in the well-conditioned part of the reference basis.

    Both the prediction's and the reference's H are projected on the
    reference S's eigenvectors with eigenvalue >= ``threshold``
    (:func:`projected_eigenvalues`), and their eigenvalues compared by index
    where the projected reference lies within ``window`` of E_F.
    ``projection_shift_meV`` is what the projection itself costs: the
    largest distance from a projected reference eigenvalue in the window to
    the nearest unprojected one.  ``reference_energies``: as in
    :func:`spectral_errors`; ``frames`` (the reference's
    :func:`canonical_frames`) and ``reference_projected`` (its own projected
    eigenvalues) likewise save computing them again.
    """
    full = eigenvalues(reference, kpoints) if reference_energies is None else reference_energies
    frames = canonical_frames(reference, kpoints, threshold) if frames is None else frames
    projected_reference = (projected_eigenvalues(reference, reference, kpoints, threshold, frames)
                           if reference_projected is None else reference_projected)
    predicted = projected_eigenvalues(prediction, reference, kpoints, threshold, frames)
    difference = np.concatenate([np.abs(e_pred - e_ref)[np.abs(e_ref) <= window]
                                 for e_ref, e_pred in zip(projected_reference, predicted)])
    return {
        "threshold": threshold, "window_eV": window, "n_eigenvalues": int(difference.size),
        "n_dropped_per_k": float(np.mean([len(e) - len(p) for e, p in zip(full, projected_reference)])),
        **difference_errors(difference),
        "projection_shift_meV": largest_shift_meV(projected_reference, full, window),
    }


def _from_the_bottom(reference: list[np.ndarray], prediction: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``[n_k, n]`` reference and predicted eigenvalues per k, every list cut to the shortest one's length."""
    n = min(min(len(e) for e in reference), min(len(e) for e in prediction))
    return np.array([e[:n] for e in reference]), np.array([e[:n] for e in prediction])


def fermi_level_by_filling(energies: np.ndarray, n_filled: int) -> float:
    """Fermi level (eV) with ``n_filled`` states below it: midway between the n_filled-th and the next lowest of
    ``energies`` ``[n_k, n_bands]`` (all k-points weighted alike).

    >>> fermi_level_by_filling(np.array([[-2.0, -1.0, 1.0], [-1.5, 0.5, 3.0]]), 3)
    -0.25
    """
    ordered = np.sort(energies[np.isfinite(energies)])
    if not 0 < n_filled < ordered.size:
        raise ValueError(f"cannot fill {n_filled} of {ordered.size} states")
    return float((ordered[n_filled - 1] + ordered[n_filled]) / 2)


def from_own_fermi_levels(reference: list[np.ndarray], prediction: list[np.ndarray]
                          ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Both spectra ``[n_k, n]`` (eV) from their own Fermi level at the reference's filling, and the two levels.

    ``reference`` and ``prediction`` hold eigenvalues per k-point (E_F = 0
    in the reference), of possibly different lengths: bands are matched by
    index from the bottom (:func:`_from_the_bottom`), and each spectrum's
    E_F is found by :func:`fermi_level_by_filling` with as many states as
    the reference has at or below 0.

    >>> ref, pred, e_f_ref, e_f_pred = from_own_fermi_levels([np.array([-1.0, 1.0])], [np.array([-0.5, 1.5, 9.0])])
    >>> ref.tolist(), pred.tolist(), e_f_ref, e_f_pred
    ([[-1.0, 1.0]], [[-1.0, 1.0]], 0.0, 0.5)
    """
    e_ref, e_pred = _from_the_bottom(reference, prediction)
    n_filled = int((e_ref <= 0).sum())  # the reference's filling (E_F = 0)
    fermi_ref, fermi_pred = fermi_level_by_filling(e_ref, n_filled), fermi_level_by_filling(e_pred, n_filled)
    return e_ref - fermi_ref, e_pred - fermi_pred, fermi_ref, fermi_pred


def reference_spectra(reference: HamiltonianRecord, kpoints: np.ndarray, threshold: float = 1e-2) -> dict:
    """The reference's own spectra that :func:`filtered_spectral_errors` needs, computed once to share between
    several predictions of it: its ``reference_energies`` ``[n_k, n_bands]`` eV and ``reference_filtered``."""
    return {"reference_energies": eigenvalues(reference, kpoints),
            "reference_filtered": projected_eigenvalues(reference, reference, kpoints, threshold)}


def filtered_spectral_errors(prediction: HamiltonianRecord, reference: HamiltonianRecord, kpoints: np.ndarray,
                             window: float = 2.0, threshold: float = 1e-2, broadening: float = 0.1,
                             reference_energies: np.ndarray | None = None,
                             reference_filtered: list[np.ndarray] | None = None) -> dict:
    """Eigenvalue, gap and DOS errors with each record's near-linear dependencies removed from its own basis.

    Each record's H is solved in the canonical frame of its own S(k)
    (:func:`projected_eigenvalues` with the record as its own frame):
    eigenvectors of S(k) with eigenvalue below ``threshold`` are dropped,
    as electronic-structure codes do with a nearly linearly dependent basis.
    This needs no reference, so it is how a prediction alone is
    diagonalized; it removes the spurious states that errors of H along
    nearly null directions of S create (at thousands of eV), and the
    directions where a predicted S is not positive definite when they are
    shallower than ``threshold``.

    Each spectrum is then referred to its own Fermi level at the
    reference's filling (:func:`fermi_level_by_filling`; for a gapped cell,
    mid-gap), since E_F is set by the electron count of the whole cell,
    which local blocks do not carry: ``fermi_level_offset_eV`` is how far
    the prediction's E_F lies from the zero of its H (the reference's from
    its own, subtracted).  Bands are compared by index from the bottom,
    where the filtered reference lies within ``window`` eV of E_F.
    ``filter_shift_meV`` is what the filter costs the reference: the
    largest distance from a filtered reference eigenvalue in the window to
    the nearest unfiltered one.  ``n_dropped_reference`` and
    ``n_dropped_prediction`` are the mean numbers of dropped directions per
    k-point.  ``reference_energies``: as in :func:`spectral_errors`;
    ``reference_filtered``, the reference's own filtered eigenvalues
    (:func:`projected_eigenvalues` of the reference on itself at
    ``threshold``), likewise saves computing them again.
    """
    full = eigenvalues(reference, kpoints) if reference_energies is None else reference_energies
    kept_ref = (projected_eigenvalues(reference, reference, kpoints, threshold) if reference_filtered is None
                else reference_filtered)
    kept_pred = projected_eigenvalues(prediction, prediction, kpoints, threshold)
    e_ref, e_pred, fermi_ref, fermi_pred = from_own_fermi_levels(kept_ref, kept_pred)
    inside = np.abs(e_ref) <= window
    grid = np.linspace(-window, window, 401)
    dos_ref, dos_pred = density_of_states(e_ref, grid, broadening), density_of_states(e_pred, grid, broadening)
    n_orbitals = full.shape[1]
    return {
        "threshold": threshold, "window_eV": window, "n_eigenvalues": int(inside.sum()),
        **difference_errors((e_pred - e_ref)[inside]),
        "gap_reference_eV": band_gap(e_ref), "gap_predicted_eV": band_gap(e_pred),
        "dos_difference": dos_difference(dos_pred, dos_ref, grid),
        "filter_shift_meV": largest_shift_meV([e - fermi_ref for e in kept_ref], full - fermi_ref, window),
        "fermi_level_offset_eV": fermi_pred - fermi_ref,
        "n_dropped_reference": float(n_orbitals - np.mean([len(e) for e in kept_ref])),
        "n_dropped_prediction": float(n_orbitals - np.mean([len(e) for e in kept_pred])),
    }


def eigenvalue_errors_by_shell(prediction: HamiltonianRecord, reference: HamiltonianRecord, kpoints: np.ndarray,
                              window: float = 2.0, threshold: float = 1e-2) -> dict[str, float]:
    """Filtered eigenvalue MAE (meV) with one part of the prediction put into the reference at a time.

    For each distance shell of :data:`SHELL_NAMES`, the reference with the
    predicted H values of that shell alone, and ``"S"``, the reference with
    the whole predicted S, each scored by :func:`filtered_spectral_errors`.
    A shell whose H MAE is tiny can still move eigenvalues far: a state
    near E_F spreads over many orbitals, and the errors of hundreds of
    neighbours enter its energy together (the states are not magnified by
    the nearly linearly dependent directions of S:
    :func:`.error_anatomy.window_state_norms`).  The shells' errors do not
    add up to the whole prediction's.
    """
    h_predicted, s_predicted = aligned_values(prediction, reference)  # [n_values] eV, [n_values]
    shells = distance_shells(reference)  # [n_blocks]
    shell_of_value = reference.per_value(shells)
    spectra = reference_spectra(reference, kpoints, threshold)  # shared by every variant
    variants = {str(shell): dataclasses.replace(reference, h_values=np.where(
        shell_of_value == shell, h_predicted, reference.h_values[:, 0])[:, None])
        for shell in SHELL_NAMES if shell in set(shells)}
    variants["S"] = dataclasses.replace(reference, s_values=s_predicted)
    return {label: filtered_spectral_errors(variant, reference, kpoints, window, threshold, **spectra)[
        "eigenvalue_mae_meV"] for label, variant in variants.items()}


def reference_deviation(other: HamiltonianRecord, reference: HamiltonianRecord, n_kpoints: int = 2,
                        window: float = 2.0, threshold: float = 1e-2) -> dict:
    """How far two reference calculations of one structure lie apart, in notebook 03's measures.

    Returns
    -------
    dict
        H MAE over all values, on-site blocks and orbital energies
        (``h_mae_meV``, ``h_on_site_mae_meV``, ``h_orbital_energy_mae_meV``),
        the largest S difference ``s_max_error``, and the filtered
        eigenvalue MAE and maximum within ``window`` eV of E_F on a
        Monkhorst-Pack grid of ``n_kpoints`` per periodic direction at overlap
        ``threshold`` (``eigenvalue_mae_meV``, ``eigenvalue_max_meV``;
        :func:`filtered_spectral_errors`).
    """
    h = block_errors(other, reference)["H_meV"]
    spectrum = filtered_spectral_errors(other, reference, monkhorst_pack(reference, n_kpoints), window, threshold)
    return {
        "h_mae_meV": h["overall"]["mae"], "h_on_site_mae_meV": h["on_site"]["mae"],
        "h_orbital_energy_mae_meV": h["diagonal"]["mae"],
        "s_max_error": float(np.abs(aligned_values(other, reference)[1] - reference.s_values).max()),
        "eigenvalue_mae_meV": spectrum["eigenvalue_mae_meV"], "eigenvalue_max_meV": spectrum["eigenvalue_max_meV"],
    }


def with_reference_overlap(prediction: HamiltonianRecord, reference: HamiltonianRecord) -> HamiltonianRecord:
    """The prediction with S replaced by the reference's S on the same blocks (to judge H alone)."""
    _, reference_s = aligned_values(reference, prediction)
    return dataclasses.replace(prediction, s_values=reference_s)


def spectra_by_chemical_order(records: dict[str, HamiltonianRecord], samples: dict[str, dict],
                              label: str) -> list[dict]:
    """One row per scored cell: its fraction of homopolar (B-B, N-N) bonds, DFT and predicted gap, eigenvalue MAE.

    ``samples`` are per-sample results of :func:`evaluate` (its
    ``"samples"``) for some of ``records``; cells without one are left
    out.  Gaps (eV) and the MAE (meV) are those of ``spectrum_filtered``;
    the fraction is :func:`.structure_stats.structure_stats`'s.  Every row
    names its set of cells, ``label`` (``"training"``, ``"test"``, ...):
    cells of two data folders can share a name.
    """
    rows = []
    for name, record in records.items():
        if name in samples:
            spectrum = samples[name]["spectrum_filtered"]
            rows.append({"set": label, "cell": name,
                         "homopolar_fraction": structure_stats(record.atoms).homopolar_fraction,
                         "gap_reference_eV": spectrum["gap_reference_eV"],
                         "gap_predicted_eV": spectrum["gap_predicted_eV"],
                         "eigenvalue_mae_filtered_meV": spectrum["eigenvalue_mae_meV"]})
    return rows


#: Numbers averaged over samples in :func:`evaluate`'s summary.
SUMMARY_KEYS = {
    "H_mae_meV": ("blocks", "H_meV", "overall", "mae"),
    "H_on_site_mae_meV": ("blocks", "H_meV", "on_site", "mae"),
    "H_off_site_mae_meV": ("blocks", "H_meV", "off_site", "mae"),
    "H_diagonal_mae_meV": ("blocks", "H_meV", "diagonal", "mae"),
    "H_bonded_mae_meV": ("blocks", "H_meV", "distance", "0-2 Å", "mae"),
    "H_bonded_reference_meV": ("blocks", "H_meV", "distance", "0-2 Å", "reference_mean_abs"),
    "S_mae": ("blocks", "S", "overall", "mae"),
    "eigenvalue_mae_meV": ("spectrum", "eigenvalue_mae_meV"),
    "eigenvalue_max_meV": ("spectrum", "eigenvalue_max_meV"),
    "eigenvalue_mae_reference_S_meV": ("spectrum_reference_S", "eigenvalue_mae_meV"),
    "dos_difference": ("spectrum", "dos_difference"),
    "eigenvalue_mae_random_noise_meV": ("random_noise_same_mae", "eigenvalue_mae_meV"),
    "eigenvalue_mae_projected_meV": ("spectrum_projected", "eigenvalue_mae_meV"),
    "eigenvalue_max_projected_meV": ("spectrum_projected", "eigenvalue_max_meV"),
    "eigenvalue_mae_projected_random_noise_meV": ("random_noise_same_mae_projected", "eigenvalue_mae_meV"),
    "eigenvalue_mae_filtered_meV": ("spectrum_filtered", "eigenvalue_mae_meV"),
    "eigenvalue_max_filtered_meV": ("spectrum_filtered", "eigenvalue_max_meV"),
    "dos_difference_filtered": ("spectrum_filtered", "dos_difference"),
    "filter_shift_meV": ("spectrum_filtered", "filter_shift_meV"),
    "eigenvalue_mae_filtered_random_noise_meV": ("random_noise_same_mae_filtered", "eigenvalue_mae_meV"),
    "smallest_S_eigenvalue": ("smallest_S_eigenvalue",),
}


def summary_value(sample: dict, key: str) -> float:
    """The number ``key`` of :data:`SUMMARY_KEYS` in one sample's :func:`evaluate` result."""
    return float(functools.reduce(operator.getitem, SUMMARY_KEYS[key], sample))


def evaluate(model, records: dict[str, HamiltonianRecord], n_kpoints: int = 2, window: float = 2.0,
             overlap_threshold: float = 1e-3, filter_threshold: float = 1e-2) -> dict:
    """Block and spectral errors of a model on every record, and their means over records.

    ``spectrum`` uses the predicted H and S; ``spectrum_reference_S`` the
    predicted H with the reference S (the predicted S can make S(k)
    indefinite when the basis is nearly linearly dependent);
    ``spectrum_projected`` the predicted H in the part of the basis where
    the reference S's eigenvalues are at least ``overlap_threshold``
    (:func:`projected_spectral_errors`); ``spectrum_filtered`` the predicted
    H and S with the prediction's own nearly linearly dependent directions
    (S eigenvalues below ``filter_threshold``) removed, against the
    reference filtered alike (:func:`filtered_spectral_errors`: no
    reference information enters the prediction's spectrum).
    ``random_noise_same_mae``, ``random_noise_same_mae_projected`` and
    ``random_noise_same_mae_filtered`` are the yardstick of
    :func:`noisy_reference` at the prediction's H MAE,
    ``smallest_S_eigenvalue`` the reference's.
    """
    samples = {}
    for name, reference in records.items():
        prediction = model.predict(reference)
        kpoints = monkhorst_pack(reference, n_kpoints)
        blocks = block_errors(prediction, reference)
        energies = eigenvalues(reference, kpoints)  # [n_k, n_bands], shared by the three spectra
        noisy = noisy_reference(reference, blocks["H_meV"]["overall"]["mae"] / 1000)
        filtered = projected_eigenvalues(reference, reference, kpoints, filter_threshold)  # shared by two spectra
        frames = canonical_frames(reference, kpoints, overlap_threshold)  # shared by the two projected spectra
        projected = projected_eigenvalues(reference, reference, kpoints, overlap_threshold, frames)
        samples[name] = {
            "n_atoms": reference.n_atoms,
            "blocks": blocks,
            "smallest_S_eigenvalue": smallest_overlap_eigenvalue(reference, kpoints),
            "random_noise_same_mae": spectral_errors(noisy, reference, kpoints, window, reference_energies=energies),
            "random_noise_same_mae_projected": projected_spectral_errors(noisy, reference, kpoints, window,
                                                                         overlap_threshold, energies, frames,
                                                                         projected),
            "spectrum_projected": projected_spectral_errors(prediction, reference, kpoints, window,
                                                            overlap_threshold, energies, frames, projected),
            "random_noise_same_mae_filtered": filtered_spectral_errors(
                noisy, reference, kpoints, window, filter_threshold, reference_energies=energies,
                reference_filtered=filtered),
            "spectrum_filtered": filtered_spectral_errors(prediction, reference, kpoints, window, filter_threshold,
                                                          reference_energies=energies, reference_filtered=filtered),
            "spectrum": spectral_errors(prediction, reference, kpoints, window, reference_energies=energies),
            "spectrum_reference_S": spectral_errors(with_reference_overlap(prediction, reference), reference,
                                                    kpoints, window, reference_energies=energies),
        }
    summary = {key: float(np.mean([summary_value(sample, key) for sample in samples.values()]))
               if samples else float("nan") for key in SUMMARY_KEYS}
    return {"summary": summary, "samples": samples}
