"""Closed-form checks of the OTTT online spiking VGG-11 (WS) zoo model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from spikingjelly.activation_based import functional, neuron
from torch import nn

from snnprof.models import ottt
from snnprof.models.ottt import OnlineLIFNode, Scale, ScaledWSConv2d
from tests._threads import one_thread

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ottt_vgg11_ws.toml"

# (C_in, C_out, H = W of the conv output) of the eight 3x3 convs of cfg A at 32x32.
CONVS_32 = [
    (3, 64, 32),
    (64, 128, 32),
    (128, 256, 16),
    (256, 256, 16),
    (256, 512, 8),
    (512, 512, 8),
    (512, 512, 4),
    (512, 512, 4),
]


def _convs(in_channels: int, size: int) -> list[tuple[int, int, int]]:
    """Closed-form conv table of cfg A for an input of side ``size``."""
    table, cin, side = [], in_channels, size
    for item in ottt.CFG_A:
        if item == "M":
            side //= 2
        else:
            table.append((cin, item, side))
            cin = item
    return table


def _per_layer(model: nn.Module, x: torch.Tensor) -> tuple[list[int], list[int], int]:
    """One forward with hooks: per-sample conv MACs, per-sample neurons per layer, linear MACs."""
    conv_macs: list[int] = []
    neurons: list[int] = []
    linear_macs: list[int] = []
    batch = x.shape[0]

    def conv_hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        kh, kw = mod.kernel_size
        conv_macs.append(out.numel() // batch * (mod.in_channels // mod.groups) * kh * kw)

    def neuron_hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        neurons.append(out.numel() // batch)

    def linear_hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        linear_macs.append(out.numel() // batch * mod.in_features)

    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, neuron.BaseNode):
            handles.append(mod.register_forward_hook(neuron_hook))
        elif isinstance(mod, nn.Linear):
            handles.append(mod.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(x, init=True)
    finally:
        for h in handles:
            h.remove()
    return conv_macs, neurons, sum(linear_macs)


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Small tensors: one intra-op thread (see tests/_threads.py)."""
    yield from one_thread()


@pytest.fixture(scope="module")
def vgg() -> nn.Module:
    torch.manual_seed(0)
    return ottt.ottt_vgg11_ws().eval()


# ----------------------------------------------------------------------------- architecture


def test_conv_macs_per_step_closed_form(vgg: nn.Module) -> None:
    expected = [cin * cout * 9 * hw * hw for cin, cout, hw in CONVS_32]
    assert _convs(3, 32) == CONVS_32
    assert expected[0] == 1_769_472
    assert expected == [
        1_769_472,
        75_497_472,
        75_497_472,
        150_994_944,
        75_497_472,
        150_994_944,
        37_748_736,
        37_748_736,
    ]
    assert sum(expected) == 605_749_248  # "605.7 M MACs/step" of docs/seed_models.md section 5.1
    conv_macs, _, linear_macs = _per_layer(vgg, torch.zeros(1, 3, 32, 32))
    assert conv_macs == expected
    assert linear_macs == 512 * 10


def test_spiking_neurons(vgg: nn.Module) -> None:
    expected = [cout * hw * hw for _, cout, hw in CONVS_32]
    assert expected == [65_536, 131_072, 65_536, 65_536, 32_768, 32_768, 8_192, 8_192]
    _, neurons, _ = _per_layer(vgg, torch.zeros(1, 3, 32, 32))
    assert neurons == expected
    assert sum(neurons) == 409_600
    assert sum(isinstance(m, OnlineLIFNode) for m in vgg.modules()) == 8


def test_parameter_count(vgg: nn.Module) -> None:
    # WS conv: weight + bias + per-channel gain; classifier: weight + bias.
    expected = sum(cout * cin * 9 + 2 * cout for cin, cout, _ in CONVS_32) + 512 * 10 + 10
    assert expected == 9_228_362
    assert sum(p.numel() for p in vgg.parameters()) == expected


