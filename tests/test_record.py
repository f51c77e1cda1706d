"""The record on synthetic BN systems: validation, hermiticity, k-space, persistence."""

import dataclasses
import json

import numpy as np
import pytest
import scipy.linalg

from hforge_nb import io
from hforge_nb._atomic import atomic_path, write_json
from hforge_nb.convert import record_from_sisl, record_to_sisl
from hforge_nb.errors import BasisMismatchError, CorruptFileError, MissingBasisError, NonFiniteValuesError
from hforge_nb.record import records_equal
from hforge_nb.spin import SpinKind

from conftest import BN_BASIS, hbn_atoms, random_record, write_record_v1


def test_block_layout(bn_record):
    h, s = bn_record.block(0)
    assert h.shape == (13, 13, 1) and s.shape == (13, 13)
    assert bn_record.n_orbitals == 52
    assert bn_record.block_offsets[-1] == len(bn_record.s_values)


def test_per_value_marks_the_on_site_values(bn_record):
    on_site = bn_record.per_value(bn_record.on_site)
    assert on_site.sum() == (bn_record.atom_orbital_counts ** 2).sum()  # one n x n block per atom
    diagonal_of_s = bn_record.s_values[on_site].reshape(bn_record.n_atoms, 13, 13).diagonal(axis1=1, axis2=2)
    np.testing.assert_allclose(diagonal_of_s, 1.0, atol=1e-6)  # normalized orbitals


def test_value_count_must_match_blocks(bn_record):
    with pytest.raises(BasisMismatchError, match="S holds"):
        dataclasses.replace(bn_record, s_values=bn_record.s_values[:-1])


def test_non_finite_values_are_located(bn_record):
    h = bn_record.h_values.copy()
    h[bn_record.block_offsets[3] + 5, 0] = np.nan
    with pytest.raises(NonFiniteValuesError, match="first in block 3"):
        dataclasses.replace(bn_record, h_values=h)


def test_species_without_basis_is_named(bn_record):
    with pytest.raises(MissingBasisError, match="'C'"):
        dataclasses.replace(bn_record, species=("B", "N", "B", "C"))


@pytest.mark.parametrize("spin", list(SpinKind))
def test_symmetrized_records_are_exactly_hermitian(spin):
    record = random_record(hbn_atoms(rattle=0.05), spin=spin, seed=3)
    assert record.hermiticity_error() == (0.0, 0.0)


def test_hermiticity_error_measures_a_perturbation(bn_record):
    h = bn_record.h_values.copy()
    h[bn_record.block_offsets[7] + 2, 0] += 1e-3
    assert np.isclose(dataclasses.replace(bn_record, h_values=h).hermiticity_error()[0], 1e-3, rtol=1e-9)


@pytest.mark.parametrize("spin", list(SpinKind))
def test_k_space_matrices_are_hermitian_and_match_sisl(spin):
    record = random_record(hbn_atoms(rattle=0.05), spin=spin, seed=1)
    k = np.array([0.21, -0.4, 0.3])
    hk, sk = record.matrices_at_k(k)
    assert np.abs(hk - hk.conj().T).max() < 1e-12 and np.abs(sk - sk.conj().T).max() < 1e-12
    assert scipy.linalg.eigvalsh(sk).min() > 0  # S(k) positive definite
    ours = record.eigenvalues(k)
    theirs = record_to_sisl(record).eigh(k, spin=0) if spin is SpinKind.POLARIZED else record_to_sisl(record).eigh(k)
    assert np.abs(ours[0, 0] - theirs).max() < 1e-9


def test_k_space_matrices_of_atoms_with_different_orbital_counts_match_sisl():
    """N with a single-zeta s + p basis (4 orbitals) beside DZP B (13): blocks of several shapes."""
    from hforge_nb.basis import Basis, OrbitalShell, SpeciesBasis

    basis = Basis((BN_BASIS["B"], SpeciesBasis("N", 7, (OrbitalShell(2, 0, 1, False, 2.6),
                                                         OrbitalShell(2, 1, 1, False, 3.1)))))
    record = random_record(hbn_atoms(rattle=0.05), seed=3, basis=basis)
    k = np.array([0.13, 0.37, -0.22])
    hk, sk = record.matrices_at_k(k)
    sparse_h, sparse_s = record.sparse_matrices_at_k(k)
    assert hk.shape == (2 * 13 + 2 * 4,) * 2
    assert np.abs(hk - sparse_h.toarray()).max() < 1e-12 and np.abs(sk - sparse_s.toarray()).max() < 1e-12
    assert np.abs(record.eigenvalues(k)[0, 0] - record_to_sisl(record).eigh(k)).max() < 1e-9


