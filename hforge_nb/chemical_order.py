"""Chemical order of BN cells: swap B and N atoms to remove homopolar bonds.

ExTeP melt-and-quench cells of aBN keep 30 to 40 % of their bonds B-B or
N-N at every quench rate tried (``hforge_nb.md_order``), while DFT puts
the chemically ordered cells lowest in energy and sp2-dominated aBN films
are thought to be mostly B-N bonded.  :func:`order_by_swaps` keeps the
network of a quenched cell (its positions, hence its rings and
coordination) and exchanges the species of B and N sites by a Monte Carlo
that lowers the number of homopolar bonds: a swap of one B and one N site
is accepted when it removes bonds, and with Boltzmann probability
``exp(-added / T)`` otherwise, at a ``T`` (in bonds) that falls
geometrically to zero.  Composition is kept.  Odd rings frustrate the
order, so a network need not reach zero.  The caller relaxes the swapped
cell with the potential (:func:`.melt_quench.melt_quench` does when
``MeltQuenchSchedule.homopolar_swaps`` is set).
"""

from __future__ import annotations

from dataclasses import dataclass

import ase
import numpy as np
from ase.neighborlist import neighbor_list

from .structure_stats import BOND_CUTOFF


@dataclass(frozen=True)
class SwapResult:
    """The swapped cell and the homopolar bonds before and after.

    Attributes
    ----------
    atoms : ase.Atoms
        The cell with B and N sites exchanged (positions unchanged).
    homopolar_before, homopolar_after : int
        B-B and N-N bonds (each bond once, periodic images counted apart).
    n_bonds : int
    n_accepted : int
        Swaps accepted by the Monte Carlo.
    """

    atoms: ase.Atoms
    homopolar_before: int
    homopolar_after: int
    n_bonds: int
    n_accepted: int


def bond_neighbours(atoms: ase.Atoms, bond_cutoff: float = BOND_CUTOFF) -> list[np.ndarray]:
    """For each atom, the indices of its bonded atoms (one entry per bond, so an image bonded twice repeats)."""
    i, j = neighbor_list("ij", atoms, bond_cutoff)
    order = np.argsort(i, kind="stable")
    return np.split(j[order], np.cumsum(np.bincount(i, minlength=len(atoms)))[:-1])


def count_homopolar(is_boron: np.ndarray, neighbours: list[np.ndarray]) -> int:
    """B-B and N-N bonds of the cell, each bond once; ``is_boron`` is ``[n_atoms]`` bool.

    Examples
    --------
    >>> from hforge_nb.crystals import cubic_bn
    >>> cbn = cubic_bn(cubic=True)  # 8 atoms, 16 B-N bonds
    >>> is_boron = np.array(cbn.get_chemical_symbols()) == "B"
    >>> count_homopolar(is_boron, bond_neighbours(cbn)), count_homopolar(~is_boron, bond_neighbours(cbn))
    (0, 0)
    >>> is_boron[is_boron.argmin()] = True  # one N site becomes B: its four bonds become B-B
    >>> count_homopolar(is_boron, bond_neighbours(cbn))
    4
    """
    return sum(int(np.sum(is_boron[nbrs] == is_boron[a])) for a, nbrs in enumerate(neighbours)) // 2


def swap_change(is_boron: np.ndarray, neighbours: list[np.ndarray], boron: int, nitrogen: int) -> int:
    """Change in the number of homopolar bonds if sites ``boron`` (B) and ``nitrogen`` (N) exchange species.

    The bonds between the two sites (B-N before and after) and a site's bonds
    to its own images do not change.
    """
    change = 0
    for site, other, was_boron in ((boron, nitrogen, True), (nitrogen, boron, False)):
        nbrs = neighbours[site][(neighbours[site] != other) & (neighbours[site] != site)]
        same_before = np.sum(is_boron[nbrs] == was_boron)
        change += len(nbrs) - 2 * int(same_before)
    return change


def order_by_swaps(atoms: ase.Atoms, seed: int, steps_per_atom: int = 200, start_temperature: float = 1.0,
                   bond_cutoff: float = BOND_CUTOFF) -> SwapResult:
    """Exchange B and N sites of ``atoms`` by a Monte Carlo that lowers the homopolar bond count.

    Parameters
    ----------
    atoms : ase.Atoms
        A B/N structure; other elements are refused.
    seed : int
        Seed of the proposals and acceptances.
    steps_per_atom : int
        Proposed swaps per atom; ``T`` falls from ``start_temperature``
        (bonds) to 1e-3 of it over them, then the cell with the fewest
        homopolar bonds met is returned.
    bond_cutoff : float
        Bond length (Å), as in :func:`.structure_stats.structure_stats`.
    """
    others = sorted(set(atoms.get_chemical_symbols()) - {"B", "N"})
    if others:
        raise ValueError(f"chemical-order swaps take B and N only, got {others}")
    symbols = np.array(atoms.get_chemical_symbols())
    neighbours = bond_neighbours(atoms, bond_cutoff)
    is_boron = symbols == "B"
    homopolar = before = count_homopolar(is_boron, neighbours)
    best, best_count, accepted = is_boron.copy(), homopolar, 0
    rng = np.random.default_rng(seed)
    boron_sites, nitrogen_sites = np.flatnonzero(is_boron), np.flatnonzero(~is_boron)
    n_steps = steps_per_atom * len(atoms) if len(boron_sites) and len(nitrogen_sites) else 0
    for temperature in start_temperature * np.geomspace(1.0, 1e-3, max(n_steps, 1))[:n_steps]:
        kb, kn = rng.integers(len(boron_sites)), rng.integers(len(nitrogen_sites))
        boron, nitrogen = boron_sites[kb], nitrogen_sites[kn]
        change = swap_change(is_boron, neighbours, boron, nitrogen)
        if change <= 0 or rng.random() < np.exp(-change / temperature):
            is_boron[boron], is_boron[nitrogen] = False, True
            boron_sites[kb], nitrogen_sites[kn] = nitrogen, boron
            homopolar, accepted = homopolar + change, accepted + 1
            if homopolar < best_count:
                best, best_count = is_boron.copy(), homopolar
    swapped = atoms.copy()
    swapped.set_chemical_symbols(np.where(best, "B", "N"))
    n_bonds = sum(len(n) for n in neighbours) // 2
    return SwapResult(swapped, before, best_count, n_bonds, accepted)
