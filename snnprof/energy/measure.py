"""The GPU energy measurement protocol (``docs/energy_reference.md`` §1.5) as pure orchestration.

Inputs: an :class:`~snnprof.energy.meter.EnergyMeter` (backend, clock, sync), a workload callable
(one iteration) and a ``sleep`` function. Steps: GPU metadata and warnings (MIG, other processes)
-> warm-up (timed, to size the windows) -> idle baseline after a cool-down, same CUDA context ->
``trials`` x (randomised cool-down, warm-up, one window of >= ``iters`` iterations and
>= ``min_window_s``; a window whose counter did not move is re-run twice as long, up to
``max_extensions`` times; temperature and SM clock read at both ends). Per trial: total energy E,
idle energy ``P_idle x t`` and dynamic energy ``E - P_idle x t``, per iteration and per sample;
over trials: mean, std, min, max. A GPU lost mid-way raises :class:`MeasurementInterruptedError`
carrying the partial result (``status = "partial"``, completed trials kept).
"""

from __future__ import annotations

import logging
import math
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from snnprof.energy.meter import (
    FLAG_COUNTER_UNCHANGED,
    METHOD_SAMPLING,
    EnergyMeter,
    Measurement,
)
from snnprof.energy.nvml_backend import (
    POWER_SOURCE_USAGE,
    GpuLostError,
    GpuProcess,
    NvmlError,
    architecture_name,
)
from snnprof.errors import HardwareMissingError

__all__ = [
    "STATUS_COMPLETE",
    "STATUS_PARTIAL",
    "TOLERANCE_NOTE",
    "GpuInfo",
    "IdleBaseline",
    "MeasureResult",
    "MeasureSettings",
    "MeasurementInterruptedError",
    "Stats",
    "TrialResult",
    "describe_gpu",
    "gpu_warnings",
    "measure",
]

logger = logging.getLogger(__name__)

STATUS_COMPLETE = "complete"
STATUS_PARTIAL = "partial"
#: The uncertainty every measured number carries.
TOLERANCE_NOTE = (
    "NVML energy and power carry the board sensor's tolerance of about ±5 % of the reading "
    "(Yang et al., SC'24; NVIDIA documents ±5 W): compare runs on the same board rather than "
    "absolute joules across boards."
)


@dataclass(frozen=True)
class MeasureSettings:
    """Knobs of the protocol (times in seconds).

    Attributes:
        iters: minimum iterations per measured window (>= 32 recommended).
        trials: number of measured windows (K).
        warmup_iters: unmeasured iterations before the idle baseline and before each trial.
        min_window_s: minimum window length, s (the counter updates every ~100 ms).
        idle_s: idle-baseline window, s (0 skips it: no dynamic energy then).
        cooldown_s: idle gap before the idle baseline and before each trial, s.
        cooldown_jitter: the gap is drawn from ``cooldown_s x [1 - j, 1 + j]`` (breaks phase-locking
            with the sensor's sampling).
        max_extensions: how often a window is re-run longer (x2) before giving up.
        seed: seed of the cool-down jitter.
    """

    iters: int = 32
    trials: int = 5
    warmup_iters: int = 5
    min_window_s: float = 5.0
    idle_s: float = 5.0
    cooldown_s: float = 3.0
    cooldown_jitter: float = 0.25
    max_extensions: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iters < 1 or self.trials < 1 or self.warmup_iters < 0 or self.max_extensions < 0:
            raise ValueError("iters and trials must be >= 1, warmup_iters and max_extensions >= 0")
        if min(self.min_window_s, self.idle_s, self.cooldown_s) < 0 or not 0 <= self.cooldown_jitter <= 1:
            raise ValueError("times must be >= 0 and cooldown_jitter within [0, 1]")


@dataclass(frozen=True)
class GpuInfo:
    """The measured GPU and how it was measured.

    Attributes:
        index: NVML index.
        name: product name.
        uuid: ``GPU-...`` UUID.
        pci_bus_id: PCI bus id.
        architecture: ``Volta``, ``Ampere``, ``Hopper`` ... (``unknown``).
        driver_version: NVIDIA driver version.
        nvml_version: NVML library version.
        power_limit_w: enforced power limit, W (``None`` if not reported).
        mig_enabled: MIG mode on (energy is board-wide: instances are not separable).
        method: ``counter`` or ``sampling`` at the start.
        power_source: NVML power path used for sampling / cross-checks.
        other_processes: pids of other compute processes on the GPU (``None``: could not list).
    """

    index: int
    name: str
    uuid: str
    pci_bus_id: str
    architecture: str
    driver_version: str
    nvml_version: str
    power_limit_w: float | None
    mig_enabled: bool
    method: str
    power_source: str
    other_processes: tuple[int, ...] | None


