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
# # 02 · Models: an equivariant MACE + e3nn model and a non-equivariant baseline
#
# **Question.** How do the two models turn an amorphous BN structure into H
# and S blocks, how big are they, and do their predictions rotate the way the
# orbitals do?
#
# Both models start from the same kind of atomic descriptors: a MACE network
# built from scratch (no pretrained weights), whose per-atom features keep
# their vectors and tensors (irreps 0e, 1o, 2e per layer).
#
# - The **equivariant** model (the HForge approach) predicts every block as
#   irreps.  A block between a B and an N atom (13 x 13 orbitals: 2s, 2p, 1d
#   each) is a sum of 25 shell-pair sub-blocks, each the tensor product
#   l1 x l2 = |l1 - l2| + ... + (l1 + l2); the model outputs those irreps and
#   assembles the block with Clebsch-Gordan coefficients, so rotating the
#   structure rotates the block as D_i H_ij D_j^T, by construction.
#   An atom's on-site block adds up contributions from all its neighbours
#   (crystal-field terms, up to L = 4 as a d-d block needs).
# - The **baseline** feeds the same descriptors, the Cartesian pair vector and
#   a radial basis to MLP heads that emit the 169 numbers of a block directly,
#   as published MLP-head models do (its pair trunk also feeds the on-site
#   neighbour sum).  It has the same parameter budget; it
#   can learn rotations only from data (random-rotation augmentation).
#
# Both make H Hermitian, H_ij(R) = H_ji(-R)^T, and the on-site blocks
# symmetric, exactly, and both predict H (eV) and S.  Both start every
# off-site block from the same two-center (Slater-Koster) prior, f(|r|) Y_L(r̂)
# per irrep, fitted by least squares to the training blocks; the networks
# learn what it leaves.  Both add to off-site H blocks a three-center term,
# a learned sum over the atoms k near both atoms of the pair (the potential
# of k between the two orbitals, <phi_i|V_k|phi_j>): from Y(r_ik) (x) Y(r_jk)
# in the equivariant model, from the Cartesian r_ik and r_jk in the baseline.
# It starts at zero, so here, untrained, it adds nothing.  The models are
# not trained here (that is notebook 03); their normalization and prior are
# fitted to the structure shown, so their outputs have the size of real
# blocks.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

from hforge_nb import dataset, io
from hforge_nb._atomic import write_json
from hforge_nb.block_irreps import block_change_of_basis, block_irreps
from hforge_nb.model_graph import StructureBlocks
from hforge_nb.models import (BaselineConfig, EquivariantConfig, baseline_config_for_budget, build_fitted_model,
                              parameter_breakdown, rotated_predictions, rotation_error)
from hforge_nb.paths import output_folder, project_path
from hforge_nb.plotting import plot_block_irreps, plot_rotation_check
from hforge_nb.rotations import random_rotation

# %% tags=["parameters"]
data_dir = "data/aBN-dzp"  # reference data set (notebook 01); relative to the project root
sample = "aBN-0008-train-00"  # the structure the models are shown on
r_max = 5.0  # Å, MACE message-passing cutoff
channels = 8  # MACE channels per irrep
max_l = 2  # largest l of the node features
num_interactions = 2  # MACE layers
correlation = 2  # MACE body order
edge_cutoff = 9.0  # Å, off-site blocks beyond this are zero
readout_channels = 8  # channels of the equivariant readouts
edge_sh_lmax = 4  # spherical harmonics of pair directions
num_radial = 8  # Bessel functions of the pair distance
radial_hidden = 32  # width of the radial MLP
baseline_depth = 2  # hidden layers of the baseline's MLP heads
coulomb_cutoff = 10.0  # Å; H gets the potential of learned partial charges summed this far (None: off)
n_rotations = 4  # random rotations checked (every second one with inversion)
seed = 0
threads = 1  # torch threads (2 cores: 1 avoids oversubscription)
output_dir = ""  # empty: runs/interactive/02_models

# %%
torch.set_num_threads(threads)
descriptor = dict(r_max=r_max, channels=channels, max_l=max_l, num_interactions=num_interactions,
                  correlation=correlation, edge_cutoff=edge_cutoff, num_radial=num_radial, coulomb_cutoff=coulomb_cutoff)
equivariant_config = EquivariantConfig(**descriptor, readout_channels=readout_channels, edge_sh_lmax=edge_sh_lmax,
                                       radial_hidden=radial_hidden)
record = dataset.read_samples(project_path(data_dir))[sample]
out = output_folder(output_dir, "02_models")
print(f"{sample}: {record.n_atoms} atoms, {record.n_orbitals} orbitals, {record.n_blocks} blocks")

# %% [markdown]
# ## The blocks a model predicts
# On-site blocks (i, i, 0) and every pair (i, j, R) closer than `edge_cutoff`.
# The reference H of the pairs beyond it is what the models cannot predict.

# %%
within = StructureBlocks.of_record(record, edge_cutoff)
h_max, _ = record.block_max_abs()
beyond = np.linalg.norm(record.pair_vectors, axis=1) >= edge_cutoff
blocks = {"n_blocks_reference": record.n_blocks, "n_blocks_predicted": len(within.pairs),
          "largest_H_beyond_cutoff_eV": float(h_max[beyond].max(initial=0.0))}
blocks

# %% [markdown]
# ## An orbital block as irreps
# The nearest B–N pair of the reference H.  Its 169 values are exactly the
# 45 irreps listed by `block_irreps` (an orthogonal change of basis U); the
# bars show how much of the block each (shell pair, L) carries.  These irreps
# are what the equivariant model outputs.

