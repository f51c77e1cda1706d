"""Where a prediction's eigenvalue errors come from: the states, the error sizes and the orbital energies.

:mod:`.evaluation` scores a prediction; this module takes its errors apart.

- :func:`window_state_norms`: how much the filtered reference's states near
  E_F magnify H errors.  A state c with c^H S c = 1 moves by c^H dH c to
  first order, at most |c|^2 times the largest eigenvalue of dH, so |c|^2
  is the magnification.  It is large only for states built from the
  nearly linearly dependent combinations of orbitals (|c|^2 up to 1/s for
  an S eigenvalue s).
- :func:`shuffled_errors`: the reference plus the prediction's own H errors,
  shuffled with random signs within each class of values (distance shell,
  orbital channel, species pair; orbital energies apart).  Its spectrum shows what errors of the
  prediction's sizes cost without the prediction's correlations; the
  Gaussian yardstick of :func:`.evaluation.noisy_reference` gives every value
  the overall MAE, which the tiny distant values dominate.
- :func:`exact_part_errors`: the filtered eigenvalue MAE with the on-site
  blocks, or the off-site blocks, taken from the reference.
- :func:`orbital_energy_errors`: each atom's orbital energies (the on-site
  diagonal averaged over m within each radial shell of its basis), less
  the mean error of its species in the cell (a constant c S over a cell
  moves every eigenvalue alike), and how an atom's error follows that of
  its bonded neighbours.
- :func:`pair_model_orbital_energies`: a linear sum of pair terms (ridge
  regression on Gaussians of neighbour distances, one set per neighbour
  species) fitted to the training cells' orbital energies, the crystal
  field's first term, as a yardstick for a network's on the same cells.
- :func:`self_consistent_split`: the orbital energies of GPAW's Harris H
  (the neutral atoms' potential, no SCF step), which pair terms fit
  closely, and what self-consistency adds to them, which neither a pair
  model nor the network predicts for unseen atoms.

``python -m hforge_nb.error_anatomy RUN DATA OUT [--harris DIR]`` applies them
to notebook 03's equivariant model (``RUN/equivariant/model.pt``, split in
``RUN/metrics.json``) on the records of ``DATA`` and writes a JSON file;
``--harris`` reads the cells' Harris records from ``DIR``, computing the
missing ones with GPAW at the data's settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from .evaluation import (aligned_values, canonical_frame, filtered_spectral_errors, monkhorst_pack,
                         reference_spectra, value_labels)
from .neighbours import neighbour_pairs, pair_vectors
from .record import HamiltonianRecord, value_positions
from .structure_stats import BOND_CUTOFF

#: Å: Gaussians of :func:`pair_features` every 0.3 Å from 1 Å to the cutoff, 0.3 Å wide.
PAIR_CUTOFF, PAIR_SPACING = 6.0, 0.3


def window_state_norms(reference: HamiltonianRecord, kpoints: np.ndarray, window: float = 2.0,
                       threshold: float = 1e-2) -> np.ndarray:
    """``[n_states]`` |c|^2 of the reference's states within ``window`` eV of E_F = 0, over ``kpoints``.

    The states are those of :func:`.evaluation.filtered_spectral_errors`: H
    solved in the canonical frame of S(k) at ``threshold``, normalized so
    that c^H S c = 1.
    """
    norms = []
    for k in np.atleast_2d(kpoints):
        h, s = reference.matrices_at_k(k)
        frame = canonical_frame(s, threshold)  # [n_orbitals, n_kept]
        energies, vectors = np.linalg.eigh(frame.conj().T @ h @ frame)
        states = frame @ vectors[:, np.abs(energies) <= window]  # [n_orbitals, n_window]
        norms.append(np.sum(np.abs(states) ** 2, axis=0))
    return np.concatenate(norms)


def value_classes(record: HamiltonianRecord) -> np.ndarray:
    """``[n_values]`` label of every value: distance shell, orbital channel and species pair ("0-2 Å|s-p|B-N");
    the orbital energies (on-site diagonal) are classes of their own ("on-site|s-s|B-B|diagonal")."""
    labels = value_labels(record)
    classes = (labels["distance"].astype(str) + "|" + labels["channel"].astype(str) + "|"
               + labels["species"].astype(str))
    return np.where(labels["diagonal"], classes + "|diagonal", classes)


def shuffled_errors(prediction: HamiltonianRecord, reference: HamiltonianRecord, seed: int = 0) -> HamiltonianRecord:
    """The reference with the prediction's H errors permuted, signs drawn at random, within each value class.

    Classes are :func:`value_classes`; S is the reference's.  The result is
    made Hermitian (:meth:`.HamiltonianRecord.symmetrized`), which averages
    the errors of the two blocks of a Hermitian pair.
    """
    rng = np.random.default_rng(seed)
    h_predicted, _ = aligned_values(prediction, reference)
    errors = h_predicted - reference.h_values[:, 0]  # [n_values] eV
    shuffled = np.zeros_like(errors)
    classes = value_classes(reference)
    for label in np.unique(classes):
        members = np.flatnonzero(classes == label)
        shuffled[members] = rng.permutation(errors[members]) * rng.choice((-1.0, 1.0), size=len(members))
    return dataclasses.replace(reference, h_values=reference.h_values + shuffled[:, None]).symmetrized()


def exact_part_errors(prediction: HamiltonianRecord, reference: HamiltonianRecord, kpoints: np.ndarray,
                      window: float = 2.0, threshold: float = 1e-2, spectra: dict | None = None) -> dict[str, float]:
    """Filtered eigenvalue MAE (meV) of the prediction with its on-site (or off-site) H blocks from the reference.

    The predicted S is kept in both, as in the prediction's own score
    (``prediction``, for comparison).  ``spectra``: the reference's
    :func:`reference_spectra`, when already computed.
    """
    spectra = reference_spectra(reference, kpoints, threshold) if spectra is None else spectra
    h_predicted, s_predicted = aligned_values(prediction, reference)
    on_site = reference.per_value(reference.on_site)
    h_reference = reference.h_values[:, 0]
    variants = {"prediction": h_predicted, "exact_on_site": np.where(on_site, h_reference, h_predicted),
                "exact_off_site": np.where(on_site, h_predicted, h_reference)}
    return {name: filtered_spectral_errors(dataclasses.replace(reference, h_values=h[:, None], s_values=s_predicted),
                                           reference, kpoints, window, threshold, **spectra)["eigenvalue_mae_meV"]
            for name, h in variants.items()}


def orbital_energies(h_values: np.ndarray, record: HamiltonianRecord) -> np.ndarray:
    """``[n_atoms, n_shells]`` eV: each atom's on-site diagonal of ``h_values`` (record layout) averaged per shell.

    Shells are those of the atom's species basis (s, s, p, p, d for
    ``dzp``); every species must have the same number of shells.
    """
    block, row, col = value_positions(record.block_shapes)
    diagonal = record.on_site[block] & (row == col)
    atom = record.pairs[block[diagonal], 0]
    shell_of_orbital = {symbol: record.basis[symbol].orbital_shell for symbol in record.basis.symbols}
    shell = np.array([shell_of_orbital[record.species[a]][r] for a, r in zip(atom, row[diagonal])])
    n_shells = {len(record.basis[s].shells) for s in set(record.species)}
    if len(n_shells) != 1:
        raise ValueError(f"species of this record have different numbers of shells: {sorted(n_shells)}")
    sums = np.zeros((record.n_atoms, n_shells.pop()))
    counts = np.zeros_like(sums)
    np.add.at(sums, (atom, shell), h_values[diagonal])
    np.add.at(counts, (atom, shell), 1.0)
    return sums / counts


def less_species_means(values: np.ndarray, species: np.ndarray) -> np.ndarray:
    """``values`` ``[n_atoms, ...]`` less the mean over the atoms of the same ``species`` ``[n_atoms]``.

    >>> less_species_means(np.array([1.0, 3.0, 10.0]), np.array(["B", "B", "N"])).tolist()
    [-1.0, 1.0, 0.0]
    """
    result = values.astype(float).copy()
    for symbol in np.unique(species):
        result[species == symbol] -= values[species == symbol].mean(axis=0)
    return result


def bonded_neighbour_means(values: np.ndarray, atoms, bond_cutoff: float = BOND_CUTOFF) -> np.ndarray:
    """``[n_atoms]`` mean of ``values`` ``[n_atoms]`` over each atom's bonded neighbours (NaN without any)."""
    i, j, _ = neighbour_pairs(atoms, bond_cutoff)
    sums = np.bincount(i, weights=values[j], minlength=len(atoms))
    counts = np.bincount(i, minlength=len(atoms))
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def orbital_energy_errors(prediction: HamiltonianRecord, reference: HamiltonianRecord) -> dict:
    """Each atom's orbital-energy errors (eV), less its species' mean error in the cell, and their neighbours'.

    Returns
    -------
    dict
        ``errors`` ``[n_atoms, n_shells]`` eV, ``species`` ``[n_atoms]``, and
        ``neighbour_means`` ``[n_atoms, n_shells]``: the mean of the same
        errors over each atom's bonded neighbours (:func:`bonded_neighbour_means`).
    """
    h_predicted, _ = aligned_values(prediction, reference)
    return orbital_energy_error_parts(orbital_energies(h_predicted, reference), reference)