@dataclass(frozen=True)
class Stats:
    """Summary of one quantity over the valid trials (same unit as the quantity).

    Attributes:
        n: number of trials.
        mean: arithmetic mean.
        std: sample standard deviation (0 for one trial).
        min: smallest value.
        max: largest value.
    """

    n: int
    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats | None:
        """Stats of ``values`` (``None`` when empty)."""
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(len(values), statistics.fmean(values), std, min(values), max(values))


@dataclass(frozen=True)
class IdleBaseline:
    """Idle power measured before the trials, same CUDA context.

    Attributes:
        power_w: average idle power, W (``None`` if the window had no valid energy).
        duration_s: window length, s.
        energy_j: energy of the window, J.
        method: ``counter`` / ``sampling`` / ``none``.
        attempts: windows run (> 1: extended).
        flags: the last window's meter flags.
    """

    power_w: float | None
    duration_s: float
    energy_j: float | None
    method: str
    attempts: int = 1
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrialResult:
    """One measured window of the workload.

    Attributes:
        index: trial number, from 1.
        iterations: workload iterations in the window.
        samples_per_iter: samples (batch size) per iteration.
        wall_s: window length, s.
        energy_j: total energy of the window, J (``None``: invalid trial, excluded from stats).
        idle_power_w: the idle baseline subtracted, W (``None``: not measured).
        method: ``counter`` / ``sampling`` / ``none``.
        counter_j: the energy counter's value, J (``None`` if not used or invalid).
        sampled_j: the power-sampling value, J (``None`` if not sampled).
        power_samples: power samples in the window.
        temperature_start_c: GPU temperature at the start, °C (``temperature_end_c``: at the end).
        sm_clock_start_mhz: SM clock at the start, MHz (``sm_clock_end_mhz``: at the end).
        attempts: windows run for this trial (> 1: extended).
        flags: meter flags of the kept window.
        notes: what happened (extensions, exclusions).
    """

    index: int
    iterations: int
    samples_per_iter: int
    wall_s: float
    energy_j: float | None
    idle_power_w: float | None
    method: str
    counter_j: float | None = None
    sampled_j: float | None = None
    power_samples: int = 0
    temperature_start_c: int | None = None
    temperature_end_c: int | None = None
    sm_clock_start_mhz: int | None = None
    sm_clock_end_mhz: int | None = None
    attempts: int = 1
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """Whether the trial has a total energy."""
        return self.energy_j is not None

    @property
    def samples(self) -> int:
        """Samples processed in the window (iterations x samples per iteration)."""
        return self.iterations * self.samples_per_iter

    @property
    def idle_j(self) -> float | None:
        """``P_idle x wall_s``, J."""
        return None if self.idle_power_w is None else self.idle_power_w * self.wall_s

    @property
    def dynamic_j(self) -> float | None:
        """``energy_j - idle_j``, J (``None`` without either)."""
        idle = self.idle_j
        return None if self.energy_j is None or idle is None else self.energy_j - idle

    @property
    def avg_power_w(self) -> float | None:
        """``energy_j / wall_s``, W."""
        return None if self.energy_j is None or self.wall_s <= 0 else self.energy_j / self.wall_s

    def per(self, value: float | None, unit: str) -> float | None:
        """``value`` divided by iterations (``unit="iter"``) or samples (``"sample"``)."""
        if value is None:
            return None
        return value / (self.iterations if unit == "iter" else self.samples)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: fields plus the derived quantities of ``_SUMMARY`` (J, W, s)."""
        derived = {key: get(self) for key, get in _SUMMARY.items()}
        return {**asdict(self), "samples": self.samples, "valid": self.valid, "idle_j": self.idle_j,
                "dynamic_j": self.dynamic_j, **derived, "flags": list(self.flags), "notes": list(self.notes)}


#: Per-trial quantities summarised over trials: name -> function of a trial (J, W or s).
_SUMMARY: dict[str, Callable[[TrialResult], float | None]] = {
    "energy_per_iter_j": lambda t: t.per(t.energy_j, "iter"),
    "energy_per_sample_j": lambda t: t.per(t.energy_j, "sample"),
    "dynamic_per_iter_j": lambda t: t.per(t.dynamic_j, "iter"),
    "dynamic_per_sample_j": lambda t: t.per(t.dynamic_j, "sample"),
    "avg_power_w": lambda t: t.avg_power_w,
    "wall_s": lambda t: t.wall_s,
    "iter_s": lambda t: t.wall_s / t.iterations,
}


@dataclass
class MeasureResult:
    """Everything one measurement produced.

    Attributes:
        gpu: the GPU and method.
        settings: the protocol's settings.
        samples_per_iter: samples per workload iteration (batch size).
        idle: idle baseline (``None``: skipped or not reached).
        trials: the trials run, in order (invalid ones included, flagged).
        warnings: MIG, other processes, power source, excluded trials.
        status: ``complete``, or ``partial`` when the GPU was lost mid-measurement.
        error: why a partial result stopped.
        label: free text (model, mode).
        tolerance: the sensor tolerance statement.
    """

    gpu: GpuInfo
    settings: MeasureSettings
    samples_per_iter: int = 1
    idle: IdleBaseline | None = None
    trials: list[TrialResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    status: str = STATUS_COMPLETE
    error: str | None = None
    label: str = ""
    tolerance: str = TOLERANCE_NOTE

    @property
    def valid_trials(self) -> list[TrialResult]:
        """Trials with a total energy."""
        return [t for t in self.trials if t.valid]

    @property
    def methods(self) -> tuple[str, ...]:
        """Distinct methods of the valid trials, in order of first use."""
        return tuple(dict.fromkeys(t.method for t in self.valid_trials))

    def summary(self) -> dict[str, Stats | None]:
        """Mean/std/min/max over valid trials of each quantity in ``_SUMMARY``."""
        trials = self.valid_trials
        return {key: Stats.of([v for v in map(get, trials) if v is not None]) for key, get in _SUMMARY.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (energies in J, power in W, times in s)."""
        summary = {k: (None if s is None else asdict(s)) for k, s in self.summary().items()}
        return {"status": self.status, "error": self.error, "label": self.label, "gpu": asdict(self.gpu),
                "settings": asdict(self.settings), "samples_per_iter": self.samples_per_iter,
                "methods": list(self.methods), "idle": None if self.idle is None else asdict(self.idle),
                "trials": [t.to_dict() for t in self.trials], "summary": summary, "tolerance": self.tolerance,
                "warnings": list(self.warnings)}


