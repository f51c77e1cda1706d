"""The learned local potential per atom and the term it adds to H (:mod:`hforge_nb.models.local_potential`)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import BN_BASIS, hbn_atoms, random_record, small_model

from hforge_nb.evaluation import aligned_values
from hforge_nb.inference import ChunkConfig, predict_large
from hforge_nb.models import BaselineConfig, EquivariantConfig, baseline_config_for_budget, build_model
from hforge_nb.models.local_potential import LocalPotential

LOCAL = dict(local_potential_hidden=8)


@pytest.fixture(scope="module")
def periodic_record():
    return random_record(hbn_atoms(rattle=0.08, seed=3), seed=2)


@pytest.mark.parametrize("kind", ["equivariant", "baseline"])
def test_the_term_is_minus_the_mean_potential_times_s(kind, periodic_record):
    """H = H with the term's last layers zeroed - (V_i + V_j) / 2 S_ij, V from each atom's own species MLP."""
    model = small_model(kind, **LOCAL)
    plain_model = copy.deepcopy(model)
    with torch.no_grad():
        for mlp in plain_model.local_potential.mlps:
            mlp[-1].weight.zero_()
            mlp[-1].bias.zero_()
    with_term, plain = model.predict(periodic_record), plain_model.predict(periodic_record)
    graph = model.graph([periodic_record])
    features = model.node_features(graph).detach()
    scalars = features[:, model.local_potential.scalar_index]
    species = graph.species_index.numpy()
    with torch.no_grad():
        potentials = np.array([float(model.local_potential.mlps[s](scalars[a])[0]) for a, s in enumerate(species)])
    assert np.ptp(potentials) > 0.1  # the atoms' potentials differ: the test sees the term
    mean = 0.5 * (potentials[plain.pairs[:, 0]] + potentials[plain.pairs[:, 1]])  # [n_blocks] V
    expected = plain.h_values[:, 0] - np.repeat(mean, np.diff(plain.block_offsets)) * plain.s_values
    np.testing.assert_allclose(with_term.h_values[:, 0], expected, atol=1e-10)
    np.testing.assert_array_equal(with_term.s_values, plain.s_values)


def test_chunked_prediction_keeps_the_term_with_the_charges():
    """Both site potentials together, from node features computed without a graph (large structures)."""
    model = small_model("equivariant", coulomb_cutoff=6.0, coulomb_damping=0.3, **LOCAL)
    supercell = hbn_atoms(rattle=0.08, seed=4).repeat((2, 2, 1))
    whole = model.predict(supercell)
    chunked = predict_large(model, supercell, ChunkConfig(chunk_atoms=7, feature_chunk_atoms=7))
    h, s = aligned_values(chunked, whole)
    np.testing.assert_allclose(h, whole.h_values[:, 0], atol=1e-10)
    np.testing.assert_allclose(s, whole.s_values, atol=1e-12)


def test_the_baseline_budget_counts_the_term_once():
    """With the term in both models the baseline's heads get the width they get without it in either."""
    fields = dict(r_max=3.0, channels=4, edge_cutoff=4.5)
    wide_term = dict(local_potential_hidden=256)  # more parameters than one unit of the heads' width
    counts = {}
    for name, extra in (("without", {}), ("with", wide_term)):
        equivariant = build_model("equivariant", EquivariantConfig(**fields, **extra, readout_channels=4), BN_BASIS)
        config = baseline_config_for_budget(BaselineConfig(**fields, **extra), BN_BASIS, equivariant.parameter_count())
        counts[name] = (equivariant.parameter_count(), config.hidden, build_model("baseline", config, BN_BASIS))
    term = counts["with"][2].local_potential.parameter_count()
    assert counts["with"][0] - counts["without"][0] == term
    assert counts["with"][1] == counts["without"][1]
    assert counts["with"][2].parameter_count() - counts["without"][2].parameter_count() == term
    step = build_model("baseline", BaselineConfig(**fields, hidden=counts["without"][1] + 1), BN_BASIS)
    assert term > step.parameter_count() - counts["without"][2].parameter_count()  # else the test could not fail


@pytest.mark.parametrize("hidden", [-1, 2.5, True])
def test_a_bad_width_is_refused(hidden):
    with pytest.raises(ValueError, match="local_potential_hidden"):
        EquivariantConfig(local_potential_hidden=hidden)
    if hidden == -1:
        with pytest.raises(ValueError, match="hidden width"):
            LocalPotential(2, torch.tensor([0]), 0)
