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
# # 00 · A tour of a real SIESTA calculation
#
# **Question.** What does a DFT Hamiltonian in a localized atomic-orbital basis
# look like, and does hforge-nb read it faithfully?
#
# We read H and S of a real SIESTA run (through sisl) into hforge-nb's record,
# show the orbital basis and how it maps onto e3nn irreps, the sparsity and the
# decay of the atom-pair blocks with distance, and the band structure, checked
# against SIESTA's own eigenvalues (`.EIG`).  The matrices are in eV with the
# Fermi level at zero.
#
# Run it with other inputs through papermill, for example
# `papermill 00_siesta_tour.ipynb out.ipynb -p calculation graphene_electrode -p k_path GXSYG`.

# %%
import matplotlib.pyplot as plt

from hforge_nb import io
from hforge_nb._atomic import write_json
from hforge_nb.bands import band_structure, kpath
from hforge_nb.graph import projector_reach, species_radii
from hforge_nb.paths import output_folder
from hforge_nb.plotting import plot_bands_and_parity, plot_block_decay, plot_sparsity
from hforge_nb.tour import TourConfig, basis_table, find_siesta_calculation, siesta_eigenvalues, tour_metrics

# %% tags=["parameters"]
calculation = "Si_pdos_k"  # folder in shared/data/siesta: Si_pdos_k, graphene_electrode, H2_hessian, Bi_hexagonal_soc
k_path = ""  # ASE special points, e.g. "GXWKGLUWLK"; empty: the lattice's default path
n_kpoints = 100  # points along the path
energy_window = (-15.0, 10.0)  # eV around E_F shown in band plots
fixed_cutoff = 3.0  # Å, a fixed graph cutoff compared with the orbital range
output_dir = ""  # empty: runs/interactive/00_siesta_tour

# %%
config = TourConfig(calculation, k_path, n_kpoints, tuple(energy_window), fixed_cutoff)
out = output_folder(output_dir, "00_siesta_tour")
calc = find_siesta_calculation(config.calculation)
record = io.read_siesta(calc.fdf)
record.metadata()

# %% [markdown]
# ## The orbital basis
# Each shell is one radial function (n, l, zeta) times 2l+1 real spherical
# harmonics in SIESTA's order m = -l..l.  The irreps column is what an
# equivariant model sees: the orbitals of a species form a direct sum of
# irreps of O(3), parity (-1)^l.

# %%
for row in basis_table(record.basis):
    print(row)
{sb.symbol: (sb.n_orbitals, sb.irreps) for sb in record.basis.species}

# %% [markdown]
# ## Sparsity and decay of the blocks
# H and S are stored as dense blocks of atom pairs (i, j, R).  S vanishes
# beyond R_i + R_j (the orbital range, dashed).  H reaches further, with
# small values, because the non-local pseudopotential couples two orbitals
# that both touch a projector of a third atom: up to R_i + R_j + 2 R_proj
# (dotted).  `metrics.json` counts the non-zero blocks each range misses.

# %%
radii = species_radii(record.basis, record.species)
pair_range = radii[:, None] + radii[None, :]
fig = plot_block_decay(record, pair_range, pair_range + 2 * projector_reach(record.basis, record.species))
fig.savefig(out / "block_decay.png", dpi=150)
plt.show()

# %%
fig = plot_sparsity(record)
fig.savefig(out / "sparsity.png", dpi=150)
plt.show()

# %% [markdown]
# ## Band structure, and SIESTA's own eigenvalues
# The band structure is computed from the record's H(R), S(R) by Bloch sums
# and the generalized eigenproblem H c = E S c.  Where the calculation ships
# `.EIG` and `.KP`, the right panel compares our eigenvalues at SIESTA's
# k-points with SIESTA's.

# %%
path = kpath(record, config.k_path, config.n_kpoints)
bands = band_structure(record, path)
eigenvalues = siesta_eigenvalues(record, calc)
reference, computed = eigenvalues if eigenvalues is not None else (None, None)
fig = plot_bands_and_parity(path, bands, reference, computed, config.energy_window)
fig.savefig(out / "bands.png", dpi=150)
plt.show()

# %% [markdown]
# ## Results
# The key numbers go to `metrics.json` beside the figures.

# %%
metrics = tour_metrics(record, calc, config)
write_json(out / "metrics.json", {"notebook": "00_siesta_tour", "parameters": config.__dict__, **metrics})
metrics

# %% [markdown]
# ## References
# - J. M. Soler et al., *The SIESTA method for ab initio order-N materials
#   simulation*, J. Phys.: Condens. Matter 14, 2745 (2002).
# - N. Papior, *sisl: v0.20*, https://doi.org/10.5281/zenodo.597181.
# - M. Geiger, T. Smidt, *e3nn: Euclidean neural networks*, arXiv:2207.09453 (2022).
# - Test calculations: the sisl project's `sisl-files` collection (MPL-2.0), see
#   `shared/data/siesta/README.md`.
