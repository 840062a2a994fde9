"""Valid slots: neuron layers inside ``snnprof.valid_slots(mask)`` count updates and spikes of valid slots.

The neurons here are IF neurons with threshold 1 fed 0/1 currents: with a hard reset to 0, an IF
neuron fires exactly where its input is 1, so every spike count below is the sum of the input
(closed form), and the valid counts are sums over the masked slots.
"""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

import snnprof
from snnprof.comparison import compare_runs
from snnprof.counting import Profiler, native, profile, slots
from snnprof.counting.merge import merge_results
from snnprof.counting.results import ProfileResult
from snnprof.models import create_model, get_entry
from snnprof.run import Run
from tests.counting._helpers import binary

T, B, C = 5, 4, 3


@pytest.fixture(params=["native", "torch"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the native statistics and with their Torch fallback."""
    if request.param == "torch":
        monkeypatch.setattr(native, "_load", lambda: "disabled in this test")
    return request.param


class Padded(nn.Module):
    """Two IF layers on ``[T, B, C]`` inside a valid-slot block, one IF layer outside it."""

    def __init__(self) -> None:
        super().__init__()
        self.a = neuron.IFNode(step_mode="m")
        self.b = neuron.IFNode(step_mode="m")
        self.outside = neuron.IFNode(step_mode="m")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with snnprof.valid_slots(mask):
            y = self.b(self.a(x))
        return self.outside(y)


def _mask() -> torch.Tensor:
    mask = torch.zeros(T, B, dtype=torch.bool)
    mask[:3, 0] = mask[:5, 1] = mask[:1, 2] = True  # ray 3 empty: 3 + 5 + 1 = 9 valid slots
    return mask


def _run(net: nn.Module, *inputs: torch.Tensor, **kwargs: object) -> ProfileResult:
    functional.reset_net(net)
    return profile(net, inputs, **kwargs)


def test_valid_counts_by_hand(engine: str):
    mask = _mask()
    x = binary((T, B, C), p=0.5, seed=0)
    x[~mask] = 1.0  # padding that fires (a model's padding need not be silent)
    result = _run(Padded(), x, mask)
    a, b, outside = result.layer("a"), result.layer("b"), result.layer("outside")
    valid_updates = 9 * C  # valid slots x neurons per slot
    valid_spikes = int(x[mask].sum())  # IF (threshold 1, 0/1 input) fires where the input is 1
    for rec in (a, b):
        assert (rec.neuron_updates, rec.spikes) == (T * B * C, int(x.sum()))
        assert (rec.valid_updates, rec.valid_spikes) == (valid_updates, valid_spikes)
        assert rec.firing_rate_valid == valid_spikes / valid_updates
    assert (outside.valid_updates, outside.valid_spikes, outside.firing_rate_valid) == (None, None, None)
    tot = result.totals
    assert tot.valid_updates == 2 * valid_updates + T * B * C  # layers without a mask: all updates valid
    assert tot.valid_spikes == 2 * valid_spikes + int(x.sum())
    assert tot.firing_rate_valid == tot.valid_spikes / tot.valid_updates
    assert result.per_sample["valid_updates"] == tot.valid_updates / B
    assert result.per_sample["firing_rate_valid"] == tot.firing_rate_valid


def test_single_step_loop_equals_multi_step(engine: str):
    mask, x = _mask(), binary((T, B, C), p=0.5, seed=1)
    multi = _run(Padded(), x, mask)

    class Stepped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = neuron.IFNode()

        def forward(self, xt: torch.Tensor, mt: torch.Tensor) -> torch.Tensor:
            with snnprof.valid_slots(mt):
                return self.a(xt)

    net = Stepped()
    functional.reset_net(net)
    with Profiler(net) as prof:
        for t in range(T):
            net(x[t], mask[t])
    single = prof.result().layer("a")
    rec = multi.layer("a")
    assert (single.valid_updates, single.valid_spikes) == (rec.valid_updates, rec.valid_spikes) == (
        9 * C, int(x[mask].sum()))


def test_callable_mask_is_called_only_while_profiling():
    calls = []

    def mask() -> torch.Tensor:
        calls.append(1)
        return _mask()

    net, x = Padded(), binary((T, B, C))
    functional.reset_net(net)
    with snnprof.valid_slots(mask):
        net.a(x)
    assert calls == [] and slots.current_mask() is None
    with Profiler(net) as prof, snnprof.valid_slots(mask):
        net.a(x)
    assert calls == [1] and prof.result().layer("a").valid_updates == 9 * C


def test_mismatched_mask_counts_all_valid_with_a_warning():
    net, x = Padded(), binary((T, B, C))
    result = _run(net, x, torch.ones(B, T, dtype=torch.bool))  # transposed: does not cover [T, B]
    rec = result.layer("a")
    assert (rec.valid_updates, rec.valid_spikes) == (None, None)
    assert any("valid_slots mask of shape [4, 5]" in w for w in result.warnings)


def test_calls_without_a_mask_count_as_valid(engine: str):
    """A layer seen first without, then with, then without a mask."""
    lif = neuron.IFNode(step_mode="m")
    mask, x = _mask(), binary((T, B, C), p=0.6, seed=2)
    with Profiler(lif) as prof:
        for masked in (False, True, False):
            functional.reset_net(lif)
            if masked:
                with snnprof.valid_slots(mask):
                    lif(x)
            else:
                lif(x)
    rec = prof.result().layer("")
    assert rec.valid_updates == 2 * T * B * C + 9 * C
    assert rec.valid_spikes == 2 * int(x.sum()) + int(x[mask].sum())


def test_time_only_mask_over_multi_step():
    lif, x = neuron.IFNode(step_mode="m"), binary((T, B, C), p=0.5, seed=3)
    steps = torch.tensor([True, True, False, True, False])
    with Profiler(lif) as prof, snnprof.valid_slots(steps):
        lif(x)
    rec = prof.result().layer("")
    assert (rec.valid_updates, rec.valid_spikes) == (3 * B * C, int(x[steps].sum()))


def test_state_dict_and_merge(engine: str):
    mask, x = _mask(), binary((T, B, C), p=0.5, seed=4)
    net = Padded()
    whole = [_run(net, x, mask), _run(net, x, mask)]
    merged = merge_results(whole)
    functional.reset_net(net)
    with Profiler(net) as prof:
        net(x, mask)
        state = prof.state_dict()
    functional.reset_net(net)
    with Profiler(net) as prof:
        prof.load_state_dict(state)
        net(x, mask)
    resumed = prof.result()
    for name in ("a", "b", "outside"):
        m, r = merged.layer(name), resumed.layer(name)
        assert (m.valid_updates, m.valid_spikes, m.firing_rate_valid) == (
            r.valid_updates, r.valid_spikes, r.firing_rate_valid)
    assert merged.layer("a").valid_updates == 2 * 9 * C
    assert merged.totals.valid_updates == resumed.totals.valid_updates
    back = ProfileResult.from_dict(resumed.to_dict())
    assert back.layer("b").valid_spikes == resumed.layer("b").valid_spikes and back.totals == resumed.totals


def test_without_a_mask_nothing_changes():
    lif, x = neuron.IFNode(step_mode="m"), binary((T, B, C))
    result = profile(lif, x)
    assert result.totals.valid_updates is None and result.totals.firing_rate_valid is None
    assert result.to_dict()["layers"][0]["valid_updates"] is None


def test_run_metrics_and_comparison_rows():
    mask, x = _mask(), binary((T, B, C), p=0.5, seed=5)
    masked = Run("masked", _run(Padded(), x, mask))
    plain = Run("plain", profile(layer.Linear(C, 2, step_mode="m"), x))
    metrics = masked.metrics()
    tot = masked.result.totals
    assert metrics["valid_updates"] == tot.valid_updates / B and metrics["firing_rate_valid"] == tot.firing_rate_valid
    assert metrics["valid_padding"] == 1 - tot.valid_updates / tot.neuron_updates
    assert plain.metrics()["valid_padding"] is None
    keys = {m.key for m in compare_runs([masked, plain]).metrics}
    assert {"valid_updates", "valid_padding", "firing_rate_valid"} <= keys
    assert "valid_padding" not in {m.key for m in compare_runs([plain]).metrics}


# ----------------------------------------------------------------------------- SpikingNeRF


def _nerf(name: str, layout: str) -> tuple[ProfileResult, int]:
    """A tiny SpikingNeRF render's profile and its valid points M."""
    size = {"num_voxels": 24**3} if name == "spikingnerf_d" else {"grid_size": 24}
    model = create_model(name, layout=layout, chunk=96, init="scene", seed=0, **size).eval()
    inputs = get_entry(name).make_inputs(model, 2, 1, 0, image_size=12)
    with torch.no_grad():
        result = profile(model, inputs, batch_size=2, time_steps=1)
    return result, sum(s.points for s in model.last_render_stats)


@pytest.mark.parametrize("name", ["spikingnerf_d", "spikingnerf_t"])
def test_spikingnerf_tcp_and_tp_have_equal_valid_updates_and_rates(name: str):
    (tcp, points), (tp, tp_points) = _nerf(name, "tcp"), _nerf(name, "tp")
    assert points == tp_points > 0
    for layer_name in ("rgbnet.lif1", "rgbnet.hidden.0.1") if name == "spikingnerf_d" else (
            "render_module.lif1", "render_module.hidden.0.1"):
        a, b = tcp.layer(layer_name), tp.layer(layer_name)
        assert a.valid_updates == b.valid_updates == points * 128  # M valid points x 128 neurons
        assert a.neuron_updates < b.neuron_updates  # TP pads more
        assert a.firing_rate_valid == pytest.approx(b.firing_rate_valid, rel=0.01)
    assert tcp.totals.valid_updates == tp.totals.valid_updates
    assert tcp.totals.firing_rate_valid == pytest.approx(tp.totals.firing_rate_valid, rel=0.01)
    assert tcp.totals.firing_rate > tp.totals.firing_rate  # the all-slot rate is diluted by padding
