"""Both pool-folding views of one run, priced once in the pipeline and shown side by side (JSON, terminal, HTML)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnprof.counting import profile
from snnprof.energy import price, price_other_pool_view
from snnprof.render import render_result
from snnprof.reports import build_html
from snnprof.run import Run
from snnprof.units import format_count
from tests.counting._helpers import binary

#: 6x6 spikes -> AvgPool2d(2) -> 3x3 -> conv 3x3 pad 1 (one channel): unfolded, 9 positions x 9 taps dense MACs
#: (the pooled values are fractions); the folded SOPs are the engine's (checked by hand in tests/counting).
DENSE_MACS = 9 * 9


def _result(fold: bool):
    torch.manual_seed(0)
    net = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, padding=1, bias=False))
    spikes = binary((1, 1, 6, 6), 0.3, seed=3)
    return profile(net, spikes, fold_pooling=fold, warn=False)


@pytest.mark.parametrize("fold", [False, True])
def test_the_other_view_is_priced_and_shown(fold: bool) -> None:
    result = _result(fold)
    assert result.folds_pools
    run = Run("x", result, price(result, ["cmos45nm_fp32"]), other_pool_view=price_other_pool_view(
        result, ["cmos45nm_fp32"]))
    views = run.pool_views()
    tot = result.totals
    assert views["unfolded"]["macs"] == tot.macs_unfolded == DENSE_MACS
    assert views["folded"]["macs"] == tot.macs_folded == 0
    assert views["folded"]["sops"] == tot.sops_folded
    # 45 nm prices a dense-input MAC at 4.6 pJ and a SOP at 0.9 pJ
    assert views["unfolded"]["energy_pj.cmos45nm_fp32"] == pytest.approx(4.6 * DENSE_MACS + 0.9 * tot.sops_unfolded)
    assert views["folded"]["energy_pj.cmos45nm_fp32"] == pytest.approx(0.9 * tot.sops_folded)
    assert set(run.to_dict()["pool_folding_views"]) == {"unfolded", "folded"}
    other = "folded" if not fold else "unfolded"
    line = [p for p in render_result(run).renderables if "average/sum-pooled spikes" in str(p)][0]
    assert f"SOPs {format_count(views[other]['sops'])}" in str(line) and "cmos45nm_fp32" in str(line)
    page = build_html(run)
    assert "Pool folding: both counting views" in page and "this run" in page


def test_no_views_where_nothing_is_pooled() -> None:
    result = profile(nn.Linear(4, 2), torch.ones(3, 4), warn=False)
    assert price_other_pool_view(result, ["cmos45nm_fp32"]) == {}
    run = Run("x", result, price(result, ["cmos45nm_fp32"]))
    assert run.pool_views() == {} and "pool_folding_views" not in run.to_dict()
