"""Regenerate the README's conventions table from the rule registry: ``python -m snnprof.counting.update_readme``.

``--check`` only compares and exits with status 1 when the table is out of date (what
``tests/counting/test_conventions.py`` asserts).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from snnprof.counting.conventions import render_readme

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite (or, with ``--check``, compare) the README's conventions table; 0 when up to date or rewritten."""
    parser = argparse.ArgumentParser(prog="python -m snnprof.counting.update_readme",
                                     description="Regenerate the README's conventions table from the rule registry.")
    parser.add_argument("readme", nargs="?", default="README.md", type=Path, help="the README (default: ./README.md)")
    parser.add_argument("--check", action="store_true", help="only compare; exit status 1 when the table differs")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    updated = render_readme(text)
    if args.check:
        if updated != text:
            print(f"{args.readme}: the conventions table is out of date; run python -m snnprof.counting.update_readme")
            return 1
        return 0
    if updated != text:
        args.readme.write_text(updated, encoding="utf-8")
        print(f"{args.readme}: conventions table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
