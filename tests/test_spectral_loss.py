"""The spectral loss: zero at the reference, exact for H + cS, blind to the nearly linearly dependent directions."""

import numpy as np
import pytest
import torch

from hforge_nb import dataset
from hforge_nb.evaluation import monkhorst_pack
from hforge_nb.model_graph import StructureBlocks
from hforge_nb.paths import project_path
from hforge_nb.record import value_positions
from hforge_nb.spectral_loss import SpectralLossConfig, spectral_loss, spectral_target


@pytest.fixture(scope="module")
def cell():
    record = dataset.read_samples(project_path("data/aBN-dzp"))["aBN-0008-train-00"]
    item = StructureBlocks.of_record(record, 9.0)
    return record, item, spectral_target(item, record.basis, SpectralLossConfig(kpoints=2, window=3.0))


def test_the_reference_scores_zero_and_h_plus_c_s_scores_c_squared_per_window_state(cell):
    _, item, target = cell
    h, s = torch.as_tensor(item.h_values), torch.as_tensor(item.s_values)
    assert spectral_loss(h, target).item() < 1e-24
    n_window = np.array([frame.shape[1] for frame in target.frames])
    assert len(n_window) > 0 and n_window.min() > 0  # k-points without states in the window are left out
    expected = np.mean(0.01**2 / n_window)  # Y^H S Y = 1: every window state moves by c
    assert spectral_loss(h + 0.01 * s, target).item() == pytest.approx(expected, rel=1e-9)


def test_errors_along_nearly_dependent_orbital_combinations_do_not_count(cell):
    record, item, _ = cell
    target = spectral_target(item, record.basis, SpectralLossConfig(kpoints=1, threshold=1e-3))
    _, s = record.matrices_at_k(np.zeros(3))
    s_eigenvalues, vectors = np.linalg.eigh(s.real)
    assert s_eigenvalues[0] < 1e-3  # the basis is nearly linearly dependent
    h = torch.as_tensor(item.h_values)
    along_small = _home_cell_values(record, item, 0.5 * np.outer(vectors[:, 0], vectors[:, 0]))  # 0.5 eV
    along_large = _home_cell_values(record, item, 0.5 * np.outer(vectors[:, -1], vectors[:, -1]))
    assert spectral_loss(h + along_small, target).item() < 1e-20
    assert spectral_loss(h + along_large, target).item() > 1e-7  # counts (little: it is far from E_F)


def _home_cell_values(record, item, dense: np.ndarray) -> torch.Tensor:
    """``[n_values]`` a dense ``[n_orb, n_orb]`` matrix put into the home-cell blocks (so H(Gamma) changes by it)."""
    counts = np.diff(record.orbital_offsets)
    block, row, col = value_positions(np.stack([counts[item.pairs[:, 0]], counts[item.pairs[:, 1]]], axis=1))
    first = record.orbital_offsets[:-1]
    values = dense[first[item.pairs[block, 0]] + row, first[item.pairs[block, 1]] + col]
    assert len(np.unique(item.pairs[np.all(item.shifts == 0, axis=1)], axis=0)) == record.n_atoms**2  # all pairs
    return torch.as_tensor(np.where(np.all(item.shifts[block] == 0, axis=1), values, 0.0))


def test_its_gradient_reaches_every_value(cell):
    _, item, target = cell
    h = torch.as_tensor(item.h_values).clone().requires_grad_(True)
    spectral_loss(h + 0.01, target).backward()
    assert torch.isfinite(h.grad).all() and (h.grad != 0).float().mean() > 0.5


def test_the_projected_reference_is_that_of_the_records_own_h_and_s_at_every_k(cell):
    record, item, _ = cell
    kpoints = monkhorst_pack(record, 3)  # images summed per class R mod 3 in the loss
    target = spectral_target(item, record.basis, SpectralLossConfig(kpoints=3, window=50.0))
    assert len(target.frames) == len(kpoints) and target.n_classes == 27
    for k, frame, reference in zip(kpoints, target.frames, target.references):
        h, s = record.matrices_at_k(k)
        y = frame.numpy()
        np.testing.assert_allclose(y.conj().T @ s @ y, np.eye(y.shape[1]), atol=1e-8)  # the frame of this S(k)
        np.testing.assert_allclose(reference.numpy(), y.conj().T @ h @ y, atol=1e-10)


def test_a_rotated_structures_target_is_the_unrotated_one_with_rotated_frames(cell):
    from hforge_nb.rotations import random_rotation, rotate_record, structure_orbital_rotation
    from hforge_nb.spectral_loss import rotated_target

    record, item, target = cell
    rotation = random_rotation(np.random.default_rng(3), improper=True)
    rotated_item = StructureBlocks.of_record(rotate_record(record, rotation), 9.0)
    assert np.array_equal(rotated_item.pairs, item.pairs) and np.array_equal(rotated_item.shifts, item.shifts)
    found = spectral_target(rotated_item, record.basis, SpectralLossConfig(kpoints=2, window=3.0))
    moved = rotated_target(target, structure_orbital_rotation(record.basis, item.species, rotation))
    h = torch.as_tensor(rotated_item.h_values)
    assert spectral_loss(h, moved).item() < 1e-24  # the rotated reference scores zero
    noise = torch.as_tensor(np.random.default_rng(4).normal(0.0, 0.02, len(h)))  # eV, any prediction
    # the loss does not depend on the choice of eigenvectors within a degenerate window state
    assert spectral_loss(h + noise, moved).item() == pytest.approx(spectral_loss(h + noise, found).item(), rel=1e-9)
    assert spectral_loss(h + noise, moved).item() != pytest.approx(spectral_loss(h + noise, target).item(), rel=1e-3)


def test_in_the_codes_zero_it_looks_through_the_same_states_around_e_f(cell):
    from hforge_nb.energy_zero import fermi_level_in, in_code_zero

    record, item, target = cell
    code = StructureBlocks.of_record(in_code_zero(record), 9.0)  # H + E_F S
    fermi_level = fermi_level_in(in_code_zero(record), "code")
    assert fermi_level == record.fermi_level > 1.0  # eV: far from the code's zero
    centred = spectral_target(code, record.basis, SpectralLossConfig(kpoints=2, window=3.0), fermi_level)
    at_code_zero = spectral_target(code, record.basis, SpectralLossConfig(kpoints=2, window=3.0))
    noise = torch.as_tensor(np.random.default_rng(5).normal(0.0, 0.02, len(item.h_values)))  # eV, any prediction
    h_code = torch.as_tensor(code.h_values) + noise
    assert spectral_loss(h_code, centred).item() == pytest.approx(
        spectral_loss(torch.as_tensor(item.h_values) + noise, target).item(), rel=1e-9)
    assert spectral_loss(h_code, at_code_zero).item() != pytest.approx(spectral_loss(h_code, centred).item(), rel=1e-3)
