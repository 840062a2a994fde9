"""The event_flow zoo: registration, closed-form dense MACs and neurons, recurrent-state API, inputs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import torch

import snnprof
from snnprof.config import parse_config
from snnprof.models import create_model, get_entry, list_models
from snnprof.models.event_flow_nets import FIRENET_LAYERS, SHORT_LAYERS, FireNetFamily
from snnprof.models.event_flow_neurons import LIF, EventFlowNeuron, ForkLeakyLIF, LeakyLIF
from snnprof.pipeline import run_config

from ._formulas import MACS, NEURONS, conv, firenet_family

REPO = Path(__file__).resolve().parents[2]
MODELS = sorted(MACS)


def _profile(name: str, h: int, w: int, steps: int = 1, batch: int = 1, **kwargs) -> snnprof.ProfileResult:
    entry = get_entry(name)
    torch.manual_seed(0)
    model = entry.factory(**kwargs).eval()
    x = entry.make_inputs(model, batch, steps, 0, height=h, width=w)
    with torch.no_grad(), snnprof.Profiler(model, time_steps=steps, batch_size=batch) as prof:
        entry.run(model, x, steps)
    return prof.result()


def test_published_numbers_follow_from_the_closed_form():
    # seed_models.md 4.1: LIF-FireNet 1.218 G at 128x128 (head 9.4 M, 8 x 151.0 M, pred 1.05 M), 4.874 G at
    # 256x256, 3.67 M neurons; 4.2: LIFFireNet_short with base 8 at 128^2 ~ 59.2 M.
    assert conv(128, 128, 2, 32, 3) == 9_437_184
    assert conv(128, 128, 32, 32, 3) == 150_994_944
    assert conv(128, 128, 32, 2, 1) == 1_048_576
    assert MACS["lif_firenet"](128, 128) == 1_218_445_312
    assert round(MACS["lif_firenet"](256, 256) / 1e9, 3) == 4.874
    assert round(NEURONS["lif_firenet"](128, 128) / 1e6, 2) == 3.67
    assert round(firenet_family(128, 128, c=8, hidden_convs=6) / 1e6, 1) == 59.2


def test_every_model_is_registered_with_a_config():
    for name in MODELS:
        assert name in list_models()
        cfg = tomllib.loads((REPO / "configs" / f"{name}.toml").read_text())
        assert cfg["model"]["name"] == name
        assert cfg["input"]["kwargs"]["height"] == cfg["input"]["kwargs"]["width"] == 128
    assert "lif_firenet_small" not in list_models()


@pytest.mark.parametrize("name", MODELS)
def test_dense_macs_and_neurons_per_pass_are_exact(name):
    h, w = 16, 32
    result = _profile(name, h, w, steps=2, batch=2)
    assert result.per_sample["dense_macs"] == 2 * MACS[name](h, w)
    assert result.totals.neurons == NEURONS[name](h, w)
    assert result.totals.neuron_updates == 2 * 2 * NEURONS[name](h, w)
    assert not result.unsupported and not result.uncalled


def test_lif_firenet_at_its_published_resolution():
    result = _profile("lif_firenet", 128, 128)
    assert result.totals.dense_macs == 1_218_445_312
    assert result.totals.neurons == 3_670_016
    head, g1_rec = result.layer("head.ff"), result.layer("G1.rec")
    assert head.dense_macs == 9_437_184 and g1_rec.dense_macs == 150_994_944


def test_shipped_config_counts_per_pass_macs():
    text = (REPO / "configs" / "lif_firenet_short.toml").read_text().replace("time_steps = 10", "time_steps = 2")
    cfg = parse_config(text, REPO / "configs" / "lif_firenet_short.toml")
    result = run_config(cfg).result
    assert result.per_sample["dense_macs"] == 2 * 916_455_424
    assert result.time_steps == 2 and result.totals.neurons == 5 * 32 * 128 * 128


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_every_config_counts_at_its_published_resolution(name):
    path = REPO / "configs" / f"{name}.toml"
    from snnprof.config import load_config

    cfg = load_config(path)
    result = run_config(cfg).result
    assert result.per_sample["dense_macs"] == cfg.input.time_steps * MACS[name](128, 128)


def test_firenet_topologies():
    assert get_entry("lif_firenet").factory(base_channels=4).layer_names == FIRENET_LAYERS
    assert create_model("lif_firenet_short", base_channels=4).layer_names == SHORT_LAYERS
    flow = create_model("lif_fireflownet", base_channels=4)
    assert all(getattr(flow, n).rec is None for n in FIRENET_LAYERS)
    fire = create_model("lif_firenet", base_channels=4)
    assert [n for n in FIRENET_LAYERS if getattr(fire, n).rec is not None] == ["G1", "G2"]
    assert all(getattr(fire, n).ff.bias is None for n in FIRENET_LAYERS)


@pytest.mark.parametrize(
    "name", ["lif_firenet", "lif_firenet_short", "lif_fireflownet", "plif_firenet", "alif_firenet", "xlif_firenet"]
)
def test_prediction_init_scale(name):
    """Every spiking FireNet takes ``pred_w_scale``: U(-s, s) weights, zero bias; the seed's 0.01 by default."""
    for kwargs, scale in (({}, 0.01), ({"pred_w_scale": 0.1}, 0.1)):
        torch.manual_seed(0)
        pred = create_model(name, base_channels=16, **kwargs).pred.conv2d
        assert 0.8 * scale < float(pred.weight.detach().abs().max()) <= scale
        assert torch.equal(pred.bias, torch.zeros_like(pred.bias))


