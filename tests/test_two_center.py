"""The two-center prior: it recovers two-center data, is equivariant, and describes GPAW's overlap."""

import numpy as np
import pytest
import torch
from conftest import BN_BASIS

from hforge_nb import dataset
from hforge_nb._compat import import_o3
from hforge_nb.block_irreps import block_irreps
from hforge_nb.model_graph import StructureBlocks, build_model_graph, stack_targets
from hforge_nb.models import BlockOutput
from hforge_nb.models.two_center import TwoCenterPrior
from hforge_nb.paths import project_path


def _random_vectors(n: int, low: float, high: float, seed: int) -> torch.Tensor:
    """``[n, 3]`` Å, random directions, lengths uniform in [low, high]."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return torch.as_tensor(directions * rng.uniform(low, high, size=(n, 1)))


def _two_center_irreps(prior: TwoCenterPrior, vectors: torch.Tensor) -> torch.Tensor:
    """Irreps of blocks that are exactly two-center: f_c(r) = a_c exp(-r) cos(b_c r)."""
    rng = np.random.default_rng(1)
    a, b = (torch.as_tensor(rng.uniform(0.5, 2.0, prior.n_parts)) for _ in range(2))
    r = vectors.norm(dim=1, keepdim=True)
    f = a[prior.part_of] * torch.exp(-r) * torch.cos(b[prior.part_of] * r)  # [n, dim]
    return f * prior.harmonics(vectors)


def test_prior_recovers_two_center_blocks_between_the_data():
    b, n = BN_BASIS["B"], BN_BASIS["N"]
    prior = TwoCenterPrior(b, n, cutoff=8.0).double()  # the envelope is near one where the data are
    data = _random_vectors(4000, 1.0, 4.5, seed=0)
    prior.fit(_two_center_irreps(prior, data), data)
    unseen = _random_vectors(500, 1.2, 4.3, seed=2)
    expected = _two_center_irreps(prior, unseen)
    error = (prior(unseen) - expected).abs().max()
    assert error < 2e-3 * expected.abs().max()  # linear interpolation on a 0.05 Å grid
    assert (prior(unseen)[:, ~prior.allowed] == 0).all()  # the parity the two-center form forbids


def test_prior_is_equivariant_under_rotations_and_inversion():
    b, n = BN_BASIS["B"], BN_BASIS["N"]
    prior = TwoCenterPrior(b, n, cutoff=5.0).double()
    vectors = _random_vectors(300, 1.0, 4.5, seed=3)
    prior.fit(torch.randn(300, prior.table.shape[1], dtype=torch.float64), vectors)  # any table
    o3 = import_o3()
    rotation = o3.rand_matrix(dtype=torch.float64)
    irreps = o3.Irreps(block_irreps(b, n))
    for matrix in (rotation, -rotation):  # proper rotation, then with inversion
        wigner = irreps.D_from_matrix(matrix)
        torch.testing.assert_close(prior(vectors @ matrix.T), prior(vectors) @ wigner.T, atol=1e-10, rtol=0)


def test_gpaw_overlap_is_two_center_to_1e_4():
    """Fitted on the committed 8- and 16-atom cells, the prior alone predicts the 32-atom cell's off-site S."""
    samples = dataset.read_samples(project_path("data/aBN-dzp"))
    train = [samples[f"aBN-00{size:02d}-train-0{k}"] for size in (8, 16) for k in range(4)]
    basis = train[0].basis
    fitted, held_out = _off_site_overlaps(train), _off_site_overlaps([samples["aBN-0032-holdout-00"]])
    errors, sizes = [], []
    for key, (blocks, vectors) in held_out.items():
        row, col = key.split("-")
        output = BlockOutput(basis[row], basis[col], cutoff=9.0).double()
        output.fit(*fitted[key])
        errors.append(float((output.two_center(vectors) @ output.change - blocks).abs().mean()))
        sizes.append(float(blocks.abs().mean()))
    assert max(errors) < 1e-4, errors
    assert max(errors) < 0.05 * min(sizes)  # twenty times below the blocks' own size


def _off_site_overlaps(records) -> dict:
    """Reference S blocks ``[n, n_i * n_j]`` and pair vectors ``[n, 3]`` Å of every off-site species pair."""
    items = [StructureBlocks.of_record(r, 9.0) for r in records]
    graph = build_model_graph(items, records[0].basis, 5.0).to(torch.float64)
    _, s = stack_targets(items, torch.float64)
    vectors = graph.block_vectors()
    return {key: (s[group.values], vectors[group.blocks]) for key, group in graph.off_site.items()}


@pytest.mark.parametrize("kind", ["equivariant", "baseline"])
def test_models_without_the_prior_have_none(kind):
    from hforge_nb.models import BaselineConfig, EquivariantConfig, build_model

    config = (EquivariantConfig(r_max=3.0, channels=4, edge_cutoff=4.5, two_center=False) if kind == "equivariant"
              else BaselineConfig(r_max=3.0, channels=4, edge_cutoff=4.5, hidden=16, two_center=False))
    model = build_model(kind, config, BN_BASIS)
    assert all(output.two_center is None for output in model.outputs.values())


@pytest.mark.parametrize("kind", ["equivariant", "baseline"])
def test_blocks_beyond_the_network_cutoff_are_the_priors_alone(kind):
    """New network weights change the blocks within ``network_cutoff`` and not one beyond it."""
    import copy

    from conftest import hbn_atoms, random_record, small_model

    model = copy.deepcopy(small_model(kind, network_cutoff=3.0))
    assert model.network_cutoff == 3.0
    record = random_record(hbn_atoms(rattle=0.05), seed=3)
    before = model.predict(record)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    after = model.predict(record)
    distances = np.repeat(np.linalg.norm(before.pair_vectors, axis=1), np.diff(before.block_offsets))
    on_site = before.per_value(before.on_site)
    far, near = ~on_site & (distances > 3.0), ~on_site & (distances < 3.0)
    assert far.sum() > 1000 and near.sum() > 1000
    np.testing.assert_array_equal(after.h_values[far], before.h_values[far])
    np.testing.assert_array_equal(after.s_values[far], before.s_values[far])
    assert np.abs(after.h_values[near] - before.h_values[near]).min() > 0


@pytest.mark.parametrize("kind", ["equivariant", "baseline"])
def test_network_terms_vanish_smoothly_at_the_network_cutoff(kind):
    from conftest import small_model

    model = small_model(kind, network_cutoff=3.0)
    features = torch.randn(2, model.descriptor.irreps_out.dim, dtype=torch.float64)
    direction = torch.tensor([[0.48, -0.6, 0.64]], dtype=torch.float64)
    terms = [model.off_site("B-N", features[:1], features[1:], direction * length) for length in (1.5, 2.999)]
    assert terms[0].h.abs().max() > 0 and terms[0].s.abs().max() > 0
    for inside, at_cutoff in zip(*terms):  # blocks, then contributions to on-site blocks
        assert at_cutoff.abs().max() <= 1e-6 * inside.abs().max()


def test_network_cutoff_applies_only_with_the_two_center_prior():
    from conftest import small_model

    assert small_model("equivariant", network_cutoff=3.0, two_center=False).network_cutoff == 4.5  # edge_cutoff
    assert small_model("equivariant", network_cutoff=None).network_cutoff == 4.5
    with pytest.raises(ValueError, match="network_cutoff"):
        small_model("equivariant", network_cutoff=-1.0)
