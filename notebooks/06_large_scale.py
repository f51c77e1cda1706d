# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Beyond DFT: H and S of large aBN samples, export, and a linear-scaling DOS
# **Question.** How do time and memory of a prediction grow with the
# number of atoms, how does it compare with GPAW, and can the predicted
# matrices feed a linear-scaling method (the kernel polynomial method, KPM)
# and transport codes?
#
# A large aBN cell comes from the same melt-and-quench generator as the
# reference data (a faster quench for large cells); notebook 03's model
# predicts its H and S chunk by chunk (`hforge_nb.inference`: the same
# blocks as a whole-structure prediction, with memory set by the chunk),
# the matrices are exported for sisl and TBtrans, and the cost is measured
# on repeats of the cell.  The KPM (`hforge_nb.kpm`) solves the generalized
# problem H c = E S c and is checked on DFT reference cells against exact
# diagonalization; it needs S positive definite, which a predicted S is
# not, so a filtered KPM (`hforge_nb.filtered_kpm`), which drops the nearly
# linearly dependent directions of S as diagonalizing codes do, runs on the
# predicted matrices.  `benchmarks/large_scale.py` takes the cost curve to
# 10^5 atoms, one process per size.
#
# The zero of the predicted H is notebook 03's `energy_zero`
# (`hforge_nb.energy_zero.ModelZero`): with `"fermi"`, H from the training
# cells' E_F, as the records hold it; with `"code"` the model predicts H in
# GPAW's own zero, and the large cell's prediction is moved by the training
# cells' mean E_F (`energy_shift_eV`), the predictions for DFT cells by
# those cells' own E_F.

# %%
import dataclasses
import json

import matplotlib.pyplot as plt
import numpy as np
import torch

from hforge_nb import dataset, io
from hforge_nb._atomic import write_json
from hforge_nb.comparison import save_figure
from hforge_nb.energy_zero import ModelZero
from hforge_nb.evaluation import aligned_values, dos_difference
from hforge_nb.filtered_kpm import OverlapFilter
from hforge_nb.inference import ChunkConfig
from hforge_nb.kpm import KPMConfig, OverlapNotPositiveDefiniteError, kpm_dos
from hforge_nb.large_scale import (filtered_kpm_check, gpaw_timings, kpm_check, large_cell_filtered_kpm,
                                   measure_prediction, overlap_eigenvalues_by_shell, smallest_overlap_eigenvalue,
                                   truncated_overlap_eigenvalues, tshs_round_trip_error, write_exports)
from hforge_nb.melt_quench import MeltQuenchSchedule, melt_quench
from hforge_nb.paths import earlier_stage, output_folder, project_path
from hforge_nb.plotting import plot_kpm_check, plot_prediction_cost
from hforge_nb.structure_stats import structure_stats

# %% tags=["parameters"]
data_dir = "data/aBN-dzp"  # reference data set (notebook 01); relative to the project root
training_dir = ""  # notebook 03's output folder; empty: 03_training beside this notebook's output folder
model_kind = "equivariant"  # which of notebook 03's models predicts
n_atoms = 128  # atoms of the large aBN cell (a multiple of 8)
density = 2.1  # g/cm^3
melt_time = 2.0  # ps in the melt
quench_rate = 1000.0  # K/ps (the reference data used 100 K/ps)
anneal_time = 1.0  # ps at 300 K
seed = 11  # of the melt-and-quench
cost_repeats = [[1, 1, 1], [2, 1, 1]]  # repeats of the cell whose prediction cost is measured
chunk_atoms = 1000  # atoms per chunk of blocks
feature_chunk_atoms = 1000  # atoms per domain of node features (computed layer by layer, no halo)
block_cutoff = 0.0  # keep blocks closer than this (Å); 0: all the model predicts
threads = 1  # torch threads (2 on an idle 2-core machine is faster)
export = True  # write .TSHS, .nc and .npz of the large cell's prediction
kpm_sample = "aBN-0032-holdout-00"  # DFT reference cell of the KPM check
kpm_repeats = [1, 1, 1]  # supercell of kpm_sample the KPM runs on
kpm_n_moments = 64  # Chebyshev moments
kpm_n_random = [2, 8]  # random vectors, one KPM run each (the error should fall as 1/sqrt)
kpm_solver_tolerance = 1e-3  # relative residual of the S solves
kpm_filter_threshold = 1e-2  # S eigenvalue where the filtered KPM cuts (half way)
kpm_filter_degree = 100  # Chebyshev degree of the filtered KPM's functions of S
kpm_lanczos_steps = 20  # Lanczos steps that bracket each KPM's spectrum
kpm_large_cell = True  # also the filtered KPM of the large predicted cell (streamed from the model if not exported)
kpm_exact_max_orbitals = 4000  # the large cell's filtered KPM is checked by exact diagonalization up to this size
energy_window = 10.0  # eV around E_F of the DOS plots
overlap_cutoffs = [5.0, 6.0, 7.0]  # Å: the DFT S of kpm_sample cut there, checked for positive definiteness
figures_dir = ""  # empty: this notebook's output folder; the main job uses papers/figures
output_dir = ""  # empty: runs/interactive/06_large_scale

