"""Training: the loss falls, runs resume exactly, damaged checkpoints are named and nothing is lost."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import BN_BASIS, SMALL_MODEL, hbn_atoms, random_record

from hforge_nb.errors import CorruptFileError
from hforge_nb.models import BaselineConfig, EquivariantConfig, build_fitted_model
from hforge_nb.training import (BlockLoss, TrainingConfig, ValueClasses, atom_shifts, cell_shifts,
                                classes_without_spread,
                                make_batch, read_checkpoint, train)
from hforge_nb.model_graph import StructureBlocks
from hforge_nb.rotations import random_rotation, rotate_record
from hforge_nb.spectral_loss import spectral_target


@pytest.fixture(scope="module")
def records():
    train_set = [random_record(hbn_atoms(rattle=0.05, seed=k), seed=k) for k in range(2)]
    return train_set, [random_record(hbn_atoms(rattle=0.05, seed=9), seed=9)]


def fresh_model(kind: str, records, seed: int = 0):
    config = (EquivariantConfig(**SMALL_MODEL, readout_channels=4) if kind == "equivariant"
              else BaselineConfig(**SMALL_MODEL, hidden=16))
    return build_fitted_model(kind, config, records, dtype=torch.float64, seed=seed)


def _loss(model, records, loss=None):
    classes = ValueClasses(BN_BASIS)
    batches = [make_batch([StructureBlocks.of_record(r, model.config.edge_cutoff)], model, classes) for r in records]
    loss = loss or BlockLoss.fit(batches, classes.n_classes, s_weight=1.0)
    with torch.no_grad():
        return loss, float(np.mean([float(loss(model(b.graph), b)) for b in batches]))


def _element_means(values, elements):
    """Each value replaced by the mean of its block element, by hand."""
    result = torch.empty_like(values)
    for element in torch.unique(elements):
        result[elements == element] = values[elements == element].mean()
    return result


@pytest.mark.parametrize("shell_width", [0.0, 1.0])
def test_the_normalized_loss_of_predicting_each_elements_mean_is_one_per_matrix(records, shell_width):
    model = fresh_model("baseline", records[0])
    classes = ValueClasses(BN_BASIS, shell_width, model.config.edge_cutoff)
    batch = make_batch([StructureBlocks.of_record(r, model.config.edge_cutoff) for r in records[0]], model, classes)
    loss = BlockLoss.fit([batch], classes.n_classes, s_weight=1.0)
    means = type("Means", (), {"h": _element_means(batch.h, batch.elements), "s": _element_means(batch.s, batch.elements)})
    # every class is divided by its own spread around the element means: mean square 1 for H and 1 for S
    assert float(loss(means, batch)) == pytest.approx(2.0, rel=1e-10)
    zero = type("Zero", (), {"h": torch.zeros_like(batch.h), "s": torch.zeros_like(batch.s)})
    assert float(loss(zero, batch)) > 2.0  # on-site orbital energies are far from zero


def test_the_absolute_h_term_adds_the_weighted_mean_square_error_in_ev(records):
    model = fresh_model("baseline", records[0])
    classes = ValueClasses(BN_BASIS)
    batch = make_batch([StructureBlocks.of_record(records[0][0], model.config.edge_cutoff)], model, classes)
    plain = BlockLoss.fit([batch], classes.n_classes, s_weight=1.0)
    weighted = BlockLoss.fit([batch], classes.n_classes, s_weight=1.0, h_absolute_weight=3.0)
    off = torch.zeros_like(batch.h)
    off[::2] = 0.1  # eV on every second value: mean square 0.005 eV^2 (an even count of values)
    prediction = type("Off", (), {"h": batch.h + off, "s": batch.s})
    assert len(batch.h) % 2 == 0
    assert float(weighted(prediction, batch) - plain(prediction, batch)) == pytest.approx(3.0 * 0.005, rel=1e-10)


def test_a_free_cell_shift_leaves_each_structures_c_s_to_its_own_weight(records):
    model = fresh_model("baseline", records[0])
    classes = ValueClasses(BN_BASIS)
    items = [StructureBlocks.of_record(r, model.config.edge_cutoff) for r in records[0][:2]]
    batch = make_batch(items, model, classes)
    plain = BlockLoss.fit([batch], classes.n_classes, s_weight=1.0, h_absolute_weight=3.0)
    free = BlockLoss.fit([batch], classes.n_classes, s_weight=1.0, h_absolute_weight=3.0, cell_shift_weight=0.5)
    off = 0.02 * torch.as_tensor(np.random.default_rng(0).normal(size=len(batch.h)), dtype=batch.h.dtype)
    shift = torch.cat([c * batch.s[values] for c, values in zip((0.3, -0.1), batch.structures)])  # eV
    noisy = type("Noisy", (), {"h": batch.h + off, "s": batch.s})
    shifted = type("Shifted", (), {"h": batch.h + off + shift, "s": batch.s})
    fitted = cell_shifts(shifted.h - batch.h, batch.s, batch.structures)
    assert torch.allclose(fitted - cell_shifts(off, batch.s, batch.structures),
                          torch.tensor([0.3, -0.1], dtype=fitted.dtype), atol=1e-6)
    assert float(free(shifted, batch) - free(noisy, batch)) == pytest.approx(
        0.5 * float(fitted.square().mean() - cell_shifts(off, batch.s, batch.structures).square().mean()), rel=1e-4)
    assert float(plain(shifted, batch) - plain(noisy, batch)) > 1e-3  # without it, the H losses see the shift


def _on_site_shift(items, per_atom: np.ndarray) -> torch.Tensor:
    """``[n_values]`` eV: ``per_atom[a]`` times atom a's own S block on its on-site block, zero elsewhere, by hand."""
    parts, first_atom = [], 0
    for item in items:
        shapes = np.array([[BN_BASIS[item.species[i]].n_orbitals, BN_BASIS[item.species[j]].n_orbitals]
                           for i, j in item.pairs])
        sizes = shapes.prod(axis=1)
        on_site = (item.pairs[:, 0] == item.pairs[:, 1]) & (item.shifts == 0).all(axis=1)
        factor = np.where(on_site, per_atom[first_atom + item.pairs[:, 0]], 0.0)  # [n_blocks] eV
        parts.append(np.repeat(factor, sizes) * item.s_values)
        first_atom += len(item.atoms)
    return torch.as_tensor(np.concatenate(parts))


