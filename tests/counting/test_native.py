"""Native one-pass statistics: exactly the Torch definitions; the engine counts the same with and without them."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional, neuron
from torch import nn

from snnprof.counting import native
from snnprof.counting.kinds import DENSE, classify
from snnprof.counting.profiler import Profiler

pytestmark = pytest.mark.skipif(not native.available(), reason=f"native statistics: {native.unavailable_reason()}")

CHUNK = 1 << 16  # the kernel's parallel chunk (elements)


def _spikes(*shape: int, p: float = 0.2, scale: float = 1.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float() * scale


def _late(value: float, base: torch.Tensor) -> torch.Tensor:
    """``base`` with its last element set to ``value`` (a kind decided only at the very end)."""
    out = base.clone()
    out.view(-1)[-1] = value
    return out


CASES = {
    "spikes": _spikes(4, 3, 8, 8),
    "scaled spikes x2.74": _spikes(4, 3, 8, 8, scale=2.74),
    "all zeros": torch.zeros(5, 7),
    "negative zero": torch.tensor([0.0, -0.0, 1.0, 0.0]),
    "counts": torch.randint(0, 5, (6, 9)).float(),
    "all ones": torch.ones(3, 4),
    "ternary": torch.randint(-1, 2, (6, 9)).float(),
    "ternary without zero": torch.tensor([-1.0, 1.0, 1.0]),
    "halves everywhere": torch.full((4, 4), 0.5),
    "real values": torch.randn(6, 9),
    "below -1 integers": torch.tensor([0.0, -2.0, 1.0]),
    "nan": torch.tensor([0.0, float("nan"), 1.0]),
    "+inf": torch.tensor([0.0, float("inf"), 0.0]),
    "-inf": torch.tensor([0.0, float("-inf"), 1.0]),
    "huge integers": torch.tensor([0.0, 2.0**40, 3.0]),
    "float64 spikes": _spikes(3, 50).double(),
    "float64 real": torch.randn(3, 50, dtype=torch.float64),
    "one element": torch.tensor([3.0]),
    "multi-chunk spikes": _spikes(3 * CHUNK + 17, seed=1),
    "multi-chunk, second value in the last chunk": _late(2.0, _spikes(3 * CHUNK + 17, seed=2)),
    "multi-chunk, a fraction at the end": _late(0.25, torch.randint(0, 3, (3 * CHUNK + 5,)).float()),
    "multi-chunk, -1 at the end": _late(-1.0, torch.randint(0, 2, (2 * CHUNK + 3,)).float()),
    "multi-chunk, real values": torch.randn(4 * CHUNK),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("threads", [1, 2])
def test_classify_matches_torch(name: str, threads: int, monkeypatch):
    x = CASES[name]
    monkeypatch.setattr(native, "_MIN_PARALLEL", 1 if threads > 1 else 1 << 62)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = native.classify(x)
    finally:
        torch.set_num_threads(previous)
    code, peak = classify(x)
    assert got is not None
    assert got[0] == int(code), name
    if got[0] != DENSE:
        assert isinstance(got[1], float) and got[1] == float(peak)


def test_kinds_by_hand():
    assert native.classify(torch.tensor([0.0, 2.74, 2.74]))[0] == 0  # spike, peak 2.74
    assert native.classify(torch.tensor([0.0, 1.0, 2.0]))[0] == 1  # count
    assert native.classify(torch.tensor([-1.0, 0.0, 1.0]))[0] == 2  # ternary
    assert native.classify(torch.tensor([0.0, 0.5, 1.0]))[0] == 3  # dense
    assert native.classify(torch.tensor([0.0, 2.74]))[1] == pytest.approx(2.74)


def _accumulate(x: torch.Tensor, layout: tuple[int, int, int], start: int) -> dict[str, torch.Tensor] | None:
    """:func:`native.accumulate_spikes` into fresh zero sums (``per_step`` has ``start`` leading slots)."""
    steps, rows, channels = layout
    sums = {"total": torch.zeros((), dtype=torch.float64), "per_channel": torch.zeros(channels, dtype=torch.float64),
            "per_step": torch.zeros(start + steps, dtype=torch.float64),
            "per_index": torch.zeros(steps * rows, dtype=torch.float64)}
    return sums if native.accumulate_spikes(x, layout, start, **sums) else None


@pytest.mark.parametrize("shape, rows", [((4, 3, 8, 8), 12), ((4, 3, 8, 8), 4), ((7,), 7), ((2, 5), 1),
                                         ((3, CHUNK + 9), 3), ((3, 5, 4, 4), 15), ((6, 2), 6), ((5, 4), 5),
                                         ((9, 8), 9), ((7, 32), 7), ((3, 5, 2, 2), 15)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spikes_per_row_are_exact(shape: tuple[int, ...], rows: int, dtype: torch.dtype):
    """Spikes per row of ``x`` seen as ``[rows, inner]`` (one step, one channel): the per-index sums."""
    x = (_spikes(*shape, p=0.3) * torch.randint(-2, 3, shape)).to(dtype)
    expected = [int((r != 0).sum()) for r in x.reshape(rows, -1)]
    got = _accumulate(x, (1, rows, 1), start=0)
    assert got is not None
    assert [int(v) for v in got["per_index"].tolist()] == expected
    assert int(got["total"]) == sum(expected) == int(got["per_channel"][0]) == int(got["per_step"][0])


@pytest.mark.parametrize("shape, lead, keep", [((6, 4, 3, 5, 5), 2, (6, 4, 3)), ((4, 3, 5, 5), 1, (4, 3)),
                                               ((4, 3), 1, (4, 3)), ((4,), 1, (4, 1)), ((6, 4), 2, (6, 4, 1))])
def test_spike_sums_per_channel_step_and_index(shape: tuple[int, ...], lead: int, keep: tuple[int, ...]):
    """The layer sums the engine keeps: per channel, per step (after ``start``) and per (step, row) index."""
    x = _spikes(*shape, p=0.4)
    assert native.rows_of(x.shape, lead) == keep
    layout = (keep[0], keep[1], keep[2]) if lead == 2 else (1, keep[0], keep[1])
    got = _accumulate(x, layout, start=2)
    assert got is not None
    grid = (x != 0).reshape(keep + (-1,)).sum(-1).double().reshape(layout)  # [steps, rows, channels]
    assert got["per_channel"].tolist() == grid.sum((0, 1)).tolist()
    assert got["per_step"].tolist() == [0.0, 0.0, *grid.sum((1, 2)).tolist()]
    assert got["per_index"].tolist() == grid.sum(2).reshape(-1).tolist()
    assert float(got["total"]) == float(grid.sum())


@pytest.mark.parametrize("x", [
    torch.zeros(0),
    torch.ones(4, 4).t()[:, :3],  # not contiguous
    torch.ones(4, dtype=torch.float16),
    torch.ones(4, dtype=torch.int64),
    torch.ones(4, dtype=torch.bool),
    torch.ones(4)._neg_view(),  # lazy negation: the data pointer holds +1
], ids=["empty", "strided", "half", "int", "bool", "lazy negation"])
def test_not_applicable_inputs_fall_back(x: torch.Tensor):
    assert native.classify(x) is None
    assert _accumulate(x, (1, 1, 1), start=0) is None


def test_rows_that_do_not_divide_fall_back():
    assert _accumulate(torch.ones(7), (1, 2, 1), start=0) is None


def test_disabled_by_the_environment(monkeypatch):
    monkeypatch.setenv(native.ENV_VAR, "0")
    native._load.cache_clear()
    try:
        assert not native.available()
        assert native.ENV_VAR in (native.unavailable_reason() or "")
        assert native.classify(torch.ones(3)) is None
    finally:
        monkeypatch.delenv(native.ENV_VAR)
        native._load.cache_clear()
    assert native.available()


class _Net(nn.Module):
    """Counts in, a multi-step IF neuron, scaled spikes into a linear layer, a dense head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.sn = neuron.IFNode(v_threshold=0.3, step_mode="m")
        self.fc = nn.Linear(4 * 6 * 6, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch = x.shape[:2]
        s = self.sn(self.conv(x.flatten(0, 1)).unflatten(0, (steps, batch))) * 2.74
        return self.head(torch.tanh(self.fc(s.flatten(2))))


def _profile(x: torch.Tensor) -> dict:
    torch.manual_seed(0)
    net = _Net()
    functional.reset_net(net)
    with Profiler(net, sample_stats=True) as prof:
        net(x)
        prof.end_batch()
    result = prof.result()
    assert result.totals.spikes > 0 and result.totals.sops > 0  # the native paths ran
    return result.to_dict()


def test_engine_counts_the_same_without_the_native_path(monkeypatch):
    x = torch.randint(0, 3, (4, 3, 2, 6, 6)).float()
    with_native = _profile(x)
    monkeypatch.setattr(native, "_load", lambda: "disabled in this test")
    assert native.classify(x) is None
    assert _profile(x) == with_native


@pytest.mark.parametrize("layout", [
    (6, 1, 3, 25), (1, 1, 1, 1), (4, 1, 17, CHUNK // 8), (3, 2, 4, 9),  # row by row
    (5, 1, 7, 4), (3, 1, 130, 16), (2, 3, 3, 2), (4, 1, 9, 32), (3, 2, 70, 1),  # small maps: lane sums, tails
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 2.74])
def test_classify_conv_weighs_events_by_coverage(layout: tuple[int, int, int, int], dtype: torch.dtype, scale: float):
    """Accumulates per frame = C_out/groups * sum over groups and positions of (events over channels) x cover."""
    frames, groups, channels, inner = layout
    x = (_spikes(frames, groups, channels, inner, p=0.3, seed=inner) * scale).to(dtype)
    cover = torch.randint(0, 10, (inner,)).double()
    got = native.classify_conv(x, frames, groups, cover, 5)
    assert got is not None
    code, peak, events, sops, per_frame = got
    assert (code, peak) == (int(classify(x)[0]), float(classify(x)[1]))
    counts = (x != 0).sum(2).double()  # [frames, groups, inner]
    expected = [int(v) for v in ((counts * cover).sum((1, 2)) * 5).tolist()]
    assert per_frame is not None and per_frame.dtype == torch.float64
    assert [int(v) for v in per_frame.tolist()] == expected
    assert (events, sops) == (float(counts.sum()), float(sum(expected)))


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("layout", ["rows", "small maps"])
def test_classify_conv_kinds_match_classify(name: str, layout: str):
    x = CASES[name]
    frames, inner = (x.numel() // x.shape[-1], x.shape[-1]) if layout == "rows" else (1, 1)
    got = native.classify_conv(x, frames, 1, torch.ones(inner, dtype=torch.float64), 1)
    assert got is not None and got[0] == int(classify(x)[0])
    if got[0] != DENSE:
        assert got[1] == float(classify(x)[1])
    else:
        assert got[2:] == (0.0, 0.0, None)


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_counts_scaled_spikes_natively_and_exactly(groups: int, monkeypatch):
    """A conv fed x2.74 spikes: the native spike pass gives the brute-force SOPs (events x reachable outputs)."""
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=groups)
    x = _spikes(2, 4, 5, 5, p=0.3, seed=3) * 2.74
    ones = nn.Conv2d(4, 6, 3, padding=1, groups=groups, bias=False)
    nn.init.ones_(ones.weight)
    expected = int(ones((x != 0).float()).sum())  # every output sums its reachable events once
    calls = []
    real = native.classify_conv
    monkeypatch.setattr(native, "classify_conv", lambda *a: calls.append(a) or real(*a))
    with Profiler(conv) as prof:
        conv(x)
    assert calls, "the native spike pass was not used"
    assert prof.result().totals.sops == expected