# %%
torch.set_num_threads(threads)
out = output_folder(output_dir, "06_large_scale")
training = earlier_stage(training_dir, out, "03_training", "metrics.json")
zero = ModelZero.of_training(training)  # the zero the model predicts H in (notebook 03's energy_zero)
model = io.read_model(training / model_kind / "model.pt").eval()
samples = dataset.read_samples(project_path(data_dir))
gpaw = gpaw_timings(dataset.read_manifest(project_path(data_dir)))
chunks = ChunkConfig(chunk_atoms, feature_chunk_atoms, block_cutoff or None)
figures = project_path(figures_dir) if figures_dir else out
saved = {}  # figure stem -> caption, for metrics.json and the papers/ index
{"training": str(training), "model": model.kind, "parameters": model.parameter_count(), "chunks": chunks}

# %% [markdown]
# ## A large aBN cell
# Melt and quench with the ExTeP potential, as for the reference data but
# quenched faster, so that the MD stays short for thousands of atoms.

# %%
schedule = MeltQuenchSchedule(n_atoms=n_atoms, density=density, melt_time=melt_time, quench_rate=quench_rate,
                              anneal_time=anneal_time, seed=seed)
quenched = melt_quench(schedule, threads=1)
stats = structure_stats(quenched.atoms)
{"md_seconds": round(quenched.wall_seconds, 1), "md_steps": quenched.n_steps, **stats.__dict__}

# %% [markdown]
# ## Chunked prediction equals the whole-structure prediction
# On the 64-atom held-out reference cell, small chunks against one graph
# of the whole cell (the same model, the same blocks).

# %%
check_cell = samples["aBN-0064-holdout-00"]
whole = model.predict(check_cell.atoms)
chunked, _ = measure_prediction(model, check_cell.atoms, ChunkConfig(chunk_atoms=16, feature_chunk_atoms=16))
h_chunked, s_chunked = aligned_values(chunked, whole)
chunk_check = {"n_blocks": whole.n_blocks, "same_blocks": chunked.n_blocks == whole.n_blocks,
               "h_max_difference_eV": float(np.abs(h_chunked - whole.h_values[:, 0]).max()),
               "s_max_difference": float(np.abs(s_chunked - whole.s_values).max())}
chunk_check

# %% [markdown]
# ## Prediction of the large cell, and export
# With `export`, the blocks are kept in memory (0.8 MB per atom as
# float64) and written; without, they are only counted.
# `.TSHS` is what TBtrans reads (with sisl, `sisl.get_sile(path).read_hamiltonian()`);
# `.nc` is sisl's netCDF; `.npz` is hforge-nb's own record, read with
# `hforge_nb.io.read_record`.  The `.TSHS` is read back to check it.

# %%
large, large_cost = measure_prediction(model, quenched.atoms, chunks, keep=export)
large = zero.estimated_fermi_zero(large) if export else None  # E_F near zero, as in the records
exported = write_exports(large, out, f"aBN-{n_atoms:05d}-{model_kind}") if export else {}
export_error = tshs_round_trip_error(large, exported["TSHS"]) if export else None
{"cost": large_cost.as_dict(), "files": {k: p.name for k, p in exported.items()},
 "tshs_round_trip_error_eV": export_error}

# %% [markdown]
# ## Time and memory against the number of atoms
# The cell repeated `cost_repeats` times; each size is predicted and
# assembled into one record.  GPAW's points are the reference data set's
# SCF and Fourier times (one core each).

# %%
costs = []
for repeats in cost_repeats:
    _, cost = measure_prediction(model, quenched.atoms.repeat(tuple(repeats)), chunks, keep=False)
    costs.append(cost.as_dict())
