"""HTML energy reports: ``snnprof report`` and :func:`render_report`.

Build a report model from profiling results (:mod:`.model` per entry, :mod:`.compare` across
entries, :mod:`.build` the whole report; all pure), lay out its charts as SVG (:mod:`.charts`,
:mod:`.svg`) and render one self-contained HTML file with Jinja2 (:mod:`.render`; templates are
package data in ``snnprof/reports/templates``).

Example:
    >>> from snnprof.reports import render_report
    >>> render_report([snn_result, ann_result], "reports/snn_vs_ann.html", labels=["SNN", "ANN"])  # doctest: +SKIP
"""

from __future__ import annotations

from snnprof.energy.measured import MeasuredEnergy, load_measured, parse_measured
from snnprof.reports.build import Report, Reproducibility, build_report
from snnprof.reports.render import build_html, render_html, render_report, report_runs

__all__ = [
    "MeasuredEnergy",
    "Report",
    "Reproducibility",
    "build_html",
    "build_report",
    "load_measured",
    "parse_measured",
    "render_html",
    "render_report",
    "report_runs",
]
