"""The rendered HTML: contents, escaping, self-containment, size, atomic writing, conventions copy."""

from __future__ import annotations

import base64
import hashlib
import html as htmllib
import re
from pathlib import Path

import pytest
import torch
from markupsafe import escape

import snnprof.io
from snnprof import estimate_energy
from snnprof.config import parse_config
from snnprof.pipeline import run_config
from snnprof.reports import build_html, render_report
from snnprof.reports import render as render_mod
from snnprof.reports.conventions import COUNTING_CONVENTIONS, ELEMENTWISE_OPS, INPUT_KINDS_NOTE
from tests.reports.conftest import DATE, PROFILES, XSS, measured

REPO = Path(__file__).resolve().parents[2]
CONFIG_TEXT = "[model]\nname = \"tiny\"  # <b>not bold</b>\n"


@pytest.fixture(scope="module")
def comparison_html(snn_result, ann_result) -> str:
    return build_html([snn_result, ann_result], profiles=PROFILES, labels=["SNN", "ANN"],
                      measured=[measured(0.002), None], config_texts=[CONFIG_TEXT, None],
                      command="snnprof report a.toml b.toml --out r.html", date=DATE)


def script_body(page: str) -> str:
    bodies = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(bodies) == 1
    return bodies[0]


def test_contents_of_a_comparison(comparison_html, snn_result):
    page = comparison_html
    for section in ("summary", "comparison", "m0", "m1", "m0-layers", "m0-ops-s", "m0-energy-s", "m0-terms-s",
                    "m0-rate-s", "m0-steps-s", "m0-channels-s", "m1-ops-s", "conventions", "profiles", "repro"):
        assert f'id="{section}"' in page, section
    assert "m1-rate-s" not in page  # the ANN has no firing rates
    assert page.count('<tr data-cat="') == len(snn_result.layers) + 4  # ANN: conv, relu, flatten, linear
    assert "<title>SNN vs ANN: comparison · snnprof report</title>" in page
    assert "Which costs less" in page and "Ratios against SNN" in page
    for section in ("verdict", "explain", "side-terms-s", "side-layers-s"):
        assert f'id="{section}"' in page, section
    assert "2025-01-02 03:04:05 UTC" in page and torch.__version__ in page
    assert "snnprof report a.toml b.toml --out r.html" in page
    assert str(escape(CONFIG_TEXT)) in page  # verbatim, escaped
    assert "Horowitz" in page and "Davies" in page  # provenance of both profiles
    assert "NVIDIA H100 80GB HBM3" in page and "2.00 mJ" in page and "measured-badge" in page


def test_headline_numbers_of_one_model(ann_result):
    page = build_html(ann_result, profiles=["cmos45nm_fp32"], date=DATE)
    energy = estimate_energy(ann_result, "cmos45nm_fp32")
    assert "57.3 k" in page  # per-sample MACs: 36864 + 20480
    assert "264 nJ" in page and energy.per_sample_pj == pytest.approx(4.6 * 57344)
    assert 'id="comparison"' not in page and "ANN (no spiking neurons)" in page


def test_conventions_match_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Counting conventions", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (.+?) \| (.+?) \|$", section, flags=re.M)
    table = [(a, b) for a, b in rows if a not in ("field", "op") and not a.startswith("---")]
    assert table == [*COUNTING_CONVENTIONS, *ELEMENTWISE_OPS]
    paragraph = " ".join(section.split("\n\n")[2].split())
    assert paragraph == INPUT_KINDS_NOTE


def test_conventions_markdown_becomes_code_and_strong(comparison_html):
    assert "<code>dense_macs</code>" in comparison_html
    assert "<strong>dense</strong>" in comparison_html


def test_user_strings_are_escaped(xss_result):
    page = build_html([xss_result], profiles=["cmos45nm_fp32"], labels=[XSS], config_texts=[XSS],
                      title=XSS, command=XSS, device=XSS, date=DATE)
    assert XSS not in page
    assert page.count("<script") == 1 and "alert(1)" not in script_body(page)
    assert htmllib.escape(XSS, quote=False) in page or str(escape(XSS)) in page
    assert page.count(str(escape(XSS))) >= 10  # layer name, label, model, config, title, charts ...


