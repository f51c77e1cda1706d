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
# # 01 · Reference data: amorphous BN and its DFT Hamiltonians
#
# **Question.** Can we make amorphous BN cells and their exact DFT H and S in
# a SIESTA-like DZP basis on this machine, with every number checked?
#
# Structures come from melt-and-quench molecular dynamics with the ExTeP
# potential for BN (Los et al. 2017) in LAMMPS.  Each is computed with GPAW
# in LCAO mode (PBE, `dzp`: 13 orbitals per B or N atom, the same shells as
# SIESTA's DZP), and the real-space blocks H(R), S(R) are obtained exactly by
# Fourier transform of H(k), S(k) at the converged potential.  Every sample is
# checked at a k-point off the Fourier grid against GPAW's own H(k), S(k);
# SCF runs that do not converge are kept out of the data and flagged in the
# manifest.  ExTeP leaves about a third of the bonds B-B or N-N; with
# `homopolar_swaps` each quenched cell's B and N sites are exchanged to
# remove as many as its rings allow and the cell is relaxed again
# (`hforge_nb.chemical_order`), which gives chemically ordered aBN on the
# same kind of network (`profiles/ordered_cells.toml`).
#
# The defaults make one 8-atom cell in about a minute.  The committed data
# set in `data/aBN-dzp` was made by this notebook with
# `profiles/dataset.toml` (see `data/README.md`).  Samples already in the
# output folder are skipped, so an interrupted run resumes.

# %%
import matplotlib.pyplot as plt

from hforge_nb import dataset
from hforge_nb._atomic import write_json
from hforge_nb.crystals import cubic_bn, hexagonal_bn
from hforge_nb.gpaw_reference import GPAWSettings, kpoint_deviation, rotation_deviation, translation_deviation
from hforge_nb.melt_quench import MeltQuenchSchedule
from hforge_nb.paths import output_folder
from hforge_nb.plotting import plot_coordination, plot_dataset_cost
from hforge_nb.structure_stats import structure_stats

# %% tags=["parameters"]
train_sizes = [8]  # atoms per amorphous training cell (multiples of 8)
n_train_per_size = 1  # cells per training size: one count, or a list with one per entry of train_sizes
holdout_sizes = []  # atoms per held-out cell (transferability), e.g. [64]
n_holdout_per_size = 1
density = 2.1  # g/cm^3
melt_temperature = 4500.0  # K
quench_rate = 100.0  # K/ps
melt_time = 5.0  # ps
anneal_time = 2.0  # ps
timestep = 0.5  # fs
homopolar_swaps = False  # exchange B and N sites of each quenched cell to remove homopolar bonds, then relax
crystals = False  # add hBN and cBN reference cells
n_rattled = 0  # rattled copies of each crystal
rattle = 0.1  # Å
seed = 0
xc = "PBE"
grid_spacing = 0.2  # Å, real-space grid of GPAW (as the committed data)
kpoint_spacing = 1.0  # 1/Å, SCF k-point spacing (the committed data: 0.5)
kpoint_check_spacing = 0.0  # 1/Å, denser SCF k-point spacing at which the first cell is checked (e.g. 0.5); 0 skips it
max_iterations = 300  # SCF iterations before a run counts as not converged
storage_tolerance = 0.0  # blocks with every |H| (eV) and |S| below it are not stored
precision = "float64"  # "float32" halves the files
workers = 1  # parallel processes (each single-threaded)
memory_GB = None  # GB the GPAW runs may take together; None: what the machine has available (checked per sample)
shard = [0, 1]  # [k, n]: only samples k, k+n, ... (cluster array jobs)
output_dir = ""  # empty: runs/interactive/01_dataset

# %%
schedule = MeltQuenchSchedule(melt_temperature=melt_temperature, quench_rate=quench_rate, melt_time=melt_time,
                              anneal_time=anneal_time, timestep=timestep, homopolar_swaps=homopolar_swaps)
plan = dataset.DatasetPlan(tuple(train_sizes), tuple(holdout_sizes), n_train_per_size, n_holdout_per_size, density,
                           schedule, crystals, n_rattled, rattle, seed)
settings = GPAWSettings(xc=xc, grid_spacing=grid_spacing, kpoint_spacing=kpoint_spacing,
                        max_iterations=max_iterations)
storage = dataset.StoragePolicy(storage_tolerance, precision)
out = output_folder(output_dir, "01_dataset")
[spec.name for spec in plan.samples()]

# %% [markdown]
# ## Structures and reference calculations
# Each sample runs in its own process: melt-and-quench (seconds), GPAW SCF,
# then the Fourier step.  The progress bar counts finished samples.

# %%
manifest = dataset.build_dataset(plan, settings, out, workers=workers, storage=storage, shard=tuple(shard),
                                 memory_GB=memory_GB)
