"""einsum: the contractions torch executes (its path), for any equation, with exact SOPs.

Expected values are derived here from the equation: a contraction of two operands costs the product
of the sizes of the indices they still carry, after summing away indices only one of them carries
and nothing later needs (a reduction of one op per element). Where every contraction sums an index
torch runs ``bmm`` and ``FlopCounterMode`` (2 flops per MAC) must agree.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from snnprof.counting.rules import einsum as einsum_rule
from snnprof.counting.rules.einsum import einsum_plan, torch_path
from tests.counting._helpers import Wrap, binary, run


def _flop_counter_macs(fn: Callable[[], torch.Tensor]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def _einsum(eq: str, *shapes: tuple[int, ...]) -> tuple[Wrap, tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(0)
    return Wrap(lambda *ops: torch.einsum(eq, *ops)), tuple(torch.randn(*s, generator=gen) for s in shapes)


# (equation, shapes, dense MACs, reduction ops), each derived from the equation in the comment
CASES = [
    # matmul i,j,k: i*j*k
    ("ij,jk->ik", [(2, 3), (3, 4)], 2 * 3 * 4, 0),
    # implicit output "ik"
    ("ij,jk", [(2, 3), (3, 4)], 2 * 3 * 4, 0),
    # batched: b*i*j*k
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], 2 * 3 * 4 * 5, 0),
    # ellipsis of one dim (b=2): b*i*j*k
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)], 2 * 3 * 4 * 5, 0),
    # ellipsis broadcasting [2, 1] against [5]: every (2, 5) batch pair runs 3*4*6
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 6)], 2 * 5 * 3 * 4 * 6, 0),
    # implicit output with an ellipsis: "...ik"
    ("...ij,...jk", [(3, 4), (4, 5)], 3 * 4 * 5, 0),
    # broadcast head dim (1 vs 3): b*h*q*k*d
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 1, 6, 5)], 2 * 3 * 4 * 6 * 5, 0),
    # a,b,c,d = 10,12,8,8: (ab,bc)->ac costs a*b*c, (ac,cd)->ad costs a*c*d
    ("ab,bc,cd->ad", [(10, 12), (12, 8), (8, 8)], 10 * 12 * 8 + 10 * 8 * 8, 0),
    # (ij,jk)->ik: 2*3*4, (ik,kl)->il: 2*4*5
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], 2 * 3 * 4 + 2 * 4 * 5, 0),
    # (bn,anm)->bam sums n: b*n*a*m; (bam,bm)->ba sums m: b*a*m
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)], 2 * 3 * 4 * 5 + 2 * 4 * 5, 0),
    # i only in the first operand: summed first (6*3 ops), then j*k
    ("ij,jk->k", [(6, 3), (3, 4)], 3 * 4, 6 * 3),
    # k only in the second operand: summed first (3*4 ops), then i*j products (no summed index: a mul)
    ("ij,jk->ij", [(2, 3), (3, 4)], 2 * 3, 3 * 4),
    # repeated index: diagonal of the first operand (free), then i*j*k
    ("iij,jk->ik", [(3, 3, 4), (4, 5)], 3 * 4 * 5, 0),
    # outer and Hadamard products: one MAC per product term
    ("i,j->ij", [(3,), (4,)], 3 * 4, 0),
    ("ij,ij->ij", [(3, 4), (3, 4)], 3 * 4, 0),
    # dot product
    ("i,i->", [(7,), (7,)], 7, 0),
    # single operand: transpose and diagonal are free, a reduction costs one op per element
    ("ij->ji", [(3, 4)], 0, 0),
    ("ii->i", [(4, 4)], 0, 0),
    ("ii->", [(4, 4)], 0, 4),
    ("ij->", [(3, 4)], 0, 3 * 4),
    ("...ij->...j", [(2, 3, 4)], 0, 2 * 3 * 4),
]
BMM_ONLY = {"ij,jk->ij", "i,j->ij", "ij,ij->ij"}  # a contraction without a summed index is a mul for torch


@pytest.mark.parametrize(("eq", "shapes", "macs", "reduce"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_einsum_dense_macs_are_the_executed_contractions(eq: str, shapes: list, macs: int, reduce: int) -> None:
    model, ops = _einsum(eq, *shapes)
    rec = run(model, ops).layer("blk/einsum.0")
    assert (rec.dense_macs, rec.macs, rec.sops) == (macs, macs, 0)
    assert rec.flops == 2 * macs + reduce
    if eq not in BMM_ONLY:
        assert macs == _flop_counter_macs(lambda: torch.einsum(eq, *ops))


def test_einsum_operand_list_and_sublist_forms() -> None:
    a, b = torch.randn(2, 3), torch.randn(3, 4)
    for fn in (lambda a, b: torch.einsum("ij,jk->ik", [a, b]), lambda a, b: torch.einsum(a, [0, 1], b, [1, 2], [0, 2])):
        assert run(Wrap(fn), (a, b)).layer("blk/einsum.0").dense_macs == 2 * 3 * 4


# a, b, c, d = 10, 12, 8, 9; results are appended at the end of the operand list (opt_einsum's format)
PATHS = {
    "left-to-right": ([(0, 1), (0, 1)], 10 * 12 * 8 + 10 * 8 * 9),  # (ab,bc)->ac, (cd,ac)->ad
    "right-first": ([(1, 2), (0, 1)], 12 * 8 * 9 + 10 * 12 * 9),  # (bc,cd)->bd, (ab,bd)->ad
    "outer-first": ([(0, 2), (0, 1)], 10 * 12 * 8 * 9 + 10 * 12 * 8 * 9),  # (ab,cd)->abcd (a mul), then sums b, c
}


@pytest.mark.parametrize("name", list(PATHS))
def test_plan_follows_a_given_path_like_torch(name: str) -> None:
    path, expected = PATHS[name]
    eq, shapes = "ab,bc,cd->ad", [(10, 12), (12, 8), (8, 9)]
    ops = [torch.randn(*s) for s in shapes]
    plan = einsum_plan(eq, shapes, path)
    assert sum(step.macs for step in plan.steps) == expected
    flat = [i for pair in path for i in pair]
    executed = _flop_counter_macs(lambda: torch._VF.einsum(eq, ops, path=flat))
    assert sum(step.macs for step in plan.steps if step.summed) == executed  # muls are not counted by torch


def test_torch_path_asks_opt_einsum_like_torch() -> None:
    asked = []

    def contract_path(eq: str, *ops: torch.Tensor, optimize: str) -> tuple[list[tuple[int, int]], str]:
        asked.append((eq, len(ops), optimize))
        return [(1, 2), (0, 1)], ""

    fake = SimpleNamespace(enabled=True, strategy="greedy", is_available=lambda: True,
                           get_opt_einsum=lambda: SimpleNamespace(contract_path=contract_path))
    ops = [torch.randn(2, 3), torch.randn(3, 4), torch.randn(4, 5)]
    assert torch_path("ij,jk,kl->il", ops, fake) == [(1, 2), (0, 1)]
    assert asked == [("ij,jk,kl->il", 3, "greedy")]
    assert torch_path("ij,jk->ik", ops[:2], fake) is None  # two operands: no path
    assert torch_path("ij,jk,kl->il", ops, SimpleNamespace(enabled=False, is_available=lambda: True)) is None
    off = SimpleNamespace(enabled=True, is_available=lambda: False)
    assert torch_path("ij,jk,kl->il", ops, off) is None
    assert torch_path("ij,jk,kl->il", ops) == (None if not torch.backends.opt_einsum.is_available() else
                                               torch_path("ij,jk,kl->il", ops, torch.backends.opt_einsum))


def test_rule_uses_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(einsum_rule, "torch_path", lambda eq, ops: [(1, 2), (0, 1)])
    a, b, c, d = 10, 12, 8, 9
    model, ops = _einsum("ab,bc,cd->ad", (a, b), (b, c), (c, d))
    assert run(model, ops).layer("blk/einsum.0").dense_macs == b * c * d + a * b * d


# ------------------------------------------------------------------------------------------------ SOPs


def test_ellipsis_broadcast_sops() -> None:
    # a [2, 1, 3, 4] spikes, b [5, 4, 6] dense: an event a[x, 0, i, j] reaches out[x, y, i, k] for 5 y and 6 k
    a, b = binary((2, 1, 3, 4), seed=1), torch.randn(5, 4, 6)
    rec = run(Wrap(lambda a, b: torch.einsum("...ij,...jk->...ik", a, b)), (a, b)).layer("blk/einsum.0")
    assert (rec.macs, rec.sops) == (0, int(a.sum()) * 5 * 6)
    # b spikes: an event b[y, j, k] reaches out[x, y, i, k] for 2 x and 3 i
    a, b = torch.randn(2, 1, 3, 4), binary((5, 4, 6), seed=2)
    rec = run(Wrap(lambda a, b: torch.einsum("...ij,...jk->...ik", a, b)), (a, b)).layer("blk/einsum.0")
    assert (rec.macs, rec.sops) == (0, int(b.sum()) * 2 * 3)


def test_events_of_a_summed_away_index_reach_the_other_operands_outputs() -> None:
    # "ij,jk->k": an event a[i, j] is added into row j, which reaches the 4 outputs k
    a, b = binary((6, 3), seed=3), torch.randn(3, 4)
    rec = run(Wrap(lambda a, b: torch.einsum("ij,jk->k", a, b)), (a, b)).layer("blk/einsum.0")
    assert (rec.dense_macs, rec.sops) == (3 * 4, int(a.sum()) * 4)
    # "ij,jk->ij": b is summed over k first, so an event a[i, j] reaches one output
    a, b = binary((2, 3), seed=4), torch.randn(3, 4)
    rec = run(Wrap(lambda a, b: torch.einsum("ij,jk->ij", a, b)), (a, b)).layer("blk/einsum.0")
    assert rec.sops == int(a.sum())


def test_repeated_index_counts_only_diagonal_events() -> None:
    a = torch.ones(3, 3, 4)  # off-diagonal ones are never multiplied
    a[0, 0, 1] = 0.0
    b = torch.randn(4, 5)
    rec = run(Wrap(lambda a, b: torch.einsum("iij,jk->ik", a, b)), (a, b)).layer("blk/einsum.0")
    diagonal_events = 3 * 4 - 1
    assert (rec.dense_macs, rec.sops) == (3 * 4 * 5, diagonal_events * 5)
    assert rec.input_kind == "spike"


def test_three_operands_events_per_contraction() -> None:
    a_, b_, c_, d_ = 4, 5, 3, 2
    # events of the first operand: (ab,bc) contraction, each reaches c outputs; (ac,cd) stays dense
    a, b, c = binary((a_, b_), seed=5), torch.randn(b_, c_), torch.randn(c_, d_)
    rec = run(Wrap(lambda *o: torch.einsum("ab,bc,cd->ad", *o)), (a, b, c)).layer("blk/einsum.0")
    assert (rec.macs, rec.sops) == (a_ * c_ * d_, int(a.sum()) * c_)
    # events of the third operand meet the dense intermediate [a, c]: each reaches a outputs
    a, b, c = torch.randn(a_, b_), torch.randn(b_, c_), binary((c_, d_), seed=6)
    rec = run(Wrap(lambda *o: torch.einsum("ab,bc,cd->ad", *o)), (a, b, c)).layer("blk/einsum.0")
    assert (rec.macs, rec.sops) == (a_ * b_ * c_, int(c.sum()) * a_)


def test_parameters_never_carry_events() -> None:
    class Proj(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(4, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.einsum("bi,io->bo", x, self.w)

    x = binary((5, 4), seed=7)
    rec = run(Proj(), x).layer("(root)/einsum.0")
    assert (rec.dense_macs, rec.sops, rec.params) == (5 * 4 * 3, int(x.sum()) * 3, 12)
