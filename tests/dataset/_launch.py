"""``torchrun ... tests/dataset/_launch.py count ...``: the snnprof CLI with the tiny test reader and models."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.dataset._tiny import register_all  # noqa: E402

register_all()

from snnprof.cli import main  # noqa: E402

main()