for entry in manifest["failed"]:  # tried again on the next run
    print(f"failed: {entry['name']}: {entry['error']}")
manifest["totals"]

# %% [markdown]
# ## Short-range order
# Coordination numbers count neighbours closer than 1.85 Å.  For comparison,
# the same statistics of ideal hBN (all three-fold, no homopolar bonds) and
# cBN (all four-fold), computed here.  Films of aBN grown at low temperature
# have a mass density of about 2.1 g/cm^3 and are mostly sp2-bonded (Hong et
# al. 2020); ExTeP quenches give mostly three-fold atoms with a sizeable
# fraction of four-fold ones and of homopolar bonds.

# %%
rows = dataset.structure_table(manifest)
crystal_rows = [{"name": f"ideal {name}", **structure_stats(make()).as_dict()}
                for name, make in (("hBN", hexagonal_bn), ("cBN", cubic_bn))]
for row in rows + crystal_rows:
    print(f"{row['name']:>26}  {row['density']:5.2f} g/cm3  Z_B {row['coordination_B']:.2f}  "
          f"Z_N {row['coordination_N']:.2f}  homopolar {row['homopolar_fraction']:.2f}  "
          f"sp2 {row['sp2_fraction']:.2f}  sp3 {row['sp3_fraction']:.2f}")
fig = plot_coordination(rows + crystal_rows)
fig.savefig(out / "coordination.png", dpi=150)
plt.show()

# %% [markdown]
# ### Repeated structures
# A small cell can freeze into the same ordered structure from different
# seeds, moved or with its atoms in another order, so two names can hold one
# structure (`dataset.distinct_records` compares the pair distances per pair
# of elements and the cell).  Notebook 03 drops such repeats before it splits
# the cells, so that no test cell repeats a training one; they add nothing to
# training either.

# %%
_, repeats = dataset.distinct_records(dataset.read_samples(out))
print("repeats (repeat: the first name of its structure):", repeats or "none")

# %% [markdown]
# ### Does the MD potential rank the cells as DFT does?
# The cells' chemistry comes from ExTeP, their H from DFT.  Where ExTeP's
# energy orders the cells as DFT's does, a slower quench or a longer anneal
# (a lower ExTeP energy) leads towards the cells DFT prefers; where it does
# not, it need not.  Per cell size, the Spearman rank correlations
# (`dataset.energy_rank_agreement`; 1: same order, NaN: fewer than three
# distinct cells) of the two energies per atom, and of each with the
# fraction of homopolar bonds.  Repeated structures count once.

# %%
energies = dataset.energy_table(manifest, leave_out=repeats)
for row in energies:
    print(f"{row['name']:>22}  homopolar {row['homopolar_fraction']:.2f}  "
          f"ExTeP {row['md_energy_per_atom_eV']:8.3f} eV/atom  DFT {row['dft_energy_per_atom_eV']:8.3f} eV/atom")
energy_agreement = dataset.energy_rank_agreement(energies)
energy_agreement

# %% [markdown]
# ## Checks and cost
# `off_grid_error_eV`: largest eigenvalue difference at k = (0.123, 0.271,
# 0.389) between our H(R), S(R) and GPAW's own H(k), S(k).
# `storage_error_eV`: what the stored file changes (dropped blocks, precision)
# in the bands up to 10 eV above E_F; the manifest also keeps the change of
# all bands, which is larger for the highest, nearly linearly dependent ones.

# %%
for s in manifest["samples"]:
    checks = (f"off-grid {s['off_grid_error_eV']:.1e} eV, stored {s['storage_error_eV']:.1e} eV, "
              f"{s['scf_iterations']} SCF iterations, {sum(s['timings_s'].values()):.0f} s, {s['file_MB']:.1f} MB"
              if s["status"] == "converged" else s["error"])
    print(f"{s['name']:>22} {s['n_atoms']:4d} atoms  {s['status']:>13}  {checks}")
fig = plot_dataset_cost(manifest["samples"])
fig.savefig(out / "gpaw_cost.png", dpi=150)
plt.show()

# %% [markdown]
# ## Rotation covariance at this grid spacing
# An equivariant model assumes that rotating a structure rotates every block
# by the Wigner-D matrices of the orbitals.  GPAW's S does so to round-off,
# but H is integrated on a real-space grid and carries its egg-box error.
# Here a B2N2 cluster and a rotated copy are computed with this notebook's
# settings: `h_error_eV` is the noise floor an equivariant model meets on
# this data, `h_change_eV` what the rotation changes in the blocks.

# %%
rotation = rotation_deviation(settings)
rotation

