"""Resource guard: refuse, before allocating, a run that cannot fit in memory or would run unboundedly long.

The run's footprint is estimated from shapes (:func:`snnprof.workload.estimate_run`): parameter bytes
from a build on PyTorch's ``meta`` device (nothing allocated), input bytes from a one-sample,
one-step draw of the input generator scaled to the batch and time steps, and, for large runs, the
activation bytes and dense MACs of a one-sample, one-step forward scaled the same way. The limits:

* memory: ``SNNPROF_MAX_MEMORY`` (bytes, or with a ``K``/``M``/``G``/``T`` suffix, powers of 1024),
  default 80 % of the memory available now (``MemAvailable`` of ``/proc/meminfo``);
* work: ``SNNPROF_MAX_MACS`` dense multiply-accumulates of the whole run (default ``1e14``, about
  an hour of a few CPU cores).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from snnprof.errors import ConfigError

__all__ = ["DEFAULT_MAX_MACS", "Estimate", "Limits", "check_fits", "format_bytes", "limits_from_env"]

DEFAULT_MAX_MACS = 1e14
#: Fraction of the available memory a run may use by default.
MEMORY_SHARE = 0.8
_SUFFIXES = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class Limits:
    """What a run may use.

    Attributes:
        memory_bytes: largest estimated footprint (bytes).
        macs: largest estimated number of dense MACs of the whole run.
        source: where each limit came from (for messages).
    """

    memory_bytes: float
    macs: float
    source: str = ""


@dataclass(frozen=True)
class Estimate:
    """A run's estimated footprint (bytes) and work (dense MACs); ``None`` where not estimated.

    Attributes:
        params_bytes: parameters and buffers of the model.
        input_bytes: the inputs of the whole batch and all time steps.
        activation_bytes: the outputs of every module call (an upper bound of what is alive at once).
        dense_macs: dense MACs of the whole run.
    """

    params_bytes: float | None = None
    input_bytes: float | None = None
    activation_bytes: float | None = None
    dense_macs: float | None = None

    @property
    def total_bytes(self) -> float:
        """Sum of the estimated parts."""
        return sum(v for v in (self.params_bytes, self.input_bytes, self.activation_bytes) if v is not None)

    def describe(self) -> str:
        """``"12.0 GiB (parameters 1.0 GiB, inputs 3.0 GiB, activations 8.0 GiB)"``."""
        parts = [(label, v) for label, v in (("parameters", self.params_bytes), ("inputs", self.input_bytes),
                                             ("activations", self.activation_bytes)) if v is not None]
        inner = ", ".join(f"{label} {format_bytes(v)}" for label, v in parts)
        return f"{format_bytes(self.total_bytes)} ({inner})"


def format_bytes(value: float) -> str:
    """Bytes with a binary prefix (``1.5 GiB``)."""
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def _parse_size(text: str, name: str) -> float:
    """``"8G"`` -> bytes."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B") if text.strip() else ""
    suffix = raw[-1] if raw and raw[-1] in _SUFFIXES else ""
    try:
        value = float(raw[: len(raw) - len(suffix)]) * _SUFFIXES[suffix]
    except ValueError:
        raise ConfigError(name, "", f"expected a size such as 8G or 500M, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(name, "", f"expected a positive size, got {text!r}")
    return value


def available_memory() -> float | None:
    """Bytes of memory available now (``MemAvailable``), or ``None`` where not known."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def limits_from_env() -> Limits:
    """The limits from ``SNNPROF_MAX_MEMORY`` / ``SNNPROF_MAX_MACS`` or the defaults.

    Raises:
        ConfigError: an unreadable limit.
    """
    memory_text = os.environ.get("SNNPROF_MAX_MEMORY")
    macs_text = os.environ.get("SNNPROF_MAX_MACS")
    if memory_text:
        memory, where = _parse_size(memory_text, "SNNPROF_MAX_MEMORY"), "SNNPROF_MAX_MEMORY"
    else:
        available = available_memory()
        memory = MEMORY_SHARE * available if available else math.inf
        where = f"{MEMORY_SHARE:.0%} of the available memory; set SNNPROF_MAX_MEMORY to change"
    try:
        macs = float(macs_text) if macs_text else DEFAULT_MAX_MACS
    except ValueError:
        raise ConfigError("SNNPROF_MAX_MACS", "", f"expected a number such as 1e12, got {macs_text!r}") from None
    if not macs > 0:
        raise ConfigError("SNNPROF_MAX_MACS", "", f"expected a positive number, got {macs_text!r}")
    return Limits(memory, macs, where)


def check_fits(estimate: Estimate, limits: Limits, path: Path | str, key: str = "input") -> None:
    """Refuse a run whose estimate exceeds the limits.

    Raises:
        ConfigError: naming ``key``, the estimate and the limit.
    """
    if estimate.total_bytes > limits.memory_bytes:
        raise ConfigError(path, key, f"expected a run that fits in memory: the estimate is {estimate.describe()}, "
                                     f"the limit {format_bytes(limits.memory_bytes)} ({limits.source})")
    if estimate.dense_macs is not None and estimate.dense_macs > limits.macs:
        raise ConfigError(path, key, f"expected a run of at most {limits.macs:.3g} dense MACs (SNNPROF_MAX_MACS): "
                                     f"the estimate is {estimate.dense_macs:.3g}")