class MeasurementInterruptedError(HardwareMissingError):
    """The GPU was lost (or NVML failed) mid-measurement; ``partial`` keeps what was measured.

    Attributes:
        partial: the result so far (``status = "partial"``, ``error`` set).
    """

    def __init__(self, message: str, partial: MeasureResult) -> None:
        self.partial = partial
        super().__init__(message)


def _optional(read: Callable[[], Any]) -> Any:
    """A metadata read, ``None`` when NVML cannot answer it (a lost GPU still raises)."""
    try:
        return read()
    except NvmlError as err:
        logger.debug("metadata read failed: %s", err)
        return None


def _other_pids(processes: list[GpuProcess] | None, own_pid: int) -> tuple[int, ...] | None:
    """Pids other than ours (``None`` when the list is unknown)."""
    if processes is None:
        return None
    return tuple(sorted({p.pid for p in processes if p.pid != own_pid}))


def describe_gpu(meter: EnergyMeter, own_pid: int | None = None) -> GpuInfo:
    """Identity, limits and neighbours of the meter's GPU.

    Args:
        meter: the meter (its backend and NVML index).
        own_pid: this process's pid (default ``os.getpid()``), excluded from ``other_processes``.
    """
    backend, i = meter.backend, meter.index
    limit = _optional(lambda: backend.power_limit_mw(i))
    return GpuInfo(
        index=i,
        name=backend.name(i),
        uuid=_optional(lambda: backend.uuid(i)) or "unknown",
        pci_bus_id=_optional(lambda: backend.pci_bus_id(i)) or "unknown",
        architecture=architecture_name(_optional(lambda: backend.architecture(i))),
        driver_version=_optional(backend.driver_version) or "unknown",
        nvml_version=_optional(backend.nvml_version) or "unknown",
        power_limit_w=None if limit is None else limit / 1000.0,
        mig_enabled=bool(_optional(lambda: backend.mig_enabled(i))),
        method=meter.method,
        power_source=meter.power_source,
        other_processes=_other_pids(
            _optional(lambda: backend.compute_processes(i)), os.getpid() if own_pid is None else own_pid
        ),
    )


