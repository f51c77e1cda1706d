"""Long-range electrostatics: the potential of atomic partial charges, damped and shifted (DSF) Coulomb.

A local model sees a cutoff's worth of neighbours; the electrostatic
potential of the charges transferred between B and N falls off as 1/r and
moves the on-site energies of an amorphous cell by hundreds of meV from
atom to atom.  The damped shifted-force Coulomb sum of Fennell and
Gezelter (J. Chem. Phys. 124, 234104 (2006)) gives the site potential of
point charges q_j (e) at atom i as a pair sum within a cutoff R_c,

    phi_i = k_e [sum_{j(R), r < R_c} q_j v(r_ij) - (erfc(a R_c)/R_c + 2a/sqrt(pi)) q_i],

    v(r) = erfc(a r)/r - erfc(a R_c)/R_c + (erfc(a R_c)/R_c^2 + 2a/sqrt(pi) exp(-a^2 R_c^2)/R_c)(r - R_c),

with k_e = e^2/(4 pi eps_0) in eV Å and damping a (1/Å).  For a neutral,
ordered crystal it reproduces the Ewald (Madelung) potential to a
tenth of a percent at a = 0.25/Å, R_c = 10 Å (rock salt: a test), and it costs a fixed
number of pairs per atom, so it scales linearly to large cells.  The
geometry is fixed for a structure, so the pair sum is a sparse matrix
(:func:`coulomb_matrix`) applied to the charges (:func:`site_potentials`).
"""

from __future__ import annotations

import ase
import numpy as np
import torch
from scipy.special import erfc

from .neighbours import neighbour_pairs, pair_vectors

#: e^2 / (4 pi eps_0) in eV Å.
COULOMB_EV_ANGSTROM = 14.399645


def dsf_pair_kernel(distances: np.ndarray, damping: float, cutoff: float) -> np.ndarray:
    """``v(r)`` of the module docstring times k_e (eV Å / e^2 per Å: eV per e^2), zero beyond ``cutoff``.

    ``distances`` ``[n]`` Å, ``damping`` 1/Å, ``cutoff`` Å.  The kernel and its
    slope vanish at the cutoff.

    >>> float(dsf_pair_kernel(np.array([12.0]), 0.2, 12.0)[0])
    0.0
    """
    a, rc = damping, cutoff
    slope = erfc(a * rc) / rc**2 + 2 * a / np.sqrt(np.pi) * np.exp(-(a * rc) ** 2) / rc
    kernel = erfc(a * distances) / distances - erfc(a * rc) / rc + slope * (distances - rc)
    return COULOMB_EV_ANGSTROM * np.where(distances < rc, kernel, 0.0)


def dsf_self_kernel(damping: float, cutoff: float) -> float:
    """eV per e^2: what an atom's own charge adds to its site potential, ``-k_e (erfc(a R_c)/R_c + 2a/sqrt(pi))``."""
    return -COULOMB_EV_ANGSTROM * (erfc(damping * cutoff) / cutoff + 2 * damping / np.sqrt(np.pi))


def coulomb_matrix(atoms: ase.Atoms, cutoff: float, damping: float) -> tuple[np.ndarray, np.ndarray]:
    """The site potentials (eV) of unit charges as a sparse ``[n_atoms, n_atoms]`` matrix: ``phi = C q``.

    Every periodic image within ``cutoff`` (Å) is summed into its atom's
    entry, and the self term sits on the diagonal.

    Returns
    -------
    index, values
        ``[2, n_entries]`` int (row i, column j) and ``[n_entries]`` eV per e^2.
    """
    n = len(atoms)
    i, j, shifts = neighbour_pairs(atoms, cutoff)
    distances = np.linalg.norm(pair_vectors(atoms, i, j, shifts), axis=1)  # [n_pairs] Å
    keys = np.concatenate([i * n + j, np.arange(n) * (n + 1)])  # [n_pairs + n_atoms] flat (i, j)
    values = np.concatenate([dsf_pair_kernel(distances, damping, cutoff), np.full(n, dsf_self_kernel(damping, cutoff))])
    unique, where = np.unique(keys, return_inverse=True)
    return np.stack([unique // n, unique % n]), np.bincount(where, values, minlength=len(unique))


def site_potentials(charges: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``[n_atoms]`` electrostatic potential (V, i.e. eV per e) at every atom of ``charges`` ``[n_atoms]`` (e).

    ``index`` ``[2, n_entries]`` and ``values`` ``[n_entries]`` are a
    :func:`coulomb_matrix` (several structures' matrices may be stacked
    with offset indices).
    """
    return torch.zeros_like(charges).index_add(0, index[0], values * charges[index[1]])


def neutralized(charges: torch.Tensor, batch: torch.Tensor, n_structures: int) -> torch.Tensor:
    """``charges`` ``[n_atoms]`` minus their mean over each structure (``batch`` ``[n_atoms]``), so every one is neutral."""
    totals = torch.zeros(n_structures, dtype=charges.dtype).index_add(0, batch, charges)
    counts = torch.bincount(batch, minlength=n_structures).to(charges.dtype)
    return charges - (totals / counts)[batch]
