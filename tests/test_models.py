"""The models: exact equivariance, Hermiticity, sisl round trips, batching, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import BN_BASIS, bn_cluster, hbn_atoms, random_record, small_model

from hforge_nb import io
from hforge_nb.basis import SpeciesBasis, dzp_shells, OrbitalShell
from hforge_nb.block_irreps import block_change_of_basis, block_irreps
from hforge_nb.convert import record_from_sisl, record_to_sisl
from hforge_nb.errors import CorruptFileError, MissingBasisError
from hforge_nb.model_graph import StructureBlocks, build_model_graph
from hforge_nb.models import BaselineConfig, EquivariantConfig, baseline_config_for_budget, build_model
from hforge_nb.models.base import parameter_breakdown, rotation_error
from hforge_nb.record import records_equal
from hforge_nb.rotations import orbital_rotation, random_rotation

KINDS = ["equivariant", "baseline"]
SPECIES = {
    "B": BN_BASIS["B"],
    "N": BN_BASIS["N"],
    "H-like": SpeciesBasis("H", 1, (OrbitalShell(1, 0, 1, False, 2.0), OrbitalShell(2, 1, 1, True, 2.0))),
}


@pytest.fixture(scope="module")
def periodic_record():
    return random_record(hbn_atoms(rattle=0.08, seed=3), seed=2)


# ------------------------------------------------------------------ irreps <-> blocks
@pytest.mark.parametrize("row, col", [("B", "B"), ("B", "N"), ("H-like", "B"), ("N", "H-like")])
def test_block_change_of_basis_is_orthogonal_and_rotates_blocks(row, col):
    from hforge_nb._compat import import_o3

    row, col = SPECIES[row], SPECIES[col]
    change = block_change_of_basis(row, col)
    np.testing.assert_allclose(change @ change.T, np.eye(len(change)), atol=1e-13)
    irreps = import_o3().Irreps(block_irreps(row, col))
    x = np.random.default_rng(1).normal(size=irreps.dim)
    for improper in (False, True):
        q = random_rotation(np.random.default_rng(7), improper=improper)
        rotated_irreps = irreps.D_from_matrix(torch.as_tensor(q)).numpy() @ x
        block = (x @ change).reshape(row.n_orbitals, col.n_orbitals)
        expected = orbital_rotation(row, q) @ block @ orbital_rotation(col, q).T
        np.testing.assert_allclose((rotated_irreps @ change).reshape(block.shape), expected, atol=1e-13)


def test_dzp_block_has_the_irreps_of_2s_2p_1d_squared():
    dzp = SpeciesBasis("B", 5, dzp_shells(2, (4.0,) * 5))
    assert block_irreps(dzp, dzp) == "9x0e+5x1e+12x1o+9x2e+4x2o+1x3e+4x3o+1x4e"


# ------------------------------------------------------------------ equivariance
# The optional terms of H that are a potential times S (random weights in small_model).
SITE_POTENTIAL_TERMS = {"with charges": dict(coulomb_cutoff=6.0, coulomb_damping=0.3),
                        "with local potential": dict(local_potential_hidden=8)}
WITH_AND_WITHOUT_TERMS = {"without terms": {}, **SITE_POTENTIAL_TERMS}


@pytest.mark.parametrize("improper", [False, True], ids=["rotation", "rotation+inversion"])
@pytest.mark.parametrize("structure", ["periodic", "cluster"])
@pytest.mark.parametrize("terms", WITH_AND_WITHOUT_TERMS.values(), ids=WITH_AND_WITHOUT_TERMS.keys())
def test_equivariant_model_rotates_exactly_in_float64(structure, improper, terms, periodic_record):
    model = small_model("equivariant", **terms)
    record = periodic_record if structure == "periodic" else random_record(bn_cluster(), seed=1)
    prediction = model.predict(record)
    assert np.abs(prediction.h_values).max() > 1e-2, "a non-trivial prediction"
    assert max(prediction.hermiticity_error()) < 1e-12
    for seed in range(3):
        error = rotation_error(model, record, random_rotation(np.random.default_rng(seed), improper))
        assert error["h_max_eV"] < 1e-10 and error["s_max"] < 1e-10


@pytest.mark.parametrize("terms", SITE_POTENTIAL_TERMS.values(), ids=SITE_POTENTIAL_TERMS.keys())
def test_a_new_model_has_the_h_of_the_same_model_without_the_term(terms, periodic_record):
    """The terms' last weights start at zero."""
    def built(**fields):
        torch.manual_seed(3)
        return build_model("equivariant", EquivariantConfig(r_max=3.0, channels=4, readout_channels=4,
                                                            edge_cutoff=4.5, **fields), BN_BASIS, torch.float64)

    with_term, without = built(**terms), built()
    np.testing.assert_array_equal(with_term.predict(periodic_record).h_values, without.predict(periodic_record).h_values)


