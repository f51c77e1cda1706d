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
# # 03 · Training and evaluation: the equivariant model against the baseline
#
# **Question.** Trained on the same small aBN cells with the same parameter
# budget, how accurately do the equivariant model and the non-equivariant
# baseline predict H and S of held-out cells of the same size, block by
# block and in their eigenvalues?
#
# The training cells of the committed data set are split per size: the last
# of each size (by name) is the test set, the one before it validates (the
# learning-rate schedule, early stopping and the choice of the saved weights
# use it), the rest train.  With the cosine schedule and `keep_weights =
# "last"` the validation cells only watch training, and with `n_validation
# = 0` they train instead, as in the default profile
# (`docs/training-studies.md`, "Which weights to keep, and 200 epochs",
# "The validation cells train too").
# Repeated structures are dropped first: small cells from melt-and-quench
# often freeze into the same ordered structure from different seeds
# (shifted, or with the atoms in another order), and a repeat on both
# sides of the split would test the model on a training cell.  Rattled
# crystals (notebook 01's `n_rattled`) train and never validate or test:
# the scores are those of held-out amorphous cells.
# With `fit_test_cells` the test cells alone train and validate: the
# scores then say how closely the model can fit those cells, a bound on
# what training can reach, not how well it generalizes.
# With `more_train_dir` the distinct cells of a second data folder train
# too (named `<folder>/<cell>`; a cell that repeats any cell of the first
# folder, test cells included, is left out; `n_more_train > 0` takes only
# the first of them by name); validation and test cells
# stay those of the split.  The default profile trains on
# `data/aBN-dzp-train16` this way.
# The baseline sees every training structure in a
# new random orientation each epoch (it cannot know rotations otherwise).
# Both models carry the electrostatic term (`coulomb_cutoff`: learned
# partial charges whose Coulomb potential shifts H by -(phi_i + phi_j)/2 S,
# `hforge_nb.models.charges`), and the loss adds the plain mean squared H
# error in eV (`h_absolute_weight`), which weighs the on-site and bonded
# blocks as the eigenvalues do; `docs/training-studies.md` ("The
# electrostatic term and the loss in eV, each alone and together")
# compares them with their absence.  The loss also adds the spectral loss
# (`spectral_weight`, `hforge_nb.spectral_loss`): H errors seen through
# the reference states within `spectral_window` of E_F, in the part of the
# basis where S(k) has eigenvalues of at least `spectral_threshold`, at
# the k-points of the eigenvalue errors; it lowers the eigenvalue errors
# and raises the H MAE a little (`docs/training-studies.md`, "The
# spectral loss").
# Two options aim at the shift of each atom's orbital energies, a scalar
# times its own S block, that the models leave in their on-site blocks: a
# learned local potential (`local_potential_hidden`,
# `hforge_nb.models.local_potential`) and a loss on those shifts
# (`atom_shift_weight`); both are off, since neither helped (`docs/training-studies.md`,
# "The atoms' on-site shifts, and twice the channels at 124 cells").
# H errors are in meV over every value of the reference blocks (a block
# beyond the model's cutoff counts as zero); eigenvalues are compared within
# `energy_window` of the Fermi level on a Monkhorst-Pack grid, with the
# predicted S and, to judge H alone, with the reference S.
#
# With `energy_zero = "code"` the models learn H in GPAW's own energy zero,
# H + E_F S (`hforge_nb.energy_zero`): E_F is set by the whole cell's
# electron count, so an E_F-referenced H carries a per-cell offset that
# local blocks cannot predict.  Their predictions are then moved into each
# test record's E_F zero with that record's DFT E_F before scoring, so the
# H errors are those of H in GPAW's zero (up to E_F times the S error);
# eigenvalues, measured from each spectrum's own Fermi level, do not depend
# on the zero.  Notebooks 05 and 06 read the zero from this notebook's
# metrics: they compare with DFT records the same way, and move
# predictions for new structures by the training cells' mean E_F
# (`training_fermi_level_eV`).
#
# Interrupted? Run the notebook again with the same `output_dir`: training
# resumes from each model's last checkpoint.  Several processes or GPUs:
# call `hforge_nb.training.train` from a script under `torchrun`.

# %%
import matplotlib.pyplot as plt

