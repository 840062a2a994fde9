"""Render a report to one self-contained HTML file (Jinja2 with autoescaping; templates are package data).

The page inlines its CSS, its small script and every chart (SVG), and carries a Content-Security-Policy
that allows nothing but those inline blocks (by hash): it opens offline and makes no request of any
kind. Every user-provided string goes through Jinja's autoescaping.

Example:
    >>> import snnprof, torch
    >>> from snnprof.reports import render_report
    >>> result = snnprof.profile(torch.nn.Linear(4, 2), torch.ones(3, 4))
    >>> render_report(result, "reports/linear.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from snnprof.comparison import event_words
from snnprof.counting.results import ProfileResult
from snnprof.energy.estimate import EnergyResult, price
from snnprof.energy.measured import MeasuredEnergy, parse_measured
from snnprof.energy.profiles import DEFAULT_PROFILES
from snnprof.io import atomic_write_text
from snnprof.reports import charts, side_charts
from snnprof.reports.build import Report, build_report
from snnprof.reports.conventions import (
    COUNTING_CONVENTIONS,
    ELEMENTWISE_OPS,
    ELEMENTWISE_TITLE,
    INPUT_KINDS_NOTE,
    markdown_spans,
)
from snnprof.reports.environment import collect_reproducibility
from snnprof.run import Run
from snnprof.units import format_count, format_energy_pj, format_rate

__all__ = ["build_html", "render_html", "render_report", "report_runs"]

logger = logging.getLogger(__name__)

EnergyArg = Sequence[EnergyResult] | Mapping[str, EnergyResult]
Entries = ProfileResult | Run | Sequence[ProfileResult | Run]


# --------------------------------------------------------------------------- Jinja environment


def _px(value: float) -> str:
    """A coordinate with at most one decimal (``12``, ``12.5``): keeps the SVG small."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _num(value: float | None) -> str:
    """A sortable number for ``data-v`` attributes (empty for ``None``)."""
    return "" if value is None else f"{value:.10g}"


def _ratio(value: float | None) -> str:
    """A ratio as ``0.213×`` (``—`` when undefined)."""
    return "—" if value is None else f"{value:.3g}×"


def _steps(value: float | None) -> str:
    """Time steps or chunk sizes: up to four significant digits (``43``, ``323.5``; ``—`` when undefined)."""
    return "—" if value is None else f"{value:.4g}"


def _factor(value: float | None) -> str:
    """How many times more: ``2.92×``, ``1,149×`` (``—`` when undefined)."""
    if value is None:
        return "—"
    return f"{value:.3g}×" if value < 100 else f"{value:,.0f}×"


def _pct(value: float) -> str:
    """A saving in % with one decimal, never rounded up to 100 (``99.9 %``, ``> 99.9 %``)."""
    return "> 99.9 %" if value > 99.95 else f"{value:.1f} %"


#: Formatter of each comparison-metric unit (see :class:`snnprof.comparison.Metric`).
_UNIT_FORMATS: dict[str, Any] = {
    "count": format_count, "rate": format_rate, "energy": format_energy_pj, "steps": _steps,
    "seconds": lambda v: f"{v:.3g} s", "db": lambda v: f"{v:.2f} dB", "plain": lambda v: f"{v:.4f}",
}


def _metric(value: float | None, unit: str) -> str:
    """A comparison metric's value formatted by its unit (``—`` when it does not apply)."""
    if value is None:
        return "—"
    return _UNIT_FORMATS.get(unit, format_count)(value)


def _joules(value: float) -> str:
    """Joules with the best unit (J, mJ, µJ ...)."""
    return format_energy_pj(value * 1e12)


def _spans(text: str) -> Markup:
    """Inline Markdown (`` `code` ``, ``**bold**``) to HTML, escaping every piece."""
    out = []
    for span in markdown_spans(text):
        body = Markup.escape(span.text)
        out.append(Markup(f"<{span.style}>{body}</{span.style}>") if span.style else body)
    return Markup("").join(out)


def _wbr(text: str) -> Markup:
    """Escape ``text`` and allow line breaks after ``_``, ``.``, ``/``, ``:`` and ``+`` (long names, kinds)."""
    out = Markup.escape(text)
    for sep in ("_", ".", "/", ":", "+"):
        out = out.replace(Markup.escape(sep), Markup(f"{Markup.escape(sep)}<wbr>"))
    return Markup(out)


@cache
def _environment() -> jinja2.Environment:
    """The Jinja environment over the packaged templates (autoescape on, undefined names fail)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("snnprof.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        count=format_count, energy=format_energy_pj, rate=format_rate, ratio=_ratio, px=_px, num=_num,
        joules=_joules, spans=_spans, wbr=_wbr, steps=_steps, factor=_factor, pct=_pct, metric=_metric,
        event=event_words,
    )
    return env


@cache
def _static(name: str) -> str:
    """Text of a packaged static file (``templates/report.css``, ``templates/report.js``)."""
    return resources.files("snnprof.reports").joinpath("templates", name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    """CSP source expression of an inline block."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _csp(css: str, script: str) -> str:
    """Content-Security-Policy allowing only the page's own inline style and script."""
    return (
        f"default-src 'none'; style-src {_sha256(css)}; script-src {_sha256(script)}; "
        "img-src 'none'; font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


def render_html(report: Report) -> str:
    """Render a report model to the complete HTML page.

    Args:
        report: the model from :func:`~snnprof.reports.model.build_report`.

    Returns:
        The HTML text (UTF-8, self-contained).
    """
    from snnprof.version import __version__

    css, script = _static("report.css"), _static("report.js")
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report,
        css=Markup(css),
        script=Markup(script),
        csp=_csp(css, script),
        version=__version__,
        charts={m.index: charts.model_charts(m) for m in report.models},
        compare_chart=charts.comparison_chart(report),
        side_terms=side_charts.term_charts(report),
        side_layers=side_charts.layer_charts(report),
        conventions=COUNTING_CONVENTIONS,
        input_kinds_note=INPUT_KINDS_NOTE,
        elementwise_title=ELEMENTWISE_TITLE,
        elementwise=ELEMENTWISE_OPS,
    )