@pytest.mark.parametrize(
    ("neuron", "klass"), [("snntorch", ForkLeakyLIF), ("snntorch_bptt", LeakyLIF), ("tudelft", LIF)]
)
def test_learnable_per_channel_leak_and_threshold(neuron, klass):
    torch.manual_seed(0)
    model = create_model("lif_firenet", base_channels=16, neuron=neuron)
    neurons = [m for m in model.modules() if isinstance(m, EventFlowNeuron)]
    assert len(neurons) == 7 and all(type(m) is klass for m in neurons)
    neuron = "snntorch" if neuron.startswith("snntorch") else neuron
    for m in neurons:
        params = dict(m.named_parameters())
        assert len(params) == 2 and all(p.shape == (16, 1, 1) and p.requires_grad for p in params.values())
    leak = torch.cat([dict(m.named_parameters())["beta" if neuron == "snntorch" else "leak"].flatten()
                      for m in neurons])
    thr = torch.cat([dict(m.named_parameters())["threshold" if neuron == "snntorch" else "thresh"].flatten()
                     for m in neurons])
    if neuron == "snntorch":  # beta ~ U(0, 1), threshold ~ U(0, 0.8)
        assert leak.min() >= 0 and leak.max() <= 1 and thr.min() >= 0 and thr.max() <= 0.8
    else:  # leak parameter ~ N(-4, 0.1) (sigmoid ~ 0.018), threshold ~ N(0.8, 0.1)
        leak = leak.detach()
        assert abs(float(leak.mean()) + 4) < 0.05 and abs(float(torch.sigmoid(leak).mean()) - 0.018) < 0.002
        thr = thr.detach()
        assert abs(float(thr.mean()) - 0.8) < 0.05 and 0.05 < float(thr.std()) < 0.15


def test_neuron_kwargs_freeze_parameters_into_buffers():
    model = create_model("lif_firenet_short", base_channels=4, neuron="tudelft",
                         neuron_kwargs={"learn_leak": False, "learn_thresh": False})
    assert not [n for n, _ in model.named_parameters() if "neuron" in n]
    assert {n.rsplit(".", 1)[1] for n, _ in model.named_buffers()} == {"leak", "thresh"}
    with pytest.raises(ValueError, match="bad neuron_kwargs"):
        create_model("lif_firenet", neuron_kwargs={"nope": 1})
    with pytest.raises(ValueError, match="neuron must be one of"):
        create_model("lif_firenet", neuron="izhikevich")


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("lif_firenet_short", {"neuron": "snntorch_bptt"}), ("lif_firenet_short", {"neuron": "tudelft"}),
     ("alif_firenet", {}), ("spiking_rec_evflownet", {}), ("firenet", {})],
)
def test_state_is_carried_reset_and_detached(name, kwargs):
    torch.manual_seed(0)
    model = create_model(name, base_channels=4, **kwargs)
    x = get_entry(name).make_inputs(model, 1, 2, 3, height=32, width=32)
    first = model(x[0])["flow"][-1]
    assert any(s is not None for s in model.states)
    second = model(x[0])["flow"][-1]
    assert not torch.equal(first, second)  # same input, different state
    model.reset_states()
    assert all(s is None for s in model.states)
    assert torch.equal(model(x[0])["flow"][-1], first)
    model(x[1])["flow"][-1].sum().backward()
    tensors = [t for s in model._states for t in _flatten(s)]
    assert tensors and any(t.requires_grad for t in tensors)
    model.detach_states()
    assert all(not t.requires_grad for s in model._states for t in _flatten(s))


