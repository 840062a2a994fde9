"""Import every zoo module of :mod:`snnprof.models` so its ``@register_model`` decorators run."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

_SKIP = frozenset({"registry", "zoo", "common", "__init__"})

for _info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
    if _info.name not in _SKIP and not _info.name.startswith("_"):
        importlib.import_module(f"snnprof.models.{_info.name}")
