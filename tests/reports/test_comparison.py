"""The comparison model: ratios only where both sides are priced like for like, named reasons, host pricing."""

from __future__ import annotations

import dataclasses
import json

import pytest

from snnprof import estimate_energy
from snnprof.comparison import comparability, compare_runs, like_for_like
from snnprof.energy import price
from snnprof.render.compare import verdict_line
from snnprof.run import Run
from tests.reports.conftest import DENSE_MACS_PER_SAMPLE, B


def run(result, label: str, profiles=("cmos45nm_fp32", "loihi"), host=None, checkpoint: str | None = "w.pt") -> Run:
    config = {"model": {"name": label, **({"checkpoint": checkpoint} if checkpoint else {})}}
    result = dataclasses.replace(result, config=config)
    return Run(label, result, price(result, profiles, host))


def test_loihi_has_no_mac_price_so_snn_vs_ann_is_not_comparable(snn_result, ann_result):
    snn, ann = run(snn_result, "snn"), run(ann_result, "ann")
    cmp = compare_runs([snn, ann])
    macs = ann_result.totals.macs
    assert macs == DENSE_MACS_PER_SAMPLE * B
    assert comparability(ann, "loihi").comparable is False
    assert comparability(snn, "loihi").comparable is True  # its first layer sees spikes: SOPs only
    reason = comparability(ann, "loihi").reason
    assert reason.startswith("ann: ") and "dense-input MACs per sample have no price on loihi" in reason
    loihi = next(v for v in cmp.snn_ann if v.profile == "loihi")
    assert loihi.comparable is False and loihi.ratio is None and loihi.reason == reason
    cmos = next(v for v in cmp.snn_ann if v.profile == "cmos45nm_fp32")
    expected = estimate_energy(snn_result, "cmos45nm_fp32").total_pj / (4.6 * macs)
    assert cmos.comparable and cmos.ratio == pytest.approx(expected)
    data = json.loads(json.dumps(cmp.to_dict(), allow_nan=False))
    assert data["energy_reduction_pct"]["loihi"]["ann"] is None
    assert data["ratios"]["ann"]["energy_pj.loihi"] is None
    assert data["ratios"]["ann"]["energy_pj.cmos45nm_fp32"] == pytest.approx(1 / expected)
    assert data["comparability"]["ann"]["loihi"] == {"comparable": False, "reason": reason}
    assert data["comparability"]["snn"]["loihi"] == {"comparable": True, "reason": None}
    assert "not comparable (ann: " in verdict_line(next(v for v in cmp.reductions if v.profile == "loihi"))


def test_host_profile_makes_the_pair_comparable_with_the_macs_as_a_host_term(snn_result, ann_result):
    snn, ann = run(snn_result, "snn", host="cmos45nm_fp32"), run(ann_result, "ann", host="cmos45nm_fp32")
    cmp = compare_runs([snn, ann])
    loihi = next(v for v in cmp.snn_ann if v.profile == "loihi")
    snn_pj = estimate_energy(snn_result, "loihi").per_sample_pj
    assert loihi.comparable and loihi.ratio == pytest.approx(snn_pj / (4.6 * DENSE_MACS_PER_SAMPLE))
    assert ann.energy["loihi"].by_term_pj["host_mac"] == pytest.approx(4.6 * DENSE_MACS_PER_SAMPLE * B)


def test_a_term_priced_on_one_side_only_is_not_like_for_like(snn_result):
    priced = run(snn_result, "a", profiles=("cmos45nm_fp32_mem",))
    bare = run(snn_result, "b", profiles=("cmos45nm_fp32_mem",))
    bare.energy["cmos45nm_fp32_mem"].unpriced["mem_weight_read"] = 10  # as if b's profile lacked that price
    fair = like_for_like(priced, bare, "cmos45nm_fp32_mem")
    assert not fair.comparable and "b: 5 bytes of weight read traffic per sample have no price" in fair.reason


def test_untrained_weights_are_named_in_the_verdict_line(snn_result, ann_result):
    cmp = compare_runs([run(snn_result, "snn", checkpoint=None), run(ann_result, "ann")])
    line = verdict_line(next(v for v in cmp.reductions if v.profile == "cmos45nm_fp32"))
    assert line.endswith("[untrained weights: snn]") and "% " in line
    assert any(n.startswith("untrained weights: snn ") for n in cmp.notes)


def test_runs_from_python_are_not_called_untrained(snn_result):
    assert Run("x", dataclasses.replace(snn_result, config={})).trained is None
    assert run(snn_result, "x", checkpoint=None).trained is False and run(snn_result, "y").trained is True