def test_equivariant_model_rotates_to_1e4_relative_in_float32(periodic_record):
    model = small_model("equivariant", dtype=torch.float32)
    for improper in (False, True):
        error = rotation_error(model, periodic_record, random_rotation(np.random.default_rng(5), improper))
        assert error["h_relative"] < 1e-4 and error["s_relative"] < 1e-4


def test_baseline_is_not_equivariant_and_says_by_how_much(periodic_record, record_property):
    model = small_model("baseline")
    error = rotation_error(model, periodic_record, random_rotation(np.random.default_rng(0)))
    record_property("baseline_relative_rotation_error_H", error["h_relative"])
    assert error["h_relative"] > 1e-3, "the MLP heads see Cartesian vectors: rotations change their output"


# ------------------------------------------------------------------ symmetry, sisl
@pytest.mark.parametrize("kind", KINDS)
def test_predictions_are_hermitian_with_symmetric_on_site_blocks(kind, periodic_record):
    prediction = small_model(kind).predict(periodic_record)
    h_error, s_error = prediction.hermiticity_error()
    assert h_error < 1e-12 and s_error < 1e-12
    for b in np.flatnonzero((prediction.pairs[:, 0] == prediction.pairs[:, 1]) & ~prediction.shifts.any(axis=1)):
        h, s = prediction.block(b)
        np.testing.assert_allclose(h[:, :, 0], h[:, :, 0].T, atol=1e-12)
        np.testing.assert_allclose(s, s.T, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_prediction_round_trips_through_sisl_with_real_eigenvalues(kind, periodic_record):
    prediction = small_model(kind).predict(periodic_record)
    hamiltonian = record_to_sisl(prediction)
    assert records_equal(record_from_sisl(hamiltonian, basis=BN_BASIS), prediction, atol=1e-12)
    for k in np.random.default_rng(0).uniform(-0.5, 0.5, size=(3, 3)):
        hk, sk = hamiltonian.Hk(k=k, format="array"), hamiltonian.Sk(k=k, format="array")
        np.testing.assert_allclose(hk, hk.conj().T, atol=1e-12)
        np.testing.assert_allclose(sk, sk.conj().T, atol=1e-12)
        assert np.abs(np.linalg.eigvals(hk).imag).max() < 1e-8
        np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(hk)),
                                   np.sort(np.linalg.eigvalsh(prediction.matrices_at_k(k)[0])), atol=1e-10)


# ------------------------------------------------------------------ blocks and batches
@pytest.mark.parametrize("kind", KINDS)
def test_batched_structures_give_the_same_blocks_as_one_at_a_time(kind, periodic_record):
    model = small_model(kind)
    cluster = random_record(bn_cluster(), seed=1)
    one = [model(model.graph([r])) for r in (periodic_record, cluster)]
    both = model(model.graph([periodic_record, cluster]))
    for matrix in ("h", "s"):
        separate = torch.cat([getattr(o, matrix) for o in one]).detach().numpy()
        np.testing.assert_allclose(getattr(both, matrix).detach().numpy(), separate, atol=1e-12)


