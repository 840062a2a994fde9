"""Norm, pool, upsample, activation and zero-cost rules, plus elementwise functional ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.counting._helpers import run

X4 = (2, 3, 4, 4)  # 96 elements


def _flops(module: nn.Module, x: torch.Tensor) -> int:
    res = run(module, x)
    assert res.totals.dense_macs == 0
    return res.totals.flops


def test_batchnorm_eval_2_train_4() -> None:
    x = torch.randn(*X4)
    assert _flops(nn.BatchNorm2d(3).eval(), x) == 2 * 96
    assert _flops(nn.BatchNorm2d(3).train(), x) == 4 * 96
    assert _flops(nn.BatchNorm1d(3).eval(), torch.randn(5, 3)) == 2 * 15
    assert _flops(nn.BatchNorm3d(2).train(), torch.randn(2, 2, 2, 2, 2)) == 4 * 32


@pytest.mark.parametrize(("affine", "per"), [(True, 5), (False, 3)])
def test_layernorm_groupnorm_instancenorm(affine: bool, per: int) -> None:
    x = torch.randn(2, 4, 3, 3)  # 72
    assert _flops(nn.LayerNorm([3, 3], elementwise_affine=affine), x) == per * 72
    assert _flops(nn.GroupNorm(2, 4, affine=affine), x) == per * 72
    assert _flops(nn.InstanceNorm2d(4, affine=affine), x) == per * 72


@pytest.mark.parametrize(
    ("module", "shape", "out_numel", "per_out"),
    [
        (nn.AvgPool2d(2), (1, 2, 4, 4), 8, 4),
        (nn.AvgPool2d(3, stride=1, padding=1), (1, 1, 4, 4), 16, 9),
        (nn.AvgPool2d((2, 3)), (1, 1, 4, 6), 4, 6),
        (nn.AvgPool1d(3, stride=2), (1, 2, 7), 6, 3),
        (nn.MaxPool2d(2), (1, 2, 4, 4), 8, 3),
        (nn.MaxPool2d(3, stride=2, padding=1), (1, 1, 5, 5), 9, 8),
        (nn.MaxPool1d(4), (2, 1, 8), 4, 3),
        (nn.MaxPool3d((1, 2, 2)), (1, 1, 2, 4, 4), 8, 3),
    ],
)
def test_pooling_per_output(module: nn.Module, shape: tuple[int, ...], out_numel: int, per_out: int) -> None:
    x = torch.randn(*shape)
    assert module(x).numel() == out_numel
    assert _flops(module, x) == per_out * out_numel


@pytest.mark.parametrize("module", [nn.AdaptiveAvgPool2d(1), nn.AdaptiveAvgPool2d((2, 3)), nn.AdaptiveMaxPool2d(2)])
def test_adaptive_pool_is_input_numel(module: nn.Module) -> None:
    assert _flops(module, torch.randn(2, 3, 4, 6)) == 2 * 3 * 4 * 6


@pytest.mark.parametrize(
    ("mode", "per", "shape", "kw"),
    [
        ("nearest", 0, (1, 2, 3, 3), {}),
        ("bilinear", 7, (1, 2, 3, 3), {"align_corners": False}),
        ("bicubic", 31, (1, 1, 3, 3), {"align_corners": False}),
        ("linear", 3, (1, 2, 5), {"align_corners": False}),
        ("trilinear", 15, (1, 1, 2, 2, 2), {"align_corners": False}),
    ],
)
def test_upsample(mode: str, per: int, shape: tuple[int, ...], kw: dict) -> None:
    up = nn.Upsample(scale_factor=2, mode=mode, **kw)
    x = torch.randn(*shape)
    assert _flops(up, x) == per * up(x).numel()


@pytest.mark.parametrize(
    ("module", "per"),
    [(nn.ReLU(), 1), (nn.LeakyReLU(0.1), 1), (nn.Hardtanh(), 1), (nn.Sigmoid(), 4), (nn.Tanh(), 4),
     (nn.GELU(), 4), (nn.SiLU(), 4), (nn.Softmax(dim=1), 3), (nn.LogSoftmax(dim=-1), 3)],
)
def test_activations_per_element(module: nn.Module, per: int) -> None:
    assert _flops(module, torch.randn(2, 5, 3)) == per * 30


@pytest.mark.parametrize(
    "module",
    [nn.Flatten(), nn.Dropout(0.3), nn.Dropout2d(0.3), nn.Identity(), nn.Unflatten(1, (3, 4)), nn.ZeroPad2d(1),
     nn.ReflectionPad2d(1)],
)
def test_zero_cost_modules_are_known(module: nn.Module) -> None:
    x = torch.randn(2, 12, 3, 3) if not isinstance(module, nn.Unflatten) else torch.randn(2, 12)
    res = run(nn.Sequential(nn.Identity(), module), x)
    assert res.unsupported == []
    assert res.totals.flops == 0
    assert [r.name for r in res.layers] == ["0", "1"]
    assert res.layer("1").input_kind == "n/a"


def test_small_cnn_closed_form() -> None:
    """conv -> bn -> relu -> maxpool -> adaptive avg -> flatten -> linear, every term written out."""
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5),
    ).eval()
    x = torch.randn(2, 3, 6, 6)
    res = run(model, x)
    conv_out = 2 * 4 * 6 * 6
    conv_macs, fc_macs = conv_out * 3 * 9, 2 * 4 * 5
    assert res.totals.dense_macs == conv_macs + fc_macs
    assert res.totals.flops == (
        2 * conv_macs + conv_out  # conv + bias
        + 2 * conv_out  # bn eval
        + conv_out  # relu
        + 3 * (conv_out // 4)  # max pool 2x2: 3 comparisons per output
        + conv_out // 4  # adaptive avg: one op per input element
        + 2 * fc_macs + 2 * 5  # linear + bias
    )
    assert res.totals.params == sum(p.numel() for p in model.parameters())


class Elementwise(nn.Module):
    """Rule-less module doing arithmetic through torch functions and operators."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + 1.0  # add: 1/elem
        y = y * x  # mul: 1/elem
        y = torch.sigmoid(y)  # 4/elem
        y = F.softmax(y, dim=-1)  # 3/elem
        y = y.reshape(-1)  # zero cost
        return y.sum()  # reduction: 1 per input element


def test_functional_elementwise_ops() -> None:
    x = torch.randn(3, 4)
    res = run(Elementwise(), x)
    by_name = {r.name: r.flops for r in res.layers}
    assert by_name == {"(root)/add": 12, "(root)/mul": 12, "(root)/sigmoid": 48, "(root)/softmax": 36, "(root)/sum": 12}
    assert res.totals.dense_macs == 0


class Down1d(nn.MaxPool1d):
    """A user subclass whose name does not say its dimensionality."""


class Smooth(nn.AvgPool3d):
    pass


class Lp(nn.LPPool1d):
    pass


@pytest.mark.parametrize(
    ("module", "shape", "per_out"),
    [(Down1d(3), (1, 2, 9), 3 - 1), (Smooth(2), (1, 1, 4, 4, 4), 8), (Lp(2, 3), (1, 2, 9), 3)],
)
def test_pool_subclasses_keep_parent_dimensionality(module: nn.Module, shape: tuple[int, ...], per_out: int) -> None:
    x = torch.rand(*shape)
    assert _flops(module, x) == per_out * module(x).numel()