from hforge_nb import dataset, io
from hforge_nb._atomic import write_json
from hforge_nb.energy_zero import check_energy_zero, for_energy_zero, in_code_zero, mean_fermi_level
from hforge_nb.evaluation import eigenvalue_errors_by_shell, evaluate, monkhorst_pack, spectra_by_chemical_order
from hforge_nb.models import build_matched_models
from hforge_nb.paths import output_folder, project_path
from hforge_nb.plotting import plot_channel_errors, plot_learning_curves
from hforge_nb.side_by_side import train_side_by_side
from hforge_nb.training import TrainingConfig

# %% tags=["parameters"]
data_dir = "data/aBN-dzp"  # reference data set (notebook 01); relative to the project root
model_kinds = ["equivariant", "baseline"]
r_max = 5.0  # Å, MACE cutoff
channels = 8  # MACE channels per irrep
num_interactions = 2
max_l = 2  # node features carry l from 0 to max_l
correlation = 2  # body order of MACE's symmetric products
edge_cutoff = 9.0  # Å
two_center = True  # off-site blocks start from a two-center (Slater-Koster) fit
crystal_field = True  # on-site S blocks start from a fitted sum over neighbours
h_crystal_field = False  # on-site H blocks too (the two-body part of the neighbours' potentials)
network_cutoff = 5.0  # Å; farther blocks come from the two-center prior alone (None: the networks reach edge_cutoff)
three_center_cutoff = 3.5  # Å; off-site H sums over the atoms this close to both atoms of a pair (None: off)
coulomb_cutoff = 10.0  # Å; H gets the potential of learned partial charges summed this far (None: off)
local_potential_hidden = 0  # > 0: H gets a learned potential per atom, an MLP this wide of its invariants, times S
readout_channels = 8  # equivariant readout channels
n_validation = 1  # cells of each size for validation (0: none; then lr_schedule "cosine", keep_weights "last")
n_test = 1  # cells of each size held out for testing
n_train = 0  # training cells of each size (distinct structures), the first of the rest; 0: all the rest
epochs = 2  # the main job trains longer (profiles/default.toml)
learning_rate = 1e-2
weight_decay = 0.0  # AdamW's decoupled weight decay of the network weights (per step, times the learning rate)
lr_schedule = "plateau"  # "plateau" or "cosine" (falls to 1% of learning_rate over `epochs`)
lr_patience = 5  # "plateau": epochs without improvement before the learning rate halves
early_stopping_patience = 15
keep_weights = "best"  # "best": the epoch of lowest validation loss; "last": the last epoch's
ema_decay = 0.0  # 0 turns the weight average off
augment_baseline = True  # random rotations of the baseline's training structures
s_weight = 1.0  # weight of the S loss
shell_width = 0.0  # Å; > 0 splits off-site loss classes into distance shells
spectral_weight = 0.1  # per eV^2; > 0 adds the loss on H near E_F in the well-conditioned basis (0: off)
spectral_window = 3.0  # eV around E_F of the states that loss looks through
spectral_kpoints = 2  # k-points per periodic direction of that loss (Gamma-centred, as the eigenvalue errors')
spectral_threshold = 1e-2  # smallest reference S(k) eigenvalue kept in that loss's frame (as filter_threshold)
h_absolute_weight = 30.0  # per eV^2; > 0 adds the plain mean squared H error (eV), which weighs on-site and bonded blocks
cell_shift_weight = None  # per eV^2; a number: the H losses leave out each cell's best c S and add this times c^2
atom_shift_weight = 0.0  # per eV^2; > 0 adds the mean square of the atoms' on-site shifts c_i S_ii (less the cell's mean)
seed = 0
threads = 1  # torch threads
training_processes = 1  # models trained at once, each in its own process (of `threads` threads)
n_kpoints = 2  # k-points per periodic direction for eigenvalue errors
energy_window = 2.0  # eV around E_F
overlap_threshold = 1e-3  # S(k) eigenvalues kept by the projected eigenvalue errors
filter_threshold = 1e-2  # each record's own S(k) eigenvalues kept by the filtered eigenvalue errors
energy_zero = "fermi"  # "code": train on H in GPAW's own zero (H + E_F S); scored in each record's E_F zero
more_train_dir = ""  # another data folder (notebook 01): its distinct cells train too, beside the split's
n_more_train = 0  # cells of more_train_dir that train (its first distinct ones by name); 0: all
fit_test_cells = False  # True: the test cells alone train and validate (how closely the model fits them; not held out)
more_test_dir = ""  # another data folder (notebook 01, more cells per size): its unseen cells are tested too
output_dir = ""  # empty: runs/interactive/03_training

