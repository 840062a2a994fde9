"""The conventions tables are generated from the registry: README and reports match it, every rule has one."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnprof.counting.conventions import BEGIN, END, convention_rows, markdown_table, render_readme
from snnprof.counting.registry import iter_rules, rule_convention
from snnprof.counting.update_readme import main
from snnprof.reports import conventions as report_conventions

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_the_generated_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert render_readme(text) == text, "README's conventions table is stale: python -m snnprof.counting.update_readme"


def test_every_builtin_rule_states_its_convention() -> None:
    missing = [f"{kind} {getattr(t, '__name__', t)}" for t, rule, kind in iter_rules()
               if rule.__module__.startswith("snnprof.counting") and rule_convention(rule) is None]
    assert missing == []


def test_reports_use_the_generated_rows() -> None:
    assert convention_rows() == report_conventions.ELEMENTWISE_OPS
    assert report_conventions.ELEMENTWISE_TITLE in markdown_table()


def test_rows_are_single_table_cells() -> None:
    for targets, ops in convention_rows():
        assert targets and ops
        assert "|" not in targets + ops and "\n" not in targets + ops


def test_update_readme_rewrites_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{BEGIN}\nstale rows\n{END}\n\nafter\n", encoding="utf-8")
    assert main([str(readme), "--check"]) == 1
    assert main([str(readme)]) == 0
    assert main([str(readme), "--check"]) == 0
    text = readme.read_text(encoding="utf-8")
    assert markdown_table() in text and text.endswith("\n\nafter\n") and "stale rows" not in text
    assert "out of date" in capsys.readouterr().out
    readme.write_text("no markers", encoding="utf-8")
    with pytest.raises(ValueError, match="markers"):
        main([str(readme)])