def test_cifar10dvs_variant_macs() -> None:
    model = ottt.ottt_vgg11_ws(num_classes=10, in_channels=2).eval()
    table = _convs(2, 48)
    expected = [cin * cout * 9 * hw * hw for cin, cout, hw in table]
    assert sum(expected) == 1_361_608_704  # "1.36 G MACs/step" at 48x48, c_in = 2
    conv_macs, neurons, _ = _per_layer(model, torch.zeros(1, 2, 48, 48))
    assert conv_macs == expected
    assert sum(neurons) == sum(cout * hw * hw for _, cout, hw in table)


def test_layer_order_and_types(vgg: nn.Module) -> None:
    kinds = [type(m).__name__ for m in vgg.features]
    block = ["ScaledWSConv2d", "OnlineLIFNode", "Scale"]
    pool = ["AvgPool2d"]
    assert kinds == block * 2 + pool + block * 2 + pool + block * 2 + pool + block * 2
    assert isinstance(vgg.avgpool, nn.AdaptiveAvgPool2d)
    assert isinstance(vgg.flatten, nn.Flatten)
    assert isinstance(vgg.classifier, nn.Linear)
    assert (vgg.classifier.in_features, vgg.classifier.out_features) == (512, 10)
    assert all(m.scale == pytest.approx(2.74) for m in vgg.modules() if isinstance(m, Scale))


def test_kwargs() -> None:
    model = ottt.ottt_vgg11_ws(num_classes=100, in_channels=2, tau=4.0)
    assert model.classifier.out_features == 100
    assert model.features[0].in_channels == 2
    assert all(m.tau == 4.0 for m in model.modules() if isinstance(m, OnlineLIFNode))
    with pytest.raises(ValueError, match="positive"):
        ottt.ottt_vgg11_ws(num_classes=0)


# ----------------------------------------------------------------------------- building blocks


def test_online_lif_is_a_spikingjelly_neuron() -> None:
    node = OnlineLIFNode()
    assert isinstance(node, neuron.LIFNode)
    assert isinstance(node, neuron.BaseNode)
    assert node.step_mode == "s"
    assert node.v_reset is None and node.decay_input is False and node.detach_reset is True
    assert node.tau == 2.0 and node.v_threshold == 1.0
    with pytest.raises(ValueError):
        node.step_mode = "m"


def test_online_lif_hand_computed_dynamics() -> None:
    # v = 0.5 v + 0.6; spike when v >= 1, then v -= 1; rate = 0.5 rate + s.
    node = OnlineLIFNode(tau=2.0)
    x = torch.full((1,), 0.6, dtype=torch.float64)
    expected = [  # (spike, v after reset, rate)
        (0.0, 0.6, 0.0),
        (0.0, 0.9, 0.0),
        (1.0, 0.05, 1.0),
        (0.0, 0.625, 0.5),
        (0.0, 0.9125, 0.25),
        (1.0, 0.05625, 1.125),
    ]
    for t, (s, v, rate) in enumerate(expected):
        spike = node(x, init=(t == 0))
        assert spike.item() == s
        torch.testing.assert_close(node.v, torch.tensor([v], dtype=torch.float64))
        torch.testing.assert_close(node.rate, torch.tensor([rate], dtype=torch.float64))
    # init=True zeroes v and rate: the sequence restarts from scratch.
    assert node(x, init=True).item() == 0.0
    torch.testing.assert_close(node.v, torch.tensor([0.6], dtype=torch.float64))
    torch.testing.assert_close(node.rate, torch.tensor([0.0], dtype=torch.float64))
    # reset_net also clears the state, back to scalars.
    functional.reset_net(node)
    assert node.v == 0.0 and node.rate == 0.0


def test_online_lif_threshold_is_inclusive_and_reset_is_soft() -> None:
    node = OnlineLIFNode()
    spike = node(torch.tensor([1.0, 2.5, 0.999]), init=True)
    assert spike.tolist() == [1.0, 1.0, 0.0]
    torch.testing.assert_close(node.v, torch.tensor([0.0, 1.5, 0.999]))  # v -= s (at most one spike/step)


