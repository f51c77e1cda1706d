# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · DFT against ML: matrices, bands, DOS and eigenvalues
# **Question.** Side by side with the GPAW reference, what do the H and S
# that notebook 03's models predict look like, and what do they give for
# the bands of crystals they never saw and the DOS of a held-out aBN cell?
# This notebook trains nothing: it reads notebook 03's models
# (`training_dir`, by default the `03_training` folder of the same run) and
# its test split, and the reference data set.  GPAW's `dzp` orbitals are
# nearly linearly dependent in dense BN, and along those directions any
# error of H moves eigenvalues by eV, so spectra leave them out
# (`spectra`, `hforge_nb.comparison`): `"filtered"` solves each record,
# DFT and ML alike, in its own S(k) without the eigenvectors of S below
# `filter_threshold`, each spectrum from its own Fermi level at the
# reference's filling (notebook 03's headline eigenvalue errors, and what
# a user of predicted H and S gets); `"projected"` puts both H's in the
# frame of the reference S(k), eigenvalues from `overlap_threshold`, where
# the prediction borrows the reference's well-conditioned directions.
# `spectra_shift_meV` in `metrics.json` is what the chosen way does to the
# DFT eigenvalues themselves.  Publication files (PDF and PNG) go to
# `figures_dir`; the main job's profile points it at `papers/figures/`.

# %%
import json

import matplotlib.pyplot as plt
from IPython.display import display
import numpy as np

from hforge_nb import dataset, interactive, io
from hforge_nb._atomic import write_json
from hforge_nb.bands import kpath
from hforge_nb.comparison import SpectraConfig, cell_matrices, dos_pair, save_figure
from hforge_nb.energy_zero import ModelZero
from hforge_nb.evaluation import block_errors, monkhorst_pack
from hforge_nb.paths import earlier_stage, output_folder, project_path
from hforge_nb.plotting import (plot_band_comparison, plot_channel_errors, plot_dos_comparison,
                                plot_eigenvalue_parity, plot_matrix_comparison)

# %% tags=["parameters"]
data_dir = "data/aBN-dzp"  # reference data set (notebook 01); relative to the project root
training_dir = ""  # notebook 03's output folder; empty: 03_training beside this notebook's output folder
model_kind = "equivariant"  # the model of the matrix, band and DOS figures
crystals = ["hBN", "cBN"]  # reference samples for band structures
n_band_kpoints = 30  # points along each band path
dos_sample = "aBN-0064-holdout-00"  # held-out cell for the DOS; empty: skip
dos_kpoints = 1  # Monkhorst-Pack points per direction for the DOS
spectra = "filtered"  # "filtered": each record in its own S(k), from its own E_F; "projected": in the reference's S(k)
filter_threshold = 1e-2  # smallest S(k) eigenvalue kept by "filtered" (as notebook 03's filter_threshold)
overlap_threshold = 1e-3  # smallest reference S(k) eigenvalue kept by "projected"
energy_window = 3.0  # eV around E_F for bands, DOS and parity
figures_dir = ""  # empty: this notebook's output folder; the main job uses papers/figures
output_dir = ""  # empty: runs/interactive/05_dft_vs_ml

# %%
out = output_folder(output_dir, "05_dft_vs_ml")
training = earlier_stage(training_dir, out, "03_training", "metrics.json")
zero = ModelZero.of_training(training)  # the zero the models predict H in (notebook 03's energy_zero)
figures = project_path(figures_dir) if figures_dir else out
split = json.loads((training / "metrics.json").read_text())["split"]
models = {kind: zero.for_references(io.read_model(training / kind / "model.pt"))  # predictions in each record's E_F zero
          for kind in ("equivariant", "baseline") if (training / kind / "model.pt").exists()}
model = models[model_kind]
samples = dataset.read_samples(project_path(data_dir))
spectra_config = SpectraConfig(spectra, filter_threshold, overlap_threshold)
saved = {}  # figure stem -> caption, for metrics.json and the papers/ index
{"training": str(training), "models": list(models), "test": split["test"]}

# %% [markdown]
# ## H and S of a held-out cell, DFT and ML
# The home-cell matrices (every block i -> j with j in the same cell) of the
# first test cell of notebook 03.  DFT and ML share one colour scale, which
# saturates at the 99.5th percentile of |DFT| (the orbital energies of the
# polarization orbitals lie far beyond it); the difference has its own.

# %%
heatmap_name = split["test"][0]
reference = samples[heatmap_name]
prediction = model.predict(reference)
(h_ref, s_ref), (h_ml, s_ml) = cell_matrices(reference), cell_matrices(prediction)
for quantity, unit, ref_matrix, ml_matrix in (("H", "eV", h_ref, h_ml), ("S", "", s_ref, s_ml)):
    fig = plot_matrix_comparison(ref_matrix, ml_matrix, quantity, unit, reference.orbital_offsets)
    stem = f"matrix_{quantity}_{heatmap_name}"
    save_figure(fig, figures, stem)
    saved[stem] = f"{quantity} of {heatmap_name} (home cell): DFT, {model_kind} ML and their difference"
    plt.show()
