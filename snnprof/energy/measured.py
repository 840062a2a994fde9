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
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator

from snnprof.errors import ConfigError
from snnprof.validation import NonNegativeFloat, StrictModel, describe, validate

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


class _Joules(StrictModel):
    mean: NonNegativeFloat
    std: NonNegativeFloat | None = None


class MeasuredFile(StrictModel):
    """The keys of a measured-energy object that a report needs (others are kept as details)."""

    model_config = ConfigDict(extra="ignore")

    joules_per_sample: _Joules
    gpu_name: Annotated[str, Field(min_length=1, pattern=r"\S")]
    method: Annotated[str, Field(min_length=1, pattern=r"\S")]

    @field_validator("joules_per_sample", mode="before")
    @classmethod
    def _bare_number(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a non-negative number of joules or {{mean, std}}, got {describe(value)}")
        return {"mean": float(value)}


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
    doc = validate(MeasuredFile, dict(data), path=source)
    return MeasuredEnergy(
        joules_per_sample=doc.joules_per_sample.mean,
        joules_per_sample_std=doc.joules_per_sample.std,
        gpu_name=doc.gpu_name,
        method=doc.method,
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
