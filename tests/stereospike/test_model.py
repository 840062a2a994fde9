"""Closed-form checks of the StereoSpike zoo models (seed_models.md section 3.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from spikingjelly.activation_based import functional, neuron
from torch import nn

from snnprof.config import load_config
from snnprof.models import create_model, get_entry, list_models
from snnprof.models.stereospike import StereoSpike, encoder_sizes, make_inputs, run
from snnprof.models.stereospike_ann import StereoSpikeANN
from snnprof.pipeline import run_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
H, W = 260, 346

# The seed's layer table at 260x346: (layer, C_in, C_out, kernel, out H, out W, repeats).
LAYER_TABLE = [
    ("bottom", 4, 32, 5, 260, 346, 1),
    ("conv1", 32, 64, 5, 130, 173, 1),
    ("conv2", 64, 128, 5, 65, 87, 1),
    ("conv3", 128, 256, 5, 33, 44, 1),
    ("conv4", 256, 512, 5, 17, 22, 1),
    ("bottleneck", 512, 512, 3, 17, 22, 4),
    ("deconv4", 512, 256, 5, 33, 44, 1),
    ("deconv3", 256, 128, 5, 65, 87, 1),
    ("deconv2", 128, 64, 5, 130, 173, 1),
    ("deconv1", 64, 32, 5, 260, 346, 1),
    ("predict_depth4", 256, 1, 3, 260, 346, 1),
    ("predict_depth3", 128, 1, 3, 260, 346, 1),
    ("predict_depth2", 64, 1, 3, 260, 346, 1),
    ("predict_depth1", 32, 1, 3, 260, 346, 1),
]
# Conv module (profile layer name) of each table row.
CONV_NAMES = {
    "bottom": ["bottom.0"],
    **{f"conv{i}": [f"conv{i}.0"] for i in range(1, 5)},
    "bottleneck": [f"bottleneck.{b}.conv{c}.0" for b in (0, 1) for c in (1, 2)],
    **{f"deconv{i}": [f"deconv{i}.0.up.1"] for i in range(1, 5)},
    **{f"predict_depth{i}": [f"predict_depth{i}.0.up.1"] for i in range(1, 5)},
}


def _closed_form_macs(in_channels: int = 4) -> dict[str, int]:
    """Dense MACs per forward and sample of each table row: C_in * C_out * k^2 * H_out * W_out * repeats."""
    out = {}
    for name, cin, cout, k, h, w, rep in LAYER_TABLE:
        c_in = in_channels if name == "bottom" else cin
        out[name] = c_in * cout * k * k * h * w * rep
    return out


def test_closed_form_table_matches_seed_models_md() -> None:
    macs = _closed_form_macs()
    rounded = {k: round(v / 1e6, 1) for k, v in macs.items()}
    assert rounded == {
        "bottom": 287.9, "conv1": 1151.5, "conv2": 1158.1, "conv3": 1189.5, "conv4": 1225.5,
        "bottleneck": 3529.5, "deconv4": 4757.9, "deconv3": 4632.6, "deconv2": 4606.0, "deconv1": 4606.0,
        "predict_depth4": 207.3, "predict_depth3": 103.6, "predict_depth2": 51.8, "predict_depth1": 25.9,
    }  # fmt: skip
    assert macs["bottleneck"] == 4 * 882_376_704
    total = sum(macs.values())
    assert total == 27_533_033_216
    assert round(total / 1e9, 2) == 27.53  # "≈27.53 G dense MACs per inference"


def test_encoder_sizes() -> None:
    assert encoder_sizes(260, 346) == [(260, 346), (130, 173), (65, 87), (33, 44), (17, 22)]


@pytest.fixture(scope="module")
def counted() -> dict[str, object]:
    """Count the three shipped configs at the published resolution (batch 1) once."""
    names = ("stereospike", "stereospike_ann")
    return {name: run_config(load_config(CONFIGS / f"{name}.toml")).result for name in names}


@pytest.mark.parametrize("name", ["stereospike", "stereospike_ann"])
def test_dense_macs_at_published_resolution(counted: dict[str, object], name: str) -> None:
    result = counted[name]
    expected = _closed_form_macs()
    per_layer = {row: sum(result.layer(n).dense_macs for n in CONV_NAMES[row]) for row in expected}
    assert per_layer == expected
    assert result.totals.dense_macs == sum(expected.values()) == 27_533_033_216
    assert result.per_sample["dense_macs"] == 27_533_033_216
    assert result.unsupported == []
    assert result.uncalled == []


def test_layer_geometry_matches_table(counted: dict[str, object]) -> None:
    result = counted["stereospike"]
    for name, cin, cout, k, h, w, _ in LAYER_TABLE:
        for layer in CONV_NAMES[name]:
            geo = result.layer(layer).geometry
            assert (geo["in_channels"], geo["out_channels"], geo["kernel_elems"], geo["out_positions"]) == (
                cin, cout, k * k, h * w,
            ), layer  # fmt: skip


def test_neurons_are_the_firing_rate_denominators(counted: dict[str, object]) -> None:
    result = counted["stereospike"]
    expected = {f"{row}.2": cout * h * w for row, _, cout, _, h, w, _ in LAYER_TABLE[:5]}
    expected |= {
        f"deconv{i}.2": c * h * w
        for i, (c, h, w) in zip(
            (4, 3, 2, 1), [(256, 33, 44), (128, 65, 87), (64, 130, 173), (32, 260, 346)], strict=True
        )
    }
    expected |= {f"bottleneck.{b}.sn{s}": 512 * 17 * 22 for b in (0, 1) for s in (1, 2)}
    expected["Ineurons"] = H * W
    assert {name: result.layer(name).neurons for name in expected} == expected
    assert result.totals.neurons == sum(expected.values())


def test_parameters_closed_form() -> None:
    model = StereoSpike()
    weights = sum(cin * cout * k * k * rep for _, cin, cout, k, _, _, rep in LAYER_TABLE)
    assert weights + 4 == sum(p.numel() for p in model.parameters()) == 18_148_708  # + 4 head biases
    assert round(18_148_708 / 1e6, 2) == 18.15


def test_seed_state_dict_keys() -> None:
    keys = set(StereoSpike().state_dict())
    for key in ("bottom.0.weight", "conv4.0.weight", "bottleneck.1.conv2.0.weight", "deconv4.0.up.1.weight",
                "predict_depth1.0.up.1.weight", "predict_depth1.0.up.1.bias"):  # fmt: skip
        assert key in keys
    assert not any("bias" in k for k in keys if not k.startswith("predict_depth"))


def test_monocular_vs_binocular() -> None:
    mono, bino = create_model("stereospike", monocular=True, height=32, width=48), StereoSpike(input_size=(32, 48))
    assert (mono.in_channels, bino.in_channels) == (2, 4)
    assert mono.bottom[0].weight.shape == (32, 2, 5, 5)
    diff = sum(p.numel() for p in bino.parameters()) - sum(p.numel() for p in mono.parameters())
    assert diff == 2 * 32 * 25 - 4  # the monocular SEW blocks' 4 PLIF nodes learn one w each
    assert _closed_form_macs(4)["bottom"] - _closed_form_macs(2)["bottom"] == 2 * 32 * 25 * H * W
    assert sum(_closed_form_macs(2).values()) == 27_389_097_216
    x = make_inputs(mono, 1, 1, 0)
    assert x.shape == (1, 1, 2, 32, 48)
    assert torch.equal(x, make_inputs(bino, 1, 1, 0)[:, :, :2])  # monocular = the left camera
    with pytest.raises(ValueError, match="expected input"):
        run(mono, make_inputs(bino, 1, 1, 0), 1)


@pytest.mark.parametrize(
    ("variant", "layers", "sew", "params"),
    [("lif", neuron.LIFNode, neuron.ParametricLIFNode, 18_147_112),
     ("plif", neuron.ParametricLIFNode, neuron.ParametricLIFNode, 18_147_121),
     ("if", neuron.IFNode, neuron.IFNode, 18_147_108)],
)
def test_monocular_is_the_seeds_monocular_class(variant: str, layers: type, sew: type, params: int) -> None:
    """``fromZero_feedforward_multiscale_tempo_monocular_SpikeFlowNetLike``: LIF(tau 10, ATan) layers and PLIF
    (init_tau 10, sigmoid) SEW blocks; ``use_plif`` -> PLIF everywhere; ``if`` = the binocular net's neurons."""
    model = create_model("stereospike", monocular=True, monocular_neuron=variant)
    assert sum(p.numel() for p in model.parameters()) == params
    names = ["bottom.2", *(f"conv{i}.2" for i in range(1, 5)), *(f"deconv{i}.2" for i in range(1, 5))]
    mods = dict(model.named_modules())
    assert all(type(mods[n]) is layers for n in names)
    assert all(type(mods[f"bottleneck.{b}.sn{k}"]) is sew for b in (0, 1) for k in (1, 2))
    for m in model.modules():
        if isinstance(m, neuron.LIFNode) and not isinstance(m, neuron.ParametricLIFNode):
            assert m.tau == 10.0 and m.decay_input and m.v_reset == 0.0 and m.detach_reset
            assert type(m.surrogate_function).__name__ == "ATan"
        if isinstance(m, neuron.ParametricLIFNode):
            assert float(1 / m.w.detach().sigmoid()) == pytest.approx(10.0) and m.detach_reset
            assert type(m.surrogate_function).__name__ == "Sigmoid"
    assert model.Ineurons.v_threshold == float("inf")