def test_atom_shifts_find_each_atoms_c_times_its_own_s_block(records):
    model = fresh_model("baseline", records[0])
    classes = ValueClasses(BN_BASIS)
    items = [StructureBlocks.of_record(r, model.config.edge_cutoff) for r in records[0][:2]]
    batch = make_batch(items, model, classes)
    per_atom = np.random.default_rng(1).normal(0.0, 0.2, batch.graph.n_atoms)  # eV
    fitted = atom_shifts(_on_site_shift(items, per_atom), batch.s, batch.graph)
    ends = np.cumsum([len(item.atoms) for item in items])
    expected = np.concatenate([c - c.mean() for c in np.split(per_atom, ends[:-1])])  # less each structure's mean
    np.testing.assert_allclose(fitted.numpy(), expected, atol=1e-12)
    constant = atom_shifts(_on_site_shift(items, np.full(batch.graph.n_atoms, 0.3)), batch.s, batch.graph)
    assert float(constant.abs().max()) < 1e-12  # one c for every atom of a structure costs nothing


def test_the_atom_shift_term_adds_its_weight_times_the_mean_square_shift(records):
    model = fresh_model("baseline", records[0])
    classes = ValueClasses(BN_BASIS)
    items = [StructureBlocks.of_record(r, model.config.edge_cutoff) for r in records[0][:2]]
    batch = make_batch(items, model, classes)
    plain = BlockLoss.fit([batch], classes.n_classes, s_weight=1.0)
    weighted = BlockLoss.fit([batch], classes.n_classes, s_weight=1.0, atom_shift_weight=2.0)
    per_atom = np.random.default_rng(2).normal(0.0, 0.1, batch.graph.n_atoms)
    shifted = type("Shifted", (), {"h": batch.h + _on_site_shift(items, per_atom), "s": batch.s})
    ends = np.cumsum([len(item.atoms) for item in items])
    spread = np.mean(np.concatenate([np.square(c - c.mean()) for c in np.split(per_atom, ends[:-1])]))
    assert float(weighted(shifted, batch) - plain(shifted, batch)) == pytest.approx(2.0 * spread, rel=1e-9)


