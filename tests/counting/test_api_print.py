"""The Python API that prints: tables, by_module, the uncounted-ops warning, per-run rules, quiet logs."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from torch import nn

import snnprof
from snnprof.counting import Cost, Synapse
from snnprof.counting.registry import find_module_rule
from snnprof.quiet import NOISY_LOGGERS
from snnprof.render.terminal import layer_table


class Blocks(nn.Module):
    """Two blocks of two Linear layers and a root-level add: closed-form MACs per block."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 5))
        self.block2 = nn.Sequential(nn.Linear(5, 2), nn.Linear(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block2(self.block1(x))
        return y + y


def test_print_is_the_cli_table_without_energy() -> None:
    result = snnprof.profile(Blocks(), torch.rand(3, 4))
    text = str(result)
    assert text.splitlines()[0].startswith("Blocks  batch 3 · T 1")
    for rec in result.layers:
        assert rec.name in text
    assert "per sample: MACs" in text and "total" in text
    assert len(repr(result)) < 200 and "dense_macs=" in repr(result)
    from rich.console import Console

    console = Console(width=100, color_system=None, record=True)
    console.print(layer_table(result))
    cli_rows = [line.strip() for line in console.export_text().splitlines() if line.strip()]
    assert all(row in text for row in cli_rows[1:])  # the same rows as snnprof count's table


def test_html_is_escaped() -> None:
    net = nn.Sequential()
    net.add_module("<b>", nn.Linear(2, 2))
    html = snnprof.profile(net, torch.rand(1, 2))._repr_html_()
    assert '<td style="text-align:left">&lt;b&gt;</td>' in html and '<td style="text-align:left"><b>' not in html
    assert html.startswith("<div>") and "<table>" in html


def test_by_module_sums_per_prefix() -> None:
    result = snnprof.profile(Blocks(), torch.rand(3, 4))
    groups = result.by_module(1)
    assert list(groups) == ["block1", "block2", ""]
    assert groups["block1"].dense_macs == 3 * (4 * 3 + 3 * 5)
    assert groups["block2"].dense_macs == 3 * (5 * 2 + 2 * 2)
    assert groups[""].flops == 3 * 2  # the root's add: one op per output element
    assert groups["block1"].params == (4 * 3 + 3) + (3 * 5 + 5)
    assert sum(g.dense_macs for g in groups.values()) == result.totals.dense_macs
    assert list(result.by_module(2)) == ["block1.0", "block1.1", "block2.0", "block2.1", ""]
    assert list(result.by_module(0)) == [""]
    assert "block1" in result.table(depth=1) and "Modules (depth 1)" in result.table(depth=1)
    with pytest.raises(ValueError, match="depth"):
        result.by_module(-1)


class Odd(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.bessel_j0(x)


def test_one_warning_per_run() -> None:
    net = nn.Sequential(nn.Linear(2, 2), Odd(), nn.Sequential(nn.Linear(2, 2)))
    net[2].forward = lambda x: x  # its Linear never runs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = snnprof.profile(net, torch.rand(1, 2))
        with snnprof.Profiler(net) as prof:
            net(torch.rand(1, 2))
        prof.result()
        prof.result()
    found = [w for w in caught if issubclass(w.category, snnprof.UncountedOpsWarning)]
    assert len(found) == 2  # one per run, however often result() is called
    assert found[0].filename == __file__
    assert found[0].message.unsupported == result.unsupported and found[0].message.uncalled == ["2.0"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        snnprof.profile(net, torch.rand(1, 2), warn=False)
        snnprof.profile(nn.Linear(2, 2), torch.rand(1, 2))


def conv_as_one(module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> Cost:
    """A made-up rule: one dense MAC per output element."""
    return Cost(synapses=(Synapse(dense_macs=output.numel()),))


def test_per_run_rules_override_for_one_run_only() -> None:
    from spikingjelly.activation_based import layer

    net = nn.Sequential(layer.Conv2d(2, 3, 3), nn.BatchNorm2d(3)).eval()
    x = torch.rand(2, 2, 5, 5)
    base = snnprof.profile(net, x)
    folded = snnprof.profile(net, x, rules={nn.BatchNorm2d: None})
    assert folded.layer("1").flops == 0 and folded.layer("0").flops == base.layer("0").flops
    assert folded.totals.flops == base.totals.flops - base.layer("1").flops
    custom = snnprof.profile(net, x, rules={nn.Conv2d: conv_as_one})  # applies to the SpikingJelly subclass
    assert custom.layer("0").dense_macs == 2 * 3 * 3 * 3
    assert snnprof.profile(net, x).totals == base.totals  # the global registry is untouched
    assert find_module_rule(nn.BatchNorm2d) is not None


def test_per_run_op_and_name_rules() -> None:
    class M(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.matmul(a, b) + 1

    a, b = torch.rand(2, 3), torch.rand(3, 4)
    base = snnprof.profile(M(), (a, b))
    result = snnprof.profile(M(), (a, b), rules={torch.matmul: lambda args, kwargs, out: Cost(), "add": None})
    assert base.totals.dense_macs == 2 * 3 * 4 and result.totals.dense_macs == 0 and result.totals.flops == 0
    with pytest.raises(TypeError, match="keys"):
        snnprof.Profiler(M(), rules={3: None})
    with pytest.raises(TypeError, match="rule function"):
        snnprof.Profiler(M(), rules={nn.Linear: 3})


def test_library_notes_are_silenced_while_profiling(caplog: pytest.LogCaptureFixture) -> None:
    noisy = logging.getLogger(NOISY_LOGGERS[0])
    before = noisy.level

    class Noisy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            noisy.warning("Triton not available")
            return x * 2

    with caplog.at_level(logging.WARNING):
        snnprof.profile(Noisy(), torch.rand(2))
        assert "Triton" not in caplog.text
        noisy.warning("after")
        assert "after" in caplog.text
    assert noisy.level == before