interactive.matrix_comparison(h_ref, h_ml, "H", "eV")

# %% [markdown]
# ## Band structures of crystals the models never saw
# The models trained on amorphous cells only.  With `"filtered"` spectra,
# `n_kept_reference` and `n_kept_predicted` in `metrics.json` give the
# mean number of S(k) directions each record keeps per k-point: where the
# predicted S keeps directions the reference's drops, the ML bands hold
# states that DFT has not, and bands are matched from the bottom.

# %%
band_panels, band_errors, parity = {}, {}, {}
for name in crystals:
    path = kpath(samples[name], n_kpoints=n_band_kpoints)
    pair = spectra_config.pair(model.predict(samples[name]), samples[name], path.kpoints)
    band_panels[name] = (path, pair.reference, pair.predicted)
    band_errors[name] = pair.errors(energy_window)
    parity[name] = pair.within(energy_window)
fig = plot_band_comparison(band_panels, (-energy_window, energy_window))
save_figure(fig, figures, "bands_crystals")
saved["bands_crystals"] = f"bands of {', '.join(crystals)}: DFT and {model_kind} ML ({spectra_config.describe()})"
plt.show()
interactive.band_comparison(*band_panels[crystals[0]], crystals[0], (-energy_window, energy_window))

# %% [markdown]
# ## DOS of a held-out aBN cell

# %%
dos = {}
if dos_sample:
    cell = samples[dos_sample]
    pair = spectra_config.pair(model.predict(cell), cell, monkhorst_pack(cell, dos_kpoints))
    grid, dos_ref, dos_ml = dos_pair(pair, energy_window)
    dos = {"sample": dos_sample, **pair.errors(energy_window),
           "dos_difference": float(np.trapezoid(np.abs(dos_ml - dos_ref), grid) / np.trapezoid(dos_ref, grid))}
    parity[dos_sample] = pair.within(energy_window)
    fig = plot_dos_comparison(grid, dos_ref, dos_ml, f"{dos_sample} ({cell.n_atoms} atoms)")
    save_figure(fig, figures, "dos_holdout")
    saved["dos_holdout"] = f"DOS of {dos_sample}: DFT and {model_kind} ML ({spectra_config.describe()})"
    plt.show()
    display(interactive.dos_comparison(grid, dos_ref, dos_ml, dos_sample))

# %% [markdown]
# ## Eigenvalue parity and errors per orbital channel
# The parity plot gathers every eigenvalue within `energy_window` of E_F
# from the band paths and the DOS cell.  The channel errors compare both
# models on the heatmap cell, block by block.

# %%
fig = plot_eigenvalue_parity(parity, energy_window)
save_figure(fig, figures, "eigenvalue_parity")
saved["eigenvalue_parity"] = (f"{model_kind} ML against DFT eigenvalues within {energy_window:g} eV of E_F "
                              f"({spectra_config.describe()})")
plt.show()
channel_errors = {kind: block_errors(m.predict(reference), reference) for kind, m in models.items()}
fig = plot_channel_errors(channel_errors)
save_figure(fig, figures, "channel_errors")
saved["channel_errors"] = f"MAE of H per orbital channel on {heatmap_name}, both models"
plt.show()

# %% [markdown]
# ## Results
# `metrics.json`: where the models came from, every figure with its
# caption, and the numbers the figures show.

# %%
metrics = {
    "training_dir": str(training), "model_kind": model_kind, "energy_zero": zero.energy_zero,
    "spectra": spectra, "spectra_threshold": spectra_config.threshold, "energy_window_eV": energy_window,
    "figures_dir": str(figures),
    "figures": [{"stem": stem, "files": [f"{stem}.pdf", f"{stem}.png"], "caption": caption}
                for stem, caption in saved.items()],
    "heatmap": {"sample": heatmap_name, "H_home_cell_mae_meV": float(np.abs(h_ml - h_ref).mean() * 1000),
                "S_home_cell_mae": float(np.abs(s_ml - s_ref).mean()),
                "spectra_shift_meV": spectra_config.reference_shift_meV(reference, monkhorst_pack(reference, 1),
                                                                        energy_window)},
    "bands": band_errors, "dos": dos,
    "channel_H_mae_meV": {kind: {c: e["mae"] for c, e in errors["H_meV"]["channel"].items()}
                          for kind, errors in channel_errors.items()},
}
write_json(out / "metrics.json", metrics)
{key: metrics[key] for key in ("heatmap", "bands", "dos")}

# %% [markdown]
# ## References
# - H. Li et al., Nat. Comput. Sci. 2, 367 (2022) (DeepH): DFT-vs-ML
#   Hamiltonian and band figures of this kind.
# - P.-O. Löwdin, Adv. Quantum Chem. 5, 185 (1970): canonical
#   orthogonalization of a nearly linearly dependent basis.
# - J. J. Mortensen et al., J. Chem. Phys. 160, 092503 (2024) (GPAW).