def test_distance_shells_split_the_loss_classes_of_one_group(records):
    model = fresh_model("baseline", records[0])
    classes = ValueClasses(BN_BASIS, 1.0, model.config.edge_cutoff)
    graph = make_batch([StructureBlocks.of_record(records[0][0], model.config.edge_cutoff)], model, classes).graph
    shells = classes.shells(graph)
    distances = torch.linalg.norm(graph.block_vectors(), dim=1)
    assert (shells == torch.ceil(distances).long().clamp(max=classes.n_shells - 1)).all()
    of, elements = classes.of(graph), classes.elements(graph)
    for _, group in graph.groups():
        near, far = int(shells[group.blocks].min()), int(shells[group.blocks].max())
        if near != far:  # the same orbital pair at two distances: two classes, two elements
            first_near = group.values[shells[group.blocks] == near][0]
            first_far = group.values[shells[group.blocks] == far][0]
            assert (of[first_near] != of[first_far]).all() and (elements[first_near] != elements[first_far]).all()
    assert int(of.max()) < classes.n_classes


def test_spread_floors_bound_the_loss_scales(records):
    model = fresh_model("baseline", records[0])
    classes = ValueClasses(BN_BASIS, 1.0, model.config.edge_cutoff)
    batch = make_batch([StructureBlocks.of_record(records[0][0], model.config.edge_cutoff)], model, classes)
    loss = BlockLoss.fit([batch], classes.n_classes, 1.0, h_floor=0.05, s_floor=0.01)
    assert float(loss.h_scale.min()) >= 0.05 and float(loss.s_scale.min()) >= 0.01


def _alike_on_site(record):
    """``record`` with every atom's on-site H block that of the first atom of its species (a symmetric cell's).

    That first block is raised by 5 eV (on its diagonal and off it) before it is copied, so its values are large.
    """
    h = record.h_values.copy()
    offsets, first = record.block_offsets, {}
    for block in np.flatnonzero(record.on_site):
        source = first.setdefault(record.species[record.pairs[block, 0]], block)
        h[offsets[block]:offsets[block + 1]] = h[offsets[source]:offsets[source + 1]] + 5.0 * (block == source)
    return dataclasses.replace(record, h_values=h)


def test_classes_that_do_not_vary_over_the_training_cells_are_named(records, tmp_path):
    model = fresh_model("baseline", records[0])
    classes = ValueClasses(BN_BASIS)
    alike = _alike_on_site(records[0][0])
    batch = make_batch([StructureBlocks.of_record(alike, model.config.edge_cutoff)], model, classes)
    flat = classes_without_spread([batch], classes.n_classes, 1e-3)
    channels = ("s-s", "s-p", "s-d", "p-p", "p-d", "d-d")
    assert [classes.name(int(c)) for c in flat] == [f"{species} {channel}" for species in "BN" for channel in channels]
    varied = make_batch([StructureBlocks.of_record(records[0][0], model.config.edge_cutoff)], model, classes)
    assert len(classes_without_spread([varied], classes.n_classes, 1e-3)) == 0
    with pytest.warns(UserWarning, match=r"12 loss classes \(B s-s, B s-p, B s-d, B p-p, \.\.\.\) hardly vary"):
        train(model, [alike], records[1], TrainingConfig(epochs=1), tmp_path, progress=False)


def test_block_elements_are_the_same_position_in_blocks_of_one_group(records):
    model = fresh_model("baseline", records[0])
    classes = ValueClasses(BN_BASIS)
    graph = make_batch([StructureBlocks.of_record(records[0][0], model.config.edge_cutoff)], model, classes).graph
    elements = classes.elements(graph)
    for _, group in graph.groups():
        assert (elements[group.values] == elements[group.values[0]]).all()  # [n_blocks, dim]: rows repeat
        assert len(torch.unique(elements[group.values[0]])) == group.values.shape[1]