def test_blocks_fade_to_zero_at_the_edge_cutoff():
    model = small_model("equivariant")
    cutoff = model.config.edge_cutoff
    sizes = []
    for distance in (0.5 * cutoff, 0.99 * cutoff, 0.999 * cutoff):
        atoms = bn_cluster()[:2]
        atoms.positions[1] = [distance, 0, 0]
        prediction = model.predict(atoms)
        off_site = np.flatnonzero(prediction.pairs[:, 0] != prediction.pairs[:, 1])
        sizes.append(max(np.abs(prediction.block(b)[0]).max() for b in off_site))
    assert sizes[2] < sizes[1] < 1e-3 * sizes[0]


def test_predict_on_atoms_uses_every_pair_within_the_cutoff(periodic_record):
    model = small_model("baseline")
    prediction = model.predict(periodic_record.atoms)
    distances = np.linalg.norm(prediction.pair_vectors, axis=1)
    assert distances.max() < model.config.edge_cutoff
    assert prediction.n_blocks == len(StructureBlocks.of_atoms(periodic_record.atoms, BN_BASIS, 4.5).pairs)


def test_blocks_without_their_hermitian_partner_are_refused(periodic_record):
    item = StructureBlocks.of_record(periodic_record, cutoff=4.5)
    off_site = np.flatnonzero(item.pairs[:, 0] != item.pairs[:, 1])[0]
    keep = np.arange(len(item.pairs)) != off_site
    broken = StructureBlocks(item.atoms, item.species, item.pairs[keep], item.shifts[keep])
    with pytest.raises(ValueError, match="no \\(j, i, -R\\) partner"):
        build_model_graph([broken], BN_BASIS, r_max=3.0)


def test_an_element_without_a_basis_is_named():
    atoms = bn_cluster()
    atoms[0].symbol = "C"
    with pytest.raises(MissingBasisError, match="'C'"):
        small_model("baseline").predict(atoms)


# ------------------------------------------------------------------ sizes
@pytest.mark.parametrize("coulomb_cutoff", [None, 6.0], ids=["", "with charges"])
def test_baseline_budget_matches_the_equivariant_parameter_count(coulomb_cutoff):
    tiny = {**_tiny(), "coulomb_cutoff": coulomb_cutoff}
    equivariant = build_model("equivariant", EquivariantConfig(**tiny), BN_BASIS)
    config = baseline_config_for_budget(BaselineConfig(**tiny), BN_BASIS, equivariant.parameter_count())
    baseline = build_model("baseline", config, BN_BASIS)
    assert (baseline.charges is None) == (coulomb_cutoff is None)
    assert abs(baseline.parameter_count() / equivariant.parameter_count() - 1) < 0.02
    parts = parameter_breakdown(baseline)
    assert sum(v for k, v in parts.items() if k != "total") == parts["total"] and "descriptor" in parts


def _tiny() -> dict:
    return dict(r_max=3.0, channels=4, edge_cutoff=4.5)


def test_unknown_model_kind_is_named():
    with pytest.raises(ValueError, match="unknown model kind 'mlp'"):
        build_model("mlp", BaselineConfig(), BN_BASIS)


@pytest.mark.parametrize("config_class", [EquivariantConfig, BaselineConfig])
@pytest.mark.parametrize("fields, named", [
    (dict(network_cutoff=0.0), "network_cutoff"),
    (dict(three_center_cutoff=-1.0), "three_center_cutoff"),
    (dict(coulomb_cutoff=0.0), "coulomb_cutoff"),
    (dict(coulomb_cutoff=10.0, coulomb_damping=-0.25), "coulomb_damping"),
    (dict(coulomb_cutoff=float("nan")), "coulomb_cutoff"),
])
def test_a_non_positive_cutoff_or_damping_is_named(config_class, fields, named):
    with pytest.raises(ValueError, match=named):
        config_class(**fields)
    config_class(**{key: None if key.endswith("cutoff") else 0.25 for key in fields})  # None turns a term off


