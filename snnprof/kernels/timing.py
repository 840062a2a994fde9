"""Shared benchmark helpers: round-robin wall-clock timing, its summary, error comparison and messages."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Timing", "error_text", "rel_error", "time_interleaved"]


@dataclass(frozen=True)
class Timing:
    """Wall time per call over the timed rounds, in seconds.

    Attributes:
        median_s: median time per call (s).
        q1_s: first quartile (s).
        q3_s: third quartile (s).
        rounds: number of timed calls.
        iqr_s: interquartile range ``q3_s - q1_s`` (s): the spread of the timings.
    """

    median_s: float
    q1_s: float
    q3_s: float
    rounds: int
    iqr_s: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "iqr_s", self.q3_s - self.q1_s)

    @classmethod
    def of(cls, samples: Sequence[float]) -> Timing:
        """Summarise per-call times (s)."""
        med = statistics.median(samples)
        if len(samples) < 2:
            return cls(med, med, med, len(samples))
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        return cls(med, q1, q3, len(samples))


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_interleaved(
    calls: dict[str, Callable[[], Any]],
    rounds: int,
    warmup: int = 1,
    device: str = "cpu",
    before: Callable[[], Any] | None = None,
) -> dict[str, Timing]:
    """Time each callable ``rounds`` times, round-robin, after ``warmup`` untimed rounds.

    Args:
        calls: name -> zero-argument callable.
        rounds: timed calls per callable.
        warmup: untimed calls per callable first.
        device: ``"cuda"`` synchronises before and after each call.
        before: called (untimed) before every call, e.g. to leave the caches in the same state.

    Returns:
        name -> timing of one call (s).
    """
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(warmup + rounds):
        for name, fn in calls.items():
            if before is not None:
                before()
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            if r >= warmup:
                samples[name].append(time.perf_counter() - start)
    return {name: Timing.of(s) for name, s in samples.items()}


def rel_error(a: torch.Tensor, b: torch.Tensor, floor: float) -> float:
    """Max |a - b| / max(floor, max |a|)."""
    return float((a - b).abs().max()) / max(floor, float(a.abs().max())) if a.numel() else 0.0

def error_text(err: BaseException) -> str:
    """One line: exception type and the start of its message."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:240]}"
