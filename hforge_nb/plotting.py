"""Figures of records: block magnitudes, sparsity, band structures.

Every function returns a ``matplotlib.figure.Figure`` and takes plain data
or a record, so notebooks stay free of plotting code.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

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


def _shell_edges(species) -> tuple[np.ndarray, list[str]]:
    """Orbital index where every shell starts (and the end), and shell labels such as ``'2pZ1'``."""
    edges = np.concatenate([[0], np.cumsum([s.n_orbitals for s in species.shells])])
    return edges, [s.label for s in species.shells]


def _block_heatmap(ax, block: np.ndarray, row, col, limit: float, title: str):
    """One orbital block (eV) with shell boundaries and labels; returns the image."""
    image = ax.imshow(block, cmap="RdBu_r", vmin=-limit, vmax=limit)
    (row_edges, row_labels), (col_edges, col_labels) = _shell_edges(row), _shell_edges(col)
    for edge in row_edges[1:-1]:
        ax.axhline(edge - 0.5, color="k", lw=0.5)
    for edge in col_edges[1:-1]:
        ax.axvline(edge - 0.5, color="k", lw=0.5)
    ax.set_yticks((row_edges[:-1] + row_edges[1:] - 1) / 2, row_labels, fontsize=7)
    ax.set_xticks((col_edges[:-1] + col_edges[1:] - 1) / 2, col_labels, fontsize=7, rotation=90)
    ax.set_title(title, fontsize=9)
    return image


def plot_block_irreps(block: np.ndarray, irreps: np.ndarray, row, col, title: str = "") -> Figure:
    """An orbital block (eV) beside the sizes of its irreps, one bar per (shell pair, L).

    Parameters
    ----------
    block
        ``[n_row, n_col]`` eV, SIESTA orbital order.
    irreps
        ``[n_row * n_col]`` the same block as irreps (``block.ravel() @ U.T``,
        :func:`.block_irreps.block_change_of_basis`).
    row, col
        The two :class:`.SpeciesBasis`.
    """
    from .block_irreps import block_decomposition, component_starts

    parts = block_decomposition(row, col)
    starts = component_starts(parts)
    norms = [np.linalg.norm(irreps[s : s + 2 * p.l + 1]) for p, s in zip(parts, starts)]
    labels = [f"{row.shells[p.row_shell].label}·{col.shells[p.col_shell].label} {p.irrep}" for p in parts]
    fig, (ax_block, ax_bars) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.6]})
    limit = np.abs(block).max()
    fig.colorbar(_block_heatmap(ax_block, block, row, col, limit, title or "block (eV)"), ax=ax_block, label="eV")
    ax_bars.bar(range(len(parts)), norms, color=[f"C{p.l}" for p in parts])
    ax_bars.set_xticks(range(len(parts)), labels, rotation=90, fontsize=6)
    ax_bars.set(ylabel="|irrep| (eV)", title="the same block as irreps; colour = L")
    fig.tight_layout()
    return fig


def plot_rotation_check(panels: list[tuple[str, np.ndarray, np.ndarray]], row, col) -> Figure:
    """Per model: the block predicted for a rotated structure H(Q r), the rotated prediction D H D^T, their difference.

    ``panels`` holds (model name, predicted block of the rotated structure,
    rotated block of the prediction), blocks ``[n_row, n_col]`` in eV.
    """
    fig, axes = plt.subplots(len(panels), 3, figsize=(11, 3.6 * len(panels)), squeeze=False)
    for ax_row, (name, of_rotated, rotated) in zip(axes, panels):
        limit = max(np.abs(of_rotated).max(), np.abs(rotated).max())
        _block_heatmap(ax_row[0], of_rotated, row, col, limit, f"{name}: H(Q r)")
        image = _block_heatmap(ax_row[1], rotated, row, col, limit, f"{name}: D(Q) H(r) D(Q)ᵀ")
        fig.colorbar(image, ax=ax_row[:2], label="eV", shrink=0.8)
        difference = of_rotated - rotated
        scale = max(np.abs(difference).max(), 1e-300)
        image = _block_heatmap(ax_row[2], difference, row, col, scale, f"difference (max {scale:.1e} eV)")
        fig.colorbar(image, ax=ax_row[2], label="eV", shrink=0.8)
    return fig


def plot_learning_curves(logs: dict[str, list[dict]]) -> Figure:
    """Training and validation loss, and validation MAE of H (meV), per epoch, for each model.

    ``logs`` maps a model name to its training log rows (:mod:`.training`);
    a model trained without validation cells (NaN validation columns) shows
    its training loss alone.
    """
    fig, (ax_loss, ax_mae) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (name, rows) in enumerate(logs.items()):
        epochs = [r["epoch"] for r in rows]
        ax_loss.semilogy(epochs, [r["train_loss"] for r in rows], color=f"C{k}", label=f"{name} train")
        if all(np.isnan(r["val_loss"]) for r in rows):
            continue  # trained without validation cells
        ax_loss.semilogy(epochs, [r["val_loss"] for r in rows], color=f"C{k}", ls="--", label=f"{name} validation")
        ax_mae.semilogy(epochs, [r["val_h_mae_meV"] for r in rows], color=f"C{k}", label=name)
    ax_loss.set(xlabel="epoch", ylabel="normalized loss")
    ax_mae.set(xlabel="epoch", ylabel="validation MAE of H (meV)")
    ax_loss.legend(fontsize=8)
    if ax_mae.get_lines():
        ax_mae.legend(fontsize=8)
    else:
        ax_mae.text(0.5, 0.5, "trained without validation cells", ha="center", va="center",
                    transform=ax_mae.transAxes)
    fig.tight_layout()
    return fig


def plot_channel_errors(errors: dict[str, dict]) -> Figure:
    """MAE of H (meV) per orbital channel, on-site and off-site, one bar group per model.

    ``errors`` maps a model name to a :func:`.evaluation.block_errors` result.
    """
    names = list(errors)
    labels = ["on-site", "off-site"] + sorted(next(iter(errors.values()))["H_meV"]["channel"])
    fig, ax = plt.subplots(figsize=(9, 3.4))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        h = errors[name]["H_meV"]
        values = [h["on_site"]["mae"], h["off_site"]["mae"]] + [h["channel"][c]["mae"] for c in labels[2:]]
        ax.bar(np.arange(len(labels)) + k * width, values, width, label=name)
    ax.set_xticks(np.arange(len(labels)) + width * (len(names) - 1) / 2, labels)
    ax.set(ylabel="MAE of H (meV)", yscale="log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_error_vs_size(rows: list[dict], columns: tuple[str, ...] = ("H_mae_meV", "S_mae"),
                       train_size: int | None = None, x: str = "n_atoms", xlabel: str = "atoms per test cell") -> Figure:
    """Test error against atoms per test cell (or another key ``x``), one line per model.

    ``rows`` are :func:`.transferability.error_table` rows.  Rows of the
    same model and ``x`` (several cells or seeds) are averaged, with their
    spread (min to max) as error bars.
    """
    fig, axes = plt.subplots(1, len(columns), figsize=(4.6 * len(columns), 3.6), squeeze=False)
    for ax, column in zip(axes[0], columns):
        for k, model in enumerate(sorted({row["model"] for row in rows})):
            sizes = sorted({row[x] for row in rows if row["model"] == model})
            values = [[row[column] for row in rows if row["model"] == model and row[x] == n] for n in sizes]
            mean = np.array([np.mean(v) for v in values])
            spread = np.array([[m - np.min(v), np.max(v) - m] for m, v in zip(mean, values)]).T
            ax.errorbar(sizes, mean, yerr=spread, marker="o", capsize=3, color=f"C{k}", label=model)
        if train_size:
            ax.axvline(train_size, color="0.6", ls=":", label="training cells")
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=column.replace("_", " "))
        ax.set_xticks(sorted({row[x] for row in rows}))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _symmetric_limit(values: np.ndarray, percentile: float = 99.5) -> float:
    """A colour limit that keeps ``percentile`` % of |values| inside (the rest saturates)."""
    limit = float(np.percentile(np.abs(values), percentile))
    return limit if limit > 0 else 1.0


def plot_matrix_comparison(reference: np.ndarray, predicted: np.ndarray, quantity: str, unit: str,
                           atom_edges: np.ndarray | None = None) -> Figure:
    """DFT, ML (one shared colour scale) and ML - DFT (its own scale) of a matrix ``[n_orb, n_orb]``.

    ``atom_edges`` ``[n_atoms + 1]``: orbital index where every atom starts, drawn as thin lines.
    """
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), constrained_layout=True)
    limit = _symmetric_limit(reference)
    difference = predicted - reference
    panels = ((reference, "DFT", limit), (predicted, "ML", limit), (difference, "ML − DFT", _symmetric_limit(difference)))
    for ax, (matrix, title, scale) in zip(axes, panels):
        image = ax.imshow(matrix, cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest")
        for edge in ([] if atom_edges is None else atom_edges[1:-1]):
            ax.axhline(edge - 0.5, color="0.5", lw=0.3)
            ax.axvline(edge - 0.5, color="0.5", lw=0.3)
        ax.set(title=f"{quantity} {title}", xlabel="orbital j", ylabel="orbital i")
        if title != "ML":  # DFT and ML share the first colour bar
            fig.colorbar(image, ax=ax if title == "ML − DFT" else axes[:2], extend="both", shrink=0.85,
                         label=f"{quantity} ({unit})" if unit else quantity)
    return fig


def plot_band_comparison(panels: dict[str, tuple[KPath, np.ndarray, np.ndarray]], window: tuple[float, float]) -> Figure:
    """Bands of several structures, DFT (solid) and ML (dashed) on one plot each.

    ``panels`` maps a title to (path, reference bands ``[n_k, n_bands]``, predicted bands ``[n_k, n_bands]``), eV.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False, sharey=True)
    for ax, (title, (path, reference, predicted)) in zip(axes[0], panels.items()):
        ax.plot(path.distance, reference, color="k", lw=1.0)
        ax.plot(path.distance, predicted, color="C3", lw=1.0, ls="--")
        for x in path.label_positions:
            ax.axvline(x, color="0.7", lw=0.5)
        ax.axhline(0, color="0.7", lw=0.5, ls=":")
        ax.set_xticks(path.label_positions, path.labels)
        ax.set(xlim=(path.distance[0], path.distance[-1]), ylim=window, title=title)
    axes[0, 0].set_ylabel("E − E_F (eV)")
    axes[0, 0].plot([], [], color="k", label="DFT (GPAW)")
    axes[0, 0].plot([], [], color="C3", ls="--", label="ML")
    axes[0, 0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_dos_comparison(grid: np.ndarray, reference: np.ndarray, predicted: np.ndarray, title: str = "") -> Figure:
    """DOS (states/eV per k-point) from DFT and from ML on the energy ``grid`` (eV)."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    ax.fill_between(grid, reference, color="0.8", label="DFT (GPAW)")
    ax.plot(grid, reference, color="k", lw=0.8)
    ax.plot(grid, predicted, color="C3", lw=1.0, ls="--", label="ML")
    ax.axvline(0, color="0.6", lw=0.5, ls=":")
    ax.set(xlabel="E − E_F (eV)", ylabel="DOS (states/eV)", xlim=(grid[0], grid[-1]), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_eigenvalue_parity(pairs: dict[str, tuple[np.ndarray, np.ndarray]], window: float) -> Figure:
    """ML against DFT eigenvalues (eV) within ``window`` of E_F; ``pairs`` maps a label to (reference, predicted)."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    for k, (label, (reference, predicted)) in enumerate(pairs.items()):
        ax.scatter(reference, predicted, s=6, color=f"C{k}", label=label, alpha=0.7)
    ax.plot([-window, window], [-window, window], color="k", lw=0.6)
    ax.set(xlim=(-window, window), ylim=(-window, window), xlabel="DFT eigenvalue − E_F (eV)",
           ylabel="ML eigenvalue − E_F (eV)", aspect="equal")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_prediction_cost(costs: list[dict], gpaw: list[dict]) -> Figure:
    """Time per atom (ms) and peak memory (GB) of chunked predictions against atoms; GPAW's time per atom too.

    ``costs`` rows hold ``n_atoms``, ``ms_per_atom``, ``peak_rss_GB``; ``gpaw``
    rows ``n_atoms`` and ``seconds`` (SCF + Fourier step of the reference data).
    """
    fig, (ax_time, ax_memory) = plt.subplots(1, 2, figsize=(9, 3.4))
    n = [c["n_atoms"] for c in costs]
    ax_time.loglog(n, [c["ms_per_atom"] for c in costs], "o-", label="ML prediction (chunked)")
    if gpaw:
        ax_time.loglog([g["n_atoms"] for g in gpaw], [1e3 * g["seconds"] / g["n_atoms"] for g in gpaw], "s",
                       color="C3", label="GPAW reference (SCF + Fourier)")
    ax_time.set(xlabel="atoms", ylabel="ms per atom", title="time")
    ax_time.legend(fontsize=8)
    ax_memory.loglog(n, [c["peak_rss_GB"] for c in costs], "o-", label="peak resident memory")
    ax_memory.loglog(n, [c["values_GB"] for c in costs], "--", color="gray", label="H and S values (float64)")
    ax_memory.set(xlabel="atoms", ylabel="GB", title="memory")
    ax_memory.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_kpm_check(energies: np.ndarray, panels: dict[str, tuple[np.ndarray, np.ndarray | None]],
                   resolution: float) -> Figure:
    """KPM DOS against the exact limit with the same kernel (when not None), one panel per label; states/eV/atom."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False, sharey=True)
    for ax, (label, (kpm, exact)) in zip(axes[0], panels.items()):
        if exact is not None:
            ax.plot(energies, exact, color="k", lw=1.5, label="exact diagonalization")
        ax.plot(energies, kpm, color="C1", lw=1.0, label="KPM (stochastic)")
        ax.axvline(0.0, color="gray", lw=0.5)
        ax.set(xlabel="E - E_F (eV)", title=label)
    axes[0, 0].set_ylabel("DOS (states / eV / atom)")
    axes[0, 0].legend(fontsize=8, title=f"kernel width {resolution:.2f} eV", title_fontsize=8)
    fig.tight_layout()
    return fig
