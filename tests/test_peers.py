"""graph2mat on our data: labels match our values, its model sees our orbital convention, it trains."""

import dataclasses

import numpy as np
import pytest

from hforge_nb import dataset
from hforge_nb.paths import project_path
from hforge_nb.rotations import rotate_record

peers = pytest.importorskip("hforge_nb.peers")
pytest.importorskip("graph2mat", reason="graph2mat is not installed; pip install -e '.[bench]'")

SMALL = peers.Graph2MatConfig(channels=4, edge_channels=2, max_ell=2, num_interactions=1, epochs=3,
                              learning_rate=1e-2)


@pytest.fixture(scope="module")
def cell():
    """The committed 8-atom test cell, its graph2mat processor and on-site means."""
    record = dataset.read_samples(project_path("data/aBN-dzp"), "train")["aBN-0008-train-05"]
    return record, peers.graph2mat_processor(record), peers.mean_on_site_blocks([record])


def test_labels_are_our_values_on_overlapping_pairs(cell):
    record, processor, means = cell
    batch = peers.graph2mat_data(record, processor, means)
    errors = peers.score_h(record, record.h_values[:, 0] + 0.004, batch, processor, means)
    assert errors["mae_meV"] == pytest.approx(4.0, abs=1e-3)  # a uniform 4 meV shift, on every label
    assert errors["on_site_mae_meV"] == pytest.approx(4.0, abs=1e-3)
    back = peers.labels_to_values(record, processor, peers.reference_labels(peers.graph2mat_data(
        record, processor, {z: np.zeros(1) for z in means})))
    covered = back != 0
    assert covered.mean() > 0.9  # graph2mat's edges hold nearly every stored block
    np.testing.assert_allclose(back[covered], record.h_values[covered, 0], atol=1e-5)  # float32 labels


def test_graph2mat_model_is_equivariant_in_our_orbital_convention(cell):
    """Rotating the structure rotates graph2mat's prediction block by block, D_i H_ij D_j^T."""
    record, processor, means = cell
    model = peers.build_graph2mat_model(processor, SMALL)
    rotation = np.linalg.qr(np.random.default_rng(4).normal(size=(3, 3)))[0]
    zero = {z: np.zeros(1) for z in means}

    def predicted(rec):
        labels = peers.predict_labels(model, peers.graph2mat_data(rec, processor, zero))
        return dataclasses.replace(rec, h_values=peers.labels_to_values(rec, processor, labels)[:, None])

    rotated_prediction = rotate_record(predicted(record), rotation)
    prediction_of_rotated = predicted(rotate_record(record, rotation))
    scale = np.abs(prediction_of_rotated.h_values).max()
    assert np.abs(rotated_prediction.h_values - prediction_of_rotated.h_values).max() < 1e-4 * scale


def test_graph2mat_training_lowers_its_loss(cell):
    record, processor, means = cell
    model = peers.build_graph2mat_model(processor, SMALL)
    training = peers.train_graph2mat(model, [peers.graph2mat_data(record, processor, means)], SMALL)
    assert training.losses[-1] < training.losses[0]
    assert training.seconds > 0


def test_budget_picks_the_closest_width(cell):
    _, processor, _ = cell
    small = peers.parameter_count(peers.build_graph2mat_model(processor, dataclasses.replace(SMALL, channels=6)))
    assert peers.graph2mat_config_for_budget(processor, small, SMALL).channels == 6
