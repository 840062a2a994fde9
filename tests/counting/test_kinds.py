"""Input-kind detection and the MAC/SOP split it drives (docs/peers.md §1.4 edge-case table)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnprof.counting import Profiler
from snnprof.counting.kinds import KIND_CODES, detect_kind, events
from tests.counting._helpers import run

BINARY = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
GRADED = torch.tensor([[0.0, 1.0, 2.0, 2.0], [1.0, 0.0, 0.0, 2.0]])
TERNARY = torch.tensor([[1.0, -1.0, 0.0, 1.0], [0.0, 0.0, -1.0, 1.0]])


@pytest.mark.parametrize(
    ("x", "kind"),
    [
        (BINARY, "spike"),
        (BINARY * 2.74, "spike"),
        (BINARY.bool(), "spike"),
        (torch.zeros(2, 4), "spike"),
        (torch.zeros(0), "spike"),
        (BINARY.to(torch.int64), "spike"),
        (BINARY.double(), "spike"),
        (GRADED, "count"),
        (GRADED.to(torch.int32), "count"),
        (torch.ones(2, 4), "count"),
        (torch.full((2, 4), 3.0), "count"),
        (TERNARY, "ternary"),
        (torch.full((2, 4), 0.5), "dense"),
        (torch.randn(2, 4, generator=torch.Generator().manual_seed(0)), "dense"),
        (BINARY * -2.5, "dense"),
        (torch.tensor([[0.0, 0.5], [1.0, 0.0]]), "dense"),
        (torch.tensor([[-2.0, 0.0], [1.0, 0.0]]), "dense"),
        (torch.tensor([1.0 + 1j, 0.0]), "dense"),
        (torch.tensor([0.0, float("nan")]), "dense"),
        (torch.tensor([0.0, float("inf")]), "dense"),
        (BINARY.half() * 3, "spike"),
        (GRADED.to(torch.bfloat16), "count"),
    ],
    ids=[
        "binary", "scaled-2.74", "bool", "all-zero", "empty", "int-binary", "double-binary", "graded",
        "int-graded", "all-ones", "constant-3", "ternary", "constant-0.5", "randn", "neg-scaled", "three-valued-real",
        "negative-int", "complex", "nan", "inf", "half-scaled", "bf16-graded",
    ],
)
def test_detect_kind(x: torch.Tensor, kind: str) -> None:
    code = detect_kind(x)
    assert code.dim() == 0 and code.dtype == torch.int64
    assert int(code) == KIND_CODES[kind]


def test_events_nonzero_vs_value() -> None:
    code = detect_kind(GRADED)
    assert events(GRADED, code, by_value=True).tolist() == GRADED.tolist()
    assert events(GRADED, code, by_value=False).tolist() == (GRADED != 0).float().tolist()
    spike = BINARY * 2.74
    assert events(spike, detect_kind(spike), by_value=True).tolist() == BINARY.tolist()


OUT = 3


def _linear() -> nn.Module:
    return nn.Sequential(nn.Linear(4, OUT, bias=False))


@pytest.mark.parametrize(
    ("x", "kind", "macs", "sops"),
    [
        (BINARY, "spike", 0, int(BINARY.sum()) * OUT),  # 12
        (torch.ones(2, 4), "count", 0, 8 * OUT),  # 24
        (torch.full((2, 4), 0.5), "dense", 2 * 4 * OUT, 0),  # 24 MACs
        (TERNARY, "ternary", 0, int((TERNARY != 0).sum()) * OUT),  # nonzero x 3
        (GRADED, "count", 0, int(GRADED.sum()) * OUT),  # value-weighted
        (BINARY * 2.74, "spike", 0, int(BINARY.sum()) * OUT),
        (torch.zeros(2, 4), "spike", 0, 0),
        (torch.randn(2, 4, generator=torch.Generator().manual_seed(0)), "dense", 24, 0),
    ],
    ids=["binary", "all-ones", "constant-0.5", "ternary", "graded", "scaled", "silent", "randn"],
)
def test_linear_edge_cases(x: torch.Tensor, kind: str, macs: int, sops: int) -> None:
    res = run(_linear(), x)
    rec = res.layer("0")
    assert rec.input_kind == kind
    assert rec.kind_calls == {kind: 1}
    assert (rec.macs, rec.sops, rec.dense_macs) == (macs, sops, 2 * 4 * OUT)
    # the papers' estimate: dense MACs x event rate (graded inputs weigh by value)
    ev = x.abs() if kind == "count" else (x != 0).float()
    assert rec.sops_rate == pytest.approx(0.0 if kind == "dense" else 24 * float(ev.mean()))


def test_graded_nonzero_weighting() -> None:
    res = run(_linear(), GRADED, count_weighting="nonzero")
    rec = res.layer("0")
    assert rec.input_kind == "count"
    assert rec.sops == int((GRADED != 0).sum()) * OUT == 15
    assert res.count_weighting == "nonzero"


@pytest.mark.parametrize("x", [BINARY, GRADED, TERNARY, torch.ones(2, 4)])
def test_override_dense_forces_macs(x: torch.Tensor) -> None:
    rec = run(_linear(), x, overrides={"0": "dense"}).layer("0")
    assert rec.input_kind == "dense"
    assert (rec.macs, rec.sops) == (24, 0)


@pytest.mark.parametrize("kind", ["spike", "ternary"])
def test_override_to_event_kind_counts_one_per_nonzero(kind: str) -> None:
    """A forced spike/ternary kind on values that are not {0, c} / {-1, 0, 1}: one event per nonzero."""
    x = torch.tensor([[0.3, 0.0, -0.7, 0.1], [0.0, 0.0, 0.2, 0.9]])
    rec = run(_linear(), x, overrides={"0": kind}).layer("0")
    assert rec.input_kind == kind
    assert (rec.macs, rec.sops) == (0, 5 * OUT)
    assert rec.sops_rate == pytest.approx(24 * 5 / 8)


def test_override_applies_to_functional_ops_inside_module() -> None:
    class Mm(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a @ b

    model = nn.Sequential()
    model.add_module("blk", Mm())
    a, b = BINARY, torch.rand(4, 5)

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blk = Mm()

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.blk(a, b)

    plain = run(Wrap(), (a, b)).layer("blk/matmul.0")
    assert (plain.macs, plain.sops) == (0, 4 * 5)
    forced = run(Wrap(), (a, b), overrides={"blk": "dense"}).layer("blk/matmul.0")
    assert (forced.macs, forced.sops) == (2 * 4 * 5, 0)


def test_mixed_kinds_over_calls() -> None:
    model = _linear()
    with Profiler(model) as prof:
        model(BINARY)
        model(torch.full((2, 4), 0.5))
    rec = prof.result().layer("0")
    assert rec.input_kind == "mixed:spike+dense"
    assert rec.kind_calls == {"spike": 1, "dense": 1}
    assert (rec.macs, rec.sops, rec.dense_macs) == (24, 12, 48)


def test_bad_override_and_weighting_raise() -> None:
    with pytest.raises(ValueError, match="unknown input kinds"):
        Profiler(_linear(), overrides={"0": "binary"})
    with pytest.raises(ValueError, match="count_weighting"):
        Profiler(_linear(), count_weighting="ones")
    with pytest.raises(ValueError, match="sop_convention"):
        Profiler(_linear(), sop_convention="rate")


def test_half_precision_tiny_values_stay_dense():
    """x * (max - x) underflows in fp16; detection promotes half types first."""
    from snnprof.counting.kinds import KIND_CODES, detect_kind

    x = torch.tensor([0.0, 2e-5, 1e-3], dtype=torch.float16)
    assert int(detect_kind(x)) == KIND_CODES["dense"]


def test_cpu_sample_shortcut_agrees_with_full_classification():
    """The CPU shortcut only answers 'dense' when the sample proves it; otherwise the full pass decides."""
    from snnprof.counting.kinds import sample_proves_dense

    torch.manual_seed(0)
    dense = torch.randn(4096)
    assert sample_proves_dense(dense) and int(detect_kind(dense)) == KIND_CODES["dense"]
    late_dense = torch.cat([(torch.rand(4096) > 0.5).float(), torch.tensor([0.3, 0.7])])
    assert not sample_proves_dense(late_dense)
    assert int(detect_kind(late_dense)) == KIND_CODES["dense"]
    constant = torch.full((5000,), 0.5)
    assert not sample_proves_dense(constant)
    assert int(detect_kind(constant)) == KIND_CODES["dense"]


def test_late_dense_values_give_macs_not_sops():
    lin = nn.Linear(4, 3, bias=False)
    x = torch.cat([(torch.rand(1024, 4) > 0.5).float(), torch.full((1, 4), 0.25)])
    result = Profiler(lin).__enter__()
    lin(x)
    result.__exit__(None, None, None)
    rec = result.result().layers[0]
    assert rec.macs == x.shape[0] * 4 * 3 and rec.sops == 0 and rec.input_kind == "dense"