def test_monocular_lif_needs_ten_times_the_current() -> None:
    """From rest, LIF(tau 10) integrates X / 10: the bottom layer fires where conv(x) >= 10 (IF: >= 1)."""
    lif = create_model("stereospike", monocular=True, height=32, width=48).eval()
    if_net = create_model("stereospike", monocular=True, monocular_neuron="if", height=32, width=48).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        lif.bottom[0].weight.normal_(0, 0.5)
        if_net.bottom[0].weight.copy_(lif.bottom[0].weight)
    x = make_inputs(lif, 1, 1, 0) * 3
    current = torch.nn.functional.conv2d(x[:, 0], lif.bottom[0].weight, padding=2)
    for model, scale in ((lif, 10.0), (if_net, 1.0)):
        seen: dict[str, torch.Tensor] = {}
        handle = model.bottom.register_forward_hook(lambda m, a, o, seen=seen: seen.__setitem__("out", o))
        with torch.no_grad():
            run(model, x, 1)
        handle.remove()
        torch.testing.assert_close(seen["out"], (current / scale >= 1.0).float())


def _head_outputs(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    heads: dict[int, torch.Tensor] = {}
    handles = [
        getattr(model, f"predict_depth{i}").register_forward_hook(
            lambda m, a, o, i=i: heads.__setitem__(i, o.detach().clone())
        )
        for i in range(1, 5)
    ]
    try:
        with torch.no_grad():
            depths, _ = run(model, x, 1)
    finally:
        for h in handles:
            h.remove()
    return [heads[i] for i in (1, 2, 3, 4)], depths


@pytest.mark.parametrize("cls", [StereoSpike, StereoSpikeANN])
def test_depths_are_cumulative_head_sums(cls: type[nn.Module]) -> None:
    torch.manual_seed(0)
    model = cls(input_size=(32, 48)).eval()
    x = make_inputs(model, 2, 1, seed=3)
    (p1, p2, p3, p4), (d1, d2, d3, d4) = _head_outputs(model, x)
    torch.testing.assert_close(d4, p4)
    torch.testing.assert_close(d3, p4 + p3)
    torch.testing.assert_close(d2, p4 + p3 + p2)
    torch.testing.assert_close(d1, p4 + p3 + p2 + p1)
    assert d1.shape == (2, 1, 32, 48)
    model.set_depth_prior(2.5)
    _, (d1b, *_) = _head_outputs(model, x)
    torch.testing.assert_close(d1b, d1 + 2.5)


def test_stateless_and_binary_spikes() -> None:
    torch.manual_seed(0)
    model = StereoSpike(input_size=(32, 48), v_threshold=0.05).eval()
    x = make_inputs(model, 1, 1, seed=1)
    with torch.no_grad():
        first, spikes = run(model, x, 1)
        again, _ = run(model, x, 1)
    torch.testing.assert_close(first[0], again[0])  # reset before every sample: no memory
    for mod in model.modules():
        if isinstance(mod, neuron.IFNode) and mod is not model.Ineurons:
            assert mod.v_threshold == 0.05
    rconv = spikes[0]
    assert torch.equal(rconv, rconv.round()) and rconv.min() >= 0 and rconv.max() <= 3


def test_make_inputs_deterministic_counts() -> None:
    model = StereoSpike(input_size=(40, 60))
    a, b, c = make_inputs(model, 2, 1, 7), make_inputs(model, 2, 1, 7), make_inputs(model, 2, 1, 8)
    assert a.shape == (2, 1, 4, 40, 60) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, a.round()) and a.min() >= 0 and 0.01 < (a > 0).float().mean() < 0.6
    with pytest.raises(ValueError, match="time_steps must be 1"):
        make_inputs(model, 1, 2, 0)


