"""OTTT converter: checkpoints in ``pkuxmq/OTTT-SNN`` layouts, outputs against the seed's equations.

The test writes ``{"net": state_dict, "optimizer", "lr_scheduler", "epoch", "max_test_acc"}`` as
``train_cifar.py`` does, with the keys of ``models/spiking_vgg.py`` built with ``grad_with_rate=True``
(``WrapedSNNOp`` -> ``.op.``) and ``fc_hw = 1``; NF-ResNet-34 with ``models/spiking_resnet_imagenet.py``'s
keys and a DDP ``module.`` prefix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from snnprof.convert import convert_checkpoint, load_upstream
from snnprof.models import create_model
from snnprof.models.ottt import run

from .conftest import randn, save

CFG = (64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512)
WIDTH = 0.125


def upstream_vgg(gen: torch.Generator, classes: int = 10, feedback: bool = False) -> dict[str, torch.Tensor]:
    """``online_spiking_vgg11(f)_ws`` keys at width 1/8 (the first conv unwrapped, later ones ``.op.``)."""
    state, cin, index = {}, 3, 0
    for i, v in enumerate(CFG):
        if v == "M":
            index += 1
            continue
        cout = int(v * WIDTH)
        name = ("conv1" if feedback else "features.0") if i == 0 else f"features.{index - (1 if feedback else 0)}.op"
        state[f"{name}.weight"] = randn(gen, cout, cin, 3, 3, scale=0.3)
        state[f"{name}.bias"] = randn(gen, cout, scale=0.1)
        state[f"{name}.gain"] = 1 + randn(gen, cout, 1, 1, 1, scale=0.1)
        cin, index = cout, index + 3
    state["classifier.0.op.weight"] = randn(gen, classes, cin, scale=0.3)
    state["classifier.0.op.bias"] = randn(gen, classes, scale=0.1)
    if feedback:
        state["fb_conv.op.weight"] = randn(gen, int(64 * WIDTH), cin, 3, 3, scale=0.1)
        state["fb_conv.op.bias"] = randn(gen, int(64 * WIDTH), scale=0.1)
    return state


def ws_weight(w: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """``ScaledWSConv2d.get_weight``: ``(W - mean) / sqrt(var * fan_in + 1e-4) * gain`` (unbiased var)."""
    fan_in = w[0].numel()
    mean, var = w.mean((1, 2, 3), keepdim=True), w.var((1, 2, 3), keepdim=True)
    return (w - mean) / (var * fan_in + 1e-4) ** 0.5 * gain


def reference_vgg(state: dict[str, torch.Tensor], x: torch.Tensor, steps: int) -> torch.Tensor:
    """The seed's eval forward over ``steps`` (``OnlineLIFNode``: ``v = 0.5 v + x``, fire at ``v >= 1``, ``v -= s``)."""
    convs = [k[: -len(".weight")] for k in state if k.endswith(".weight") and k.startswith("features")]
    total = 0
    membranes: dict[str, torch.Tensor] = {}
    for t in range(steps):
        h, conv = x, iter(convs)
        for v in CFG:
            if v == "M":
                h = F.avg_pool2d(h, 2)
                continue
            name = next(conv)
            h = F.conv2d(h, ws_weight(state[f"{name}.weight"], state[f"{name}.gain"]), state[f"{name}.bias"],
                         padding=1)
            mem = h if t == 0 else membranes[name] * 0.5 + h
            spike = (mem >= 1.0).float()
            membranes[name] = mem - spike
            h = spike * 2.74
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)
        total = total + F.linear(h, state["classifier.0.op.weight"], state["classifier.0.op.bias"])
    return total


def test_vgg11_checkpoint_gives_the_seed_outputs(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    upstream = upstream_vgg(gen)
    path = save(tmp_path / "checkpoint_max.pth", {"net": upstream, "optimizer": {"state": {}, "param_groups": []},
                                                    "lr_scheduler": {"T_max": 300, "last_epoch": 3}, "epoch": 3,
                                                    "max_test_acc": 0.5})
    converted = convert_checkpoint("ottt", path)
    assert converted.model == "ottt_vgg11_ws" and converted.kwargs == {"num_classes": 10, "in_channels": 3,
                                                                       "width": WIDTH}
    assert "features.3.weight" in converted.state and "classifier.weight" in converted.state
    model = create_model("ottt_vgg11_ws", **converted.kwargs).eval()
    model.load_state_dict(load_upstream("ottt_vgg11_ws", path, converted.kwargs), strict=True)
    x = torch.rand(2, 3, 16, 16, generator=gen) * 2
    with torch.no_grad():
        ours = run(model, x, 3)
    torch.testing.assert_close(ours, reference_vgg(upstream, x, 3), rtol=1e-4, atol=1e-4)


def test_vgg11f_and_nfresnet_layouts_map_every_key(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(1)
    path = save(tmp_path / "f.pth", {"net": upstream_vgg(gen, feedback=True), "epoch": 0})
    converted = convert_checkpoint("ottt", path)
    assert converted.model == "ottt_vgg11f_ws"
    model = create_model("ottt_vgg11f_ws", **converted.kwargs)
    model.load_state_dict(converted.state, strict=True)
    resnet = create_model("ottt_nfresnet34", num_classes=7)
    wrapped = {}
    for key, value in resnet.state_dict().items():  # upstream names: '.op.' inside the spike-fed convs
        parts = key.split(".")
        if parts[0].startswith("layer") and parts[2] in ("conv1", "conv2", "downsample"):
            parts = [*parts[:3], "op", *parts[3:]]
        wrapped["module." + ".".join(parts)] = torch.randn(value.shape, generator=gen)
    path = save(tmp_path / "imagenet.pth", {"net": wrapped})
    converted = convert_checkpoint("ottt", path)
    assert converted.model == "ottt_nfresnet34" and converted.kwargs == {"num_classes": 7, "in_channels": 3}
    resnet.load_state_dict(load_upstream("ottt_nfresnet34", path, converted.kwargs), strict=True)
    assert torch.equal(resnet.layer2[0].downsample.weight, wrapped["module.layer2.0.downsample.op.weight"])


def test_heavy_classifier_is_refused(tmp_path: Path) -> None:
    from snnprof.convert import UpstreamCheckpointError

    state = upstream_vgg(torch.Generator().manual_seed(2))
    state["classifier.1.op.weight"] = torch.zeros(4096, 512)
    with pytest.raises(UpstreamCheckpointError, match="light classifier"):
        convert_checkpoint("ottt", save(tmp_path / "x.pth", {"net": state}))
