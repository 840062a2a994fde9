"""StereoSpike converter: ``urancon/StereoSpike`` state dicts, outputs against the seed's equations.

The test writes what ``train.py`` saves (``torch.save(net.state_dict())``) with the keys of
``network/SNN_models.py`` (``StereoSpike`` and the monocular ``fromZero_feedforward_multiscale_tempo_
monocular_SpikeFlowNetLike`` with its PLIF SEW ``w``), ``network/ANN_models.py`` (``StereoSpike_equivalentANN``)
and ``network/blocks.py``; the reference re-runs the seed's forward (stateless, T = 1, from rest) with
``F.conv2d`` on those tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from snnprof.convert import UpstreamCheckpointError, convert_checkpoint, load_upstream
from snnprof.models import create_model
from snnprof.models.stereospike import encoder_sizes, run

from .conftest import randn, save

H, W = 32, 48
CH = (32, 64, 128, 256, 512)


def upstream_state(gen: torch.Generator, cin: int, *, ann: bool = False, sew_plif: bool = False,
                   layer_plif: bool = False, gain: float = 3.0) -> dict[str, torch.Tensor]:
    """The seed's keys (``Sequential`` indices of ``SNN_models.py`` / ``ANN_models.py``), random values
    (``gain`` x He-scaled weights: large enough for every level of the tested nets to fire)."""
    s: dict[str, torch.Tensor] = {}

    def conv(name: str, cout: int, c_in: int, k: int, bias: bool) -> None:
        s[f"{name}.weight"] = randn(gen, cout, c_in, k, k, scale=(2.0 / (c_in * k * k)) ** 0.5 * gain)
        if bias:
            s[f"{name}.bias"] = randn(gen, cout, scale=0.1)

    def norm(name: str, c: int) -> None:
        s[f"{name}.weight"], s[f"{name}.bias"] = 1 + randn(gen, c, scale=0.1), randn(gen, c, scale=0.1)
        s[f"{name}.running_mean"], s[f"{name}.running_var"] = randn(gen, c, scale=0.1), 1 + torch.rand(c, generator=gen)
        s[f"{name}.num_batches_tracked"] = torch.tensor(7)

    chans = (cin, *CH)
    for i, name in enumerate(("bottom", "conv1", "conv2", "conv3", "conv4")):
        conv(f"{name}.0", chans[i + 1], chans[i], 5, ann)
        if ann:
            norm(f"{name}.2", chans[i + 1])
        elif layer_plif:
            s[f"{name}.2.w"] = torch.tensor(-2.0 + 0.1 * i)
    for b in (0, 1):
        for c in (1, 2):
            conv(f"bottleneck.{b}.conv{c}.0", 512, 512, 3, ann)
            if ann:
                norm(f"bottleneck.{b}.conv{c}.2", 512)
            elif sew_plif:
                s[f"bottleneck.{b}.sn{c}.w"] = torch.tensor(-2.2 + 0.05 * c)
    for i in (4, 3, 2, 1):
        conv(f"deconv{i}.0.up.1", CH[i - 1], CH[i], 5, False)
        if ann:
            norm(f"deconv{i}.2", CH[i - 1])
        elif layer_plif:
            s[f"deconv{i}.2.w"] = torch.tensor(-2.1)
        conv(f"predict_depth{i}.0.up.1", 1, CH[i - 1], 3, True)
    return s


def reference(s: dict[str, torch.Tensor], frame: torch.Tensor, node: Callable[[str, torch.Tensor], torch.Tensor],
              sew: Callable[[str, torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
    """The seed's forward from rest (``node(name, current)`` = the neuron, or activation + BatchNorm)."""
    sizes = encoder_sizes(H, W)

    def up_conv(name: str, x: torch.Tensor, size: tuple[int, int], k: int) -> torch.Tensor:
        x = F.interpolate(x, size=(size[0] + k - 1, size[1] + k - 1), mode="nearest")
        return F.conv2d(x, s[f"{name}.weight"], s.get(f"{name}.bias"))

    outs = [node("bottom", F.conv2d(frame, s["bottom.0.weight"], s.get("bottom.0.bias"), padding=2))]
    for i in range(1, 5):
        outs.append(node(f"conv{i}", F.conv2d(outs[-1], s[f"conv{i}.0.weight"], s.get(f"conv{i}.0.bias"),
                                              stride=2, padding=2)))
    x = outs[-1]
    for b in (0, 1):
        h = sew(f"bottleneck.{b}.sn1", F.conv2d(x, s[f"bottleneck.{b}.conv1.0.weight"],
                                                 s.get(f"bottleneck.{b}.conv1.0.bias"), padding=1))
        h = sew(f"bottleneck.{b}.sn2", F.conv2d(h, s[f"bottleneck.{b}.conv2.0.weight"],
                                                 s.get(f"bottleneck.{b}.conv2.0.bias"), padding=1))
        x = h + x
    depth, depths = 0, []
    for i in (4, 3, 2, 1):
        x = node(f"deconv{i}", up_conv(f"deconv{i}.0.up.1", x, sizes[i - 1], 5)) + outs[i - 1]
        depth = depth + up_conv(f"predict_depth{i}.0.up.1", x, sizes[0], 3)  # I-neurons: v += input
        depths.insert(0, depth)
    return depths


