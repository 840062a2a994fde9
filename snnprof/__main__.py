"""``python -m snnprof ...`` (what ``torchrun ... -m snnprof count CONFIG --dataset`` starts on every rank)."""

from __future__ import annotations

from snnprof.cli import main

if __name__ == "__main__":
    main()