def orbital_energy_error_parts(predicted: np.ndarray, reference: HamiltonianRecord) -> dict:
    """:func:`orbital_energy_errors` of ``predicted`` orbital energies ``[n_atoms, n_shells]`` (eV), from any model."""
    species = np.array(reference.species)
    errors = less_species_means(predicted - orbital_energies(reference.h_values[:, 0], reference), species)
    neighbours = np.stack([bonded_neighbour_means(errors[:, k], reference.atoms) for k in range(errors.shape[1])], 1)
    return {"errors": errors, "species": species, "neighbour_means": neighbours}


def summarize_orbital_energy_errors(parts: list[dict]) -> dict:
    """Per species over several cells' :func:`orbital_energy_errors`: MAE per shell (meV) and the correlation of
    an atom's error with its bonded neighbours' mean, over all shells' values."""
    errors = np.concatenate([p["errors"] for p in parts])
    species = np.concatenate([p["species"] for p in parts])
    neighbours = np.concatenate([p["neighbour_means"] for p in parts])
    summary = {}
    for symbol in np.unique(species):
        mine, theirs = errors[species == symbol], neighbours[species == symbol]
        finite = np.isfinite(theirs)
        summary[str(symbol)] = {
            "n_atoms": int(len(mine)), "mae_meV_per_shell": (np.abs(mine).mean(axis=0) * 1000).tolist(),
            "neighbour_correlation": float(np.corrcoef(mine[finite], theirs[finite])[0, 1])}
    return summary


