"""The eager reference against closed-form neuron dynamics and surrogate derivatives."""

from __future__ import annotations

import math

import pytest
import torch

from snnprof.kernels.reference import NeuronSpec, eager_multistep, init_w, surrogate_grad


def test_if_hard_reset_integrates_and_fires_every_third_step():
    # V: 0.4, 0.8, 1.2 -> spike, reset to 0; period 3
    x = torch.full((7, 1), 0.4)
    out = eager_multistep(x, NeuronSpec("if"), store_v_seq=True)
    assert out.spikes.flatten().tolist() == [0, 0, 1, 0, 0, 1, 0]
    expected_v = [0.4, 0.8, 0.0, 0.4, 0.8, 0.0, 0.4]
    assert torch.allclose(out.v.flatten(), torch.tensor(expected_v), atol=1e-6)


def test_if_soft_reset_keeps_the_remainder():
    x = torch.full((3, 1), 0.7)  # H: 0.7, 1.4 -> spike, V = 0.4; H = 1.1 -> spike, V = 0.1
    out = eager_multistep(x, NeuronSpec("if", v_reset=None), store_v_seq=True)
    assert out.spikes.flatten().tolist() == [0, 1, 1]
    assert torch.allclose(out.v.flatten(), torch.tensor([0.7, 0.4, 0.1]), atol=1e-6)


@pytest.mark.parametrize("decay_input", [True, False])
def test_lif_charge_equations(decay_input: bool):
    tau, x0 = 4.0, 0.8
    out = eager_multistep(torch.full((2, 1), x0), NeuronSpec("lif", tau=tau, decay_input=decay_input), store_v_seq=True)
    h1 = x0 / tau if decay_input else x0  # from V = 0
    h2 = h1 + (x0 - h1) / tau if decay_input else h1 - h1 / tau + x0
    assert torch.allclose(out.v.flatten(), torch.tensor([h1, 0.0 if h2 >= 1 else h2]), atol=1e-6)


def test_plif_with_w_of_tau_equals_lif_with_tau():
    x = torch.rand(5, 9) * 2
    w = torch.tensor(init_w(3.0))
    assert math.isclose(torch.sigmoid(w).item(), 1 / 3, rel_tol=1e-6)
    lif = eager_multistep(x, NeuronSpec("lif", tau=3.0), store_v_seq=True)
    plif = eager_multistep(x, NeuronSpec("plif", tau=3.0), w=w, store_v_seq=True)
    assert torch.equal(lif.spikes, plif.spikes)
    assert torch.allclose(lif.v, plif.v, atol=1e-6)


@pytest.mark.parametrize(("name", "alpha"), [("sigmoid", 4.0), ("atan", 2.0), ("sigmoid", 1.5)])
def test_one_step_gradient_is_the_surrogate(name: str, alpha: float):
    z = torch.linspace(-1.0, 1.0, 11)
    x = (z + 1.0).reshape(1, -1).requires_grad_(True)  # IF from 0: H = x, H - V_th = z
    out = eager_multistep(x, NeuronSpec("if", surrogate=name, alpha=alpha))
    (grad,) = torch.autograd.grad(out.spikes.sum(), x)
    if name == "sigmoid":
        expected = alpha * torch.sigmoid(alpha * z) * (1 - torch.sigmoid(alpha * z))
    else:
        expected = (alpha / 2) / (1 + (math.pi / 2 * alpha * z) ** 2)
    assert torch.allclose(grad.flatten(), expected, atol=1e-6)
    assert torch.allclose(surrogate_grad(z, name, alpha), expected, atol=1e-6)


def test_detach_reset_changes_only_the_backward():
    x = (torch.rand(6, 50) * 1.5).requires_grad_(True)
    grads, spikes = [], []
    for detach in (False, True):
        out = eager_multistep(x, NeuronSpec("lif", detach_reset=detach))
        spikes.append(out.spikes)
        grads.append(torch.autograd.grad(out.spikes.sum(), x)[0])
    assert torch.equal(spikes[0], spikes[1])
    assert not torch.allclose(grads[0], grads[1])


def test_spec_validation_and_label():
    with pytest.raises(ValueError, match="kind"):
        NeuronSpec("alif")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tau"):
        NeuronSpec("lif", tau=1.0)
    with pytest.raises(ValueError, match="surrogate"):
        NeuronSpec("lif", surrogate="erf")  # type: ignore[arg-type]
    assert NeuronSpec("lif").label() == "lif tau=2 hard sigmoid(4)"
    assert NeuronSpec("if", v_reset=None, detach_reset=True, surrogate="atan").label() == "if soft detach atan(2)"
    with pytest.raises(ValueError, match="PLIF"):
        eager_multistep(torch.zeros(2, 3), NeuronSpec("plif"))
