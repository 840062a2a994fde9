"""OTTT VGG-11F (feedback) and its config: closed-form MACs per step, feedback semantics, counting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn

import snnprof
from snnprof.models import ottt
from snnprof.models.ottt import OnlineLIFNode, ScaledWSConv2d

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ottt_vgg11f_ws.toml"

# VGG-11 cfg A at 32x32: (C_in, C_out, side) of the eight 3x3 convs.
VGG_CONVS = [(3, 64, 32), (64, 128, 32), (128, 256, 16), (256, 256, 16),
             (256, 512, 8), (512, 512, 8), (512, 512, 4), (512, 512, 4)]  # fmt: skip
VGG_MACS = sum(cin * cout * 9 * s * s for cin, cout, s in VGG_CONVS)
FB_MACS = 512 * 64 * 9 * 32 * 32  # fb_conv 512 -> 64, k3, on the x8-upsampled 4x4 map
FC_MACS = 512 * 10


@pytest.fixture(scope="module")
def vggf() -> nn.Module:
    torch.manual_seed(0)
    return ottt.ottt_vgg11f_ws().eval()


def _conv_macs_per_call(model: nn.Module, x: torch.Tensor, steps: int) -> list[int]:
    """Conv MACs of each forward call (one per time step), from shapes."""
    per_call: list[int] = []

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        kh, kw = mod.kernel_size
        per_call[-1] += out.numel() // out.shape[0] * (mod.in_channels // mod.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            for t in range(steps):
                per_call.append(0)
                model(x, init=(t == 0))
    finally:
        for h in handles:
            h.remove()
    return per_call


def test_closed_form_macs_per_step(vggf: nn.Module) -> None:
    assert VGG_MACS == 605_749_248
    assert FB_MACS == 301_989_888
    assert _conv_macs_per_call(vggf, torch.zeros(1, 3, 32, 32), 3) == [VGG_MACS, VGG_MACS + FB_MACS, VGG_MACS + FB_MACS]


def test_profiled_dense_macs_and_neurons(vggf: nn.Module) -> None:
    steps, batch = 3, 2
    x = ottt.make_inputs(vggf, batch, steps, seed=0)
    with torch.no_grad(), snnprof.Profiler(vggf, time_steps=steps, batch_size=batch) as prof:
        ottt.run(vggf, x, steps)
    result = prof.result()
    assert result.per_sample["dense_macs"] == steps * (VGG_MACS + FC_MACS) + (steps - 1) * FB_MACS
    assert result.layer("fb_conv").calls == steps - 1
    assert result.layer("fb_conv").input_kind == "spike"  # upsampled scaled spikes
    assert result.layer("conv1").input_kind == "dense"
    assert result.totals.neurons == 409_600
    assert result.unsupported == []


def test_structure_and_zero_init(vggf: nn.Module) -> None:
    names = [n for n, _ in vggf.named_children()]
    assert names == ["conv1", "features", "avgpool", "flatten", "classifier", "up", "fb_conv"]
    assert isinstance(vggf.conv1, ScaledWSConv2d) and vggf.conv1.out_channels == 64
    assert isinstance(vggf.features[0], OnlineLIFNode)  # the first neuron follows conv1 (+ feedback)
    assert vggf.up.scale_factor == 8 and vggf.up.mode == "nearest"
    fb = vggf.fb_conv
    assert type(fb) is nn.Conv2d
    assert (fb.in_channels, fb.out_channels, fb.kernel_size, fb.padding) == (512, 64, (3, 3), (1, 1))
    assert torch.count_nonzero(fb.weight) == 0 and torch.count_nonzero(fb.bias) == 0
    params = sum(p.numel() for p in vggf.parameters())
    assert params == 9_228_362 + 512 * 64 * 9 + 64


def test_feedback_uses_previous_step_features() -> None:
    torch.manual_seed(0)
    model = ottt.ottt_vgg11f_ws(width=0.125).eval()
    with torch.no_grad():
        nn.init.normal_(model.fb_conv.weight, 0.0, 0.5)  # make the feedback matter
        x = torch.randn(2, 3, 16, 16) * 2
        model(x, init=True)
        previous = model.fb_features.clone()
        conv_in: list[torch.Tensor] = []
        handle = model.features[0].register_forward_pre_hook(lambda m, a: conv_in.append(a[0]))
        model(x)
        handle.remove()
        expected = model.conv1(x) + model.fb_conv(nn.functional.interpolate(previous, scale_factor=8, mode="nearest"))
    torch.testing.assert_close(conv_in[0], expected)
    assert previous.shape == (2, 64, 2, 2)
    functional.reset_net(model)
    assert model.fb_features is None
    with torch.no_grad():
        first = model(x, init=True)
        again = model(x, init=True)  # init clears the feedback memory: identical first steps
    assert torch.equal(first, again)


def test_registry_and_config() -> None:
    from snnprof.config import load_config
    from snnprof.models.registry import get_entry

    entry = get_entry("ottt_vgg11f_ws")
    assert entry.step_mode == "single" and entry.run is ottt.run and entry.from_batch is ottt.from_batch
    cfg = load_config(CONFIG)
    assert cfg.model.name == "ottt_vgg11f_ws"
    assert (cfg.input.batch_size, cfg.input.time_steps, cfg.input.kwargs) == (8, 6, {"image_size": 32})