# %%
boron, nitrogen = record.basis["B"], record.basis["N"]
change = block_change_of_basis(boron, nitrogen)  # [169, 169] orthogonal
is_bn = np.array([record.species[i] == "B" and record.species[j] == "N" for i, j in record.pairs])
nearest = int(np.flatnonzero(is_bn)[np.argmin(np.linalg.norm(record.pair_vectors[is_bn], axis=1))])
block = record.block(nearest)[0][:, :, 0]  # [13, 13] eV
irreps = block.ravel() @ change.T
print(block_irreps(boron, nitrogen))
print(f"block -> irreps -> block: largest change {np.abs(irreps @ change - block.ravel()).max():.1e} eV")
distance = np.linalg.norm(record.pair_vectors[nearest])
fig = plot_block_irreps(block, irreps, boron, nitrogen, f"DFT H of a B–N pair at {distance:.2f} Å (eV)")
fig.savefig(out / "block_irreps.png", dpi=150)
plt.show()

# %% [markdown]
# ## Two models with one budget
# The baseline's head width is chosen so that its parameter count matches
# the equivariant model's.

# %%
models = {"equivariant": build_fitted_model("equivariant", equivariant_config, [record], seed=seed)}
baseline_config = baseline_config_for_budget(BaselineConfig(**descriptor, depth=baseline_depth), record.basis,
                                             models["equivariant"].parameter_count())
models["baseline"] = build_fitted_model("baseline", baseline_config, [record], seed=seed)
parameters = {kind: parameter_breakdown(model) for kind, model in models.items()}
for kind, parts in parameters.items():
    print(f"{kind:>12}: " + ", ".join(f"{name} {count:,}" for name, count in parts.items()))
print(f"baseline head width: {baseline_config.hidden}")

# %% [markdown]
# ## Equivariance, numerically
# For each random rotation Q (every second one with inversion), the model
# predicts the rotated structure, and its prediction for the original
# structure is rotated as D_i(Q) H_ij D_j(Q)^T.  The largest difference is
# round-off for the equivariant model, in float32 (used for training) and in
# float64; the baseline is off by the size of the blocks.

# %%
rotations = [random_rotation(np.random.default_rng(seed + k), improper=k % 2 == 1) for k in range(n_rotations)]
configs = {"equivariant": equivariant_config, "baseline": baseline_config}
errors = []
for dtype in (torch.float32, torch.float64):
    for kind, config in configs.items():
        model = models[kind] if dtype == torch.float32 else build_fitted_model(kind, config, [record], dtype, seed)
        for k, rotation in enumerate(rotations):
            errors.append({"model": kind, "dtype": str(dtype)[6:], "rotation": k, "inversion": k % 2 == 1,
                           **rotation_error(model, record, rotation)})
for row in errors:
    print(f"{row['model']:>12} {row['dtype']}  Q{row['rotation']}{' +inversion' if row['inversion'] else '':11}"
          f"  max |dH| {row['h_max_eV']:.1e} eV ({row['h_relative']:.1e} rel.)  max |dS| {row['s_max']:.1e}")

# %% [markdown]
# ## Equivariance, visually
# The nearest B–N block again, now predicted (rotation Q1, with inversion):
# for the rotated structure, H(Q r) (left), as the rotated prediction
# D(Q) H(r) D(Q)ᵀ (middle), and their difference (right).

# %%
panels = []
for kind, model in models.items():
    of_rotated, rotated = rotated_predictions(model, record, rotations[1])
    b_rot = of_rotated.find_blocks(record.pairs[nearest], record.shifts[nearest])[0]
    b_ref = rotated.find_blocks(record.pairs[nearest], record.shifts[nearest])[0]
    panels.append((kind, of_rotated.block(b_rot)[0][:, :, 0], rotated.block(b_ref)[0][:, :, 0]))
fig = plot_rotation_check(panels, boron, nitrogen)
fig.savefig(out / "rotation_check.png", dpi=150)
plt.show()

# %% [markdown]
# ## Results
# Both untrained models (weights from `seed`, normalization fitted to the
# structure) are written for notebook 03; `metrics.json` holds the numbers
# above and the time of one prediction of this structure.

# %%
seconds = {}
for kind, model in models.items():
    started = time.perf_counter()
    model.predict(record)
    seconds[kind] = time.perf_counter() - started
    io.write_model(model, out / f"{kind}.pt", metadata={"notebook": "02_models", "seed": seed, "trained": False})
worst = {f"{kind}_{dtype}": max(e["h_relative"] for e in errors if e["model"] == kind and e["dtype"] == dtype)
         for kind in configs for dtype in ("float32", "float64")}
metrics = {"sample": sample, "blocks": blocks, "parameters": parameters, "baseline_hidden": baseline_config.hidden,
           "largest_relative_rotation_error_H": worst, "rotation_errors": errors, "predict_seconds": seconds}
write_json(out / "metrics.json", metrics)
worst

# %% [markdown]
# ## References
# - I. Batatia et al., *MACE: Higher order equivariant message passing neural
#   networks for fast and accurate force fields*, NeurIPS 2022.
# - M. Geiger and T. Smidt, *e3nn: Euclidean neural networks*, arXiv:2207.09453 (2022).
# - X. Gong et al., *General framework for E(3)-equivariant neural network
#   representation of density functional theory Hamiltonian*, Nat. Commun. 14, 2848 (2023).
# - K. T. Schütt et al., *Unifying machine learning and quantum chemistry with
#   a deep neural network for molecular wavefunctions* (SchNOrb), Nat. Commun. 10, 5024 (2019).
# - P. Febrer et al., *graph2mat: equivariant matrices from atomic graphs* (2024).
