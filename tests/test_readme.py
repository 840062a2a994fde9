"""The README's Python example runs as written (keeps the docs true to the code)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_api_example_runs():
    api = next(block for block in _python_blocks() if "snnprof.profile(" in block)
    namespace: dict = {}
    exec(compile(api, "README.md", "exec"), namespace)  # noqa: S102
    result = namespace["result"]
    assert result.batch_size == 6 and result.time_steps == 4
    assert namespace["energy"].total_pj > 0


def test_readme_names_both_make_targets():
    text = README.read_text()
    assert "make demo" in text and "make test" in text


def test_readme_printing_and_rules_example_runs(tmp_path, monkeypatch):
    block = next(block for block in _python_blocks() if "by_module(" in block)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    assert "0.0" in str(namespace["result"]) and (tmp_path / "reports" / "bn_folded.html").exists()


def test_readme_your_own_model_config_is_the_shipped_one():
    text = README.read_text()
    shipped = (README.parent / "examples" / "your_model" / "tinynet.toml").read_text()
    block = text.split("## Your own model", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    assert block == shipped
