"""GroupedLinear: the outputs and gradients of the e3nn Linear maps it evaluates together."""

from __future__ import annotations

import pytest
import torch

from hforge_nb._compat import import_o3
from hforge_nb.models.irreps_linear import GroupedLinear

o3 = import_o3()

# an input with repeated and interleaved irrep types; outputs with a type the input lacks (2e)
INPUT = "3x0e+2x1o+1x2e+4x0e+2x1o+1x1e"
OUTPUTS = ["2x0e+1x1o+1x2e", "5x1o+1x0e", "2x2o+1x1e+3x0e"]


def _maps(seed: int = 0) -> list:
    torch.manual_seed(seed)
    maps = [o3.Linear(INPUT, out) for out in OUTPUTS]
    for linear in maps:
        torch.nn.init.normal_(linear.weight)
    return maps


def test_outputs_and_gradients_equal_e3nn_linear():
    maps = _maps()
    grouped = GroupedLinear(maps)
    x = torch.randn(7, maps[0].irreps_in.dim, requires_grad=True)
    expected = [linear(x) for linear in maps]
    outputs = grouped(x, [linear.weight for linear in maps])
    for y, e in zip(outputs, expected):
        assert y.shape == e.shape
        torch.testing.assert_close(y, e, rtol=1e-5, atol=1e-6)
    probes = [torch.randn_like(e) for e in expected]
    grads = torch.autograd.grad(sum((y * p).sum() for y, p in zip(outputs, probes)),
                                [x, *(linear.weight for linear in maps)])
    expected_grads = torch.autograd.grad(sum((e * p).sum() for e, p in zip(expected, probes)),
                                         [x, *(linear.weight for linear in maps)])
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_outputs_no_path_reaches_are_zero():
    maps = _maps()
    x = torch.randn(4, maps[0].irreps_in.dim)
    outputs = GroupedLinear(maps)(x, [linear.weight for linear in maps])
    two_odd = slice(0, 2 * 5)  # the 2x2o of the last map: the input has no 2o
    assert outputs[2][:, two_odd].abs().max() == 0.0
    assert outputs[0].abs().max() > 0.0


def test_is_equivariant_under_rotation_and_inversion():
    maps = _maps(seed=1)
    grouped = GroupedLinear(maps)
    rotation = o3.rand_matrix() * -1.0  # a rotation times the inversion
    irreps_in = maps[0].irreps_in
    x = torch.randn(5, irreps_in.dim)
    rotated = grouped(x @ irreps_in.D_from_matrix(rotation).T, [linear.weight for linear in maps])
    for y, linear, out in zip(grouped(x, [m.weight for m in maps]), maps, rotated):
        torch.testing.assert_close(y @ linear.irreps_out.D_from_matrix(rotation).T, out, rtol=1e-4, atol=1e-5)


def test_takes_no_rows():
    maps = _maps()
    outputs = GroupedLinear(maps)(torch.zeros(0, maps[0].irreps_in.dim), [linear.weight for linear in maps])
    assert [y.shape for y in outputs] == [(0, linear.irreps_out.dim) for linear in maps]


def test_rejects_maps_it_cannot_join():
    with pytest.raises(ValueError, match="one input"):
        GroupedLinear([o3.Linear("2x0e", "1x0e"), o3.Linear("3x0e", "1x0e")])
    with pytest.raises(ValueError, match="no biases"):
        GroupedLinear([o3.Linear("2x0e", "1x0e", biases=True)])
    with pytest.raises(ValueError, match="at most one path"):
        GroupedLinear([o3.Linear("2x0e", "1x0e", instructions=[(0, 0), (0, 0)])])


def test_keeps_no_state_of_its_own():
    assert GroupedLinear(_maps()).state_dict() == {}
