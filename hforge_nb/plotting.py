"""Figures of records: block magnitudes, sparsity, band structures.

Every function returns a ``matplotlib.figure.Figure`` and takes plain data
or a record, so notebooks stay free of plotting code.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .bands import KPath
from .record import HamiltonianRecord


def _mark_distances(ax, distances: np.ndarray | None, **style) -> None:
    """Vertical lines at the distinct ``distances`` (Å, to 1 mÅ); nothing when None."""
    for r in np.unique(np.round(distances, 3)) if distances is not None else []:
        ax.axvline(r, lw=0.8, **style)


def plot_block_decay(record: HamiltonianRecord, orbital_range: np.ndarray | None = None,
                     hamiltonian_range: np.ndarray | None = None) -> Figure:
    """Largest |H| (eV) and |S| of every block against the pair distance (Å).

    ``orbital_range`` (Å), when given, marks R_i + R_j of the species pairs
    (dashed); ``hamiltonian_range`` marks R_i + R_j + 2 R_proj on the H panel (dotted).
    """
    distance = np.linalg.norm(record.pair_vectors, axis=1)
    h_max, s_max = record.block_max_abs()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharex=True)
    for ax, values, name in ((axes[0], h_max, "max |H| per block (eV)"), (axes[1], s_max, "max |S| per block")):
        shown = values > 0
        ax.semilogy(distance[shown], values[shown], "o", ms=3, alpha=0.6)
        _mark_distances(ax, orbital_range, color="k", ls="--")
        ax.set(xlabel="pair distance (Å)", ylabel=name)
    _mark_distances(axes[0], hamiltonian_range, color="C3", ls=":")
    axes[0].set_title("dashed: R_i + R_j;  dotted: R_i + R_j + 2 R_proj", fontsize=9)
    fig.tight_layout()
    return fig


def plot_sparsity(record: HamiltonianRecord, max_images: int = 27) -> Figure:
    """Orbital-level sparsity pattern of H(R) for the images nearest the home cell.

    Columns are grouped by lattice image R (sorted by |R|), rows are home-cell
    orbitals; colour is log10 |H| in eV.
    """
    images = np.unique(record.shifts, axis=0)
    images = images[np.argsort(np.abs(images).sum(axis=1), kind="stable")][:max_images]
    n, first = record.n_orbitals, record.orbital_offsets
    dense = np.full((n, n * len(images)), np.nan)
    for b, (i, j) in enumerate(record.pairs):
        where = np.flatnonzero((images == record.shifts[b]).all(axis=1))
        if where.size:
            h = np.abs(record.block(b)[0]).max(axis=2)
            column = where[0] * n + first[j]
            dense[first[i] : first[i + 1], column : column + h.shape[1]] = h
    fig, ax = plt.subplots(figsize=(9, 2.8))
    mesh = ax.imshow(np.log10(dense + 1e-12), aspect="auto", cmap="viridis", interpolation="nearest")
    for k in range(1, len(images)):
        ax.axvline(k * n - 0.5, color="w", lw=0.4)
    ax.set(xlabel=f"orbital j in image R ({len(images)} images nearest R=0)", ylabel="orbital i")
    fig.colorbar(mesh, ax=ax, label="log10 |H| (eV)")
    fig.tight_layout()
    return fig


def plot_bands_and_parity(path: KPath, bands: np.ndarray, reference: np.ndarray | None,
                          computed: np.ndarray | None, window: tuple[float, float]) -> Figure:
    """Band structure along ``path`` and, beside it, computed vs reference eigenvalues.

    Parameters
    ----------
    bands
        ``[n_spin, n_k, n_bands]`` eV along the path.
    reference, computed
        Eigenvalues at the same k-points (eV), for example SIESTA's ``.EIG``
        and the record's; the parity panel is left out when ``reference`` is None.
    window
        Energy range (eV) shown.
    """
    fig, axes = plt.subplots(1, 2 if reference is not None else 1, figsize=(10, 4), squeeze=False)
    ax = axes[0, 0]
    breaks = np.flatnonzero(np.diff(path.distance) == 0) + 1  # where a path like "GMK,AL" jumps
    for spin_bands in bands:
        ax.plot(np.insert(path.distance, breaks, np.nan), np.insert(spin_bands, breaks, np.nan, axis=0),
                color="C0", lw=1)
    for x in path.label_positions:
        ax.axvline(x, color="k", lw=0.5)
    ax.axhline(0.0, color="k", ls=":", lw=0.8)
    ax.set(xticks=path.label_positions, xticklabels=path.labels, ylim=window, ylabel="E - E_F (eV)",
           xlim=(path.distance[0], path.distance[-1]), title="bands from the record's H(R), S(R)")
    if reference is not None:
        n = min(reference.shape[-1], computed.shape[-1])
        ref, com = reference[..., :n].ravel(), computed[..., :n].ravel()
        ax = axes[0, 1]
        ax.plot(ref, com, "o", ms=3, alpha=0.5)
        ax.plot(window, window, "k--", lw=0.8)
        ax.set(xlim=window, ylim=window, xlabel="SIESTA .EIG (eV)", ylabel="record eigenvalues (eV)",
               title=f"at the .KP k-points: max |Δ| = {np.abs(ref - com).max():.1e} eV")
    fig.tight_layout()
    return fig


def plot_dataset_cost(samples: list[dict]) -> Figure:
    """GPAW wall time (SCF and Fourier step) and peak memory against the number of atoms."""
    converged = [s for s in samples if s["status"] == "converged"]
    n_atoms = np.array([s["n_atoms"] for s in converged])
    fig, (ax_time, ax_memory) = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    for step, marker in (("scf", "o"), ("fourier", "s")):
        ax_time.scatter(n_atoms, [s["timings_s"][step] for s in converged], marker=marker, label=step)
    ax_time.set(xlabel="atoms", ylabel="wall time (s)", xscale="log", yscale="log")
    ax_time.legend()
    ax_memory.scatter(n_atoms, [s["peak_rss_GB"] for s in converged])
    ax_memory.set(xlabel="atoms", ylabel="peak memory (GB)", xscale="log")
    return fig


def plot_coordination(rows: list[dict]) -> Figure:
    """Fractions of 2-, 3- and 4-fold coordinated atoms and of homopolar bonds, one bar group per sample."""
    keys = ("sp_fraction", "sp2_fraction", "sp3_fraction", "homopolar_fraction")
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(rows) + 2), 3.5), constrained_layout=True)
    x = np.arange(len(rows))
    for k, key in enumerate(keys):
        ax.bar(x + (k - 1.5) * 0.2, [row[key] for row in rows], width=0.2, label=key.replace("_fraction", ""))
    ax.set_xticks(x, [row["name"] for row in rows], rotation=60, ha="right", fontsize=7)
    ax.set(ylabel="fraction", ylim=(0, 1))
    ax.legend(fontsize=7, ncols=4)
    return fig
