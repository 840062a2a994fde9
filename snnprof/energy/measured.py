"""Measured GPU energy (the JSON of ``snnprof measure --json``) as a report input.

Only a few keys are needed; everything else of scalar type is kept as labelled details::

    {"joules_per_sample": {"mean": 0.0123, "std": 0.0004},   # or a bare number
     "gpu_name": "NVIDIA H100 80GB HBM3", "method": "energy_counter", ...}

Bad input raises :class:`~snnprof.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snnprof.errors import ConfigError

__all__ = ["MeasuredEnergy", "load_measured", "parse_measured"]

#: Keys shown in the report's measured-energy block under their own label.
_KNOWN = ("joules_per_sample", "gpu_name", "method")
#: At most this many extra scalar fields are kept as details.
_MAX_DETAILS = 16
#: Details longer than this are cut (they are context, not data).
_MAX_DETAIL_CHARS = 200


@dataclass(frozen=True)
class MeasuredEnergy:
    """Energy measured on a real GPU for one report entry.

    Attributes:
        joules_per_sample: mean energy per sample in joules (J).
        joules_per_sample_std: standard deviation over trials in J, when given.
        gpu_name: the GPU's name as NVML reports it.
        method: how it was measured (e.g. the NVML energy counter or sampled power).
        source: where the numbers came from (a file path, or ``"<dict>"``).
        details: other scalar fields of the file (name -> text), e.g. mode, trials, driver.
    """

    joules_per_sample: float
    joules_per_sample_std: float | None
    gpu_name: str
    method: str
    source: str = "<dict>"
    details: dict[str, str] = field(default_factory=dict)

    @property
    def per_sample_pj(self) -> float:
        """Mean energy per sample in picojoules (pJ), the unit of the estimates."""
        return self.joules_per_sample * 1e12


def _number(value: Any, source: str, key: str) -> float:
    """A finite, non-negative number (``bool`` is not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(source, key, f"expected a non-negative number of joules, got {value!r}")
    return float(value)


def _string(data: Mapping[str, Any], source: str, key: str) -> str:
    """A required non-empty string."""
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(source, key, f"expected a non-empty string, got {value!r}")
    return value


def _joules(data: Mapping[str, Any], source: str) -> tuple[float, float | None]:
    """Mean and std of ``joules_per_sample`` (a number, or a table with ``mean`` and optional ``std``)."""
    key = "joules_per_sample"
    if key not in data:
        raise ConfigError(source, key, "required key missing: expected {mean, std} in joules per sample")
    value = data[key]
    if isinstance(value, Mapping):
        if "mean" not in value:
            raise ConfigError(source, f"{key}.mean", "required key missing: expected the mean in joules")
        std = value.get("std")
        mean = _number(value["mean"], source, f"{key}.mean")
        return mean, None if std is None else _number(std, source, f"{key}.std")
    return _number(value, source, key), None


def _details(data: Mapping[str, Any]) -> dict[str, str]:
    """Other scalar fields as text (nested tables and lists are left out)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if key in _KNOWN or not isinstance(value, str | int | float | bool):
            continue
        text = str(value)
        out[str(key)] = text if len(text) <= _MAX_DETAIL_CHARS else text[: _MAX_DETAIL_CHARS - 1] + "…"
        if len(out) == _MAX_DETAILS:
            break
    return out


def parse_measured(data: Mapping[str, Any] | MeasuredEnergy, source: str = "<dict>") -> MeasuredEnergy:
    """Validate a measured-energy dict (the ``snnprof measure --json`` output).

    Args:
        data: the parsed JSON object (a :class:`MeasuredEnergy` is returned as is).
        source: where it came from, for messages.

    Returns:
        The measured energy.

    Raises:
        ConfigError: not an object, or ``joules_per_sample``/``gpu_name``/``method`` missing or invalid.
    """
    if isinstance(data, MeasuredEnergy):
        return data
    if not isinstance(data, Mapping):
        got = type(data).__name__
        raise ConfigError(source, "", f"expected a JSON object from `snnprof measure --json`, got {got}")
    mean, std = _joules(data, source)
    return MeasuredEnergy(
        joules_per_sample=mean,
        joules_per_sample_std=std,
        gpu_name=_string(data, source, "gpu_name"),
        method=_string(data, source, "method"),
        source=source,
        details=_details(data),
    )


def load_measured(path: str | Path) -> tuple[MeasuredEnergy, dict[str, Any]]:
    """Read and validate a measured-energy JSON file.

    Args:
        path: the file written by ``snnprof measure --json``.

    Returns:
        The measured energy and the raw object (for matching it to a config by ``config``/``model``).

    Raises:
        ConfigError: missing or unreadable file, invalid JSON, or invalid content.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "", "measured-energy file not found")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(path, "", f"cannot read measured-energy JSON: {err}") from None
    measured = parse_measured(raw, str(path))
    return measured, raw
