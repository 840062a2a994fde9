"""Per-sample statistics of the engine (``Profiler(sample_stats=True)``), closed form and by construction.

The reference for "the SOPs of sample i" is the same model profiled on sample i alone (batch 1):
for 0/1 spike inputs the input kind cannot change, so the per-sample values read from one batch
must equal the single-sample totals exactly, whatever the layout (``[B, ...]``, ``[T, B, ...]``,
flattened ``[T*B, ...]``, tokens ``[B, L, C]``, sequence-first ``[L, B, E]``).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

from snnprof.counting import Cost, Profiler, Synapse, register_rule
from snnprof.counting.merge import merge_results
from snnprof.counting.sample_stats import SAMPLE_FIELDS, SampleStats
from tests.counting._helpers import binary
from tests.dataset import _tiny


class FlattenedConv(nn.Module):
    """A multi-step model that flattens ``[T, B] -> [T*B]`` itself (T-major) around a plain conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
        self.lif = neuron.LIFNode(step_mode="m", v_threshold=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        y = self.conv(x.flatten(0, 1))
        return self.lif(y.reshape(t, b, *y.shape[1:]))


class SpikeMatmul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


class SpikeAttention(nn.Module):
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v)


class Online(nn.Module):
    """A single-step net run as an online loop (one call per step)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.lif = neuron.LIFNode(v_threshold=0.1)
        self.fc = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lif(self.conv(x)).flatten(1))


def _multi(*mods: nn.Module) -> nn.Module:
    net = nn.Sequential(*mods)
    functional.set_step_mode(net, "m")
    return net


def _run(model: nn.Module, inputs: tuple[torch.Tensor, ...], steps: int | None) -> None:
    functional.reset_net(model)
    if steps is None:
        model(*inputs)
        return
    for t in range(steps):
        model(inputs[0][t])


def _profile(model: nn.Module, inputs: tuple[torch.Tensor, ...], steps: int | None, batch: int) -> SampleStats:
    with torch.no_grad(), Profiler(model, sample_stats=True) as prof:
        _run(model, inputs, steps)
        prof.end_batch(batch)
    stats = prof.result().sample_stats
    assert stats is not None and stats.shared == []
    return stats


def _alone(model: nn.Module, inputs: tuple[torch.Tensor, ...], steps: int | None, dims: tuple[int, ...],
           batch: int) -> np.ndarray:
    rows = []
    for i in range(batch):
        one = tuple(x.narrow(d, i, 1) for x, d in zip(inputs, dims, strict=True))
        with torch.no_grad(), Profiler(model) as prof:
            _run(model, one, steps)
        tot = prof.result().totals
        rows.append([tot.macs, tot.sops, tot.spikes])
    return np.array(rows, dtype=np.float64)


def _assert_matches(stats: SampleStats, per: np.ndarray) -> None:
    assert stats.n == per.shape[0]
    for i, name in enumerate(SAMPLE_FIELDS):
        spread = stats.spread(name)
        assert stats.total[i] == per[:, i].sum()  # exact sums
        assert (spread.min, spread.max) == (per[:, i].min(), per[:, i].max())
        assert spread.mean == pytest.approx(per[:, i].mean(), rel=1e-12, abs=1e-12)
        assert spread.std == pytest.approx(per[:, i].std(), rel=1e-9, abs=1e-9)
    assert np.allclose(stats.cov(), np.cov(per.T, bias=True), rtol=1e-9, atol=1e-9)


B, T = 5, 3

CASES = {
    # name: (model factory, inputs factory, steps (online loop) or None, sample dim per input)
    "conv_BCHW": (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), lambda: (binary((B, 2, 7, 7), 0.3),), None, (0,)),
    "sj_multistep_TBCHW": (
        lambda: _multi(layer.Conv2d(2, 4, 3, padding=1), neuron.IFNode(v_threshold=0.5), layer.Flatten(),
                       layer.Linear(4 * 6 * 6, 3)),
        lambda: (binary((T, B, 2, 6, 6), 0.3),), None, (1,)),
    "multistep_T_equals_B": (
        lambda: _multi(layer.Linear(4, 6), neuron.IFNode(v_threshold=0.2), layer.Linear(6, 2)),
        lambda: (binary((B, B, 4), 0.4),), None, (1,)),
    "flattened_TB_is_T_major": (FlattenedConv, lambda: (binary((T, B, 2, 6, 6), 0.3),), None, (1,)),
    "tokens_BLC": (lambda: nn.Linear(4, 3), lambda: (binary((B, 7, 4), 0.4),), None, (0,)),
    "mha_sequence_first_LBE": (
        lambda: nn.MultiheadAttention(4, 2), lambda: tuple(binary((7, B, 4), 0.4, seed=s) for s in range(3)), None,
        (1, 1, 1)),
    "spike_at_spike_matmul": (SpikeMatmul, lambda: (binary((B, 3, 4), 0.4), binary((B, 4, 6), 0.5, seed=1)), None,
                              (0, 0)),
    "sdpa_spiking_qkv": (SpikeAttention, lambda: tuple(binary((B, 2, 4, 3), 0.5, seed=s) for s in range(3)), None,
                         (0, 0, 0)),
    "online_single_step_loop": (Online, lambda: (binary((T, B, 2, 5, 5), 0.3),), T, (1,)),
    "dense_input_macs": (lambda: nn.Conv2d(2, 3, 3), lambda: (torch.randn(B, 2, 5, 5),), None, (0,)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_per_sample_counts_equal_single_sample_runs(name: str) -> None:
    make_model, make_inputs, steps, dims = CASES[name]
    torch.manual_seed(0)
    model = make_model().eval()
    inputs = make_inputs()
    batch = inputs[0].shape[dims[0]]
    stats = _profile(model, inputs, steps, batch)
    _assert_matches(stats, _alone(model, inputs, steps, dims, batch))


def _tiny_batches(model: nn.Module, x: torch.Tensor, batch: int, online: bool, **kw: object) -> Profiler:
    prof = Profiler(model, time_steps=_tiny.T, sample_stats=True, **kw)
    with torch.no_grad(), prof:
        for start in range(0, x.shape[0], batch):
            xb = x[start:start + batch].transpose(0, 1)
            functional.reset_net(model)
            if online:
                for t in range(_tiny.T):
                    model(xb[t])
            else:
                model(xb)
            prof.end_batch(xb.shape[1])
    return prof


@pytest.mark.parametrize("model_name", ["tiny_if", "tiny_if_online"])
def test_closed_form_linear_if_spread(model_name: str) -> None:
    x = _tiny.spike_data(11)
    entry = _tiny.entries()[model_name]
    prof = _tiny_batches(entry.factory(), x, 4, online=model_name.endswith("online"),
                         sample_projections={"w": (4.6, 0.9, 1.7)})
    result = prof.result()
    per = _tiny.expected_per_sample(x)
    _assert_matches(result.sample_stats, per)
    assert result.totals.sops == per[:, 1].sum() and result.totals.spikes == per[:, 2].sum()
    proj = per @ np.array([4.6, 0.9, 1.7])
    assert result.sample_stats.projections["w"]["min"] == pytest.approx(proj.min())
    assert result.sample_stats.projections["w"]["max"] == pytest.approx(proj.max())
    spread = result.sample_stats.linear((4.6, 0.9, 1.7), offset=2.0, projection="w")
    assert spread.mean == pytest.approx(proj.mean() + 2.0)
    assert spread.std == pytest.approx(proj.std())
    assert (spread.min, spread.max) == (pytest.approx(proj.min() + 2.0), pytest.approx(proj.max() + 2.0))


def test_batch_size_is_inferred_from_neurons_and_result_closes_the_last_batch() -> None:
    x = _tiny.spike_data(6)
    model = _tiny.entries()["tiny_if"].factory()
    with torch.no_grad(), Profiler(model, sample_stats=True) as prof:
        for start in (0, 4):
            functional.reset_net(model)
            model(x[start:start + 4].transpose(0, 1))
            if start == 0:
                prof.end_batch()  # batch 4 from the IF layer's [T, B, O] spikes
    stats = prof.result().sample_stats  # the pending batch of 2 is closed here
    _assert_matches(stats, _tiny.expected_per_sample(x))


def test_without_sample_stats_there_is_no_per_sample_work() -> None:
    model = _tiny.entries()["tiny_if"].factory()
    with Profiler(model) as prof:
        model(_tiny.spike_data(3).transpose(0, 1))
        prof.end_batch()  # a no-op
    result = prof.result()
    assert result.sample_stats is None and prof._run.samples is None
    assert result.to_dict()["sample_stats"] is None
    with pytest.raises(ValueError, match="sample_stats"):
        Profiler(model, sample_projections={"w": (1, 1, 1)})


class Custom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(-1, keepdim=True)


@register_rule(Custom)
def _custom_rule(module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> Cost:
    """A user rule whose fanout has no per-row version: its SOPs are shared equally."""
    x = args[0]
    return Cost(synapses=(Synapse(dense_macs=x.numel(), operand=x, fanout=lambda ev, total: total * 2),))


def test_fanout_without_rows_is_shared_equally_and_reported() -> None:
    x = binary((4, 5), 0.5)
    model = nn.Sequential(Custom())
    with torch.no_grad(), Profiler(model, sample_stats=True) as prof:
        model(x)
        prof.end_batch(4)
    result = prof.result()
    stats = result.sample_stats
    assert stats.shared == ["0"]
    assert stats.spread("sops").mean == 2 * x.sum().item() / 4 and stats.spread("sops").std == 0.0
    assert any("shared equally" in w and w.endswith(": 0") for w in result.warnings)


def test_state_dict_roundtrip_continues_exactly() -> None:
    x = _tiny.spike_data(12, seed=3)
    model = _tiny.entries()["tiny_if"].factory()
    whole = _tiny_batches(model, x, 4, online=False).result()
    first = _tiny_batches(model, x[:8], 4, online=False)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    with torch.no_grad(), Profiler(model, time_steps=_tiny.T, sample_stats=True) as prof:
        prof.load_state_dict(state)
        functional.reset_net(model)
        model(x[8:].transpose(0, 1))
        prof.end_batch(4)
    assert prof.result().to_dict() == whole.to_dict()


def test_state_dict_refuses_an_unfinished_batch() -> None:
    model = _tiny.entries()["tiny_if"].factory()
    with torch.no_grad(), Profiler(model, sample_stats=True) as prof:
        model(_tiny.spike_data(2).transpose(0, 1))
        with pytest.raises(RuntimeError, match="end_batch"):
            prof.state_dict()


def test_merge_of_disjoint_batches_equals_one_run() -> None:
    x = _tiny.spike_data(13, seed=5)
    model = _tiny.entries()["tiny_if"].factory()
    whole = _tiny_batches(model, x, 4, online=False)
    whole.batch_size = 13
    a = _tiny_batches(model, x[:8], 4, online=False)
    a.batch_size = 8
    b = _tiny_batches(model, x[8:], 4, online=False)
    b.batch_size = 5
    ref, merged = whole.result(), merge_results([a.result(), b.result()])
    ints = [f for f, v in ref.layers[0].to_dict().items() if isinstance(v, (int, list, dict)) and f != "firing_rate"]
    for r, m in zip(ref.layers, merged.layers, strict=True):
        assert {f: getattr(r, f) for f in ints} == {f: getattr(m, f) for f in ints}
        assert m.sops_rate == pytest.approx(r.sops_rate)
    assert merged.totals.to_dict() == pytest.approx(ref.totals.to_dict())
    assert merged.batch_size == 13 and merged.per_sample == pytest.approx(ref.per_sample)
    ms, rs = merged.sample_stats, ref.sample_stats
    assert (ms.n, ms.total, ms.min, ms.max) == (rs.n, rs.total, rs.min, rs.max)
    assert np.allclose(ms.m2, rs.m2) and np.allclose(ms.mean, rs.mean)


def test_sample_stats_json_roundtrip_and_empty_set() -> None:
    empty = SampleStats()
    data = empty.to_dict()
    assert data["sops"] == {"n": 0, "mean": 0.0, "std": 0.0, "min": None, "max": None}
    assert data["moments"]["min"] == [None, None, None]
    back = SampleStats.from_dict(data)
    assert back.min == [math.inf] * 3 and back.merge(empty).n == 0
