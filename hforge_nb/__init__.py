"""hforge-nb: learning DFT Hamiltonians (H and S in a localized orbital basis).

The package holds all logic; the numbered notebooks in ``notebooks/`` hold the
narrative, parameters and calls.  Modules, one concept each:

- :mod:`hforge_nb.basis`: orbital shells per species and their e3nn irreps
- :mod:`hforge_nb.spin`: spin kinds and component layouts
- :mod:`hforge_nb.record`: one sample, H and S as atom-pair blocks
- :mod:`hforge_nb.convert`: records to and from ``sisl.Hamiltonian``
- :mod:`hforge_nb.io`: every reader and writer (SIESTA, TSHS, netCDF, npz)
- :mod:`hforge_nb.rotations`: Wigner-D of the orbital basis, rotating records
- :mod:`hforge_nb.structure`: sanity checks of structures
- :mod:`hforge_nb.graph`: atom pairs within orbital range, coverage checks
- :mod:`hforge_nb.crystals`: hBN and cBN reference cells
- :mod:`hforge_nb.melt_quench`: amorphous BN by melt-and-quench (ExTeP, LAMMPS)
- :mod:`hforge_nb.structure_stats`: density, coordination, homopolar bonds
- :mod:`hforge_nb.md_order`: homopolar bonds of melt-and-quench cells against the MD schedule
- :mod:`hforge_nb.gpaw_reference`: exact H(R), S(R) from GPAW-LCAO ``dzp``
- :mod:`hforge_nb.dataset`: reference data sets, their manifest, resuming
- :mod:`hforge_nb.block_irreps`: an orbital block as irreps (Clebsch-Gordan), and back
- :mod:`hforge_nb.model_graph`: the tensors a model reads (batched structures, blocks)
- :mod:`hforge_nb.models`: MACE descriptors, the equivariant model and the MLP baseline
- :mod:`hforge_nb.training`: losses, optimisation, resumable checkpoints, torchrun
- :mod:`hforge_nb.evaluation`: block errors (meV) and eigenvalue, gap and DOS errors
- :mod:`hforge_nb.bands`, :mod:`hforge_nb.plotting`: band structures, figures
- :mod:`hforge_nb.pipeline`: the main job (notebooks in order with papermill)
"""

__version__ = "0.1.0"
