"""Event-driven synaptic layers give the dense result (closed-form cases and random spikes)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from snnprof.kernels.synapse import CONV_METHODS, LINEAR_METHODS, ConvSynapse, LinearSynapse, random_spikes

pytestmark = pytest.mark.filterwarnings("ignore:Sparse")


@pytest.mark.parametrize("method", LINEAR_METHODS)
def test_one_spike_adds_one_weight_column(method: str):
    weight = torch.arange(12.0).reshape(3, 4)  # [out, in]
    x = torch.zeros(2, 4)
    x[1, 2] = 1.0
    out = LinearSynapse(weight)(x, method)
    assert torch.equal(out[0], torch.zeros(3))
    assert torch.equal(out[1], weight[:, 2])


@pytest.mark.parametrize("method", LINEAR_METHODS)
@pytest.mark.parametrize("rate", [0.0, 0.01, 0.3, 1.0])
def test_linear_matches_dense(method: str, rate: float):
    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(17, 33, generator=gen), torch.randn(17, generator=gen)
    x = random_spikes((2, 5, 33), rate, seed=1) * 3  # graded counts, extra batch dim
    torch.testing.assert_close(LinearSynapse(weight, bias)(x, method), F.linear(x, weight, bias), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", CONV_METHODS)
@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_conv_matches_dense(method: str, stride: int, padding: int):
    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(5, 3, 3, 3, generator=gen), torch.randn(5, generator=gen)
    x = random_spikes((2, 3, 11, 9), 0.2, seed=2) * 2
    expected = F.conv2d(x, weight, bias, stride=stride, padding=padding)
    got = ConvSynapse(weight, bias, stride, padding)(x, method)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", CONV_METHODS)
def test_conv_without_events_is_the_bias(method: str):
    weight, bias = torch.randn(4, 2, 3, 3), torch.tensor([1.0, 2.0, 3.0, 4.0])
    out = ConvSynapse(weight, bias, 1, 1)(torch.zeros(1, 2, 5, 5), method)
    assert torch.equal(out, bias.reshape(1, 4, 1, 1).expand(1, 4, 5, 5))


def test_random_spikes_rate_and_determinism():
    a = random_spikes((100_000,), 0.05, seed=3)
    assert torch.equal(a, random_spikes((100_000,), 0.05, seed=3))
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert abs(a.mean().item() - 0.05) < 0.005


def test_unknown_method():
    with pytest.raises(ValueError, match="linear method"):
        LinearSynapse(torch.zeros(2, 2))(torch.zeros(1, 2), "magic")
    with pytest.raises(ValueError, match="conv method"):
        ConvSynapse(torch.zeros(1, 1, 1, 1))(torch.zeros(1, 1, 2, 2), "magic")
