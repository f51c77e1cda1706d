"""Chunked prediction of large structures: the same blocks as the whole-structure model, in any chunking."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from ase import Atoms
from conftest import bn_cluster, hbn_atoms, small_model

from hforge_nb import io
from hforge_nb.errors import MissingBasisError, OverlappingAtomsError
from hforge_nb.evaluation import aligned_values
from hforge_nb.inference import (ChunkConfig, PeriodicImages, canonical_pairs, predict_gamma_matrices, predict_large,
                                 spatial_domains)


@pytest.fixture(scope="module")
def supercell():
    """36 atoms of rattled hBN, some outside the cell (their given positions are not wrapped)."""
    atoms = hbn_atoms(rattle=0.05).repeat((3, 3, 1))
    atoms.rattle(0.08, seed=4)
    atoms.positions[0] -= atoms.cell[0] * 0.01  # just outside the home cell
    return atoms


def _with_neighbour_terms(kind: str):
    """A copy of the small model with non-zero neighbour contributions to the on-site blocks."""
    model = copy.deepcopy(small_model(kind))
    heads = model.h_readout.neighbour if kind == "equivariant" else model.h_heads.neighbour
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for head in heads.values():
            for parameter in head.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return model


@pytest.mark.parametrize("kind", ["equivariant", "baseline"])
@pytest.mark.parametrize("chunk_atoms", [5, 1000])
def test_chunked_prediction_equals_the_whole_structure(kind, chunk_atoms, supercell):
    model = _with_neighbour_terms(kind)
    whole = model.predict(supercell)
    chunked = predict_large(model, supercell, ChunkConfig(chunk_atoms=chunk_atoms, feature_chunk_atoms=chunk_atoms))
    assert chunked.n_blocks == whole.n_blocks
    h, s = aligned_values(chunked, whole)
    np.testing.assert_allclose(h, whole.h_values[:, 0], atol=1e-10)
    np.testing.assert_allclose(s, whole.s_values, atol=1e-12)
    assert max(chunked.hermiticity_error()) < 1e-12


def test_chunked_prediction_keeps_the_electrostatic_term(supercell):
    """A model with partial charges (:mod:`hforge_nb.models.charges`): the potentials of the whole structure."""
    model = small_model("equivariant", coulomb_cutoff=6.0, coulomb_damping=0.3)
    whole = model.predict(supercell)
    chunked = predict_large(model, supercell, ChunkConfig(chunk_atoms=7, feature_chunk_atoms=7))
    h, s = aligned_values(chunked, whole)
    np.testing.assert_allclose(h, whole.h_values[:, 0], atol=1e-10)
    np.testing.assert_allclose(s, whole.s_values, atol=1e-12)


def test_block_cutoff_keeps_the_near_blocks_unchanged(supercell):
    model = _with_neighbour_terms("equivariant")
    whole = model.predict(supercell)
    near = predict_large(model, supercell, ChunkConfig(chunk_atoms=8, block_cutoff=3.0))
    assert np.linalg.norm(near.pair_vectors, axis=1).max() < 3.0
    expected = whole.on_site | (np.linalg.norm(whole.pair_vectors, axis=1) < 3.0)
    assert near.n_blocks == expected.sum()
    h, _ = aligned_values(whole, near)
    np.testing.assert_allclose(h, near.h_values[:, 0], atol=1e-10)


@pytest.mark.parametrize("config", [ChunkConfig(chunk_atoms=12),
                                    ChunkConfig(chunk_atoms=8, block_cutoff=3.0)])
def test_streamed_gamma_matrices_equal_the_record_summed_at_gamma(supercell, config):
    """H and S at k = 0 summed chunk by chunk, without a record, as the whole prediction's (images folded)."""
    model = _with_neighbour_terms("equivariant")
    h, s = predict_gamma_matrices(model, supercell, config)
    h_record, s_record = predict_large(model, supercell, config).block_sparse_matrices_at_gamma()
    assert h.format == "bsr" and h.blocksize == (13, 13) and h.nnz == h_record.nnz
    assert abs(h - h_record).max() < 1e-10 and abs(s - s_record).max() < 1e-12
    assert abs(h - h.T).max() < 1e-10


def test_every_unordered_pair_is_taken_once(supercell):
    images = PeriodicImages(supercell, 6.0)
    pairs = np.concatenate([canonical_pairs(images, d, 4.5)[0] for d in spatial_domains(supercell, 7)])
    shifts = np.concatenate([canonical_pairs(images, d, 4.5)[1] for d in spatial_domains(supercell, 7)])
    keys = {(i, j, *r) for (i, j), r in zip(pairs.tolist(), shifts.tolist())}
    assert len(keys) == len(pairs)
    assert not any((j, i, *(-np.array(r))) in keys for (i, j, *r) in keys)


def test_a_flat_cell_within_one_chunk_is_one_domain():
    flat = hbn_atoms(c=3.4, rattle=0.05).repeat((6, 6, 1))  # 15 x 15 x 3.4 Å, 144 atoms
    assert [len(d) for d in spatial_domains(flat, 200)] == [144]


def test_domains_cover_every_atom_once(supercell):
    domains = spatial_domains(supercell, 7)
    assert sorted(np.concatenate(domains).tolist()) == list(range(len(supercell)))
    assert len(domains) > 1


def test_chunked_prediction_exports_to_tshs_and_reads_back(supercell, tmp_path):
    model = small_model("equivariant")
    record = predict_large(model, supercell, ChunkConfig(chunk_atoms=10))
    path = io.write_tshs(record, tmp_path / "aBN.TSHS")
    back = io.read_matrix_file(path, model.basis, species=record.species)
    k = np.array([0.1, 0.2, 0.0])  # an untrained S need not be positive definite: compare the matrices
    for read, written in zip(back.matrices_at_k(k), record.matrices_at_k(k)):
        np.testing.assert_allclose(read, written, atol=1e-9)


def test_bad_structures_are_refused_by_name():
    model = small_model("equivariant")
    with pytest.raises(MissingBasisError, match="Si"):
        predict_large(model, Atoms("BSi", positions=[[0, 0, 0], [1.5, 0, 0]], cell=[8, 8, 8], pbc=True))
    with pytest.raises(OverlappingAtomsError):
        predict_large(model, Atoms("BN", positions=[[0, 0, 0], [0.1, 0, 0]], cell=[8, 8, 8], pbc=True))


def test_a_cluster_without_periodicity_is_predicted_the_same():
    model = _with_neighbour_terms("equivariant")
    cluster = bn_cluster()
    whole = model.predict(cluster)
    chunked = predict_large(model, cluster, ChunkConfig(chunk_atoms=2, feature_chunk_atoms=2))
    h, s = aligned_values(chunked, whole)
    assert chunked.n_blocks == whole.n_blocks and not chunked.shifts.any()
    np.testing.assert_allclose(h, whole.h_values[:, 0], atol=1e-10)


@pytest.mark.parametrize("kind", ["equivariant", "baseline"])
def test_features_layer_by_layer_in_domains_equal_the_whole_graph(kind, supercell):
    from hforge_nb.inference import _graph_without_blocks, node_features_in_chunks

    model = small_model(kind)
    whole = model.node_features(_graph_without_blocks(model, supercell))
    images = PeriodicImages(supercell, model.config.r_max)
    domains = spatial_domains(supercell, 4)
    assert len(domains) > 4
    in_domains = node_features_in_chunks(model, supercell, images, domains)
    assert torch.allclose(in_domains, whole, rtol=0, atol=1e-12) and whole.abs().max() > 0.1
