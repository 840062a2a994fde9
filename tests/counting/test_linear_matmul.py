"""Linear on N-d input, Bilinear, the matmul family and functional ops inside custom modules."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.counting._helpers import Wrap, binary, run


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (2, 2, 3, 4), (4,)])
def test_linear_nd_rows_are_leading_dims(shape: tuple[int, ...]) -> None:
    lin = nn.Linear(4, 6)
    rows = 1
    for d in shape[:-1]:
        rows *= d
    x = binary(shape, seed=2)
    rec = run(nn.Sequential(lin), x).layer("0")
    assert rec.dense_macs == rows * 4 * 6
    assert rec.flops == 2 * rows * 4 * 6 + rows * 6  # bias once per output element (per token)
    assert rec.sops == int(x.sum()) * 6
    assert rec.macs == 0
    dense = run(nn.Sequential(lin), torch.randn(*shape)).layer("0")
    assert (dense.macs, dense.sops) == (rows * 24, 0)


def test_linear_no_double_count_of_inner_f_linear() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    res = run(model, torch.randn(5, 4))
    assert [r.name for r in res.layers] == ["0", "1", "2"]
    assert res.totals.dense_macs == 5 * (4 * 3 + 3 * 2)
    assert res.totals.flops == 2 * 5 * 18 + 5 * 3 + 5 * 3 + 5 * 2  # macs, bias 0, relu, bias 2


@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_always_dense(bias: bool) -> None:
    bil = nn.Bilinear(3, 4, 5, bias=bias)
    x1, x2 = binary((2, 6, 3), seed=1), binary((2, 6, 4), seed=2)
    rec = run(bil, (x1, x2)).layers[0]
    rows = 12
    dense = rows * 5 * (3 * 4 + 3)
    assert (rec.dense_macs, rec.macs, rec.sops) == (dense, dense, 0)
    assert rec.flops == 2 * dense + (rows * 5 if bias else 0)


def _pair_bruteforce(a: torch.Tensor, b: torch.Tensor) -> int:
    """Coinciding event pairs of ``a [..., n, k] @ b [..., k, m]`` by looping over every product term."""
    a3, b3 = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
    total = 0
    for z in range(a3.shape[0]):
        for i, j, k in itertools.product(range(a3.shape[1]), range(b3.shape[2]), range(a3.shape[2])):
            total += int(a3[z, i, k] != 0 and b3[z, k, j] != 0)
    return total


MATMULS: dict[str, Callable[..., torch.Tensor]] = {
    "at": lambda a, b: a @ b,
    "matmul": torch.matmul,
    "tensor.matmul": lambda a, b: a.matmul(b),
    "mm": torch.mm,
    "tensor.mm": lambda a, b: a.mm(b),
    "einsum": lambda a, b: torch.einsum("ik,kj->ij", a, b),
}
OP_NAME = {"at": "matmul", "matmul": "matmul", "tensor.matmul": "matmul", "mm": "mm", "tensor.mm": "mm",
           "einsum": "einsum"}


@pytest.mark.parametrize("how", list(MATMULS))
def test_matmul_2d_kinds(how: str) -> None:
    n, k, m = 3, 4, 5
    a_spk, b_spk = binary((n, k), seed=1), binary((k, m), seed=2)
    a_den, b_den = torch.randn(n, k), torch.randn(k, m)
    key = f"blk/{OP_NAME[how]}.0"
    model = Wrap(MATMULS[how])
    dense = n * k * m

    rec = run(model, (a_den, b_den)).layer(key)
    assert (rec.dense_macs, rec.macs, rec.sops, rec.flops) == (dense, dense, 0, 2 * dense)
    rec = run(model, (a_spk, b_den)).layer(key)
    assert (rec.macs, rec.sops) == (0, int(a_spk.sum()) * m)  # events of A reach m outputs
    rec = run(model, (a_den, b_spk)).layer(key)
    assert (rec.macs, rec.sops) == (0, int(b_spk.sum()) * n)  # events of B reach n outputs
    rec = run(model, (a_spk, b_spk)).layer(key)
    pair = int((a_spk.sum(0) * b_spk.sum(1)).sum())  # sum_k colsum(A)_k * rowsum(B)_k
    assert pair == _pair_bruteforce(a_spk, b_spk)
    assert (rec.macs, rec.sops) == (0, pair)
    assert rec.input_kind == "spike"


def _bcast_pair_bruteforce(a: torch.Tensor, b: torch.Tensor) -> int:
    a_b, b_b = torch.broadcast_tensors(a[..., :, :, None], b[..., None, :, :])  # [..., n, k, m]
    return int(((a_b != 0) & (b_b != 0)).sum())


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (1, 3, 4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,))],
)
def test_spike_at_spike_with_broadcasting_is_exact(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> None:
    a, b = binary(a_shape, seed=12), binary(b_shape, seed=13)
    a2 = a.unsqueeze(0) if a.dim() == 1 else a
    b2 = b.unsqueeze(-1) if b.dim() == 1 else b
    expected = _bcast_pair_bruteforce(a2, b2)
    rec = run(Wrap(torch.matmul), (a, b)).layer("blk/matmul.0")
    assert rec.dense_macs == torch.matmul(a, b).numel() * a.shape[-1]
    assert (rec.macs, rec.sops) == (0, expected)


@pytest.mark.parametrize(
    ("eq", "a_shape", "b_shape"),
    [("bik,bjk->bij", (2, 3, 4), (2, 5, 4)), ("ik,kj->ij", (3, 4), (4, 5)), ("i,j->ij", (3,), (4,)),
     ("bhld,bhsd->bhls", (1, 2, 3, 4), (1, 2, 5, 4))],
)
def test_einsum_spike_by_spike_counts_coinciding_pairs(eq: str, a_shape: tuple, b_shape: tuple) -> None:
    a, b = binary(a_shape, seed=14), binary(b_shape, seed=15)
    lhs = eq.split("->", maxsplit=1)[0]
    # every product term of the contraction is one accumulate; it is an event pair if both factors fire
    expected = int(torch.einsum(f"{lhs}->", (a != 0).double(), (b != 0).double()))
    rec = run(Wrap(lambda x, y: torch.einsum(eq, x, y)), (a, b)).layer("blk/einsum.0")
    assert (rec.macs, rec.sops) == (0, expected)


def test_bmm_baddbmm_addmm() -> None:
    a, b = binary((2, 3, 4), seed=3), binary((2, 4, 5), seed=4)
    c = torch.randn(2, 3, 5)

    def body(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = torch.bmm(a, b)
        y = torch.baddbmm(c, a, b)
        z = torch.addmm(c[0], a[0], b[0])
        return x.sum() + y.sum() + z.sum()

    res = run(Wrap(body), (a, b, c))
    pair = _pair_bruteforce(a, b)
    bmm, baddbmm, addmm = res.layer("blk/mm.0"), res.layer("blk/addmm.0"), res.layer("blk/addmm.1")
    assert (bmm.dense_macs, bmm.sops, bmm.macs) == (2 * 3 * 4 * 5, pair, 0)
    assert (baddbmm.dense_macs, baddbmm.sops) == (2 * 3 * 4 * 5, pair)
    assert baddbmm.flops == 2 * 120 + 2 * 3 * 5  # plus one add per output element
    assert (addmm.dense_macs, addmm.sops) == (3 * 4 * 5, _pair_bruteforce(a[0], b[0]))
    assert addmm.flops == 2 * 60 + 15


def test_matmul_broadcast_fanout() -> None:
    a = binary((2, 3, 4), seed=5)
    w = torch.randn(4, 5)
    res = run(Wrap(torch.matmul), (a, w))
    rec = res.layer("blk/matmul.0")
    assert (rec.dense_macs, rec.sops) == (2 * 3 * 4 * 5, int(a.sum()) * 5)
    # a dense left operand broadcast against spiking B: every B event is used by all 2*3 rows
    b = binary((4, 5), seed=6)
    rec = run(Wrap(torch.matmul), (torch.randn(2, 3, 4), b)).layer("blk/matmul.0")
    assert (rec.macs, rec.sops) == (0, int(b.sum()) * 2 * 3)


def test_matmul_with_parameter_operand_uses_only_activation_events() -> None:
    class Proj(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(4, 3))  # a {0,1}-valued weight must not count as events

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ self.w

    x = torch.randn(5, 4)
    rec = run(Proj(), x).layer("(root)/matmul.0")
    assert (rec.macs, rec.sops, rec.params) == (5 * 4 * 3, 0, 12)
    xs = binary((5, 4), seed=8)
    rec = run(Proj(), xs).layer("(root)/matmul.0")
    assert (rec.macs, rec.sops) == (0, int(xs.sum()) * 3)


def test_einsum_two_operand_exact_sops() -> None:
    # batched contraction: events of q reach every index only k has (j), and vice versa
    q, k = binary((2, 3, 4), seed=9), torch.randn(2, 5, 4)
    rec = run(Wrap(lambda q, k: torch.einsum("bik,bjk->bij", q, k)), (q, k)).layer("blk/einsum.0")
    assert rec.dense_macs == 2 * 3 * 5 * 4
    assert (rec.macs, rec.sops) == (0, int(q.sum()) * 5)
    rec = run(Wrap(lambda q, k: torch.einsum("bik,bjk->bij", q, k)), (torch.randn(2, 3, 4), binary((2, 5, 4))))
    assert rec.layer("blk/einsum.0").sops == int(binary((2, 5, 4)).sum()) * 3


def test_einsum_three_operands_dense_macs() -> None:
    a, b, c = torch.randn(2, 3), torch.randn(3, 4), torch.randn(4, 5)
    rec = run(Wrap(lambda a, b, c: torch.einsum("ij,jk,kl->il", a, b, c)), (a, b, c)).layer("blk/einsum.0")
    # left to right, as torch runs it: (ij,jk)->ik sums j: 2*3*4; (ik,kl)->il sums k: 2*4*5 (j is gone)
    assert rec.dense_macs == 2 * 3 * 4 + 2 * 4 * 5


def test_functional_linear_inside_custom_module() -> None:
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(6, 4))
            self.bias = nn.Parameter(torch.zeros(6))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(x, self.weight, self.bias) + F.linear(x, self.weight)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = Head()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(x)

    x = binary((2, 3, 4), seed=10)
    res = run(Net(), x)
    first, second = res.layer("head/linear.0"), res.layer("head/linear.1")
    assert first.type == "linear"
    assert (first.dense_macs, first.sops, first.flops) == (6 * 4 * 6, int(x.sum()) * 6, 2 * 144 + 6 * 6)
    assert (second.dense_macs, second.sops, second.flops) == (144, int(x.sum()) * 6, 2 * 144)
    add = res.layer("head/add")
    assert add.flops == 2 * 3 * 6
    assert res.totals.dense_macs == 288
    assert res.totals.params == 30