def gpu_warnings(info: GpuInfo) -> list[str]:
    """Warnings about what the GPU's numbers include (MIG, other processes, power source)."""
    out = []
    if info.mig_enabled:
        out.append(
            f"MIG mode is enabled on GPU {info.index}: NVML energy and power are board-wide, so one MIG "
            "instance's energy cannot be separated from the others' (all instances' work is included)"
        )
    if info.other_processes:
        pids = ", ".join(str(p) for p in info.other_processes)
        out.append(
            f"{len(info.other_processes)} other compute process(es) on GPU {info.index} (pid {pids}): "
            "NVML energy is board-wide and includes their work"
        )
    elif info.other_processes is None:
        out.append(f"could not list the compute processes on GPU {info.index}: others may share the board")
    if info.method == METHOD_SAMPLING and info.power_source == POWER_SOURCE_USAGE:
        out.append(
            f"power is sampled with {POWER_SOURCE_USAGE}, a 1 s average on Ampere (except GA100) and newer: "
            "windows should be much longer than 1 s"
        )
    return out


def _warm_up(step: Callable[[], object], meter: EnergyMeter, iters: int) -> float | None:
    """Run ``iters`` unmeasured iterations; seconds per iteration (``None`` for 0 iterations)."""
    if iters == 0:
        return None
    meter.sync()
    start = meter.clock()
    for _ in range(iters):
        step()
    meter.sync()
    return (meter.clock() - start) / iters


def _extension_reason(m: Measurement) -> str | None:
    """Why a window must be re-run longer (``None``: it is fine)."""
    if FLAG_COUNTER_UNCHANGED in m.flags:
        return f"the energy counter did not move in {m.duration_s:.3g} s (it updates every ~100 ms)"
    if not m.valid:
        return f"no valid energy ({', '.join(m.flags) or 'no method'})"
    return None


def _idle_baseline(meter: EnergyMeter, settings: MeasureSettings, sleep: Callable[[float], None]) -> IdleBaseline:
    """Measure idle power over ``idle_s`` (doubled while the counter does not move)."""
    sleep(settings.cooldown_s)
    duration = settings.idle_s
    for attempt in range(1, settings.max_extensions + 2):
        meter.begin_window("idle")
        sleep(duration)
        m = meter.end_window("idle")
        assert m is not None
        reason = _extension_reason(m)
        if reason is None:
            return IdleBaseline(m.avg_power_w, m.duration_s, m.energy_j, m.method, attempt, m.flags)
        logger.info("idle window extended: %s", reason)
        duration *= 2
    return IdleBaseline(None, m.duration_s, None, m.method, attempt, m.flags)


def _read_state(meter: EnergyMeter) -> tuple[int | None, int | None]:
    """(temperature °C, SM clock MHz) now."""
    backend, i = meter.backend, meter.index
    return _optional(lambda: backend.temperature_c(i)), _optional(lambda: backend.sm_clock_mhz(i))


def _window(
    step: Callable[[], object], meter: EnergyMeter, name: str, iters: int, min_s: float
) -> tuple[Measurement, int]:
    """One window of at least ``iters`` iterations and ``min_s`` seconds; (measurement, iterations)."""
    meter.begin_window(name)
    start, done = meter.clock(), 0
    try:
        while done < iters or meter.clock() - start < min_s:
            step()
            done += 1
    except BaseException:
        meter.end_window(name, cancel=True)
        raise
    m = meter.end_window(name)
    assert m is not None
    return m, done


@dataclass
class _TrialPlan:
    """Iterations and minimum seconds of the next window (grow when extended)."""

    iters: int
    min_s: float


def _run_trial(
    index: int,
    step: Callable[[], object],
    meter: EnergyMeter,
    plan: _TrialPlan,
    *,
    settings: MeasureSettings,
    context: tuple[float | None, int],
) -> TrialResult:
    """One trial: windows re-run longer while the counter does not move; ``plan`` grows in place."""
    idle_w, samples_per_iter = context
    notes: list[str] = []
    for attempt in range(1, settings.max_extensions + 2):
        temp0, clock0 = _read_state(meter)
        m, done = _window(step, meter, f"trial {index}", plan.iters, plan.min_s)
        temp1, clock1 = _read_state(meter)
        reason = _extension_reason(m)
        if reason is None or attempt > settings.max_extensions:
            break
        plan.iters, plan.min_s = 2 * done, max(plan.min_s, 2 * m.duration_s)
        notes.append(f"window extended to >= {plan.iters} iterations and {plan.min_s:.3g} s: {reason}")
    energy = m.energy_j
    if reason is not None:
        notes.append(f"excluded from the statistics: {reason}")
        energy = None
    return TrialResult(
        index, done, samples_per_iter, m.duration_s, energy, idle_w, m.method, m.counter_j, m.sampled_j,
        m.samples, temp0, temp1, clock0, clock1, attempt, m.flags, tuple(notes),
    )


