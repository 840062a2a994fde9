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

from snnprof.reports import render_report
from tests.reports._cdp import CHROMIUM, Browser, browser, chart_sections
from tests.reports.conftest import DATE, PROFILES, XSS, measured

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

#: A chart screenshot is "not blank" above these (luminance variance, distinct colours).
MIN_VARIANCE, MIN_COLORS = 100.0, 8
#: Luminance of the page background (0..255) in each colour scheme.
LIGHT_BG, DARK_BG = 230, 60

ERROR_LEVELS = {"error", "assert"}


@pytest.fixture(scope="module")
def report_path(snn_result, ann_result, xss_result, tmp_path_factory) -> Path:
    """SNN vs ANN vs an SNN whose names carry a script tag, with a measured GPU energy."""
    out = tmp_path_factory.mktemp("browser") / "report.html"
    return render_report([snn_result, ann_result, xss_result], out, profiles=PROFILES,
                         labels=["SNN", "ANN", XSS], measured=[measured(0.002), measured(0.005), None],
                         config_texts=[f"# {XSS}\n", None, XSS], date=DATE)


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


def open_report(chrome: Browser, path: Path, dark: bool = False) -> str:
    session = chrome.new_page()
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
    assert len(sections) == 1 + 6 + 3 + 6  # comparison; SNN: 6 sections; ANN: ops, energy, terms; XSS SNN: 6
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