# %% [markdown]
# ## The grid's floor under the eigenvalue error
# Translating a whole cell changes nothing physical either, so GPAW runs
# again on the first cell of this data set moved by half a grid step along
# each cell vector: what that changes in H, and in the filtered eigenvalues
# within 2 eV of E_F that notebook 03 scores, is noise that no
# translation-invariant model can learn.  Whole grid steps map the grid
# onto itself and leave H unchanged (a test checks both).  The cell's own
# reference is the record stored above (its storage error is the
# manifest's `storage_error_eV`), so GPAW runs once here (and once more
# for the k-point check below, when it is on).

# %%
samples = dataset.read_samples(out)
first_name = next(iter(samples), None)  # None: no converged sample in this run
first = samples[first_name] if first_name else None  # the stored reference: no second SCF of it
translation = translation_deviation(first, settings) if first else {}
print(first_name, translation)

# %% [markdown]
# ## How far the SCF's k-points are from converged
# The SCF's k-points set the density, and so H: a cell whose Brillouin zone
# is sampled coarsely carries an error that depends on the whole periodic
# cell rather than on each atom's surroundings.  The same cell again with
# SCF k-point spacing `kpoint_check_spacing`: how far H and the filtered
# eigenvalues lie from that denser calculation.  Off by default (one more
# SCF, about a minute for the default cell at 0.5 Å^-1); the data sets'
# profiles check at 0.35 Å^-1 (`data/README.md`).

# %%
kpoints = kpoint_deviation(first, settings, kpoint_check_spacing) if first and kpoint_check_spacing else {}
print(first_name, kpoints)

# %% [markdown]
# ## Results
# The manifest (`manifest.json`) is the data set's own record; the key numbers
# also go to `metrics.json`.

# %%
converged = [s for s in manifest["samples"] if s["status"] == "converged"]
metrics = {
    "notebook": "01_dataset",
    "dataset": str(out),
    **manifest["totals"],
    "n_failed": len(manifest["failed"]),
    "grid_spacing_A": grid_spacing,
    "rotation_s_error": rotation["s_error"],
    "rotation_h_error_eV": rotation["h_error_eV"],
    "rotation_h_change_eV": rotation["h_change_eV"],
    "checked_sample": first_name,  # the translation and k-point checks
    **{f"translation_{key}": value for key, value in translation.items()},
    **{f"kpoint_check_{key}": value for key, value in kpoints.items()},
    "mean_coordination_B": float(sum(r["coordination_B"] for r in rows) / max(len(rows), 1)),
    "mean_homopolar_fraction": float(sum(r["homopolar_fraction"] for r in rows) / max(len(rows), 1)),
    "repeated_structures": repeats,
    "energy_rank_agreement": {str(n_atoms): row for n_atoms, row in energy_agreement.items()},
}
write_json(out / "metrics.json", metrics)
metrics

# %% [markdown]
# ## Running the large profile on a cluster
# Samples are independent, so the work spreads in two ways:
#
# - **Several processes on one node:** `-p workers 16` runs 16 samples at a
#   time, each single-threaded (GPAW without MPI).
# - **Many nodes:** an array job runs this notebook with `-p shard [k, n]` and
#   the same `output_dir` (a shared file system), each task computing every
#   n-th sample; any task, or a last run with `shard [0, 1]`, gathers the
#   manifest.  For example, with SLURM:
#   `papermill 01_dataset.ipynb out_$SLURM_ARRAY_TASK_ID.ipynb -p output_dir /scratch/aBN -p train_sizes "[8, 16, 32]" -p n_train_per_size 20 -p shard "[$SLURM_ARRAY_TASK_ID, 32]"`
#   with `#SBATCH --array=0-31`.
# - **Large cells with MPI GPAW:** build GPAW with `mpi = True` in its
#   siteconfig and run the whole notebook under `mpiexec -n 32 gpaw python`;
#   then use `workers 1`, since GPAW itself spreads each cell over the ranks.
#
# ## References
# - J. H. Los, J. M. H. Kroes, K. Albe, R. M. Gordillo, M. I. Katsnelson,
#   A. Fasolino, *Extended Tersoff potential for boron nitride: energetics and
#   elastic properties of pristine and defective h-BN*, Phys. Rev. B 96,
#   184108 (2017).
# - A. P. Thompson et al., *LAMMPS*, Comput. Phys. Commun. 271, 108171 (2022).
# - J. J. Mortensen et al., *GPAW: an open Python package for electronic
#   structure calculations*, J. Chem. Phys. 160, 092503 (2024); A. H. Larsen
#   et al., *Localized atomic basis set in the projector augmented wave
#   method*, Phys. Rev. B 80, 195112 (2009).
# - S. Hong et al., *Ultralow-dielectric-constant amorphous boron nitride*,
#   Nature 582, 511 (2020).
