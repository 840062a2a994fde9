"""Across-sample statistics of a profiled run: the mean and spread of per-sample MACs, SOPs and spikes.

A paper's error bar needs the distribution of the per-sample counts over a test set, not only their
mean. :class:`SampleStats` keeps, for the vector ``x = (macs, sops, spikes)`` of every sample, the
count ``n``, the exact sums, the running mean, the centred cross-product matrix ``m2`` (Welford/Chan;
``cov = m2 / n``), the element-wise minimum and maximum, and the minimum and maximum of named
linear projections ``w . x`` (e.g. the activity-dependent energy of a per-event hardware profile).
Because the cross moments are kept, the spread of *any* linear model ``w . x + c`` is exact:
``var = w^T cov w``.

All statistics are population statistics (``ddof = 0``, like ``numpy.std``): the profiled samples
are the whole population being described. Two :class:`SampleStats` of disjoint sample sets merge
exactly (up to float rounding of ``m2``) with :meth:`SampleStats.merge`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SAMPLE_FIELDS", "SampleStats", "Spread"]

#: The per-sample quantities, in the order of every vector and matrix below.
SAMPLE_FIELDS: tuple[str, ...] = ("macs", "sops", "spikes")


@dataclass
class Spread:
    """Mean and spread of one per-sample quantity over ``n`` samples (population statistics).

    Attributes:
        n: samples.
        mean: mean per sample (units of the quantity: operations, spikes or pJ).
        std: population standard deviation (``ddof = 0``).
        min: smallest per-sample value (``None`` when not tracked).
        max: largest per-sample value (``None`` when not tracked).
    """

    n: int
    mean: float
    std: float
    min: float | None
    max: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict ``{"n", "mean", "std", "min", "max"}``."""
        return {"n": self.n, "mean": self.mean, "std": self.std, "min": self.min, "max": self.max}


def _outer(a: Sequence[float], b: Sequence[float]) -> list[list[float]]:
    return [[x * y for y in b] for x in a]


def _quad(w: Sequence[float], m: Sequence[Sequence[float]]) -> float:
    """``w^T m w``."""
    return math.fsum(w[i] * m[i][j] * w[j] for i in range(len(w)) for j in range(len(w)))