# %%
out = output_folder(output_dir, "03_training")
samples = dataset.read_samples(project_path(data_dir), "train")
rattled = dataset.rattled_crystal_names(project_path(data_dir))  # they train, never validate or test
split, repeats = dataset.distinct_split(samples, n_validation, n_test, n_train, train_only=rattled)
if more_train_dir:
    split, added, more_repeats = dataset.more_training_cells(project_path(more_train_dir), split, samples,
                                                             n_more_train)
    samples, repeats = {**samples, **added}, {**repeats, **more_repeats}
if fit_test_cells:  # how closely the models can fit the test cells, not how well they generalize
    split = split.test_cells_only()
print("repeated structures left out (repeat: the cell kept):", repeats or "none")
pick = lambda names: [samples[name] for name in names]  # noqa: E731
check_energy_zero(energy_zero)
fit = (lambda names: [in_code_zero(r) for r in pick(names)]) if energy_zero == "code" else pick  # noqa: E731
split.as_dict()

# %% [markdown]
# ## Models
# The same settings as notebook 02; the baseline's width matches the
# equivariant model's parameter count.  Normalization is fitted to the
# training cells.

# %%
models = build_matched_models(model_kinds, fit(split.train), readout_channels, seed, r_max=r_max, channels=channels,
                              max_l=max_l, correlation=correlation, num_interactions=num_interactions,
                              edge_cutoff=edge_cutoff,
                              two_center=two_center, crystal_field=crystal_field, h_crystal_field=h_crystal_field,
                              network_cutoff=network_cutoff, three_center_cutoff=three_center_cutoff,
                              coulomb_cutoff=coulomb_cutoff, local_potential_hidden=local_potential_hidden)
{kind: model.parameter_count() for kind, model in models.items()}

# %% [markdown]
# ## Training
# With `training_processes = 2` the two models train at once, each in its
# own process of `threads` threads (`hforge_nb.side_by_side`), with the
# same results as one after the other; the main job does this on its two
# cores.  Progress bars then stay in the worker processes: follow
# `<output_dir>/<model>/training_log.csv`.

# %%
configs = {kind: TrainingConfig(epochs=epochs, learning_rate=learning_rate, weight_decay=weight_decay,
                                lr_schedule=lr_schedule,
                                lr_patience=lr_patience, early_stopping_patience=early_stopping_patience,
                                keep_weights=keep_weights,
                                ema_decay=ema_decay, s_weight=s_weight, shell_width=shell_width,
                                spectral_weight=spectral_weight, spectral_window=spectral_window,
                                spectral_kpoints=spectral_kpoints, spectral_threshold=spectral_threshold,
                                h_absolute_weight=h_absolute_weight, cell_shift_weight=cell_shift_weight,
                                atom_shift_weight=atom_shift_weight, energy_zero=energy_zero,
                                augment_rotations=augment_baseline and kind == "baseline", seed=seed, threads=threads)
           for kind in models}
results = train_side_by_side(models, fit(split.train), fit(split.validation), configs, out, training_processes)
fig = plot_learning_curves({kind: result.log for kind, result in results.items()})
fig.savefig(out / "learning_curves.png", dpi=150)
plt.show()

# %% [markdown]
# ## Evaluation on the held-out cells
# Block errors first, then eigenvalues.  Eigenvalues near E_F are very
# sensitive to H here: GPAW's `dzp` orbitals are long (4.3 Å for B) and
# nearly linearly dependent in dense aBN, so S(k) has very small eigenvalues
# (`smallest_S_eigenvalue`), and an error of H along those directions moves
# eigenvalues far.  `eigenvalue_mae_random_noise_meV` is the yardstick: the
# eigenvalue error of the reference H plus random Hermitian noise of the same
# MAE as the model's error, with the reference S.
#
# `eigenvalue_mae_filtered_meV` is how a prediction alone is diagonalized:
# each record's H in the part of its own basis where its S(k) has
# eigenvalues of at least `filter_threshold` (the nearly linearly dependent
# combinations dropped, as codes do), and each spectrum measured from its own
# Fermi level at the reference's filling.  `filter_shift_meV` is what the
# filter moves the DFT eigenvalues themselves, and each sample's
# `fermi_level_offset_eV` how far the predicted E_F lies from the zero of the
# predicted H: E_F is set by the whole cell's electron count, which local
# blocks do not carry.