def pair_features(atoms, species_order: tuple[str, ...]) -> np.ndarray:
    """``[n_atoms, n_species * n_gaussians]``: per neighbour species, sums over neighbours of Gaussians of distance.

    Gaussians every :data:`PAIR_SPACING` Å from 1 Å, as wide, times a cosine
    cutoff at :data:`PAIR_CUTOFF` Å.
    """
    centres = np.arange(1.0, PAIR_CUTOFF + 1e-9, PAIR_SPACING)
    i, j, shifts = neighbour_pairs(atoms, PAIR_CUTOFF)
    r = np.linalg.norm(pair_vectors(atoms, i, j, shifts), axis=1)  # [n_pairs] Å
    smooth = 0.5 * (np.cos(np.pi * r / PAIR_CUTOFF) + 1)
    gaussians = np.exp(-((r[:, None] - centres) / PAIR_SPACING) ** 2) * smooth[:, None]  # [n_pairs, n_gaussians]
    symbols = np.array(atoms.get_chemical_symbols())
    features = np.zeros((len(atoms), len(species_order), len(centres)))
    for k, symbol in enumerate(species_order):
        of_species = symbols[j] == symbol
        np.add.at(features[:, k], i[of_species], gaussians[of_species])
    return features.reshape(len(atoms), -1)