# ------------------------------------------------------------------ saving and loading
@pytest.mark.parametrize("kind", KINDS)
def test_saved_and_loaded_model_predicts_bit_identically(kind, periodic_record, tmp_path):
    model = small_model(kind, dtype=torch.float32)
    path = io.write_model(model, tmp_path / "model.pt", metadata={"epochs": 3})
    loaded = io.read_model(path)
    before, after = model.predict(periodic_record), loaded.predict(periodic_record)
    assert np.array_equal(before.h_values, after.h_values) and np.array_equal(before.s_values, after.s_values)
    assert loaded.config == model.config and loaded.dtype == torch.float32
    assert io.read_model_metadata(path) == {"epochs": 3}


def test_a_model_file_from_before_the_priors_loads_without_them(periodic_record, tmp_path):
    model = small_model("equivariant", two_center=False, crystal_field=False, network_cutoff=None,
                        three_center_cutoff=None, coulomb_cutoff=None)
    path = io.write_model(model, tmp_path / "model.pt")
    content = torch.load(path, weights_only=True)
    for field in ("two_center", "crystal_field", "network_cutoff", "three_center_cutoff", "coulomb_cutoff",
                  "coulomb_damping"):  # what an older hforge-nb wrote
        del content["config"][field]
    torch.save(content, path)
    loaded = io.read_model(path)
    assert loaded.config == model.config
    assert loaded.network_cutoff == loaded.config.edge_cutoff  # the networks reach every pair, as then
    assert np.array_equal(loaded.predict(periodic_record).s_values, model.predict(periodic_record).s_values)


@pytest.mark.parametrize("content", ["junk", "record", "truncated", "foreign"])
def test_reading_a_file_that_is_not_a_model_says_so(content, periodic_record, tmp_path):
    path = tmp_path / "not-a-model.pt"
    if content == "junk":
        path.write_bytes(b"\x00 not a model")
    elif content == "record":
        io.write_record(periodic_record, tmp_path / "r.npz")
        path.write_bytes((tmp_path / "r.npz").read_bytes())
    elif content == "truncated":
        io.write_model(small_model("baseline"), tmp_path / "m.pt")
        path.write_bytes((tmp_path / "m.pt").read_bytes()[:5000])
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CorruptFileError, match="not-a-model.pt"):
        io.read_model(path)


def test_a_failed_save_keeps_the_previous_model(tmp_path):
    model = small_model("baseline")
    path = io.write_model(model, tmp_path / "model.pt")
    before = path.read_bytes()
    with pytest.raises(TypeError, match="plain data"):
        io.write_model(model, path, metadata={"bad": object()})
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


# ------------------------------------------------------------------ normalization
def test_fitted_statistics_make_features_and_targets_unit_sized(periodic_record):
    model = small_model("equivariant")  # fitted on random_record(hbn_atoms(rattle=0.05), seed=0)
    fitted_on = random_record(hbn_atoms(rattle=0.05), seed=0)
    features = model.node_features(model.graph([fitted_on])).detach()
    chunk = model.descriptor.feature_chunk
    for k in range(int(chunk.max()) + 1):
        assert features[:, chunk == k].square().mean().sqrt().item() == pytest.approx(1.0, rel=1e-6)
    output = model.outputs["h:B"]
    boron_on_site = fitted_on.find_blocks([[0, 0], [2, 2]], np.zeros((2, 3), int))
    blocks = torch.as_tensor(np.stack([fitted_on.block(b)[0][:, :, 0].ravel() for b in boron_on_site]))
    normalized = ((blocks @ output.change.T) - output.shift) / output.scale
    assert output.shift[~output.invariant].abs().max() == 0, "only invariants are shifted"
    for instance in torch.unique(output.instance[output.scale > 1e-6]):  # others vanish by symmetry (1e of p-p)
        assert normalized[:, output.instance == instance].square().mean().sqrt().item() == pytest.approx(1.0, rel=1e-6)