# %%
test = {name: samples[name] for name in split.test}
trained = {kind: for_energy_zero(io.read_model(out / kind / "model.pt"), energy_zero)  # the kept weights
           for kind in models}
evaluation = {kind: evaluate(model, test, n_kpoints, energy_window, overlap_threshold, filter_threshold)
              for kind, model in trained.items()}
for kind, result in evaluation.items():
    print(f"{kind:>12}: " + ", ".join(f"{key} {value:.4g}" for key, value in result["summary"].items()))
first_test = split.test[0]
fig = plot_channel_errors({kind: result["samples"][first_test]["blocks"] for kind, result in evaluation.items()})
fig.savefig(out / "channel_errors.png", dpi=150)
plt.show()

# %% [markdown]
# ### The training cells themselves
# The same scores on the cells the models trained on.  Where a model's
# eigenvalues miss its own training cells by about as much as the held-out
# ones, it does not fit the H it was shown closely enough for the spectrum:
# the limit is the model and its training, not only how far it generalizes.
# Early stopping on one or two validation cells can end training long before
# the fit is done; with `lr_schedule = "cosine"` and `early_stopping_patience`
# equal to `epochs` the model trains to the end of its schedule, which tells
# a loose fit from a short one.

# %%
training_cells = {name: samples[name] for name in split.train}
fit_evaluation = {kind: evaluate(model, training_cells, n_kpoints, energy_window, overlap_threshold, filter_threshold)
                  for kind, model in trained.items()}
for kind in trained:
    on_training, held_out = fit_evaluation[kind]["summary"], evaluation[kind]["summary"]
    print(f"{kind:>12}: " + ", ".join(f"{key} {on_training[key]:.4g} on training cells, {held_out[key]:.4g} held out"
                                      for key in ("H_mae_meV", "H_on_site_mae_meV", "eigenvalue_mae_filtered_meV")))

# %% [markdown]
# ### More held-out cells
# One test cell per size says little about a model whose eigenvalue error
# varies from cell to cell.  With `more_test_dir` (a folder made by notebook
# 01 with more cells per size, for example `n_train_per_size = 14`), every
# cell of the training sizes there that the split did not use (compared by
# structure, not by name: `dataset.unseen_records`) is scored the same way.

# %%
used = {name: samples[name] for name in split.train + split.validation + split.test}
more_test = (dataset.unseen_records(dataset.read_samples(project_path(more_test_dir), "train"), used,
                                    {record.n_atoms for record in used.values()}) if more_test_dir else {})
more_evaluation = {kind: evaluate(model, more_test, n_kpoints, energy_window, overlap_threshold, filter_threshold)
                   for kind, model in trained.items()} if more_test else {}
for kind, result in more_evaluation.items():
    per_cell = {name: sample["spectrum_filtered"]["eigenvalue_mae_meV"] for name, sample in result["samples"].items()}
    print(f"{kind:>12}: filtered eigenvalue MAE {result['summary']['eigenvalue_mae_filtered_meV']:.1f} meV over "
          f"{len(per_cell)} cells; per cell " + ", ".join(f"{name} {mae:.0f}" for name, mae in per_cell.items()))

# %% [markdown]
# ### Chemical order
# Melt-and-quench cells of a few atoms freeze with very different chemical
# order: some have no B-B or N-N bond, as ideal BN, others a third of their
# bonds or more.  Each cell's fraction of such homopolar bonds
# (`structure_stats`) beside its DFT gap and the equivariant model's gap and
# filtered eigenvalue MAE, for the training cells and every scored cell,
# to see whether a model trained mostly on disordered cells errs more on
# ordered ones.