def test_online_lif_surrogate_gradient_and_detached_history() -> None:
    node = OnlineLIFNode()
    x0 = torch.tensor([0.9], requires_grad=True)
    node(x0, init=True)
    x1 = torch.tensor([0.6], requires_grad=True)
    spike = node(x1)  # v = 0.45 + 0.6 = 1.05
    spike.sum().backward()
    sig = torch.sigmoid(torch.tensor(4.0 * 0.05))
    torch.testing.assert_close(x1.grad, (4.0 * sig * (1 - sig)).view(1))  # sigmoid(alpha=4) surrogate
    assert x0.grad is None  # v.detach(): no gradient through the membrane history


def test_scaled_ws_conv() -> None:
    torch.manual_seed(1)
    conv = ScaledWSConv2d(4, 6)
    assert isinstance(conv, nn.Conv2d)
    assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.bias is not None
    assert conv.gain is not None and conv.gain.shape == (6, 1, 1, 1)
    with torch.no_grad():
        conv.gain.copy_(torch.arange(1.0, 7.0).view(6, 1, 1, 1))
    w = conv.weight
    fan_in = 4 * 3 * 3
    ref = (w - w.mean((1, 2, 3), keepdim=True)) / torch.sqrt(w.var((1, 2, 3), keepdim=True) * fan_in + 1e-4)
    ref = ref * conv.gain
    torch.testing.assert_close(conv.standardized_weight(), ref)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(x, ref, conv.bias, padding=1))
    assert conv(x).shape == (2, 6, 5, 5)
    assert ScaledWSConv2d(4, 6, gain=False).gain is None


def test_scale() -> None:
    x = torch.tensor([0.0, 1.0, 2.0])
    torch.testing.assert_close(Scale()(x), x * 2.74)
    torch.testing.assert_close(Scale(0.5)(x), x * 0.5)


# ----------------------------------------------------------------------------- inputs and runner


def test_make_inputs_deterministic(vgg: nn.Module) -> None:
    a = ottt.make_inputs(vgg, 2, 6, seed=3)
    b = ottt.make_inputs(vgg, 2, 6, seed=3)
    c = ottt.make_inputs(vgg, 2, 6, seed=4)
    assert a.shape == (2, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert ottt.make_inputs(vgg, 1, 6, seed=0, image_size=48).shape == (1, 3, 48, 48)


def test_run_sums_per_step_logits_and_is_deterministic(vgg: nn.Module) -> None:
    x = ottt.make_inputs(vgg, 2, 2, seed=0)
    with torch.no_grad():
        out = ottt.run(vgg, x, 2)
        again = ottt.run(vgg, x, 2)  # init=True at t = 0 clears the previous run's state
        manual = vgg(x, init=True) + vgg(x, init=False)
        single = ottt.run(vgg, x, 1)
        first = vgg(x, init=True)
    assert out.shape == (2, 10)
    assert torch.equal(out, again)
    torch.testing.assert_close(out, manual)
    torch.testing.assert_close(single, first)
    with pytest.raises(ValueError):
        ottt.run(vgg, x, 0)


def test_spikes_are_binary_and_scaled(vgg: nn.Module) -> None:
    outs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda m, i, o: outs.append(o)) for m in vgg.modules() if isinstance(m, Scale)]
    try:
        with torch.no_grad():
            ottt.run(vgg, ottt.make_inputs(vgg, 1, 2, seed=0), 2)
    finally:
        for h in handles:
            h.remove()
    assert len(outs) == 16
    values = torch.unique(torch.cat([o.flatten() for o in outs]))
    assert values.numel() == 2  # some neurons fire, some do not
    assert values[0].item() == 0.0
    assert values[1].item() == pytest.approx(2.74)


# ----------------------------------------------------------------------------- registry and config