def test_gamma_point_sums_all_images(bn_record):
    hk, sk = bn_record.matrices_at_k(np.zeros(3))
    assert np.isclose(sk.real.trace(), sum(np.trace(bn_record.block(b)[1]) for b in range(bn_record.n_blocks)
                                           if bn_record.pairs[b, 0] == bn_record.pairs[b, 1]))


@pytest.mark.parametrize("shuffle", [False, True])
def test_block_sparse_gamma_matrices_equal_the_value_by_value_sums(bn_record, shuffle):
    """Blocks of one atom pair summed over images, as sparse_matrices_at_k sums value by value (any block order)."""
    from hforge_nb.record import repeat_record

    record = repeat_record(bn_record, (2, 1, 1))
    if shuffle:
        order = np.random.default_rng(0).permutation(record.n_blocks)
        values = np.concatenate([np.arange(record.block_offsets[b], record.block_offsets[b + 1]) for b in order])
        record = dataclasses.replace(record, pairs=record.pairs[order], shifts=record.shifts[order],
                                     h_values=record.h_values[values], s_values=record.s_values[values])
    assert np.unique(record.pairs, axis=0).shape[0] < record.n_blocks  # some pairs have several images
    h, s = record.sparse_matrices_at_k()
    h_blocks, s_blocks = record.block_sparse_matrices_at_gamma()
    assert h_blocks.format == "bsr" and h_blocks.blocksize == (13, 13)
    assert abs(h - h_blocks).max() < 1e-12 and abs(s - s_blocks).max() < 1e-12


@pytest.mark.parametrize("spin", list(SpinKind))
def test_sisl_round_trip_every_spin_kind(spin):
    record = random_record(hbn_atoms(rattle=0.05), spin=spin, seed=2)
    assert records_equal(record, record_from_sisl(record_to_sisl(record), basis=record.basis))


def test_npz_round_trip(tmp_path, bn_record):
    again = io.read_record(io.write_record(bn_record, tmp_path / "bn.npz"))
    assert records_equal(bn_record, again) and again.atoms.pbc.all()


@pytest.mark.parametrize("spin", list(SpinKind))
def test_hermitian_record_is_stored_as_half_its_blocks_and_read_back_whole(tmp_path, spin):
    record = random_record(hbn_atoms(rattle=0.05), spin=spin, seed=3)
    path = io.write_record(record, tmp_path / "r.npz")
    with np.load(path) as stored:
        assert len(stored["pairs"]) == (record.n_blocks + record.on_site.sum()) // 2
    again = io.read_record(path)
    assert records_equal(record, again)  # every value exactly, whatever the block order
    keys = np.column_stack([again.pairs, again.shifts])
    assert [tuple(k) for k in keys] == sorted(tuple(k) for k in keys)  # blocks come back in (i, j, R) order


def test_record_that_is_not_hermitian_is_stored_whole(tmp_path, bn_record):
    h = bn_record.h_values.copy()
    h[np.flatnonzero(~bn_record.per_value(bn_record.on_site))[0]] += 1e-6
    skewed = dataclasses.replace(bn_record, h_values=h)
    path = io.write_record(skewed, tmp_path / "r.npz")
    with np.load(path) as stored:
        assert len(stored["pairs"]) == skewed.n_blocks
    assert records_equal(skewed, io.read_record(path))


def test_record_file_of_format_v1_is_still_read(tmp_path, bn_record):
    path = write_record_v1(bn_record, tmp_path / "r.npz")
    assert json.loads(str(np.load(path)["metadata"]))["version"] == 1
    assert records_equal(bn_record, io.read_record(path))


def test_corrupt_record_file_is_refused(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CorruptFileError, match="broken.npz"):
        io.read_record(path)


def test_failed_write_keeps_the_previous_file(tmp_path, bn_record):
    target = io.write_record(bn_record, tmp_path / "bn.npz")
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bn.npz"]


def test_metrics_json_accepts_numpy(tmp_path):
    import json

    path = write_json(tmp_path / "m.json", {"a": np.float64(1.5), "b": np.arange(2)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1]}
