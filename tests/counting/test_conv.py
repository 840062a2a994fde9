"""Convolutions: dense MACs, bias flops and exact border-aware SOPs against brute-force loops."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer
from torch import nn

from tests.counting._helpers import binary, conv_sops_bruteforce, conv_t_sops_bruteforce, run


def _checkerboard(n: int) -> torch.Tensor:
    idx = torch.arange(n)
    return ((idx[:, None] + idx[None, :]) % 2 == 0).float().reshape(1, 1, n, n)


def test_4x4_all_ones_is_100_exact_vs_144_dense() -> None:
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    rec = run(conv, torch.ones(1, 1, 4, 4)).layers[0]
    assert rec.input_kind == "count"  # an all-ones tensor is a count of one per element
    assert (rec.dense_macs, rec.sops, rec.macs) == (144, 100, 0)
    assert rec.sops_rate == pytest.approx(144.0)
    # 100 = sum over output pixels of the in-bounds taps: 4 corners x 4 + 8 edges x 6 + 4 inner x 9
    assert 4 * 4 + 8 * 6 + 4 * 9 == 100


def test_4x4_checkerboard_is_50_exact_vs_72_rate() -> None:
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    x = _checkerboard(4)
    rec = run(conv, x).layers[0]
    assert rec.input_kind == "spike"
    assert (rec.dense_macs, rec.sops) == (144, 50)
    assert rec.sops_rate == pytest.approx(72.0)
    assert conv_sops_bruteforce(x, 1, 3, (4, 4), padding=1) == 50


def test_sops_equal_ones_kernel_conv_sum() -> None:
    """A third, independent reference: conv with weight=1, bias=None on the events, summed."""
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, dilation=1, groups=1, bias=False)
    x = binary((2, 3, 7, 6), seed=3)
    ref = F.conv2d(x, torch.ones_like(conv.weight), None, stride=2, padding=1).sum()
    assert run(conv, x).totals.sops == int(ref)


@dataclass
class ConvCase:
    """One convolution configuration and its input shape ``[N, C_in, *spatial]``."""

    dims: int
    c_in: int
    c_out: int
    kernel: int | tuple[int, ...]
    shape: tuple[int, ...]
    kw: dict = field(default_factory=dict)
    transposed: bool = False


_CLASSES = {
    (1, False): nn.Conv1d, (2, False): nn.Conv2d, (3, False): nn.Conv3d,
    (1, True): nn.ConvTranspose1d, (2, True): nn.ConvTranspose2d, (3, True): nn.ConvTranspose3d,
}

CASES = {
    "1d-plain": ConvCase(1, 2, 3, 3, (2, 2, 9)),
    "1d-pad-stride": ConvCase(1, 2, 4, 3, (1, 2, 10), {"padding": 2, "stride": 3}),
    "1d-dilation-groups": ConvCase(1, 4, 6, 3, (2, 4, 11), {"padding": 1, "dilation": 2, "groups": 2}),
    "1d-reflect": ConvCase(1, 2, 3, 5, (1, 2, 8), {"padding": 2, "padding_mode": "reflect"}),
    "1d-circular": ConvCase(1, 2, 3, 3, (1, 2, 7), {"padding": 2, "padding_mode": "circular", "stride": 2}),
    "1d-same": ConvCase(1, 2, 2, 4, (1, 2, 9), {"padding": "same"}),
    "2d-border": ConvCase(2, 1, 1, 3, (1, 1, 5, 5), {"padding": 1}),
    "2d-stride-pad": ConvCase(2, 3, 4, (3, 2), (2, 3, 7, 6), {"stride": (2, 1), "padding": (1, 2)}),
    "2d-dilation": ConvCase(2, 2, 3, 3, (1, 2, 8, 8), {"padding": 2, "dilation": 2}),
    "2d-groups": ConvCase(2, 4, 8, 3, (1, 4, 6, 5), {"padding": 1, "groups": 4}),
    "2d-depthwise-stride": ConvCase(2, 3, 3, 3, (2, 3, 7, 7), {"padding": 1, "stride": 2, "groups": 3}),
    "2d-reflect": ConvCase(2, 2, 3, 3, (1, 2, 5, 6), {"padding": (1, 2), "padding_mode": "reflect"}),
    "2d-circular": ConvCase(2, 2, 2, 3, (1, 2, 5, 5), {"padding": 1, "padding_mode": "circular", "stride": 2}),
    "2d-replicate": ConvCase(2, 1, 2, 3, (1, 1, 4, 5), {"padding": 1, "padding_mode": "replicate"}),
    "2d-same-dilated": ConvCase(2, 2, 2, 3, (1, 2, 6, 6), {"padding": "same", "dilation": 2}),
    "2d-same-reflect": ConvCase(2, 2, 3, 3, (1, 2, 5, 6), {"padding": "same", "padding_mode": "reflect",
                                                           "dilation": (1, 2)}),
    "2d-same-even-circular": ConvCase(2, 1, 2, (4, 3), (2, 1, 5, 5), {"padding": "same",
                                                                      "padding_mode": "circular"}),
    "1d-same-replicate": ConvCase(1, 2, 2, 5, (1, 2, 7), {"padding": "same", "padding_mode": "replicate"}),
    "2d-valid-reflect": ConvCase(2, 1, 2, 3, (1, 1, 5, 5), {"padding": "valid", "padding_mode": "reflect"}),
    "3d-pad": ConvCase(3, 1, 2, 3, (1, 1, 4, 4, 3), {"padding": 1}),
    "3d-stride-groups": ConvCase(3, 2, 4, 2, (1, 2, 5, 4, 4), {"stride": 2, "padding": 1, "groups": 2}),
    "3d-circular": ConvCase(3, 1, 1, 3, (1, 1, 3, 4, 3), {"padding": 1, "padding_mode": "circular"}),
    "t1d-plain": ConvCase(1, 2, 3, 3, (2, 2, 5), transposed=True),
    "t1d-stride-pad-outpad": ConvCase(1, 2, 2, 3, (1, 2, 6), {"stride": 2, "padding": 1, "output_padding": 1},
                                      transposed=True),
    "t1d-dilation-groups": ConvCase(1, 4, 2, 3, (1, 4, 5), {"dilation": 2, "groups": 2, "padding": 2},
                                    transposed=True),
    "t2d-stride-pad": ConvCase(2, 2, 3, 3, (1, 2, 4, 5), {"stride": 2, "padding": 1}, transposed=True),
    "t2d-outpad-groups": ConvCase(2, 4, 6, (3, 2), (2, 4, 3, 4),
                                  {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 2), "groups": 2},
                                  transposed=True),
    "t2d-dilation": ConvCase(2, 1, 2, 2, (1, 1, 4, 4), {"dilation": 3, "padding": 2}, transposed=True),
    "t3d-stride-pad": ConvCase(3, 2, 2, 3, (1, 2, 3, 3, 2), {"stride": 2, "padding": 1, "output_padding": 1},
                               transposed=True),
}


def _build(case: ConvCase, bias: bool = False) -> nn.Module:
    torch.manual_seed(0)
    return _CLASSES[(case.dims, case.transposed)](case.c_in, case.c_out, case.kernel, bias=bias, **case.kw)


def _dense_macs(case: ConvCase, x: torch.Tensor, out: torch.Tensor) -> int:
    k = prod(case.kernel) if isinstance(case.kernel, tuple) else case.kernel**case.dims
    g = case.kw.get("groups", 1)
    n = x.shape[0]
    if case.transposed:  # every input pixel scatters a kernel to C_out/groups channels
        return n * case.c_in * prod(x.shape[2:]) * (case.c_out // g) * k
    return n * case.c_out * prod(out.shape[2:]) * (case.c_in // g) * k


def _bruteforce(case: ConvCase, ev: torch.Tensor, out: torch.Tensor) -> int:
    kw = {k: v for k, v in case.kw.items() if k not in ("output_padding",)}
    if kw.get("padding") == "valid":
        kw["padding"] = 0
    if kw.get("padding") == "same":  # torch's "same": total pad d*(k-1), floor half on the left
        kernel = case.kernel if isinstance(case.kernel, tuple) else (case.kernel,) * case.dims
        dil = kw.get("dilation", 1)
        dil = dil if isinstance(dil, tuple) else (dil,) * case.dims
        # only the left pad shifts the taps; the right pad just sets the output size, taken from `out`
        kw["padding"] = tuple(d * (k - 1) // 2 for d, k in zip(dil, kernel, strict=True))
    if case.transposed:
        return conv_t_sops_bruteforce(ev, case.c_out, case.kernel, out.shape[2:], **kw)
    return conv_sops_bruteforce(ev, case.c_out, case.kernel, out.shape[2:], **kw)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("scale", [1.0, 2.74])
def test_exact_sops_match_bruteforce(name: str, scale: float) -> None:
    case = CASES[name]
    conv = _build(case)
    spikes = binary(case.shape, p=0.4, seed=len(name))
    x = spikes * scale
    with torch.no_grad():
        out = conv(x)
    rec = run(conv, x).layers[0]
    assert rec.input_kind == "spike"
    assert rec.macs == 0
    assert rec.dense_macs == _dense_macs(case, x, out)
    assert rec.flops == 2 * rec.dense_macs  # no bias
    assert rec.sops == _bruteforce(case, spikes, out)
    assert rec.sops_rate == pytest.approx(rec.dense_macs * float(spikes.mean()))


@pytest.mark.parametrize("name", ["1d-pad-stride", "2d-groups", "2d-reflect", "t2d-stride-pad", "3d-pad"])
def test_graded_input_sops_weigh_by_value(name: str) -> None:
    case = CASES[name]
    conv = _build(case)
    gen = torch.Generator().manual_seed(7)
    x = torch.randint(0, 4, case.shape, generator=gen).float()
    x.view(-1)[0] = 3.0
    with torch.no_grad():
        out = conv(x)
    rec = run(conv, x).layers[0]
    assert rec.input_kind == "count"
    assert rec.sops == _bruteforce(case, x, out)
    rec1 = run(conv, x, count_weighting="nonzero").layers[0]
    assert rec1.sops == _bruteforce(case, (x != 0).float(), out)


@pytest.mark.parametrize("name", ["2d-stride-pad", "t2d-outpad-groups", "3d-stride-groups", "1d-dilation-groups"])
def test_dense_input_is_macs_and_bias_is_one_per_output(name: str) -> None:
    case = CASES[name]
    conv = _build(case, bias=True)
    x = torch.randn(*case.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = conv(x)
    rec = run(conv, x).layers[0]
    dense = _dense_macs(case, x, out)
    assert rec.input_kind == "dense"
    assert (rec.macs, rec.dense_macs, rec.sops) == (dense, dense, 0)
    assert rec.flops == 2 * dense + out.numel()
    assert rec.params == sum(p.numel() for p in conv.parameters())


def test_same_padding_with_reflect_mode_reads_real_inputs() -> None:
    # every output of a "same" reflect-padded 3x3 conv reads 9 real inputs: 16 x 9 = 144 (zeros mode: 100)
    conv = nn.Conv2d(1, 1, 3, padding="same", padding_mode="reflect", bias=False)
    assert run(conv, torch.ones(1, 1, 4, 4)).totals.sops == 144
    conv_zeros = nn.Conv2d(1, 1, 3, padding="same", bias=False)
    assert run(conv_zeros, torch.ones(1, 1, 4, 4)).totals.sops == 100


@pytest.mark.parametrize(("size", "out_size"), [(3, (6, 6)), (3, (5, 6)), (4, (8, 7))])
def test_transposed_conv_with_output_size(size: int, out_size: tuple[int, int]) -> None:
    """``forward(x, output_size=...)`` chooses the output padding at call time; the extra row/column is reached."""
    conv_t = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, bias=False)
    x = binary((1, 2, size, size), seed=21)
    with torch.no_grad():
        out = conv_t(x, list(out_size))
    assert tuple(out.shape[2:]) == out_size
    rec = run(conv_t, (x, list(out_size))).layers[0]
    assert rec.sops == conv_t_sops_bruteforce(x, 3, 3, out_size, stride=2, padding=1)
    assert rec.dense_macs == 2 * size * size * 3 * 9


def test_unbatched_conv() -> None:
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    rec = run(conv, torch.ones(2, 4, 4)).layers[0]
    assert (rec.sops, rec.dense_macs) == (100 * 2 * 3, 3 * 16 * 2 * 9)


def test_dense_macs_closed_form_numbers() -> None:
    # Conv2d(3, 8, 3, stride 2, pad 1, groups 1) on 2x3x8x8: out 4x4 -> 2*8*16*3*9
    assert run(nn.Conv2d(3, 8, 3, 2, 1, bias=False), torch.rand(2, 3, 8, 8)).totals.dense_macs == 2 * 8 * 16 * 3 * 9
    # grouped: Cin/groups taps per output
    assert run(nn.Conv2d(4, 8, 3, groups=4, bias=False), torch.rand(1, 4, 5, 5)).totals.dense_macs == 8 * 9 * 1 * 9
    # transposed: N * Cin * in_positions * Cout/groups * k
    conv_t = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, bias=False)
    assert run(conv_t, torch.rand(1, 4, 3, 3)).totals.dense_macs == 4 * 9 * 3 * 9


def test_functional_conv_inside_custom_module() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 2, 3, 3))
            self.bias = nn.Parameter(torch.zeros(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.conv2d(x, self.weight, self.bias, stride=1, padding=1)
            return F.conv_transpose2d(y, self.weight, None, stride=2)

    x = binary((1, 2, 5, 5), seed=11)
    res = run(Block(), x)
    conv, conv_t = res.layer("(root)/conv2d.0"), res.layer("(root)/conv_transpose2d.0")
    assert conv.type == "conv2d" and conv.input_kind == "spike"
    assert conv.dense_macs == 1 * 4 * 25 * 2 * 9
    assert conv.flops == 2 * conv.dense_macs + 4 * 25  # bias
    assert conv.sops == conv_sops_bruteforce(x, 4, 3, (5, 5), padding=1)
    assert conv.params == 4 * 2 * 9 + 4
    assert conv_t.input_kind == "dense"
    assert conv_t.dense_macs == conv_t.macs == 1 * 4 * 25 * 2 * 9
    assert conv_t.params == 4 * 2 * 9  # the parameters each functional call touches
    assert res.totals.params == 4 * 2 * 9 + 4  # the model's unique parameters


@pytest.mark.parametrize("bias", [False, True])
def test_spikingjelly_multistep_conv_equals_flattened_conv(bias: bool) -> None:
    T, B = 3, 2
    torch.manual_seed(0)
    sj = layer.Conv2d(2, 4, 3, stride=2, padding=1, bias=bias)
    functional.set_step_mode(sj, "m")
    flat = nn.Conv2d(2, 4, 3, stride=2, padding=1, bias=bias)
    flat.load_state_dict(sj.state_dict())
    x = binary((T, B, 2, 6, 5), seed=5)
    rec_sj = run(sj, x).layers[0]
    rec_flat = run(flat, x.flatten(0, 1)).layers[0]
    assert rec_sj.type == "Conv2d"
    fields = ("dense_macs", "macs", "sops", "flops", "params", "input_kind")
    assert {f: getattr(rec_sj, f) for f in fields} == {f: getattr(rec_flat, f) for f in fields}
    assert rec_sj.sops == conv_sops_bruteforce(x.flatten(0, 1), 4, 3, (3, 3), stride=2, padding=1)
    assert rec_sj.dense_macs == T * B * 4 * 9 * 2 * 9
    assert rec_sj.geometry["frames"] == T * B
    assert rec_sj.sops_rate == pytest.approx(rec_flat.sops_rate)