def test_registry_entry() -> None:
    from snnprof.models.registry import create_model, get_entry

    entry = get_entry("ottt_vgg11_ws")
    assert entry.step_mode == "single"
    assert entry.factory is ottt.ottt_vgg11_ws
    assert entry.make_inputs is ottt.make_inputs and entry.run is ottt.run
    assert entry.defaults["batch_size"] == 8 and entry.defaults["time_steps"] == 6
    assert "NeurIPS 2022" in entry.paper and entry.description
    assert create_model("ottt_vgg11_ws", num_classes=100).classifier.out_features == 100


def test_config_file() -> None:
    tomllib = pytest.importorskip("tomllib")
    cfg = tomllib.loads(CONFIG.read_text())
    assert set(cfg) == {"model", "input", "count", "energy"}
    assert cfg["model"] == {"name": "ottt_vgg11_ws", "kwargs": {"num_classes": 10}}
    assert cfg["input"]["source"] == "synthetic"
    assert (cfg["input"]["batch_size"], cfg["input"]["time_steps"], cfg["input"]["seed"]) == (8, 6, 0)
    assert cfg["count"] == {"sop_convention": "exact", "overrides": {}}
    model = ottt.ottt_vgg11_ws(**cfg["model"]["kwargs"])
    inp = cfg["input"]
    x = ottt.make_inputs(model, inp["batch_size"], inp["time_steps"], inp["seed"], **inp["kwargs"])
    assert x.shape == (8, 3, 32, 32)


# ----------------------------------------------------------------------------- width, init, dropout


def test_width_scales_channels_and_macs() -> None:
    model = ottt.ottt_vgg11_ws(width=0.125).eval()
    table = [(max(1, round(cin * 0.125)) if cin != 3 else 3, round(cout * 0.125), hw) for cin, cout, hw in CONVS_32]
    conv_macs, neurons, linear_macs = _per_layer(model, torch.zeros(1, 3, 32, 32))
    assert conv_macs == [cin * cout * 9 * hw * hw for cin, cout, hw in table]
    assert neurons == [cout * hw * hw for _, cout, hw in table]
    assert linear_macs == 64 * 10
    with pytest.raises(ValueError, match="width"):
        ottt.ottt_vgg11_ws(width=0.0)


def test_seed_initialisation() -> None:
    torch.manual_seed(0)
    model = ottt.ottt_vgg11_ws()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            assert torch.count_nonzero(m.bias) == 0
    assert torch.count_nonzero(model.classifier.bias) == 0
    assert model.classifier.weight.std().item() == pytest.approx(0.01, rel=0.05)  # N(0, 0.01)
    conv = model.features[3]  # kaiming normal, fan_out, relu: std = sqrt(2 / (C_out * 9))
    assert conv.weight.std().item() == pytest.approx((2 / (128 * 9)) ** 0.5, rel=0.05)


def test_neuron_dropout_fixed_over_the_run_and_training_only() -> None:
    torch.manual_seed(0)
    node = OnlineLIFNode(neuron_dropout=0.5)
    x = torch.full((1, 4000), 1.5)
    node.train()
    s0 = node(x, init=True)
    mask = node.dropout_mask
    assert mask is not None and set(torch.unique(mask).tolist()) == {0.0, 2.0}
    assert 0.4 < (mask == 0).float().mean().item() < 0.6
    assert torch.equal(s0, 2.0 * (mask > 0).float())  # every neuron fires at v = 1.5; kept ones scaled 1/(1-p)
    node(x)
    assert node.dropout_mask is mask  # one mask per run (drawn at init)
    node.eval()
    assert torch.equal(node(x, init=True), torch.ones_like(x))
    with pytest.raises(ValueError, match="neuron_dropout"):
        OnlineLIFNode(neuron_dropout=1.0)