def pair_model_orbital_energies(training: list[HamiltonianRecord], test: list[HamiltonianRecord],
                                ridge: float = 1e-2, targets: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Per test record, ``[n_atoms, n_shells]`` orbital energies (eV) from a ridge fit of :func:`pair_features`.

    One fit per species on the training records' atoms (features
    standardized; ``ridge`` times the number of atoms on the diagonal), to
    their orbital energies, or to ``targets`` (``[n_atoms, n_shells]`` eV per
    training record) when given.
    """
    species_order = tuple(training[0].basis.symbols)
    x_train = np.concatenate([pair_features(r.atoms, species_order) for r in training])
    if targets is None:
        targets = [orbital_energies(r.h_values[:, 0], r) for r in training]
    y_train = np.concatenate(targets)
    s_train = np.concatenate([r.species for r in training])
    x_test = [pair_features(r.atoms, species_order) for r in test]
    predictions = [np.zeros((r.n_atoms, y_train.shape[1])) for r in test]
    for symbol in np.unique(s_train):
        x, y = x_train[s_train == symbol], y_train[s_train == symbol]
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        a = (x - mean) / scale
        weights = np.linalg.solve(a.T @ a + ridge * len(a) * np.eye(a.shape[1]), a.T @ (y - y.mean(axis=0)))
        for record, features, predicted in zip(test, x_test, predictions):
            mine = np.array(record.species) == symbol
            predicted[mine] = (features[mine] - mean) / scale @ weights + y.mean(axis=0)
    return predictions


def self_consistent_split(training: dict[str, HamiltonianRecord], test: dict[str, HamiltonianRecord],
                          harris: dict[str, HamiltonianRecord], predicted: dict[str, np.ndarray] | None = None) -> dict:
    """What the Harris H gives of the test cells' orbital energies and what self-consistency adds.

    Parameters
    ----------
    training, test
        Reference records by name.
    harris
        :func:`.gpaw_reference.harris_record` of each of them, by name.
    predicted
        A model's ``[n_atoms, n_shells]`` orbital energies (eV) on each test cell, optional.

    Returns
    -------
    dict
        :func:`summarize_orbital_energy_errors` on the test cells of: each
        cell's species means (``"species_means"``: the spread to predict), the
        Harris orbital energies (``"harris"``), a pair model fitted to the
        training cells' Harris orbital energies, scored against the test
        cells' Harris ones (``"pair_model_of_harris"``), and the Harris
        orbital energies plus a pair model of the rest, reference less Harris
        (``"harris_plus_pair_model_of_rest"``); per species, the correlation
        of Harris and reference (``"harris_reference_correlation"``), and
        with ``predicted`` that of the model's errors with the Harris part and
        the self-consistent part (``"model_error_correlation"``).
    """
    energies = {name: orbital_energies(record.h_values[:, 0], record) for name, record in {**training, **test}.items()}
    harris_energies = {name: orbital_energies(harris[name].h_values[:, 0], harris[name]) for name in energies}
    rest = pair_model_orbital_energies(list(training.values()), list(test.values()),
                                       targets=[energies[n] - harris_energies[n] for n in training])
    of_harris = pair_model_orbital_energies([harris[n] for n in training], [harris[n] for n in test])
    summaries = {
        "species_means": [orbital_energy_error_parts(np.zeros_like(energies[n]), r) for n, r in test.items()],
        "harris": [orbital_energy_error_parts(harris_energies[n], r) for n, r in test.items()],
        "pair_model_of_harris": [orbital_energy_error_parts(p, harris[n]) for n, p in zip(test, of_harris)],
        "harris_plus_pair_model_of_rest": [orbital_energy_error_parts(harris_energies[n] + p, r)
                                           for (n, r), p in zip(test.items(), rest)],
    }
    split = {key: summarize_orbital_energy_errors(parts) for key, parts in summaries.items()}
    split["harris_reference_correlation"] = species_correlations(
        [harris_energies[n] for n in test], [energies[n] for n in test], list(test.values()))
    if predicted is not None:
        errors = [predicted[n] - energies[n] for n in test]
        split["model_error_correlation"] = {
            "harris": species_correlations(errors, [harris_energies[n] for n in test], list(test.values())),
            "self_consistent": species_correlations(errors, [energies[n] - harris_energies[n] for n in test],
                                                    list(test.values()))}
    return split


def species_correlations(first: list[np.ndarray], second: list[np.ndarray],
                         records: list[HamiltonianRecord]) -> dict[str, float]:
    """Per species, the correlation over atoms and shells of two per-atom quantities, each less its species' mean
    in every cell; ``first`` and ``second`` hold ``[n_atoms, n_shells]`` per record of ``records``."""
    species = np.concatenate([r.species for r in records])
    centred = [np.concatenate([less_species_means(values, np.array(r.species)) for values, r in zip(part, records)])
               for part in (first, second)]
    return {str(symbol): float(np.corrcoef(centred[0][species == symbol].ravel(),
                                           centred[1][species == symbol].ravel())[0, 1])
            for symbol in np.unique(species)}


# ------------------------------------------------------------------ command line
def anatomy(model, training: dict[str, HamiltonianRecord], test: dict[str, HamiltonianRecord],
            n_kpoints: int = 2, window: float = 2.0, threshold: float = 1e-2,
            harris: dict[str, HamiltonianRecord] | None = None) -> dict:
    """Every measure of the module for ``model`` on its ``test`` cells (and its ``training`` cells' orbital energies).

    With ``harris`` (the Harris records of both sets, by name) it adds
    :func:`self_consistent_split` as ``"self_consistent_split"``.
    """
    cells, parts, predicted = {}, {"test": [], "training": [], "pair_model_test": []}, {}
    for name, reference in test.items():
        prediction = model.predict(reference)
        kpoints = monkhorst_pack(reference, n_kpoints)
        norms = window_state_norms(reference, kpoints, window, threshold)
        spectra = reference_spectra(reference, kpoints, threshold)  # shared by the four spectra below
        shuffled = filtered_spectral_errors(shuffled_errors(prediction, reference), reference, kpoints, window,
                                            threshold, **spectra)["eigenvalue_mae_meV"]
        cells[name] = {"window_state_norm_median": float(np.median(norms)), "window_state_norm_max": float(norms.max()),
                       **exact_part_errors(prediction, reference, kpoints, window, threshold, spectra),
                       "shuffled_errors": shuffled}
        predicted[name] = orbital_energies(aligned_values(prediction, reference)[0], reference)
        parts["test"].append(orbital_energy_error_parts(predicted[name], reference))
    for reference in training.values():
        parts["training"].append(orbital_energy_errors(model.predict(reference), reference))
    pair_model = pair_model_orbital_energies(list(training.values()), list(test.values()))
    parts["pair_model_test"] = [orbital_energy_error_parts(predicted, reference)
                                for reference, predicted in zip(test.values(), pair_model)]
    result = {"cells": cells, "orbital_energies": {key: summarize_orbital_energy_errors(value)
                                                   for key, value in parts.items()}}
    if harris is not None:
        result["self_consistent_split"] = self_consistent_split(training, test, harris, predicted)
    return result


def main(argv: list[str] | None = None) -> int:
    from . import dataset, io
    from ._atomic import write_json
    from .energy_zero import for_energy_zero
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="notebook 03's output folder (metrics.json, equivariant/model.pt)")
    parser.add_argument("data", type=Path, help="the data folder it trained on")
    parser.add_argument("out", type=Path, help="JSON file to write")
    parser.add_argument("--harris", type=Path, help="folder of the cells' Harris records, computed there with "
                        "GPAW when missing: adds the self-consistent split of the orbital energies")
    args = parser.parse_args(argv)
    metrics = json.loads((args.run / "metrics.json").read_text())
    model = for_energy_zero(io.read_model(args.run / "equivariant" / "model.pt"), metrics["energy_zero"])
    records = dataset.read_samples(args.data, "train")
    split = {part: {name: records[name] for name in metrics["split"][part]} for part in ("train", "test")}
    harris = None
    if args.harris is not None:
        harris = dataset.harris_records({**split["train"], **split["test"]}, dataset.read_gpaw_settings(args.data),
                                        args.harris)
    result = anatomy(model, split["train"], split["test"], harris=harris)
    write_json(args.out, {"run": str(args.run), "data": str(args.data), **result})
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
