"""The report as a person sees it: headless Chromium, no console errors, no requests, non-blank charts.

Runs only where Debian's ``chromium`` is installed (``.ci/run`` installs it). Screenshots of every
chart section go to ``tmp_path`` (and to ``$SNNPROF_SCREENSHOT_DIR`` when set).
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from snnprof import estimate_energy
from snnprof.counting.results import LayerRecord, ProfileResult, Totals
from snnprof.reports import render_report
from snnprof.run import RenderSummary, Run
from tests.reports._cdp import CHROMIUM, Browser, browser, chart_sections
from tests.reports.conftest import DATE, PROFILES, XSS, measured

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

#: A chart screenshot is "not blank" above these (luminance variance, distinct colours).
MIN_VARIANCE, MIN_COLORS = 100.0, 8
#: Luminance of the page background (0..255) in each colour scheme.
LIGHT_BG, DARK_BG = 230, 60

ERROR_LEVELS = {"error", "assert"}
#: The viewport a reviewer reads the comparison in; the per-layer tables' key columns must fit it.
VIEWPORT = 1400
#: A long dotted layer path (the widest names of the zoo are shorter).
LONG = "decoder.stage3.upsample_block.0.conv_transpose_with_a_long_name"
WIDE_PROFILES = ["cmos45nm_fp32", "cmos45nm_fp32_mem", "loihi", "spikesim_rram"]


@pytest.fixture(scope="module")
def report_path(snn_result, ann_result, xss_result, tmp_path_factory) -> Path:
    """SNN vs ANN vs an SNN whose names carry a script tag, with a measured GPU energy."""
    out = tmp_path_factory.mktemp("browser") / "report.html"
    return render_report([snn_result, ann_result, xss_result], out, profiles=PROFILES,
                         labels=["SNN", "ANN", XSS], measured=[measured(0.002), measured(0.005), None],
                         config_texts=[f"# {XSS}\n", None, XSS], date=DATE)


def wide_result(name: str) -> ProfileResult:
    """Long names, long types, 12-digit counts and valid firing rates: the widest per-layer table rows."""
    layers = []
    for k in range(4):
        layers += [
            LayerRecord(name=f"{LONG}.{k}", type="UpsamplingBilinear2dConv", input_kind="mixed:count+dense", calls=7,
                        params=1_234_567, macs=123_456_789_012, dense_macs=223_456_789_012, sops=98_765_432_109,
                        sops_rate=1.2e11, flops=456_789_012_345),
            LayerRecord(name=f"{LONG}.{k}/add.{k}", type="add", flops=1000),
            LayerRecord(name=f"{LONG}.{k}.lif_neuron", type="ParametricLIFNode", neurons=123_456,
                        neuron_updates=12_345_600, spikes=1_234_567, firing_rate=1_234_567 / 12_345_600),
        ]
        layers[-1].valid_updates, layers[-1].firing_rate_valid = 6_172_800, 0.123456
    return ProfileResult(model=name, layers=layers, totals=Totals.from_layers(layers, params=4_938_268),
                         batch_size=1, time_steps=1, config={"model": {"name": name}})


@pytest.fixture(scope="module")
def wide_path(tmp_path_factory) -> Path:
    """Two NeRF-like entries with the widest rows a layer table has, priced on four profiles."""
    render = RenderSummary(chunks=2, rays=8, points=30, time_steps_mean=43.0, time_steps_max=46, batch_mean=323.5,
                           batch_max=339, padding_fraction=0.71)
    runs = [Run(label, r, {p: estimate_energy(r, p) for p in WIDE_PROFILES}, render=render)
            for label, r in (("wide_tcp", wide_result("wide_tcp")), ("wide_tp", wide_result("wide_tp")))]
    return render_report(runs, tmp_path_factory.mktemp("wide") / "wide.html", date=DATE)


@pytest.fixture(scope="module")
def chrome():
    with browser() as instance:
        yield instance


def problems(chrome: Browser, session: str, url: str) -> list[str]:
    """Console errors, exceptions, log errors, dialogs and any request other than the page itself."""
    found = []
    for event in chrome.events:
        if event.get("sessionId") != session:
            continue
        method, params = event["method"], event["params"]
        if method == "Runtime.consoleAPICalled" and params["type"] in ERROR_LEVELS:
            found.append(f"console.{params['type']}: {params['args']}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params['exceptionDetails']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ERROR_LEVELS:
            found.append(f"log {params['entry']['level']}: {params['entry']['text']}")
        elif method == "Page.javascriptDialogOpening":
            found.append(f"dialog: {params['message']}")
        elif method == "Network.requestWillBeSent" and params["request"]["url"] != url:
            found.append(f"request: {params['request']['url']}")
    return found


def open_report(chrome: Browser, path: Path, dark: bool = False, width: int = 1200) -> str:
    session = chrome.new_page(width=width)
    if dark:
        chrome.send("Emulation.setEmulatedMedia",
                    {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}, session)
    chrome.open(session, path.as_uri())
    return session


def keep(png: bytes, name: str, tmp_path: Path) -> None:
    (tmp_path / name).write_bytes(png)
    folder = os.environ.get("SNNPROF_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, Path(folder) / name)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_opens_cleanly_and_every_chart_is_drawn(chrome, report_path, tmp_path, dark):
    session = open_report(chrome, report_path, dark)
    sections = chart_sections(chrome, session)
    # side by side: terms, layers; ratio chart; SNN: 6 sections; ANN: ops, energy, terms; XSS SNN: 6
    assert len(sections) == 2 + 1 + 6 + 3 + 6
    background = chrome.pixel_stats(session, chrome.screenshot(session, "summary"))["mean"]
    assert background < DARK_BG if dark else background > LIGHT_BG
    for section in sections:
        png = chrome.screenshot(session, section)
        stats = chrome.pixel_stats(session, png)
        keep(png, f"{section}{'-dark' if dark else ''}.png", tmp_path)
        assert stats["height"] > 60, section
        assert stats["variance"] > MIN_VARIANCE and stats["colors"] > MIN_COLORS, (section, stats)
    assert problems(chrome, session, report_path.as_uri()) == []


def test_script_tag_names_show_as_text(chrome, report_path):
    session = open_report(chrome, report_path)
    heading = chrome.evaluate(session, "document.getElementById('m2-h').textContent")
    assert XSS in heading
    assert chrome.evaluate(session, "document.querySelectorAll('script').length") == 1
    assert problems(chrome, session, report_path.as_uri()) == []  # no dialog opened


def test_layer_table_sorts_and_filters(chrome, report_path):
    session = open_report(chrome, report_path)
    first_name = "document.querySelector('#m1-table tbody tr:not([hidden]) th').textContent"
    # ANN table: sort by MACs (column 5) descending puts the conv (36.9 k MACs) first
    chrome.evaluate(session, "document.querySelector('#m1-table thead th:nth-child(5) button').click()")
    chrome.evaluate(session, "document.querySelector('#m1-table thead th:nth-child(5) button').click()")
    assert chrome.evaluate(session, "document.querySelector('#m1-table thead th:nth-child(5)')"
                                    ".getAttribute('aria-sort')") == "descending"
    assert chrome.evaluate(session, first_name) == "0"
    chrome.evaluate(session, """(() => { const c = document.querySelector('[data-table="m1-table"]');
        const t = c.querySelector('.f-text'); t.value = 'RELU'; t.dispatchEvent(new Event('input')); })()""")
    assert chrome.evaluate(session, first_name) == "1"
    count = chrome.evaluate(session, "document.querySelector('[data-table=\"m1-table\"] .f-count').textContent")
    assert count == "showing 1 of 4 layers"
    assert problems(chrome, session, report_path.as_uri()) == []


def test_prints_to_pdf(chrome, report_path):
    session = open_report(chrome, report_path)
    pdf = base64.b64decode(chrome.send("Page.printToPDF", {"printBackground": True}, session)["data"])
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 3
    assert b"0 0 792 612" in pdf  # the per-layer tables print on landscape pages


#: Per layer table: [scroll width, client width of its wrapper, right edge of each visible header,
#: hidden headers, visible "other" rows, all "other" rows].
_TABLES_JS = """Array.from(document.querySelectorAll('table.layers')).map(t => {
  const heads = Array.from(t.tHead.rows[0].cells);
  const others = Array.from(t.tBodies[0].rows).filter(r => r.dataset.cat === 'other');
  return {id: t.id, scroll: t.parentElement.scrollWidth, client: t.parentElement.clientWidth,
          right: Math.max(...heads.filter(h => h.offsetParent).map(h => h.getBoundingClientRect().right)),
          hidden: heads.filter(h => !h.offsetParent).map(h => h.textContent.trim()),
          shown: others.filter(r => r.offsetParent).length, others: others.length};
})"""
KEY_HEADS = ["#", "layer", "type", "input", "MACs", "SOPs", "spikes", "firing rate"]


def test_key_columns_fit_1400px_and_other_rows_fold_until_shown(chrome, wide_path, report_path, tmp_path):
    for path in (wide_path, report_path):
        session = open_report(chrome, path, width=VIEWPORT)
        assert chrome.evaluate(session, "document.documentElement.scrollWidth") <= VIEWPORT
        tables = chrome.evaluate(session, _TABLES_JS)
        assert tables
        for t in tables:
            assert t["scroll"] <= t["client"] and t["right"] <= VIEWPORT, t  # no horizontal scroll
            assert t["others"] > 0 and t["shown"] == 0, t  # elementwise rows folded away
            assert "dense MACs" in t["hidden"] and "FLOPs" in t["hidden"], t
        heads = chrome.evaluate(session, "Array.from(document.querySelectorAll('#m0-table thead th'))"
                                         ".filter(h => h.offsetParent).map(h => h.textContent.trim())")
        assert [h.rstrip(" ↕").replace("\u200b", "") for h in heads[:8]] == KEY_HEADS
        assert heads[-1].startswith("energy")  # energy on the first profile
        assert ("valid rate" in heads[8]) is (path == wide_path)  # only a padded model has it
        keep(chrome.screenshot(session, "m0-layers"), f"m0-layers-{VIEWPORT}px-{path.stem}.png", tmp_path)
        for toggle in (".f-other", ".f-cols"):
            chrome.evaluate(session, f"document.querySelector('[data-table=\"m0-table\"] {toggle}').click()")
        m0 = next(t for t in chrome.evaluate(session, _TABLES_JS) if t["id"] == "m0-table")
        assert m0["shown"] == m0["others"] and m0["hidden"] == [], m0
        assert problems(chrome, session, path.as_uri()) == []
