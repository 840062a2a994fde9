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