@dataclass
class SampleStats:
    """Moments of the per-sample vector ``(macs, sops, spikes)`` (see the module docstring).

    Attributes:
        n: samples.
        total: exact sums over the samples, per field.
        mean: running (Welford) means, per field.
        m2: centred cross products ``sum_i (x_i - mean)(x_i - mean)^T`` (3 x 3).
        min: smallest per-sample value, per field.
        max: largest per-sample value, per field.
        projections: ``{name: {"weights": [w_macs, w_sops, w_spikes], "min": float, "max": float}}``.
        shared: layers whose counts had no sample axis and were shared equally among the samples of
            their batch (their per-sample values are then approximate).
        energy: per hardware profile, the spread of the per-sample energy in pJ (filled by the
            runner; see ``docs/dataset_profiling.md``).
    """

    n: int = 0
    total: list[float] = field(default_factory=lambda: [0.0] * len(SAMPLE_FIELDS))
    mean: list[float] = field(default_factory=lambda: [0.0] * len(SAMPLE_FIELDS))
    m2: list[list[float]] = field(default_factory=lambda: [[0.0] * len(SAMPLE_FIELDS) for _ in SAMPLE_FIELDS])
    min: list[float] = field(default_factory=lambda: [math.inf] * len(SAMPLE_FIELDS))
    max: list[float] = field(default_factory=lambda: [-math.inf] * len(SAMPLE_FIELDS))
    projections: dict[str, dict[str, Any]] = field(default_factory=dict)
    shared: list[str] = field(default_factory=list)
    energy: dict[str, Spread] = field(default_factory=dict)

    def _index(self, name: str) -> int:
        if name not in SAMPLE_FIELDS:
            raise KeyError(f"unknown per-sample field {name!r}; expected one of {SAMPLE_FIELDS}")
        return SAMPLE_FIELDS.index(name)

    def cov(self) -> list[list[float]]:
        """Population covariance matrix of ``(macs, sops, spikes)`` (``m2 / n``)."""
        return [[v / self.n if self.n else 0.0 for v in row] for row in self.m2]

    def spread(self, name: str) -> Spread:
        """Mean, std, min and max of one field (``macs``, ``sops`` or ``spikes``)."""
        i = self._index(name)
        if not self.n:
            return Spread(0, 0.0, 0.0, None, None)
        var = max(self.m2[i][i] / self.n, 0.0)
        return Spread(self.n, self.total[i] / self.n, math.sqrt(var), self.min[i], self.max[i])

    def linear(self, weights: Sequence[float], offset: float = 0.0, projection: str | None = None) -> Spread:
        """Spread of ``w . x + offset`` per sample; min/max need a tracked ``projection`` with these weights.

        Args:
            weights: ``(w_macs, w_sops, w_spikes)``.
            offset: constant added to every sample.
            projection: name of the tracked projection giving the min/max (``None``: not reported).
        """
        if not self.n:
            return Spread(0, offset, 0.0, None, None)
        w = [float(v) for v in weights]
        mean = math.fsum(a * b for a, b in zip(w, self.total, strict=True)) / self.n + offset
        std = math.sqrt(max(_quad(w, self.m2) / self.n, 0.0))
        proj = self.projections.get(projection) if projection is not None else None
        lo = proj["min"] + offset if proj is not None else None
        hi = proj["max"] + offset if proj is not None else None
        return Spread(self.n, mean, std, lo, hi)

    def merge(self, other: SampleStats) -> SampleStats:
        """Statistics of the union of two disjoint sample sets (Chan et al.'s parallel update)."""
        if not other.n:
            return _copy(self)
        if not self.n:
            return _copy(other)
        n = self.n + other.n
        delta = [b - a for a, b in zip(self.mean, other.mean, strict=True)]
        scale = self.n * other.n / n
        dd = _outer(delta, delta)
        return SampleStats(
            n=n,
            total=[a + b for a, b in zip(self.total, other.total, strict=True)],
            mean=[a + d * other.n / n for a, d in zip(self.mean, delta, strict=True)],
            m2=[[a + b + c * scale for a, b, c in zip(ra, rb, rc, strict=True)]
                for ra, rb, rc in zip(self.m2, other.m2, dd, strict=True)],
            min=[min(a, b) for a, b in zip(self.min, other.min, strict=True)],
            max=[max(a, b) for a, b in zip(self.max, other.max, strict=True)],
            projections=_merge_projections(self.projections, other.projections),
            shared=list(dict.fromkeys([*self.shared, *other.shared])),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: readable spreads per field and energy profile, plus the raw moments."""
        out: dict[str, Any] = {"n": self.n, "ddof": 0}
        for name in SAMPLE_FIELDS:
            out[name] = self.spread(name).to_dict()
        out["energy_pj"] = {name: spread.to_dict() for name, spread in self.energy.items()}
        out["shared_layers"] = list(self.shared)
        out["moments"] = {
            "fields": list(SAMPLE_FIELDS),
            "total": list(self.total),
            "mean": list(self.mean),
            "m2": [list(row) for row in self.m2],
            "min": [_finite(v) for v in self.min],
            "max": [_finite(v) for v in self.max],
            "projections": {k: {**v, "min": _finite(v["min"]), "max": _finite(v["max"])}
                            for k, v in self.projections.items()},
        }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleStats:
        """Rebuild from :meth:`to_dict` output (the ``moments`` part; spreads are derived)."""
        mom = data["moments"]
        energy = {k: Spread(**v) for k, v in data.get("energy_pj", {}).items()}
        return cls(
            n=int(data["n"]),
            total=[float(v) for v in mom["total"]],
            mean=[float(v) for v in mom["mean"]],
            m2=[[float(v) for v in row] for row in mom["m2"]],
            min=[_bound(v, math.inf) for v in mom["min"]],
            max=[_bound(v, -math.inf) for v in mom["max"]],
            projections={k: {**v, "min": _bound(v["min"], math.inf), "max": _bound(v["max"], -math.inf)}
                         for k, v in mom.get("projections", {}).items()},
            shared=list(data.get("shared_layers", [])),
            energy=energy,
        )


def _finite(value: float) -> float | None:
    """``None`` for the infinite bounds of an empty set (JSON has no infinity)."""
    return value if math.isfinite(value) else None


def _bound(value: float | None, empty: float) -> float:
    return empty if value is None else float(value)


def _copy(stats: SampleStats) -> SampleStats:
    return SampleStats.from_dict(stats.to_dict())


def _merge_projections(a: Mapping[str, dict[str, Any]], b: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {k: dict(v) for k, v in a.items()}
    for name, proj in b.items():
        if name not in out:
            out[name] = dict(proj)
            continue
        out[name]["min"] = min(out[name]["min"], proj["min"])
        out[name]["max"] = max(out[name]["max"], proj["max"])
    return out