largest_gpaw = max(gpaw, key=lambda g: g["n_atoms"])
largest_cell = samples[largest_gpaw["sample"]]
_, largest_ml = measure_prediction(model, largest_cell.atoms, chunks, keep=False)
speed_ratio = largest_gpaw["seconds"] / largest_ml.seconds
fig = plot_prediction_cost(costs, gpaw)
save_figure(fig, figures, "prediction_cost")
saved["prediction_cost"] = f"time per atom and peak memory of chunked {model_kind} predictions against atoms, and GPAW"
plt.show()
{"costs": costs, "gpaw_over_ml_largest_cell": speed_ratio, "largest_cell_atoms": largest_gpaw["n_atoms"]}

# %% [markdown]
# ## The KPM against exact diagonalization
# On the DFT reference cell `kpm_sample` (repeated `kpm_repeats` times), the
# stochastic KPM against the same kernel on the exactly diagonalized
# energies (the cell's, on the k-grid that folds onto the supercell's
# k = 0).  The bounds span GPAW's whole `dzp` spectrum, up to about
# 120 eV, so `kpm_resolution_eV` is coarse for few moments.

# %%
energies = np.linspace(-energy_window, energy_window, 401)
checks = {n: kpm_check(samples[kpm_sample], kpm_repeats, energies,
                       KPMConfig(n_moments=kpm_n_moments, n_random=n, solver_tolerance=kpm_solver_tolerance,
                                 lanczos_steps=kpm_lanczos_steps))
          for n in kpm_n_random}
panels = {f"{kpm_sample} x{kpm_repeats}, {n} vectors": (c.result.dos, c.exact) for n, c in checks.items()}
fig = plot_kpm_check(energies, panels, checks[kpm_n_random[-1]].result.resolution_eV)
save_figure(fig, figures, "kpm_check")
saved["kpm_check"] = f"KPM DOS of the DFT cell {kpm_sample} against exact diagonalization, {kpm_n_moments} moments"
plt.show()
kpm_summary = {n: c.summary() for n, c in checks.items()}
{n: {k: s[k] for k in ("kpm_max_error_relative", "kpm_l1_error_relative", "kpm_seconds", "kpm_solver_iterations")}
 for n, s in kpm_summary.items()}

# %% [markdown]
# ## The KPM on the predicted matrices
# The KPM needs S positive definite.  GPAW's `dzp` S of dense BN is nearly
# singular (its smallest eigenvalue is below 1e-4), so the errors of a
# predicted S easily make it indefinite; the smallest eigenvalue at k = 0
# of the reference and the predicted S of `kpm_sample` show how far the
# model is from that; cutting the DFT S at `overlap_cutoffs` shows whether
# sparser blocks (`block_cutoff`) would keep it positive definite.  Putting
# the predicted S into the reference one distance shell at a time names the
# shells whose errors alone make S indefinite.

# %%
kpm_prediction = zero.for_references(model).predict(samples[kpm_sample])  # in the DFT record's E_F zero
overlap_check = {"reference_min_S_eigenvalue": smallest_overlap_eigenvalue(samples[kpm_sample]),
                 "predicted_min_S_eigenvalue": smallest_overlap_eigenvalue(kpm_prediction),
                 "predicted_min_S_eigenvalue_by_shell": overlap_eigenvalues_by_shell(kpm_prediction,
                                                                                     samples[kpm_sample]),
                 "reference_min_S_eigenvalue_truncated": truncated_overlap_eigenvalues(samples[kpm_sample],
                                                                                      overlap_cutoffs)}
try:  # on the exported large cell: the plain KPM checks S on the way
    if export:
        predicted_dos = kpm_dos(large, energies, KPMConfig(n_moments=kpm_n_moments, n_random=1,
                                                           solver_tolerance=kpm_solver_tolerance))
        overlap_check.update(predicted_kpm="done", **predicted_dos.summary())
except OverlapNotPositiveDefiniteError as error:
    overlap_check.update(predicted_kpm="refused", reason=str(error))
overlap_check

# %% [markdown]
# ## The filtered KPM on the predicted matrices
# Diagonalizing codes drop the directions of a nearly singular S; the
# filtered KPM (`hforge_nb.filtered_kpm`) does the same with polynomials of
# S, linear in the number of orbitals: it expands
# B = f(S) H f(S) + E_park (1 - w(S)^2), where f(S) is S^-1/2 on the
# directions with S eigenvalues well above `kpm_filter_threshold` and 0 on
# those well below it (negative ones included), which go to E_park, below
# the bands.  Each DOS is checked against exact diagonalization of its own
# B; the predicted cell's DOS is compared with the DFT cell's, both in
# their exact limits.  With `kpm_large_cell` the large predicted cell gets
# its DOS the same way, with `min(kpm_n_random)` random vectors (it has
# more orbitals to average over), checked against exact diagonalization
# when it has at most `kpm_exact_max_orbitals` orbitals.  Its matrices are
# the exported record's, or, without `export`, streamed from the model
# straight into H and S at k = 0 (`inference.predict_gamma_matrices`).

