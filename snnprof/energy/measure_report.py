"""What ``snnprof measure`` reports: measured GPU energy next to the estimates of the same config (plain data).

:class:`MeasureReport` holds the measurement (:class:`~snnprof.energy.measure.MeasureResult`) and the
typed estimates (:class:`~snnprof.energy.estimate.EnergyResult` per hardware profile); the ratios
and the sampling-vs-counter cross-check are computed here once, and both the terminal renderer and
the JSON (schema ``snnprof.measure/1``) read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from snnprof.energy.estimate import EnergyResult
from snnprof.energy.measure import MeasureResult

__all__ = ["SCHEMA", "CrossCheck", "MeasureReport"]

SCHEMA = "snnprof.measure/1"
#: What the estimates cover (they price one forward pass of a batch).
ESTIMATE_SCOPE = "forward pass (inference) of one batch; a train step also runs backward and update"
_PJ_PER_J = 1e12


@dataclass(frozen=True)
class CrossCheck:
    """Power sampling against the energy counter over the trials that have both.

    Attributes:
        mean: mean of ``sampled_j / counter_j``.
        min: smallest ratio.
        max: largest ratio.
        trials: trials compared.
    """

    mean: float
    min: float
    max: float
    trials: int


@dataclass(frozen=True)
class MeasureReport:
    """A measurement of one config and its estimates (energies in J unless stated).

    Attributes:
        model: zoo model name.
        mode: ``inference`` or ``train-step``.
        batch_size: samples per iteration.
        time_steps: time steps per sample.
        cuda_device: the CUDA index measured.
        method_requested: ``auto``, ``counter`` or ``sampling``.
        config: the resolved config dict.
        measured: the measurement.
        estimated: energy estimates by profile name (pJ, typed).
    """

    model: str
    mode: str
    batch_size: int
    time_steps: int
    cuda_device: int
    method_requested: str
    config: dict[str, Any]
    measured: MeasureResult
    estimated: dict[str, EnergyResult] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``complete`` or ``partial``."""
        return self.measured.status

    def per_sample_mean_j(self, key: str) -> float | None:
        """Mean over trials of ``energy_per_sample_j`` or ``dynamic_per_sample_j`` (J)."""
        stats = self.measured.summary().get(key)
        return None if stats is None else stats.mean

    def over_estimate(self, profile: str, key: str = "dynamic_per_sample_j") -> float | None:
        """Measured per-sample energy (mean of ``key``) over the profile's per-sample estimate."""
        estimate = self.estimated[profile].per_sample_pj / _PJ_PER_J
        measured = self.per_sample_mean_j(key)
        return measured / estimate if measured is not None and estimate > 0 else None

    def cross_check(self) -> CrossCheck | None:
        """Sampling vs counter over the trials that have both (``None`` when none has)."""
        ratios = [t.sampled_j / t.counter_j for t in self.measured.trials if t.sampled_j is not None and t.counter_j]
        if not ratios:
            return None
        return CrossCheck(sum(ratios) / len(ratios), min(ratios), max(ratios), len(ratios))

    def _estimate_dict(self, energy: EnergyResult) -> dict[str, Any]:
        return {"total_j": energy.total_pj / _PJ_PER_J, "per_sample_j": energy.per_sample_pj / _PJ_PER_J,
                "fidelity": energy.provenance.get("fidelity"), "source": energy.provenance.get("source"),
                "warnings": list(energy.warnings)}

    def _headline(self) -> dict[str, Any]:
        """The keys ``snnprof report --measured`` reads: energy per sample (J), GPU name, method."""
        stats = self.measured.summary().get("energy_per_sample_j")
        joules = None if stats is None else {"mean": stats.mean, "std": stats.std}
        method = ", ".join(self.measured.methods) or self.method_requested
        return {"joules_per_sample": joules, "gpu_name": self.measured.gpu.name, "method": method}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (schema ``snnprof.measure/1``)."""
        check = self.cross_check()
        keys = ("energy_per_sample_j", "dynamic_per_sample_j")
        return {
            "schema": SCHEMA, "status": self.status, **self._headline(), "model": self.model, "mode": self.mode,
            "batch_size": self.batch_size, "time_steps": self.time_steps, "cuda_device": self.cuda_device,
            "method_requested": self.method_requested, "config": self.config, "measured": self.measured.to_dict(),
            "estimated": {name: self._estimate_dict(e) for name, e in self.estimated.items()},
            "estimate_scope": ESTIMATE_SCOPE,
            "comparison": {name: {k.replace("_j", "_over_estimate"): self.over_estimate(name, k) for k in keys}
                           for name in self.estimated},
            "cross_check": None if check is None else {
                "sampled_over_counter_mean": check.mean, "min": check.min, "max": check.max, "trials": check.trials},
        }