# %%
scored_sets = {"training": (training_cells, fit_evaluation), "test": (test, evaluation),  # kept apart: the more-test
               "more_test": (more_test, more_evaluation)}  # folder may reuse the data set's cell names
chemical_order = [row for label, (records, result) in scored_sets.items() for row in spectra_by_chemical_order(
    records, result.get("equivariant", {}).get("samples", {}), label)]
for row in chemical_order:
    print(f"{row['set']:>9} {row['cell']:>20}  homopolar "
          f"{row['homopolar_fraction']:.2f}  gap {row['gap_reference_eV']:.2f} eV (DFT), "
          f"{row['gap_predicted_eV']:.2f} eV (ML)  eigenvalue MAE {row['eigenvalue_mae_filtered_meV']:.0f} meV")

# %% [markdown]
# ### Where the equivariant model's eigenvalue errors come from
# The reference with the predicted H of one distance shell at a time (the
# rest, and S, from DFT), and with the predicted S alone, each scored like
# `eigenvalue_mae_filtered_meV` (`evaluation.eigenvalue_errors_by_shell`).
# Compare each shell's eigenvalue error with its H MAE in the block errors
# above: a state near E_F spreads over many orbitals, so a shell of many
# small errors can cost more than one of a few large ones (the states are
# not magnified by the nearly linearly dependent directions of S:
# `python -m hforge_nb.error_anatomy` takes the errors further apart).
# The cells of `more_test_dir` are scored too.

# %%
equivariant = trained.get("equivariant")
by_shell = {name: eigenvalue_errors_by_shell(equivariant.predict(record), record, monkhorst_pack(record, n_kpoints),
                                             energy_window, filter_threshold)
            for name, record in {**test, **more_test}.items()} if equivariant is not None else {}
scored = {name: sample for result in (evaluation, more_evaluation)  # the equivariant model's scores by cell
          for name, sample in result.get("equivariant", {}).get("samples", {}).items()}
for name, errors in by_shell.items():
    shell_mae = scored[name]["blocks"]["H_meV"]["distance"]
    print(name, ", ".join(f"{shell}: {mae:.1f} meV (H MAE {shell_mae[shell]['mae']:.2f})" if shell in shell_mae
                          else f"{shell}: {mae:.1f} meV" for shell, mae in errors.items()))

# %% [markdown]
# ## Results
# `metrics.json`: the split, the repeated structures left out before it,
# parameter counts, how each training went and
# every test metric (per sample and averaged), the same metrics on the
# training cells (`training_cells`), each scored cell's homopolar-bond
# fraction and gaps (`chemical_order`), with the equivariant model's
# eigenvalue errors by shell, and under `more_test` the same for the cells of
# `more_test_dir`; each model's folder holds
# `model.pt` (the kept weights: `keep_weights`), `checkpoint.pt` and
# `training_log.csv`.

# %%
training = {kind: {"best_epoch": r.best_epoch, "best_val_loss": r.best_val_loss,  # None: no validation cells
                   "kept_epoch": r.kept_epoch,
                   "epochs_run": len(r.log),
                   "stopped_early": r.stopped_early, "seconds": r.seconds,
                   "seconds_per_epoch": sum(row["seconds"] for row in r.log) / max(len(r.log), 1)}
            for kind, r in results.items()}
metrics = {"split": split.as_dict(), "repeated_structures": repeats, "energy_zero": energy_zero,
           "training_fermi_level_eV": mean_fermi_level(pick(split.train)),
           "parameters": {k: m.parameter_count() for k, m in models.items()},
           "training": training, "test": evaluation, "training_cells": fit_evaluation,
           "chemical_order": chemical_order, "eigenvalue_mae_by_shell_meV": by_shell,
           "more_test": more_evaluation}
write_json(out / "metrics.json", metrics)
{kind: result["summary"] for kind, result in evaluation.items()}

# %% [markdown]
# ## References
# - H. Li et al., *Deep-learning density functional theory Hamiltonian for
#   efficient ab initio electronic-structure calculation* (DeepH), Nat.
#   Comput. Sci. 2, 367 (2022).
# - X. Gong et al., Nat. Commun. 14, 2848 (2023) (DeepH-E3).
# - I. Batatia et al., NeurIPS 2022 (MACE).