@pytest.mark.parametrize("kind", ["equivariant", "baseline"])
def test_a_few_steps_lower_the_loss(kind, records, tmp_path):
    train_set, _ = records
    model = fresh_model(kind, train_set)
    loss, before = _loss(model, train_set)
    train(model, train_set, train_set, TrainingConfig(epochs=4, learning_rate=1e-2), tmp_path, progress=False)
    _, after = _loss(model, train_set, loss)
    assert after < 0.95 * before, (before, after)


def test_training_with_the_spectral_loss_lowers_it(records, tmp_path):
    from hforge_nb.spectral_loss import SpectralLossConfig, spectral_loss, spectral_target

    train_set, _ = records
    model = fresh_model("baseline", train_set)
    items = [StructureBlocks.of_record(r, model.config.edge_cutoff) for r in train_set]
    targets = [spectral_target(item, BN_BASIS, SpectralLossConfig(window=50.0)) for item in items]

    def spectral_now():  # predict() gives the blocks of StructureBlocks.of_record, in its order
        return sum(spectral_loss(torch.as_tensor(model.predict(r).h_values[:, 0]), t).item()
                   for r, t in zip(train_set, targets))

    before = spectral_now()
    config = TrainingConfig(epochs=4, learning_rate=1e-2, spectral_weight=1.0, spectral_window=50.0)
    train(model, train_set, train_set, config, tmp_path, progress=False)
    assert spectral_now() < 0.9 * before


@pytest.mark.parametrize("augment", [False, True])
def test_reusing_the_training_batches_built_at_start_changes_nothing(records, tmp_path, monkeypatch, augment):
    from hforge_nb import training

    train_set, val_set = records
    config = TrainingConfig(epochs=3, learning_rate=5e-3, augment_rotations=augment)
    reused = train(fresh_model("equivariant", train_set), train_set, val_set, config, tmp_path / "a", progress=False)
    built = []

    reusing = training.Trainer._training_batch

    def build_every_step(self, entries, reuse=True):  # the batch of every step built anew, as before the reuse
        built.append(len(entries))
        return reusing(self, entries, reuse=False)

    monkeypatch.setattr(training.Trainer, "_training_batch", build_every_step)
    rebuilt = train(fresh_model("equivariant", train_set), train_set, val_set, config, tmp_path / "b", progress=False)
    assert len(built) == 3 * len(train_set) + len(train_set)  # the replacement did run (and built the first batches)
    for key, value in reused.model.state_dict().items():
        assert torch.equal(value, rebuilt.model.state_dict()[key]), key


def test_only_unrotated_training_items_reuse_their_batches(records, tmp_path):
    from hforge_nb.training import EpochItem, Trainer

    train_set, val_set = records
    trainer = Trainer(fresh_model("baseline", train_set), train_set, val_set, TrainingConfig(), tmp_path)
    unrotated = EpochItem(trainer.train_items[0], 0)
    assert trainer._training_batch([unrotated]) is trainer._training_batch([unrotated])
    rotation = np.diag([1.0, -1.0, -1.0])
    rotated = EpochItem(StructureBlocks.of_record(rotate_record(train_set[0], rotation), trainer.cutoff), 0, rotation)
    assert trainer._training_batch([rotated]) is not trainer._training_batch([rotated])
    pair = [EpochItem(item, k) for k, item in enumerate(trainer.train_items[:2])]
    assert trainer._training_batch(pair).graph.n_atoms == sum(len(r.atoms) for r in train_set)