def test_fork_semantics_carry_the_membrane_and_cut_its_gradient():
    """neuron = "snntorch": reset_states() keeps the membranes (spikes zeroed), clear_states() zeroes all; the
    membrane carries no gradient to the next pass, so a FireFlowNet (no recurrent convs) gets none either."""
    torch.manual_seed(0)
    model = create_model("lif_fireflownet", base_channels=4)
    assert model.carries_membrane
    x = get_entry("lif_fireflownet").make_inputs(model, 1, 2, 3, height=16, width=16)
    first = x[0].clone().requires_grad_(True)
    model(first)
    membranes = [s[0].clone() for s in model.states]
    model.reset_states()
    assert all(torch.equal(s[0], m) and not s[1].any() for s, m in zip(model.states, membranes, strict=True))
    model(x[1])["flow"][-1].sum().backward()
    assert first.grad is None  # no path: the membrane was detached after pass 1
    model.clear_states()
    assert all(s is None for s in model.states)
    bptt = create_model("lif_fireflownet", base_channels=4, neuron="snntorch_bptt")
    bptt.load_state_dict(model.state_dict())
    first = x[0].clone().requires_grad_(True)
    bptt(first)
    bptt(x[1])["flow"][-1].sum().backward()
    assert first.grad is not None and bool(first.grad.abs().sum() > 0)  # BPTT through the membrane
    model.reset_states()
    model(x[1][:, :, :8])  # another input shape after a sequence change starts from rest, as snnTorch


def _flatten(state):
    if state is None:
        return []
    if isinstance(state, torch.Tensor):
        return [state]
    return [t for s in state for t in _flatten(s)]


def test_synthetic_inputs_are_deterministic_event_counts():
    entry = get_entry("lif_firenet")
    model = entry.factory(base_channels=4)
    a = entry.make_inputs(model, 2, 3, 7, height=32, width=32)
    b = entry.make_inputs(model, 2, 3, 7, height=32, width=32)
    c = entry.make_inputs(model, 2, 3, 8, height=32, width=32)
    assert a.shape == (3, 2, 2, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, a.round()) and a.min() >= 0
    assert a.sum(dim=(2, 3, 4)).eq(1000).all()  # every window holds 1000 events
    voxel = entry.factory(base_channels=4, num_bins=5, encoding="voxel")
    v = entry.make_inputs(voxel, 1, 2, 7, height=32, width=32)
    assert v.shape == (2, 1, 5, 32, 32) and v.min() < 0 < v.max()


def test_run_and_from_batch_shapes():
    entry = get_entry("evflownet")
    model = entry.factory(base_channels=4).eval()
    x = entry.make_inputs(model, 2, 1, 0, height=40, width=56)  # not multiples of 16: padded and cropped
    flows = entry.run(model, x, 1)
    assert [tuple(f.shape) for f in flows] == [(2, 2, 40, 56)] * 4
    assert entry.from_batch((x.transpose(0, 1), {})).shape == x.shape
    with pytest.raises(ValueError, match="expected inputs"):
        entry.run(model, x, 2)


def test_models_reject_bad_arguments():
    with pytest.raises(ValueError, match="num_bins = 2"):
        create_model("lif_firenet", num_bins=3)
    with pytest.raises(ValueError, match="encoding"):
        create_model("firenet", encoding="frames")
    assert isinstance(create_model("firenet", base_channels=4), FireNetFamily)
