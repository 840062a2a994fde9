"""Profiler behaviour: no mutation, repeatability, hook cleanup, unsupported/uncalled reporting, result views."""

from __future__ import annotations

import json

import pytest
import torch
from spikingjelly.activation_based import functional, neuron
from torch import nn

from snnprof.counting import Profiler, profile
from snnprof.counting.results import COUNT_FIELDS, MEMORY_FIELDS, SCHEMA
from snnprof.errors import UncountedOpsError
from tests.counting._helpers import binary, hooks_left


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.rnn = nn.GRU(4, 4, batch_first=True)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.bn(self.conv(x)))  # [B, 4, H, W]
        seq = h.flatten(2).transpose(1, 2)  # [B, H*W, 4]
        a, _ = self.attn(seq, seq, seq)
        r, _ = self.rnn(a + seq)
        return self.fc(r.mean(1))


def _snapshot(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, set[str]]]:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    attrs = {name: set(vars(m)) for name, m in model.named_modules()}
    return state, attrs


def test_model_is_never_mutated() -> None:
    torch.manual_seed(0)
    model = Net().eval()
    x = torch.randn(2, 2, 3, 3)
    state, attrs = _snapshot(model)
    fast = torch.backends.mha.get_fastpath_enabled()
    res = profile(model, x)
    assert res.unsupported == []
    new_state, new_attrs = _snapshot(model)
    assert state.keys() == new_state.keys()
    assert all(torch.equal(state[k], new_state[k]) for k in state)
    assert attrs == new_attrs
    assert hooks_left(model) == []
    assert torch.backends.mha.get_fastpath_enabled() == fast
    assert torch._C._len_torch_function_stack() == 0


def test_spikingjelly_model_attributes_match_a_plain_run() -> None:
    model = nn.Sequential(nn.Linear(3, 4), neuron.LIFNode())
    x = torch.rand(2, 3) * 3
    functional.reset_net(model)
    model(x)
    plain = {name: set(vars(m)) for name, m in model.named_modules()}
    functional.reset_net(model)
    profile(model, x)
    assert {name: set(vars(m)) for name, m in model.named_modules()} == plain
    assert hooks_left(model) == []


def test_repeated_runs_are_identical() -> None:
    torch.manual_seed(0)
    model = Net().eval()
    x = torch.randn(2, 2, 3, 3)
    first, second = profile(model, x).to_dict(), profile(model, x).to_dict()
    assert first == second


def test_hooks_removed_when_forward_raises() -> None:
    class Boom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.fc(x)
            raise RuntimeError("boom")

    model = Boom()
    fast = torch.backends.mha.get_fastpath_enabled()
    with pytest.raises(RuntimeError, match="boom"):
        profile(model, torch.randn(2, 3))
    assert hooks_left(model) == []
    assert torch.backends.mha.get_fastpath_enabled() == fast
    assert torch._C._len_torch_function_stack() == 0
    # and the model still works, uninstrumented
    assert model.fc(torch.randn(1, 3)).shape == (1, 3)


class Spectral(nn.Module):
    """Does its work through an op that no table covers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft(x).real


class Cached(nn.Module):
    """A leaf module that returns a tensor without running any torch op the profiler could see."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("table", torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table