def _cooldown(settings: MeasureSettings, rng: random.Random) -> float:
    """A randomised idle gap, s."""
    jitter = settings.cooldown_jitter
    return settings.cooldown_s * (1 + rng.uniform(-jitter, jitter)) if jitter else settings.cooldown_s


def _probe_lost(meter: EnergyMeter) -> GpuLostError | None:
    """After a workload failure: the GPU-lost error if NVML says so, else ``None``."""
    try:
        meter.backend.name(meter.index)
    except GpuLostError as err:
        return err
    except NvmlError:
        return None
    return None


def _interrupted(result: MeasureResult, phase: str, err: BaseException) -> MeasurementInterruptedError:
    """Label ``result`` partial and wrap it in the error."""
    result.status, result.error = STATUS_PARTIAL, f"{phase}: {err}"
    kept = len(result.valid_trials)
    message = (
        f"measurement on GPU {result.gpu.index} ({result.gpu.name}) stopped during {phase}: {err}; "
        f"{kept} completed trial(s) kept as partial results"
    )
    return MeasurementInterruptedError(message, result)


def _final_warnings(result: MeasureResult) -> None:
    """Warn about excluded trials and a missing idle baseline."""
    bad = [t.index for t in result.trials if not t.valid]
    if bad:
        result.warnings.append(f"trial(s) {', '.join(map(str, bad))} had no valid energy and are excluded")
    if result.idle is None or result.idle.power_w is None:
        result.warnings.append("idle power was not measured: dynamic (idle-subtracted) energy is not reported")


def measure(
    step: Callable[[], object],
    meter: EnergyMeter,
    settings: MeasureSettings | None = None,
    *,
    samples_per_iter: int = 1,
    sleep: Callable[[float], None] = time.sleep,
    label: str = "",
    progress: Callable[[str], None] | None = None,
) -> MeasureResult:
    """Measure the energy of ``step`` (one workload iteration) with the full protocol.

    Args:
        step: runs one iteration (e.g. a forward pass, or forward + backward + optimizer step).
        meter: the energy meter of the GPU the workload runs on.
        settings: protocol knobs (defaults: 5 trials of >= 32 iterations and >= 5 s).
        samples_per_iter: samples per iteration (batch size), for per-sample energies.
        sleep: idle waiting (tests pass a fake that advances a fake clock).
        label: free text stored in the result.
        progress: called with the phase (``"trial 2 of 5"`` ...) as it starts.

    Returns:
        The complete result.

    Raises:
        MeasurementInterruptedError: the GPU was lost or NVML failed mid-measurement; its
            ``partial`` attribute holds the labelled partial result.
    """
    settings = settings or MeasureSettings()
    info = describe_gpu(meter)
    result = MeasureResult(info, settings, samples_per_iter, warnings=gpu_warnings(info), label=label)
    for warning in result.warnings:
        logger.info("%s", warning)  # also in result.warnings, which every renderer shows
    rng = random.Random(settings.seed)
    report = progress or (lambda _phase: None)
    phase = "warm-up"
    try:
        report(phase)
        iter_s = _warm_up(step, meter, settings.warmup_iters)
        if settings.idle_s > 0:
            phase = "the idle baseline"
            report(phase)
            result.idle = _idle_baseline(meter, settings, sleep)
        idle_w = None if result.idle is None else result.idle.power_w
        need = math.ceil(settings.min_window_s / iter_s) if iter_s else 0
        plan = _TrialPlan(max(settings.iters, need), settings.min_window_s)
        for k in range(1, settings.trials + 1):
            phase = f"trial {k} of {settings.trials}"
            report(phase)
            sleep(_cooldown(settings, rng))
            _warm_up(step, meter, settings.warmup_iters)
            result.trials.append(_run_trial(
                k, step, meter, plan, settings=settings, context=(idle_w, samples_per_iter)
            ))
    except (GpuLostError, NvmlError) as err:
        raise _interrupted(result, phase, err) from err
    except Exception as err:
        lost = _probe_lost(meter)
        if lost is None:
            raise
        raise _interrupted(result, phase, lost) from err
    _final_warnings(result)
    return result
