"""Cross-checks against peers: fvcore (counts MACs) and torch's FlopCounterMode (counts 2 x MACs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tests.counting._helpers import run

fvcore_nn = pytest.importorskip("fvcore.nn")


def _fvcore(model: nn.Module, x: object) -> int:
    analysis = fvcore_nn.FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analysis.total())


def _flop_counter(model: nn.Module, x: object) -> int:
    args = x if isinstance(x, tuple) else (x,)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*args)
    return int(counter.get_total_flops())


class MatmulNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(8, 8, bias=False)
        self.k = nn.Linear(8, 8)
        self.w = nn.Parameter(torch.randn(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.q(x) @ self.k(x).transpose(-2, -1)  # [B, L, L]
        mixed = torch.bmm(scores, x)  # [B, L, 8]
        return torch.matmul(mixed, self.w)


def _nets() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    return {
        "cnn": (nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, stride=2, groups=2), nn.Conv2d(8, 6, 1),
            nn.Flatten(), nn.Linear(6 * 3 * 3, 10), nn.Linear(10, 4, bias=False),
        ).eval(), torch.randn(2, 3, 8, 8)),
        "conv1d-3d": (nn.Sequential(nn.Conv1d(2, 4, 3, dilation=2, padding=2), nn.Conv1d(4, 4, 2, stride=2)).eval(),
                      torch.randn(3, 2, 10)),
        "conv3d": (nn.Sequential(nn.Conv3d(1, 2, 2, padding=1), nn.Conv3d(2, 2, 3, stride=2, groups=2)).eval(),
                   torch.randn(1, 1, 4, 4, 4)),
        "conv-transposed": (nn.Sequential(
            nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
            nn.ConvTranspose2d(6, 4, 2, stride=2, groups=2),
            nn.Conv2d(4, 2, 1),
        ).eval(), torch.randn(1, 4, 3, 3)),
        "mlp-3d": (nn.Sequential(nn.Linear(5, 7), nn.Linear(7, 3)).eval(), torch.randn(2, 4, 5)),
        "matmul": (MatmulNet().eval(), torch.randn(2, 5, 8)),
    }


NETS = list(_nets())


@pytest.mark.parametrize("name", NETS)
def test_two_dense_macs_equal_flop_counter_mode(name: str) -> None:
    model, x = _nets()[name]
    res = run(model, x)
    assert res.totals.macs == res.totals.dense_macs  # real-valued input everywhere
    assert 2 * res.totals.dense_macs == _flop_counter(model, x)


@pytest.mark.parametrize("name", [n for n in NETS if n != "matmul"])
def test_dense_macs_equal_fvcore(name: str) -> None:
    model, x = _nets()[name]
    assert run(model, x).totals.dense_macs == _fvcore(model, x)


def test_matmul_net_equals_fvcore() -> None:
    model, x = _nets()["matmul"]
    assert run(model, x).totals.dense_macs == _fvcore(model, x)


def test_small_cnn_with_bn_relu_pool() -> None:
    """Conv/linear MACs agree with both peers; fvcore also counts BN (2 per element in eval, with affine)
    and the adaptive pool (1 per input element) as "flops", which snnprof keeps in ``flops`` instead."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5),
    ).eval()
    x = torch.randn(2, 3, 8, 8)
    res = run(model, x)
    synaptic = 2 * 4 * 64 * 3 * 9 + 2 * 4 * 16 * 4 * 9 + 2 * 4 * 5
    assert res.totals.dense_macs == synaptic
    assert 2 * synaptic == _flop_counter(model, x)
    bn_elems, pool_in = 2 * 4 * 64, 2 * 4 * 16
    assert _fvcore(model, x) == synaptic + 2 * bn_elems + pool_in