def test_with_rate_returns_spikes_and_trace() -> None:
    node = OnlineLIFNode()
    x = torch.tensor([[1.2, 0.3]])
    pair = node(x, init=True, with_rate=True)
    assert torch.equal(pair, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    pair = node(x, with_rate=True)  # v = [0.1 + 1.2, 0.15 + 0.3]: spike [1, 0]; rate = 0.5 * rate + s
    assert torch.equal(pair, torch.tensor([[1.0, 0.0], [1.5, 0.0]]))


# ----------------------------------------------------------------------------- gradient trick


def test_train_mode_forward_equals_eval_forward() -> None:
    torch.manual_seed(0)
    model = ottt.ottt_vgg11_ws(width=0.125)
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    with torch.no_grad():
        evals = [model(x, init=(t == 0)) for t in range(3)]
    model.train()  # trace mode: neurons emit cat(spike, rate); the values seen downstream are the spikes'
    trains = [model(x, init=(t == 0)).detach() for t in range(3)]
    for a, b in zip(evals, trains, strict=True):
        assert torch.equal(a, b)


def _grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> dict[str, torch.Tensor]:
    model.zero_grad()
    for t in range(steps):
        torch.nn.functional.cross_entropy(model(x, init=(t == 0)), y).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_spike_trace_op_weight_gradient_uses_the_presynaptic_trace() -> None:
    torch.manual_seed(0)
    trick = ottt.ottt_vgg11_ws(width=0.125).train()
    plain = ottt.ottt_vgg11_ws(width=0.125, grad_with_rate=False).train()
    plain.load_state_dict(trick.state_dict())
    x, y = torch.randn(4, 3, 16, 16) * 2, torch.tensor([0, 1, 2, 3])
    # Step 0 only: the trace equals the spikes, so both give the same gradients.
    g_trick, g_plain = _grads(trick, x, y, 1), _grads(plain, x, y, 1)
    for name in g_plain:
        torch.testing.assert_close(g_trick[name], g_plain[name])
    # Step 1: the first conv (analog input) sees the same gradient; features.3's weight gradient
    # is computed from 2.74 * rate of features.1 (rate = 0.5 * s_0 + s_1) instead of its spikes.
    captured: dict[str, torch.Tensor] = {}

    def keep_grad(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        if out.requires_grad:
            out.register_hook(lambda g: captured.setdefault("g", g))

    conv, lif = plain.features[3], plain.features[1]
    for net in (plain, trick):
        net(x, init=True)
        net.zero_grad()
    hook = conv.register_forward_hook(keep_grad)
    torch.nn.functional.cross_entropy(plain(x), y).backward()
    hook.remove()
    torch.nn.functional.cross_entropy(trick(x), y).backward()
    assert torch.equal(trick.features[1].rate, lif.rate)
    expected = torch.autograd.grad(
        torch.nn.functional.conv2d(lif.rate * 2.74, conv.standardized_weight(), conv.bias, padding=1),
        conv.weight,
        grad_outputs=captured["g"],
    )[0]
    torch.testing.assert_close(trick.features[3].weight.grad, expected)
    torch.testing.assert_close(trick.features[0].weight.grad, plain.features[0].weight.grad)
    assert not torch.allclose(trick.features[3].weight.grad, plain.features[3].weight.grad)


# ----------------------------------------------------------------------------- frames, from_batch


def test_frames_inputs_and_per_step_run() -> None:
    model = ottt.ottt_vgg11_ws(in_channels=2, width=0.125).eval()
    frames = ottt.make_inputs(model, 3, 4, seed=1, image_size=16, frames=True)
    assert frames.shape == (4, 3, 2, 16, 16)
    assert set(torch.unique(frames).tolist()) <= {0.0, 1.0}
    assert torch.equal(frames, ottt.make_inputs(model, 3, 4, seed=1, image_size=16, frames=True))
    with torch.no_grad():
        out = ottt.run(model, frames, 4)
        manual = sum(model(frames[t], init=(t == 0)) for t in range(4))
    torch.testing.assert_close(out, manual)
    with pytest.raises(ValueError, match="frames"):
        ottt.run(model, frames, 5)
    assert torch.equal(ottt.from_batch(frames.transpose(0, 1)), frames)
    image = torch.zeros(2, 3, 8, 8)
    assert ottt.from_batch(image) is image