class Holder(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.blk = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blk(self.fc(x))


@pytest.mark.parametrize(
    ("inner", "entry"), [(Spectral(), "blk/fft_fft (op)"), (Cached(), "blk (Cached)")], ids=["op", "leaf"]
)
def test_unsupported_is_listed_and_strict_raises(inner: nn.Module, entry: str) -> None:
    model = Holder(inner)
    res = profile(model, torch.randn(2, 3))
    assert res.unsupported == [entry]
    assert any(entry in w for w in res.warnings)
    assert res.layer("fc").dense_macs == 2 * 9  # the rest is still counted
    with pytest.raises(UncountedOpsError) as err:
        profile(model, torch.randn(2, 3), strict=True)
    assert err.value.unsupported == [entry]
    assert entry in str(err.value)
    assert hooks_left(model) == []


@pytest.mark.parametrize(("model", "entry"), [(Spectral(), "(root)/fft_fft (op)"), (Cached(), " (Cached)")],
                         ids=["op", "leaf"])
def test_unsupported_root_module(model: nn.Module, entry: str) -> None:
    """The same checks when the rule-less module is the model itself."""
    res = profile(model, torch.randn(2, 3))
    assert res.unsupported == [entry]
    with pytest.raises(UncountedOpsError):
        profile(model, torch.randn(2, 3), strict=True)


def test_uncalled_module_with_parameters() -> None:
    class Partial(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(3, 3)
            self.unused = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
            self.no_params = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    model = Partial()
    res = profile(model, torch.randn(2, 3))
    assert res.uncalled == ["unused.0"]
    assert res.unsupported == []
    assert any("unused.0" in w for w in res.warnings)
    with pytest.raises(UncountedOpsError) as err:
        profile(model, torch.randn(2, 3), strict=True)
    assert err.value.uncalled == ["unused.0"]


def test_children_of_ruled_modules_are_not_uncalled() -> None:
    res = profile(nn.MultiheadAttention(4, 2), (torch.randn(3, 1, 4),) * 3, strict=True)
    assert res.uncalled == []


def _int_fields(d: dict) -> None:
    for f in (*COUNT_FIELDS, *MEMORY_FIELDS):
        assert type(d[f]) is int, f


def test_to_dict_schema_and_json_roundtrip() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), neuron.IFNode(), nn.Linear(8, 2))
    x = torch.rand(3, 4) * 2
    res = profile(model, x, model_name="tiny")
    d = res.to_dict()
    assert d["schema"] == SCHEMA == "snnprof.profile/1"
    assert d["model"] == "tiny"
    assert d["sop_convention"] == "exact"
    assert d["input_shapes"] == [[3, 4]]
    assert d["batch_size"] == 3 and type(d["batch_size"]) is int
    assert d["time_steps"] == 1
    assert d["unsupported"] == [] and d["uncalled"] == []
    _int_fields(d["totals"])
    for layer in d["layers"]:
        _int_fields(layer)
        assert isinstance(layer["sops_rate"], float)
        assert all(type(v) is int for v in layer["spikes_per_step"] + layer["spikes_per_channel"])
    assert [layer["name"] for layer in d["layers"]] == ["0", "1", "2"]
    assert d["layers"][1]["firing_rate"] == pytest.approx(d["layers"][1]["spikes"] / (3 * 8))
    assert d["layers"][0]["firing_rate"] is None
    assert json.loads(res.to_json()) == d
    assert json.loads(res.to_json(indent=None)) == d


def test_to_dataframe_one_row_per_layer() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2, 2))
    res = profile(model, torch.rand(2, 1, 3, 3))
    df = res.to_dataframe()
    assert len(df) == len(res.layers) == 4
    assert list(df["name"]) == ["0", "1", "2", "3"]
    assert int(df["dense_macs"].sum()) == res.totals.dense_macs
    assert "spikes_per_step" not in df.columns


def test_per_sample_divides_by_batch() -> None:
    model = nn.Sequential(nn.Linear(4, 6), neuron.IFNode(), nn.Linear(6, 2))
    x = torch.rand(5, 4) * 2
    res = profile(model, x)
    assert res.batch_size == 5
    ps = res.per_sample
    assert ps["dense_macs"] == res.totals.dense_macs // 5 == 4 * 6 + 6 * 2
    assert ps["neuron_updates"] == 6
    assert ps["sops"] == pytest.approx(res.totals.sops / 5)
    assert ps["firing_rate"] == pytest.approx(res.totals.firing_rate)
    assert profile(model, x, batch_size=1).per_sample["dense_macs"] == 5 * 36


def test_many_calls_accumulate_in_one_profiler() -> None:
    lin = nn.Linear(4, 4, bias=False)
    model = nn.Sequential(lin, nn.ReLU(), lin)  # shared weights: params counted once
    x = binary((2, 4), seed=1)
    with Profiler(model) as prof:
        model(x)
        model(x)
    res = prof.result()
    assert res.layer("0").calls == 4  # the shared module runs twice per forward
    assert res.layer("0").dense_macs == 4 * 2 * 4 * 4
    assert [r.name for r in res.layers] == ["0", "1"]
    assert res.totals.params == 16
    assert res.batch_size == 4
    assert hooks_left(model) == []


def test_inputs_tuple_and_dict() -> None:
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(2, 3), nn.Linear(4, 3)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.a(x) + self.b(y)

    model = Two()
    x, y = torch.randn(5, 2), torch.randn(5, 4)
    t, k = profile(model, (x, y)), profile(model, {"x": x, "y": y})
    assert t.totals.dense_macs == k.totals.dense_macs == 5 * (2 * 3 + 4 * 3)
    assert t.input_shapes == k.input_shapes == [[5, 2], [5, 4]]
    assert t.batch_size == k.batch_size == 5
