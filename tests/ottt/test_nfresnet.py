"""OTTT NF-ResNet-34 (ImageNet): closed-form MACs and neurons per step at 224x224, NF scalings, counting."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import snnprof
from snnprof.models import ottt, ottt_resnet
from snnprof.models.ottt import OnlineLIFNode
from snnprof.models.ottt_resnet import OnlineNFBasicBlock

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ottt_nfresnet34.toml"
STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (planes, blocks, stride) of ResNet-34


def _out(side: int, k: int, stride: int, pad: int) -> int:
    return (side + 2 * pad - k) // stride + 1


def closed_form(size: int = 224, width: float = 1.0) -> tuple[list[int], list[int]]:
    """Conv MACs per call (in forward order) and spiking neurons per layer, per sample and step."""
    c = lambda n: max(1, round(n * width))  # noqa: E731
    side = _out(size, 7, 2, 3)
    macs = [3 * c(64) * 49 * side * side]  # stem, 7x7 s2 p3
    side = _out(side, 3, 2, 1)  # AvgPool 3x3 s2 p1
    neurons: list[int] = []
    inplanes = c(64)
    for channels, blocks, stride in STAGES:
        planes = c(channels)
        for b in range(blocks):
            s = stride if b == 0 else 1
            out = _out(side, 3, s, 1)
            neurons.append(inplanes * side * side)  # sn1 on the block input
            if b == 0 and (s != 1 or inplanes != planes):
                macs.append(inplanes * planes * out * out)  # downsample 1x1 on the sn1 spikes
            macs.append(inplanes * planes * 9 * out * out)  # conv1
            neurons.append(planes * out * out)  # sn2
            macs.append(planes * planes * 9 * out * out)  # conv2
            inplanes, side = planes, out
    return macs, neurons


def _per_call(model: nn.Module, x: torch.Tensor) -> tuple[list[int], list[int], int]:
    convs: list[int] = []
    neurons: list[int] = []
    linear: list[int] = []

    def conv_hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        kh, kw = mod.kernel_size
        convs.append(out[0].numel() * (mod.in_channels // mod.groups) * kh * kw)

    handles = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_hook(lambda m, i, o: neurons.append(o[0].numel()))
                for m in model.modules() if isinstance(m, OnlineLIFNode)]  # fmt: skip
    handles += [model.fc.register_forward_hook(lambda m, i, o: linear.append(o[0].numel() * m.in_features))]
    try:
        with torch.no_grad():
            model(x, init=True)
    finally:
        for h in handles:
            h.remove()
    return convs, neurons, sum(linear)


def test_closed_form_at_224() -> None:
    macs, neurons = closed_form()
    assert len(neurons) == 32  # sn1, sn2 of 16 blocks
    assert len(macs) == 1 + 2 * 16 + 3  # stem, two 3x3 per block, three downsamples
    assert macs[0] == 118_013_952
    assert sum(macs) == 3_663_249_408  # "3.67 G MACs per step" (ResNet-34 convs at 224x224)
    assert sum(neurons) == 2_935_296
    torch.manual_seed(0)
    model = ottt_resnet.ottt_nfresnet34().eval()
    convs, seen, linear = _per_call(model, torch.zeros(1, 3, 224, 224))
    assert convs == macs
    assert seen == neurons
    assert linear == 512 * 1000


def test_count_at_224_completes_and_matches() -> None:
    torch.manual_seed(0)
    model = ottt_resnet.ottt_nfresnet34().eval()
    x = ottt_resnet.make_imagenet_inputs(model, 1, 1, seed=0)
    start = time.perf_counter()
    with torch.no_grad(), snnprof.Profiler(model, time_steps=1, batch_size=1) as prof:
        ottt.run(model, x, 1)
    result = prof.result()
    elapsed = time.perf_counter() - start
    macs, neurons = closed_form()
    assert result.totals.dense_macs == sum(macs) + 512 * 1000
    assert result.totals.neurons == sum(neurons)
    assert sum(1 for layer in result.layers if layer.neurons) == 32
    assert result.layer("conv1").input_kind == "dense"
    assert result.layer("layer1.0.conv1").input_kind == "spike"
    assert result.unsupported == []
    assert elapsed < 120
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 8 * 1024 * 1024  # KiB: well under 8 GiB


def test_nf_scalings_and_init() -> None:
    torch.manual_seed(0)
    model = ottt_resnet.ottt_nfresnet34()
    blocks = [m for m in model.modules() if isinstance(m, OnlineNFBasicBlock)]
    assert len(blocks) == 16
    # Expected input variance: 1 at the stem, + alpha^2 per block, 1 + alpha^2 after a downsampling block.
    var, betas = 1.0, []
    for _, n, _ in STAGES:
        for b in range(n):
            betas.append(var**0.5)
            var = 1.0 + 0.04 if (b == 0 and len(betas) > 1) else var + 0.04
    assert [blk.beta for blk in blocks] == pytest.approx(betas)
    assert all(blk.alpha == 0.2 and blk.skipinit_gain.item() == 0.0 for blk in blocks)
    assert [blk.downsample is not None for blk in blocks] == [i in (3, 7, 13) for i in range(16)]
    assert torch.count_nonzero(model.fc.weight) == 0
    assert isinstance(model.pool, nn.AvgPool2d) and model.pool.kernel_size == 3


def test_block_equations() -> None:
    torch.manual_seed(0)
    block = OnlineNFBasicBlock(4, 4, beta=2.0, alpha=0.2).eval()
    with torch.no_grad():
        block.skipinit_gain.fill_(0.5)
        x = torch.randn(2, 4, 6, 6) * 3
        out = block(x, init=True)
        probe = OnlineNFBasicBlock(4, 4, beta=2.0, alpha=0.2).eval()
        probe.load_state_dict(block.state_dict())
        s1 = probe.sn1(x / 2.0, init=True) * 2.74
        s2 = probe.sn2(probe.conv1(s1), init=True) * 2.74
        expected = probe.conv2(s2) * 0.5 * 0.2 + x
    torch.testing.assert_close(out, expected)


def test_training_step_with_the_trace_trick() -> None:
    torch.manual_seed(0)
    model = ottt_resnet.ottt_nfresnet34(num_classes=5, width=0.125).train()
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 3])
    with torch.no_grad():
        model.eval()
        ref = [model(x, init=(t == 0)) for t in range(2)]
        model.train()
    for t in range(2):
        out = model(x, init=(t == 0))
        torch.testing.assert_close(out.detach(), ref[t])  # the trick leaves the forward values alone
        torch.nn.functional.cross_entropy(out, y).backward()
    assert model.fc.weight.grad is not None and model.layer1[0].skipinit_gain.grad is not None


def test_config() -> None:
    from snnprof.config import load_config

    cfg = load_config(CONFIG)
    assert cfg.model.name == "ottt_nfresnet34"
    assert (cfg.input.batch_size, cfg.input.time_steps, cfg.input.kwargs) == (1, 6, {"image_size": 224})


@pytest.mark.slow
def test_shipped_config_counts_via_cli(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from snnprof.cli import app

    out = tmp_path / "r34.json"
    res = CliRunner().invoke(app, ["count", str(CONFIG), "--json", str(out), "-q"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    macs, _ = closed_form()
    assert data["per_sample"]["dense_macs"] == 6 * (sum(macs) + 512 * 1000)