# %%
overlap_filter = OverlapFilter(threshold=kpm_filter_threshold, degree=kpm_filter_degree)
filtered_config = KPMConfig(n_moments=kpm_n_moments, n_random=max(kpm_n_random), lanczos_steps=kpm_lanczos_steps)
filtered_checks = {f"{kpm_sample}, DFT": filtered_kpm_check(samples[kpm_sample], energies, filtered_config,
                                                            overlap_filter),
                   f"{kpm_sample}, ML": filtered_kpm_check(kpm_prediction, energies, filtered_config, overlap_filter)}
if kpm_large_cell:
    filtered_checks[f"{n_atoms} atoms, ML"] = large_cell_filtered_kpm(
        model, quenched.atoms, large, chunks, energies, dataclasses.replace(filtered_config, n_random=min(kpm_n_random)),
        overlap_filter, kpm_exact_max_orbitals, zero.shift)
fig = plot_kpm_check(energies, {f"filtered: {label}": (c.result.dos, c.exact) for label, c in filtered_checks.items()},
                     filtered_checks[f"{kpm_sample}, DFT"].result.resolution_eV)
save_figure(fig, figures, "kpm_filtered")
saved["kpm_filtered"] = (f"filtered KPM DOS (S eigenvalues cut at {kpm_filter_threshold:g}) of {kpm_sample} from DFT "
                         f"and from ML, and of the {n_atoms}-atom ML cell, against exact diagonalization where "
                         "it was done")
plt.show()
filtered_summary = {label: c.summary() for label, c in filtered_checks.items()}
filtered_summary["ml_against_dft_dos_difference"] = dos_difference(
    filtered_checks[f"{kpm_sample}, ML"].exact, filtered_checks[f"{kpm_sample}, DFT"].exact, energies)
{label: {k: s.get(k) for k in ("kpm_l1_error_relative", "kpm_bounds_eV", "kpm_resolution_eV", "kpm_seconds")}
 if isinstance(s, dict) else s for label, s in filtered_summary.items()}

# %% [markdown]
# ## Results
# `metrics.json` holds every number above.

# %%
metrics = {
    "training_dir": str(training), "model_kind": model_kind, "energy_zero": zero.energy_zero,
    "energy_shift_eV": zero.shift, "threads": threads, "figures_dir": str(figures),
    "figures": [{"stem": stem, "files": [f"{stem}.pdf", f"{stem}.png"], "caption": caption}
                for stem, caption in saved.items()],
    "chunks": {"chunk_atoms": chunk_atoms, "feature_chunk_atoms": feature_chunk_atoms, "block_cutoff": block_cutoff},
    "sample": {"n_atoms": n_atoms, "schedule": schedule.as_dict(), "md_seconds": quenched.wall_seconds,
               "structure": stats.__dict__},
    "chunk_check": chunk_check, "large_cell": large_cost.as_dict(),
    "exports": {k: p.name for k, p in exported.items()}, "tshs_round_trip_error_eV": export_error,
    "costs": costs, "gpaw": gpaw, "largest_cell_atoms": largest_gpaw["n_atoms"],
    "largest_cell_ml_seconds": largest_ml.seconds, "gpaw_over_ml_largest_cell": speed_ratio,
    "kpm_sample": kpm_sample, "kpm_checks": {str(n): s for n, s in kpm_summary.items()},
    "kpm_l1_best": kpm_summary[max(kpm_n_random)]["kpm_l1_error_relative"],
    "overlap": overlap_check,
    "filtered_kpm": {"threshold": kpm_filter_threshold, "degree": kpm_filter_degree, **filtered_summary},
}
write_json(out / "metrics.json", metrics)
{k: metrics[k] for k in ("large_cell", "gpaw_over_ml_largest_cell", "overlap", "filtered_kpm")}

# %% [markdown]
# ## References
# - A. Weisse, G. Wellein, A. Alvermann and H. Fehske, Rev. Mod. Phys. 78, 275
#   (2006): the kernel polynomial method.
# - Z. Fan et al., Phys. Rep. 903, 1 (2021): linear-scaling quantum transport
#   methods.
# - N. Papior et al., Comput. Phys. Commun. 212, 8 (2017): TBtrans and the
#   `.TSHS` format (via sisl).
# - J. H. Los et al., Phys. Rev. B 96, 184108 (2017): the ExTeP BN potential.