def test_rotated_training_items_get_their_items_spectral_target_with_rotated_frames(records, tmp_path):
    from hforge_nb.spectral_loss import spectral_loss
    from hforge_nb.training import EpochItem, Trainer

    train_set, val_set = records
    config = TrainingConfig(spectral_weight=0.1, spectral_kpoints=2, spectral_window=50.0)
    trainer = Trainer(fresh_model("baseline", train_set), train_set, val_set, config, tmp_path)
    rotation = random_rotation(np.random.default_rng(5), improper=True)
    rotated = EpochItem(StructureBlocks.of_record(rotate_record(train_set[0], rotation), trainer.cutoff), 0, rotation)
    moved = trainer._epoch_spectral_target(rotated)
    assert moved.references is trainer._spectral_targets[0].references  # not diagonalized again
    found = spectral_target(rotated.blocks, trainer.model.basis, config.spectral)
    h = torch.as_tensor(rotated.blocks.h_values) + 0.01
    assert spectral_loss(h, moved).item() == pytest.approx(spectral_loss(h, found).item(), rel=1e-9)
    other = EpochItem(trainer.train_items[1], 0, rotation)  # blocks that are not the item's: found anew
    assert len(other.blocks.pairs) != len(trainer.train_items[0].pairs)
    anew = trainer._epoch_spectral_target(other)
    assert anew.references is not trainer._spectral_targets[0].references
    assert torch.equal(anew.flat_index, trainer._spectral_targets[1].flat_index)


