"""The three-center term of off-site H blocks: its third atoms, and what it changes and what it leaves."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list
from conftest import hbn_atoms, small_model

from hforge_nb.models import EquivariantConfig
from hforge_nb.models.base import graph_neighbourhood
from hforge_nb.models.three_center import Triplets, common_neighbours


@pytest.fixture(scope="module")
def rattled_hbn():
    atoms = hbn_atoms(rattle=0.05).repeat((2, 2, 1))
    atoms.rattle(0.1, seed=3)
    return atoms


def _brute_force_triplets(atoms, cutoff: float, pair_cutoff: float) -> set:
    """(i, j, R_j, k, R_k) of every pair closer than ``pair_cutoff`` and atom image k closer than ``cutoff`` to both."""
    i, j, shift = neighbor_list("ijS", atoms, max(cutoff, pair_cutoff))
    vectors = atoms.positions[j] + shift @ atoms.cell.array - atoms.positions[i]
    found = set()
    for p in np.flatnonzero(np.linalg.norm(vectors, axis=1) < pair_cutoff):
        for q in np.flatnonzero(i == i[p]):  # the neighbours k of atom i
            r_jk = vectors[q] - vectors[p]
            if np.linalg.norm(vectors[q]) < cutoff and 1e-4 < np.linalg.norm(r_jk) < cutoff:
                found.add((i[p], j[p], *shift[p], j[q], *shift[q]))
    return found


def test_common_neighbours_are_every_atom_image_near_both_atoms_of_a_pair(rattled_hbn):
    model = small_model("equivariant")
    graph = model.graph([rattled_hbn])
    off_site = graph.block_vectors().norm(dim=1) > 0
    i, j = graph.block_pairs[off_site, 0], graph.block_pairs[off_site, 1]
    vectors, shifts = graph.block_vectors()[off_site], graph.block_shifts[off_site]
    cutoff, pair_cutoff = 2.6, 3.2
    pair, k, r_ik = common_neighbours(i, vectors, graph_neighbourhood(graph), cutoff, pair_cutoff)
    cell = torch.as_tensor(rattled_hbn.cell.array)
    shift_j = torch.round(torch.linalg.solve(cell.T, shifts.T).T).long()
    shift_k = torch.round(torch.linalg.solve(cell.T, (r_ik + graph.positions[i[pair]] - graph.positions[k]).T).T).long()
    found = {(int(i[p]), int(j[p]), *shift_j[p].tolist(), int(kk), *sk.tolist())
             for p, kk, sk in zip(pair, k, shift_k)}
    expected = _brute_force_triplets(rattled_hbn, cutoff, pair_cutoff)
    assert len(found) == len(pair) > 0  # no triplet twice
    assert found == expected


def _without_three_center_term(model):
    stripped = copy.deepcopy(model)
    with torch.no_grad():
        for linear in stripped.three_center.linear.values():
            linear.weight.zero_()
    return stripped


@pytest.mark.parametrize("kind", ["equivariant", "baseline"])
def test_the_term_changes_near_h_blocks_only_and_never_s(kind, rattled_hbn):
    model = small_model(kind)
    with_term, without = model.predict(rattled_hbn), _without_three_center_term(model).predict(rattled_hbn)
    assert np.array_equal(with_term.s_values, without.s_values)
    change = np.abs(with_term.h_values[:, 0] - without.h_values[:, 0])
    distance = with_term.per_value(np.linalg.norm(with_term.pair_vectors, axis=1))
    on_site = with_term.per_value(with_term.on_site)
    assert change[~on_site & (distance < model.network_cutoff)].max() > 1e-3
    assert change[on_site].max() == 0.0  # the term is off-site only
    assert change[distance >= model.network_cutoff].max() == 0.0


def test_a_third_atom_enters_the_term_smoothly():
    """An atom crossing the three-center cutoff of both atoms of a pair changes the pair's H block continuously."""
    model = small_model("equivariant")
    reach = model.config.three_center_reach
    atoms = hbn_atoms().repeat((2, 2, 1))
    pair_vector = atoms.positions[1] - atoms.positions[0]
    height = np.sqrt(reach**2 - 0.25 * pair_vector @ pair_vector)  # above the bond's middle, reach from both
    blocks = {}
    for offset in (-1e-5, 1e-5):
        moved = atoms.copy()
        moved.positions[5] = moved.positions[0] + 0.5 * pair_vector + [0.0, 0.0, height + offset]
        record = model.predict(moved)
        (index,) = record.find_blocks(np.array([[0, 1]]), np.zeros((1, 3), int))
        blocks[offset] = record.block(index)[0]
    assert np.abs(blocks[-1e-5] - blocks[1e-5]).max() < 1e-6


@pytest.mark.parametrize("kind", ["equivariant", "baseline"])
def test_the_term_vanishes_smoothly_at_the_network_cutoff(kind):
    """A pair whose third atom stays near both: its term fades to nothing as the pair reaches the network cutoff."""
    model = small_model(kind)
    features = torch.randn(3, model.descriptor.irreps_out.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    direction, across = torch.tensor([[0.48, -0.6, 0.64]], dtype=torch.float64), torch.tensor([[0.8, 0.64, 0.0]])
    terms = []
    for length in (1.5, model.network_cutoff - 1e-3):
        r_ij = direction * length
        third = Triplets(torch.tensor([0]), r_ij / 2 + 0.5 * across.double(), features[2:])  # about 1.8 Å from both
        terms.append(model.three_center("B-N", third, features[:1], features[1:2], r_ij))
    assert terms[0].abs().max() > 1e-3
    assert terms[1].abs().max() <= 1e-6 * terms[0].abs().max()


def test_a_model_with_the_term_needs_the_triplets(rattled_hbn):
    model = small_model("equivariant")
    graph = model.graph([rattled_hbn])
    features = model.node_features(graph)
    key, group = next(iter(graph.off_site.items()))
    i, j = graph.block_pairs[group.blocks, 0], graph.block_pairs[group.blocks, 1]
    with pytest.raises(ValueError, match="three-center"):
        model.pair_irreps(key, features[i], features[j], graph.block_vectors()[group.blocks])


def test_the_cutoff_is_positive_and_reaches_at_most_r_max():
    assert EquivariantConfig(r_max=3.0, three_center_cutoff=3.5).three_center_reach == 3.0
    assert EquivariantConfig(three_center_cutoff=None).three_center_reach is None
    with pytest.raises(ValueError, match="three_center_cutoff"):
        EquivariantConfig(three_center_cutoff=0.0)


@pytest.mark.parametrize("kind", ["equivariant", "baseline"])
def test_all_groups_at_once_equal_one_group_at_a_time(kind, rattled_hbn):
    model = small_model(kind)
    graph = model.graph([rattled_hbn])
    features, vectors = model.node_features(graph), graph.block_vectors()
    edges = graph_neighbourhood(graph)
    groups = {}
    for key, group in graph.off_site.items():
        i, j = graph.block_pairs[group.blocks, 0], graph.block_pairs[group.blocks, 1]
        triplets = model.triplets(i, vectors[group.blocks], edges, features)
        groups[key] = (triplets, features[i], features[j], vectors[group.blocks])
    assert len(groups) > 1
    together = model.three_center.forward_groups(groups)
    for key, arguments in groups.items():
        alone = model.three_center(key, *arguments)
        assert alone.abs().max() > 0
        torch.testing.assert_close(together[key], alone, rtol=1e-10, atol=1e-12)