def test_attribute_injection_is_inert(snn_result):
    evil = '" onmouseover="alert(1)" x="'
    page = build_html([snn_result], profiles=["cmos45nm_fp32"], labels=[evil], date=DATE)
    assert evil not in page and "onmouseover=\"alert" not in page


def test_page_is_self_contained_and_locked_down(comparison_html):
    page = comparison_html
    assert not re.search(r"\b(?:src|href|action|poster|data)\s*=\s*\"(?!#)", page)  # only in-page links
    for tag in ("<link", "<img", "<iframe", "<object", "<embed", "<base", "@import", "url("):
        assert tag not in page, tag
    csp = htmllib.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1))
    digest = base64.b64encode(hashlib.sha256(script_body(page).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp and "unsafe-inline" not in csp
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp


def test_print_and_dark_styles_present(comparison_html):
    assert "@media print" in comparison_html and "prefers-color-scheme: dark" in comparison_html
    assert '<meta name="color-scheme" content="light dark">' in comparison_html


def test_charts_are_accessible(comparison_html):
    svgs = re.findall(r"<svg [^>]*>", comparison_html)
    assert len(svgs) >= 10
    for tag in svgs:
        ids = re.search(r'aria-labelledby="([^"]+)"', tag).group(1).split()
        assert 'role="img"' in tag and len(ids) == 2
        assert f'<title id="{ids[0]}">' in comparison_html and f'<desc id="{ids[1]}">' in comparison_html
    assert '<th scope="col"' in comparison_html and '<th scope="row"' in comparison_html


def test_energy_defaults(snn_result):
    carried = build_html(snn_result, date=DATE)  # no energy on the result: cmos45nm_fp32 estimated
    assert "<code>cmos45nm_fp32</code>" in carried and "<code>loihi</code>" not in carried
    chosen = build_html(snn_result, energies=[[estimate_energy(snn_result, "truenorth")]], date=DATE)
    assert "<code>truenorth</code>" in chosen and "<code>cmos45nm_fp32</code>" not in chosen


def test_per_result_arguments_must_match(snn_result):
    with pytest.raises(ValueError, match="labels: expected one entry per result"):
        build_html([snn_result, snn_result], labels=["a"])
    with pytest.raises(ValueError, match="at least one"):
        build_html([])


def test_zoo_model_report_under_3_mb(tmp_path):
    text = (REPO / "configs" / "ottt_vgg11_ws.toml").read_text(encoding="utf-8")
    text = text.replace("batch_size = 8", "batch_size = 1")
    cfg = parse_config(text, REPO / "configs" / "ottt_vgg11_ws.toml")
    result = run_config(cfg)
    out = render_report(result, tmp_path / "reports" / "ottt.html", labels=["ottt_vgg11_ws"], config_texts=[text])
    size = out.stat().st_size
    assert 20_000 < size < 3 * 1024 * 1024
    page = out.read_text(encoding="utf-8")
    assert page.count('<figure class="chart') >= 15 and "features.21" in page


# --------------------------------------------------------------------------- atomic writing


def test_failed_render_writes_nothing_and_keeps_the_old_report(snn_result, tmp_path, monkeypatch):
    out = tmp_path / "r.html"
    out.write_text("old report")

    def broken(report):
        raise RuntimeError("template failed")

    monkeypatch.setattr(render_mod, "render_html", broken)
    with pytest.raises(RuntimeError, match="template failed"):
        render_report(snn_result, out)
    with pytest.raises(RuntimeError):
        render_report(snn_result, tmp_path / "new.html")
    assert out.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_failed_write_leaves_no_partial_file(snn_result, tmp_path, monkeypatch):
    out = tmp_path / "r.html"
    out.write_text("old report")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(snnprof.io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        render_report(snn_result, out)
    assert out.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # the temp file was removed


def test_render_report_writes_the_page(snn_result, tmp_path):
    out = render_report(snn_result, tmp_path / "sub" / "r.html", date=DATE)
    page = out.read_text(encoding="utf-8")
    assert out == tmp_path / "sub" / "r.html" and page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>") and "tiny_snn" in page