def test_registered_with_seed_stepping() -> None:
    assert {"stereospike", "stereospike_ann"} <= set(list_models("stereospike*"))
    assert get_entry("stereospike").step_mode == "single"
    assert get_entry("stereospike_ann").step_mode == "ann"
    assert get_entry("stereospike").defaults == {"batch_size": 1, "time_steps": 1}


@pytest.mark.parametrize("activation,kind", [("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh), ("leakyrelu", nn.LeakyReLU)])
def test_ann_activations_and_batchnorm(activation: str, kind: type[nn.Module]) -> None:
    model = create_model("stereospike_ann", activation=activation, height=32, width=48)
    assert isinstance(model.conv2[1], kind) and isinstance(model.conv2[2], nn.BatchNorm2d)
    assert model.conv2[0].bias is not None
    assert not any(isinstance(m, neuron.BaseNode) for m in model.modules())
    with pytest.raises(ValueError, match="activation"):
        create_model("stereospike_ann", activation="relu6")


def test_bad_kwargs_rejected() -> None:
    with pytest.raises(ValueError, match="input_size"):
        StereoSpike(input_size=(8, 8))
    with pytest.raises(ValueError, match="surrogate"):
        StereoSpike(input_size=(32, 32), surrogate_name="nope")


def test_reset_clears_state() -> None:
    model = StereoSpike(input_size=(32, 32)).eval()
    with torch.no_grad():
        run(model, make_inputs(model, 1, 1, 0), 1)
    assert isinstance(model.Ineurons.v, torch.Tensor)
    functional.reset_net(model)
    assert model.Ineurons.v == 0.0


def _macs_at(height: int, width: int, in_channels: int) -> int:
    """Closed-form dense MACs at any resolution, from the encoder sizes ceil(n / 2^i)."""
    s = encoder_sizes(height, width)
    c = [in_channels, 32, 64, 128, 256, 512]
    enc = sum(c[i] * c[i + 1] * 25 * s[i][0] * s[i][1] for i in range(5))
    bottleneck = 4 * 512 * 512 * 9 * s[4][0] * s[4][1]
    dec = sum(c[i + 2] * c[i + 1] * 25 * s[i][0] * s[i][1] for i in range(4))
    heads = sum(c[i + 1] * 9 * height * width for i in range(4))
    return enc + bottleneck + dec + heads


def test_closed_form_at_other_resolutions() -> None:
    assert _macs_at(260, 346, 4) == 27_533_033_216 and _macs_at(260, 346, 2) == 27_389_097_216
    model = create_model("stereospike", monocular=True, height=32, width=48).eval()
    result = snnprof_profile(model, make_inputs(model, 2, 1, 0))
    assert result.totals.dense_macs == 2 * _macs_at(32, 48, 2)
    assert _macs_at(32, 48, 4) == 461_389_824


def snnprof_profile(model: nn.Module, x: torch.Tensor) -> object:
    import snnprof

    with torch.no_grad(), snnprof.Profiler(model, time_steps=1) as prof:
        run(model, x, 1)
    return prof.result()
