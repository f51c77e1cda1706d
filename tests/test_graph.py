"""Atom-pair graphs: orbital range, periodic images, coverage of reference blocks."""

import dataclasses

import numpy as np
import pytest

from hforge_nb.basis import Basis, OrbitalShell, SpeciesBasis
from hforge_nb.errors import MissingBasisError, NonFiniteValuesError, OverlappingAtomsError
from hforge_nb.graph import block_coverage, build_pair_graph

from conftest import BN_BASIS, hbn_atoms


def test_edges_respect_species_pair_cutoffs():
    atoms = hbn_atoms(rattle=0.05)
    graph = build_pair_graph(atoms, BN_BASIS)
    radius = {s: BN_BASIS[s].max_radius for s in "BN"}
    symbols = atoms.get_chemical_symbols()
    limit = np.array([radius[symbols[i]] + radius[symbols[j]] for i, j in graph.pairs])
    assert (graph.distances < limit).all()
    expected = atoms.positions[graph.edge_index[1]] + graph.shifts @ atoms.cell.array - atoms.positions[graph.edge_index[0]]
    assert np.allclose(graph.vectors, expected)


def test_graph_is_closed_under_reversal():
    graph = build_pair_graph(hbn_atoms(rattle=0.05), BN_BASIS)
    forward = {(i, j, *s) for (i, j), s in zip(graph.pairs, graph.shifts.tolist())}
    assert forward == {(j, i, *(-np.array(s))) for i, j, *s in forward}


def test_periodic_images_include_self_images():
    graph = build_pair_graph(hbn_atoms(), BN_BASIS)
    self_images = (graph.edge_index[0] == graph.edge_index[1])
    assert self_images.any() and (np.abs(graph.shifts[self_images]).sum(axis=1) > 0).all()


def test_graph_from_record_structure_covers_all_its_blocks(bn_record):
    graph = build_pair_graph(bn_record.atoms, bn_record.basis)
    coverage = block_coverage(bn_record, graph)
    assert coverage.missing_nonzero_h == coverage.missing_nonzero_s == 0
    assert coverage.n_reference_blocks == graph.n_edges


def test_orbital_range_covers_every_nonzero_overlap_block(siesta_record):
    for name in ("Si_pdos_k", "graphene_electrode", "H2_hessian", "Bi_hexagonal_soc"):
        record = siesta_record(name)
        coverage = block_coverage(record, build_pair_graph(record.atoms, record.basis, record.species))
        assert coverage.missing_nonzero_s == 0, name
        # H reaches further via pseudopotential projectors, with small values only
        assert coverage.max_missing_abs_h_eV < 1e-3, name


def test_hamiltonian_reach_covers_every_nonzero_block(siesta_record):
    for name in ("Si_pdos_k", "graphene_electrode", "H2_hessian", "Bi_hexagonal_soc"):
        record = siesta_record(name)
        graph = build_pair_graph(record.atoms, record.basis, record.species, reach="hamiltonian")
        coverage = block_coverage(record, graph)
        assert coverage.missing_nonzero_h == coverage.missing_nonzero_s == 0, name


def test_projector_radii_come_from_ion_xml(siesta_record):
    assert np.isclose(siesta_record("Si_pdos_k").basis["Si"].projector_radius, 1.94195183699 * 0.52917721, atol=1e-6)


def test_a_3_angstrom_cutoff_drops_nonzero_blocks(siesta_record):
    record = siesta_record("Si_pdos_k")
    coverage = block_coverage(record, build_pair_graph(record.atoms, record.basis, record.species, cutoff=3.0))
    assert coverage.missing_nonzero_s > 100 and coverage.max_missing_abs_h_eV > 0.1


def test_overlapping_atoms_are_named():
    atoms = hbn_atoms()
    atoms.positions[1] = atoms.positions[0] + [0.1, 0, 0]
    with pytest.raises(OverlappingAtomsError, match=r"atoms 0 \(B\) and 1 \(N\) are 0.100 Å apart"):
        build_pair_graph(atoms, BN_BASIS)


def test_basis_without_radii_is_refused():
    no_radii = Basis(tuple(SpeciesBasis(s, z, (OrbitalShell(2, 0),)) for s, z in (("B", 5), ("N", 7))))
    with pytest.raises(MissingBasisError, match="no orbital radii"):
        build_pair_graph(hbn_atoms(), no_radii)
    with pytest.raises(MissingBasisError, match="no projector radii"):
        build_pair_graph(hbn_atoms(), BN_BASIS, reach="hamiltonian")


def test_non_finite_positions_are_refused(bn_record):
    atoms = hbn_atoms()
    atoms.positions[2, 1] = np.inf
    with pytest.raises(NonFiniteValuesError, match="positions or cell"):
        build_pair_graph(atoms, BN_BASIS)
    with pytest.raises(NonFiniteValuesError, match="positions or cell"):
        dataclasses.replace(bn_record, atoms=atoms)