# --------------------------------------------------------------------------- inputs


def _as_list(value: Any, n: int, name: str) -> list[Any]:
    """``value`` as a list of ``n`` entries (``None`` -> ``n`` Nones)."""
    if value is None:
        return [None] * n
    items = list(value)
    if len(items) != n:
        raise ValueError(f"{name}: expected one entry per result ({n}), got {len(items)}")
    return items


def _energies(result: ProfileResult, given: EnergyArg | None,
              profiles: Sequence[str] | None) -> dict[str, EnergyResult]:
    """Energy estimates of one result: given, else priced on ``profiles`` (default: :data:`DEFAULT_PROFILES`)."""
    if given is None:
        return price(result, profiles or DEFAULT_PROFILES)
    items = list(given.values()) if isinstance(given, Mapping) else list(given)
    for item in items:
        if not isinstance(item, EnergyResult):
            raise TypeError("energies: expected EnergyResult objects (snnprof.estimate_energy), "
                            f"got {type(item).__name__}")
    return {e.profile: e for e in items}


def report_runs(
    results: Entries,
    *,
    energies: Sequence[EnergyArg | None] | None = None,
    profiles: Sequence[str] | None = None,
    measured: Sequence[Mapping[str, Any] | MeasuredEnergy | None] | None = None,
    labels: Sequence[str] | None = None,
    config_texts: Sequence[str | None] | None = None,
) -> list[Run]:
    """Bundle results (or runs) with their energies, measurements, labels and config texts.

    Energies per bare result: ``energies[i]`` when given (a list of :class:`EnergyResult` or a dict
    by profile), else priced on ``profiles``, else on :data:`DEFAULT_PROFILES`. A :class:`Run`
    keeps its own energies; labels, measurements and config texts given here replace its own.

    Raises:
        ValueError: a per-result sequence of the wrong length, or no results.
        TypeError: energies that are not :class:`EnergyResult` objects.
        ConfigError: an invalid measured-energy dict.
    """
    items = [results] if isinstance(results, ProfileResult | Run) else list(results)
    if not items:
        raise ValueError("render_report needs at least one ProfileResult")
    n = len(items)
    given, meas = _as_list(energies, n, "energies"), _as_list(measured, n, "measured")
    names, texts = _as_list(labels, n, "labels"), _as_list(config_texts, n, "config_texts")
    runs = []
    for i, item in enumerate(items):
        run = item if isinstance(item, Run) else Run(item.model, item, _energies(item, given[i], profiles))
        runs.append(dataclasses.replace(
            run,
            label=names[i] or run.label,
            measured=run.measured if meas[i] is None else parse_measured(meas[i], f"measured[{i}]"),
            config_text=run.config_text if texts[i] is None else texts[i],
        ))
    return runs


def build_html(
    results: Entries,
    *,
    title: str | None = None,
    command: str | None = None,
    device: str | None = None,
    date: datetime | None = None,
    **inputs: Any,
) -> str:
    """Build and render a report without writing it (see :func:`render_report` for the arguments).

    Returns:
        The HTML text.
    """
    runs = report_runs(results, **inputs)
    report = build_report(runs, collect_reproducibility(command, device, date), title)
    return render_html(report)


def render_report(
    results: Entries,
    path: str | os.PathLike[str],
    *,
    energies: Sequence[EnergyArg | None] | None = None,
    profiles: Sequence[str] | None = None,
    measured: Sequence[Mapping[str, Any] | MeasuredEnergy | None] | None = None,
    labels: Sequence[str] | None = None,
    config_texts: Sequence[str | None] | None = None,
    title: str | None = None,
    command: str | None = None,
    device: str | None = None,
    date: datetime | None = None,
) -> Path:
    """Write the HTML report of one result (model report) or several (comparison against the first).

    The page is rendered completely before anything is written, then written atomically: a failure
    leaves no file (and any previous report at ``path`` untouched).

    Args:
        results: one :class:`ProfileResult` or :class:`~snnprof.run.Run`, or several to compare (the
            first is the reference).
        path: the ``.html`` file to write (parent folders are created).
        energies: per result, its energy estimates (list of :class:`EnergyResult` or dict by profile).
        profiles: hardware profiles to estimate on when ``energies`` is not given.
        measured: per result, the ``snnprof measure --json`` dict (or ``None``), shown as measured.
        labels: per result, its name in the report (default: the model name).
        config_texts: per result, the config file's text shown verbatim.
        title: the report's title.
        command: the command line recorded in the reproducibility block (default: ``sys.argv``).
        device: where the models ran (default: this machine's CPU).
        date: generation time (default: now).

    Returns:
        The written path.

    Example:
        >>> render_report([snn_result, ann_result], "reports/snn_vs_ann.html", labels=["SNN", "ANN"])  # doctest: +SKIP
    """
    html = build_html(
        results, energies=energies, profiles=profiles, measured=measured, labels=labels,
        config_texts=config_texts, title=title, command=command, device=device, date=date,
    )
    out = atomic_write_text(path, html)
    logger.info("wrote report %s (%d bytes)", out, len(html.encode("utf-8")))
    return out