def test_in_the_codes_zero_the_spectral_targets_look_around_each_records_fermi_level(records, tmp_path):
    from hforge_nb.energy_zero import in_code_zero
    from hforge_nb.training import Trainer

    train_set, val_set = ([dataclasses.replace(r, fermi_level=4.0 + k) for k, r in enumerate(group)]
                          for group in records)  # eV, in the code's zero
    targets = {}
    for zero, fit in (("fermi", lambda rs: rs), ("code", lambda rs: [in_code_zero(r) for r in rs])):
        config = TrainingConfig(spectral_weight=0.1, spectral_kpoints=2, spectral_window=1.0, energy_zero=zero)
        trainer = Trainer(fresh_model("baseline", train_set), fit(train_set), fit(val_set), config, tmp_path / zero)
        targets[zero] = trainer._spectral_targets + [trainer.val_batches[0].spectral[0]]
    for fermi, code, e_f in zip(targets["fermi"], targets["code"], [4.0, 5.0, 4.0]):
        assert len(fermi.references) > 0 and len(code.references) == len(fermi.references)
        for at_fermi, at_code in zip(fermi.references, code.references):  # Y^H H Y of the same window states
            np.testing.assert_allclose(torch.linalg.eigvalsh(at_code), torch.linalg.eigvalsh(at_fermi) + e_f,
                                       atol=1e-9)
    with pytest.raises(ValueError, match="unknown energy zero 'vacuum'"):
        TrainingConfig(energy_zero="vacuum")


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_with_identical_state(records, tmp_path, monkeypatch):
    train_set, val_set = records
    config = TrainingConfig(epochs=4, learning_rate=5e-3, augment_rotations=True, ema_decay=0.9)
    straight = train(fresh_model("baseline", train_set), train_set, val_set, config, tmp_path / "a", progress=False)

    from hforge_nb import training

    original = training.Trainer.save

    def save_then_stop(self):
        original(self)
        if self.state.epoch == 2:
            raise Interrupt

    monkeypatch.setattr(training.Trainer, "save", save_then_stop)
    with pytest.raises(Interrupt):
        train(fresh_model("baseline", train_set), train_set, val_set, config, tmp_path / "b", progress=False)
    monkeypatch.setattr(training.Trainer, "save", original)
    assert read_checkpoint(tmp_path / "b" / "checkpoint.pt")["state"]["epoch"] == 2
    resumed = train(fresh_model("baseline", train_set, seed=1), train_set, val_set, config, tmp_path / "b",
                    progress=False)
    assert [row["train_loss"] for row in resumed.log] == [row["train_loss"] for row in straight.log]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_a_corrupt_checkpoint_is_named_and_other_files_stay(records, tmp_path):
    train_set, val_set = records
    train(fresh_model("baseline", train_set), train_set, val_set, TrainingConfig(epochs=1), tmp_path, progress=False)
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:3000])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(CorruptFileError, match="checkpoint.pt"):
        train(fresh_model("baseline", train_set), train_set, val_set, TrainingConfig(epochs=2), tmp_path,
              progress=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_checkpoint_of_other_settings_is_refused(records, tmp_path):
    train_set, val_set = records
    train(fresh_model("baseline", train_set), train_set, val_set, TrainingConfig(epochs=1), tmp_path, progress=False)
    with pytest.raises(CorruptFileError, match="other training settings"):
        train(fresh_model("baseline", train_set), train_set, val_set, TrainingConfig(epochs=2, learning_rate=1e-2),
              tmp_path, progress=False)


def test_the_cosine_schedule_ends_at_its_final_ratio(records, tmp_path):
    train_set, val_set = records
    config = TrainingConfig(epochs=3, learning_rate=1e-2, lr_schedule="cosine", lr_final_ratio=0.01)
    result = train(fresh_model("baseline", train_set), train_set, val_set, config, tmp_path, progress=False)
    expected = [1e-4 + (1e-2 - 1e-4) * (1 + np.cos(np.pi * t / 3)) / 2 for t in (1, 2, 3)]
    assert [row["learning_rate"] for row in result.log] == pytest.approx(expected, rel=1e-9)
    with pytest.raises(CorruptFileError, match="other training settings"):  # its length is part of the schedule
        train(fresh_model("baseline", train_set), train_set, val_set, dataclasses.replace(config, epochs=5),
              tmp_path, progress=False)


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_the_last_epochs_weights_are_kept_when_asked(records, tmp_path, ema_decay):
    from hforge_nb.io import read_model

    train_set, val_set = records
    config = TrainingConfig(epochs=3, learning_rate=1e-2, keep_weights="last", ema_decay=ema_decay)
    result = train(fresh_model("baseline", train_set), train_set, val_set, config, tmp_path, progress=False)
    content = read_checkpoint(tmp_path / "checkpoint.pt")
    last = ({key[len("module."):]: value for key, value in content["ema"].items() if key.startswith("module.")}
            if ema_decay else content["model"])  # the EMA's weights are the ones validated and saved
    assert result.kept_epoch == 3 and len(result.log) == 3
    saved = read_model(tmp_path / "model.pt").state_dict()
    for key, value in last.items():
        assert torch.equal(result.model.state_dict()[key], value) and torch.equal(saved[key], value), key
    assert not all(torch.equal(value, content["best_weights"][key]) for key, value in last.items()) \
        or result.best_epoch == 3  # the best epoch's weights differ unless it is the last


def test_the_best_epochs_weights_are_kept_by_default_and_the_choice_may_change_on_resuming(records, tmp_path):
    train_set, val_set = records
    best = train(fresh_model("baseline", train_set), train_set, val_set, TrainingConfig(epochs=2), tmp_path,
                 progress=False)
    content = read_checkpoint(tmp_path / "checkpoint.pt")
    assert best.kept_epoch == best.best_epoch
    for key, value in content["best_weights"].items():
        assert torch.equal(best.model.state_dict()[key], value), key
    resumed = train(fresh_model("baseline", train_set), train_set, val_set,
                    TrainingConfig(epochs=3, keep_weights="last"), tmp_path, progress=False)
    assert [row["train_loss"] for row in resumed.log[:2]] == [row["train_loss"] for row in best.log]
    assert resumed.kept_epoch == 3
    for key, value in read_checkpoint(tmp_path / "checkpoint.pt")["model"].items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


def test_training_without_validation_runs_its_cosine_schedule_to_the_end_and_keeps_the_last_weights(records,
                                                                                                   tmp_path):
    train_set, _ = records
    config = TrainingConfig(epochs=3, learning_rate=1e-2, lr_schedule="cosine", keep_weights="last",
                            early_stopping_patience=1)  # would stop after epoch 2 if it compared anything
    result = train(fresh_model("baseline", train_set), train_set, [], config, tmp_path, progress=False)
    assert len(result.log) == 3 and not result.stopped_early
    assert result.kept_epoch == 3 and result.best_epoch is None and result.best_val_loss is None
    assert all(np.isnan(row["val_loss"]) and np.isnan(row["val_h_mae_meV"]) for row in result.log)
    for key, value in read_checkpoint(tmp_path / "checkpoint.pt")["model"].items():
        assert torch.equal(result.model.state_dict()[key], value), key


@pytest.mark.parametrize("settings", [{"lr_schedule": "cosine"}, {"keep_weights": "last"}])
def test_training_without_validation_refuses_settings_that_need_it(records, tmp_path, settings):
    train_set, _ = records
    with pytest.raises(ValueError, match="without validation structures"):
        train(fresh_model("baseline", train_set), train_set, [], TrainingConfig(epochs=1, **settings), tmp_path,
              progress=False)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_an_unknown_choice_of_kept_weights_is_named():
    with pytest.raises(ValueError, match="'final'.*best.*last"):
        TrainingConfig(keep_weights="final")


def test_an_unknown_schedule_is_named(records, tmp_path):
    train_set, val_set = records
    with pytest.raises(ValueError, match="'linear'.*plateau"):
        train(fresh_model("baseline", train_set), train_set, val_set, TrainingConfig(lr_schedule="linear"),
              tmp_path, progress=False)


def test_a_checkpoint_of_another_version_of_the_model_is_refused(records, tmp_path):
    train_set, val_set = records
    train(fresh_model("baseline", train_set), train_set, val_set, TrainingConfig(epochs=1), tmp_path, progress=False)
    content = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    content["model"].pop(next(iter(content["model"])))  # as if the architecture had changed since
    torch.save(content, tmp_path / "checkpoint.pt")
    with pytest.raises(CorruptFileError, match="another version of this model"):
        train(fresh_model("baseline", train_set), train_set, val_set, TrainingConfig(epochs=2), tmp_path, progress=False)


DISTRIBUTED_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from conftest import SMALL_MODEL, hbn_atoms, random_record
from hforge_nb.models import BaselineConfig, build_fitted_model
from hforge_nb.training import TrainingConfig, train
records = [random_record(hbn_atoms(rattle=0.05, seed=k), seed=k) for k in range(4)]
model = build_fitted_model("baseline", BaselineConfig(**SMALL_MODEL, hidden=16), records, seed=0)
result = train(model, records[:3], records[3:], TrainingConfig(epochs=2), {folder!r}, progress=False)
print("losses", torch.distributed.get_rank(), [row["train_loss"] for row in result.log], flush=True)
"""


def test_training_runs_under_torchrun_on_two_processes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "run.py"
    script.write_text(DISTRIBUTED_SCRIPT.format(tests=str(Path(__file__).parent), folder=str(tmp_path / "run")))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script)]
    output = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert output.returncode == 0, output.stderr[-2000:]
    losses = sorted(line.split(" ", 2) for line in output.stdout.splitlines() if line.startswith("losses"))
    assert [rank for _, rank, _ in losses] == ["0", "1"] and losses[0][2] == losses[1][2], "one mean loss"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt", "model.pt", "training_log.csv"]


def test_models_trained_side_by_side_equal_models_trained_one_after_the_other(records, tmp_path):
    from hforge_nb.side_by_side import train_side_by_side

    train_set, val_set = records
    configs = {"equivariant": TrainingConfig(epochs=2, learning_rate=5e-3),
               "baseline": TrainingConfig(epochs=2, learning_rate=5e-3, augment_rotations=True)}
    results = {}
    for processes in (1, 2):
        models = {kind: fresh_model(kind, train_set) for kind in configs}
        results[processes] = train_side_by_side(models, train_set, val_set, configs, tmp_path / f"p{processes}",
                                                processes)
    for kind in configs:
        one, two = results[1][kind], results[2][kind]
        assert [row["train_loss"] for row in two.log] == [row["train_loss"] for row in one.log]
        assert two.best_epoch == one.best_epoch and (tmp_path / "p2" / kind / "model.pt").is_file()
        for key, value in one.model.state_dict().items():
            assert torch.equal(value, two.model.state_dict()[key]), (kind, key)