def _heaviside(scale: Callable[[str], float]) -> Callable[[str, torch.Tensor], torch.Tensor]:
    """A neuron from rest at T = 1: ``v = scale * I``, spike where ``v >= 1`` (SpikingJelly's heaviside)."""
    return lambda name, current: (current * scale(name) >= 1.0).float()


@pytest.mark.parametrize("variant", ["binocular", "monocular", "monocular_plif"])
def test_snn_checkpoints_give_the_seed_outputs(tmp_path: Path, variant: str) -> None:
    gen = torch.Generator().manual_seed(0)
    cin = 4 if variant == "binocular" else 2
    s = upstream_state(gen, cin, sew_plif=variant != "binocular", layer_plif=variant == "monocular_plif",
                       gain=3.0 if variant == "binocular" else 30.0)  # LIF(tau 10) integrates I / 10
    path = save(tmp_path / "stereospike.pth", {f"module.{k}": v for k, v in s.items()})  # a DataParallel run
    converted = convert_checkpoint("stereospike", path)
    expected = {"binocular": {}, "monocular": {"monocular": True, "monocular_neuron": "lif"},
                "monocular_plif": {"monocular": True, "monocular_neuron": "plif"}}[variant]
    assert converted.model == "stereospike" and converted.kwargs == expected
    kwargs = {**converted.kwargs, "height": H, "width": W}
    model = create_model("stereospike", **kwargs).eval()
    model.load_state_dict(load_upstream("stereospike", path, kwargs), strict=True)
    x = torch.poisson(torch.full((2, 1, cin, H, W), 0.6), generator=gen)
    with torch.no_grad():
        depths, spikes = run(model, x, 1)
    assert all(bool(t.any()) for t in spikes)  # every decoder level fires: the comparison is not vacuous

    def plif(name: str) -> float:
        return float(torch.sigmoid(s[f"{name}.2.w" if not name.startswith("bottleneck") else f"{name}.w"]))

    layer_scale = {"binocular": lambda n: 1.0, "monocular": lambda n: 0.1, "monocular_plif": plif}[variant]
    sew_scale = (lambda n: 1.0) if variant == "binocular" else (lambda n: float(torch.sigmoid(s[f"{n}.w"])))
    ref = reference(s, x[:, 0], _heaviside(layer_scale), _heaviside(sew_scale))
    for ours, theirs in zip(depths, ref, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_ann_checkpoint_gives_the_seed_outputs(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(1)
    s = upstream_state(gen, 4, ann=True)
    path = save(tmp_path / "ann.pth", s)
    converted = convert_checkpoint("stereospike", path)
    assert converted.model == "stereospike_ann" and converted.kwargs == {}
    model = create_model("stereospike_ann", height=H, width=W).eval()
    model.load_state_dict(load_upstream("stereospike_ann", path, {"height": H, "width": W}), strict=True)
    x = torch.poisson(torch.full((2, 1, 4, H, W), 0.6), generator=gen)

    def sigmoid_bn(name: str, current: torch.Tensor) -> torch.Tensor:  # activation, then BatchNorm (eval)
        prefix = name.replace(".sn", ".conv") if ".sn" in name else name
        bn = {k: s[f"{prefix}.2.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
        return F.batch_norm(torch.sigmoid(current), bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"])

    with torch.no_grad():
        depths, _ = run(model, x, 1)
    for ours, theirs in zip(depths, reference(s, x[:, 0], sigmoid_bn, sigmoid_bn), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_bad_stereospike_checkpoints(tmp_path: Path) -> None:
    s = upstream_state(torch.Generator().manual_seed(2), 4)
    with pytest.raises(UpstreamCheckpointError, match="learnable factor"):
        convert_checkpoint("stereospike", save(tmp_path / "a.pth", {**s, "bottom.1.scale_value": torch.ones(1)}))
    with pytest.raises(UpstreamCheckpointError, match="IF neurons"):
        convert_checkpoint("stereospike", save(tmp_path / "b.pth", {**s, "bottleneck.0.sn1.w": torch.zeros(())}))
    with pytest.raises(UpstreamCheckpointError, match="expected the keys of stereospike") as err:
        load_upstream("stereospike", save(tmp_path / "c.pth", {k: v for k, v in s.items() if "conv4" not in k}),
                      {"height": H, "width": W})
    assert err.value.key == "conv4.0.weight" and str(tmp_path / "c.pth") in str(err.value)
