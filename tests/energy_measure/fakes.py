"""A scripted fake GPU (an ``EnergyBackend``) and a fake clock, for NVML-free tests.

The fake integrates its power level over the clock's time, lazily: energy since the last read is
``power_mw x dt`` (mW x s = mJ). Optionally the counter only updates at multiples of
``counter_period_s`` (like the ~100 ms NVML counter). Times and powers in the tests are chosen
as binary fractions, so the arithmetic is exact.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable

from snnprof.energy.nvml_backend import (
    POWER_SOURCE_FIELD,
    GpuLostError,
    GpuProcess,
    NvmlNotSupportedError,
)


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1024.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeGpu:
    """Scripted EnergyBackend for one or more identical GPUs (state shared across indices)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        count: int = 1,
        name: str = "Fake GPU H100",
        arch: int = 9,
        idle_mw: int = 50_000,
        energy_start_mj: int = 1_000_000,
        counter_period_s: float | None = None,
        counter_fails_from_read: int | None = None,
        power_supported: bool = True,
        mig: bool = False,
        processes: tuple[int, ...] = (),
    ) -> None:
        self.clock = clock
        self.count, self._name, self.arch = count, name, arch
        self.power = float(idle_mw)
        self.idle_mw = idle_mw
        self.true_mj = float(energy_start_mj)
        self.reported_mj = float(energy_start_mj)
        self.period = counter_period_s
        self.counter_fails_from_read = counter_fails_from_read
        self.power_supported = power_supported
        self.mig = mig
        self.processes = processes
        self.lost = False
        self.closed = False
        self.calls: Counter[str] = Counter()
        self._last_t = clock()

    # ---- scripting -------------------------------------------------------------------------
    def _integrate(self) -> None:
        now = self.clock()
        t = self._last_t
        if self.period is None:
            self.true_mj += self.power * (now - t)
            self.reported_mj = self.true_mj
        else:
            while True:
                boundary = (math.floor(t / self.period) + 1) * self.period
                if boundary > now:
                    self.true_mj += self.power * (now - t)
                    break
                self.true_mj += self.power * (boundary - t)
                self.reported_mj = self.true_mj
                t = boundary
        self._last_t = now

    def set_power(self, mw: float) -> None:
        """Change the power level from now on."""
        self._integrate()
        self.power = float(mw)

    def reset_counter(self) -> None:
        """A driver reload: the counter restarts from 0."""
        self._integrate()
        self.true_mj = self.reported_mj = 0.0

    def _check(self, what: str) -> None:
        self.calls[what] += 1
        if self.lost:
            raise GpuLostError(f"the GPU was lost ({what}: GPU is lost)")

    # ---- EnergyBackend ---------------------------------------------------------------------
    def device_count(self) -> int:
        self._check("device_count")
        return self.count

    def name(self, index: int) -> str:
        self._check("name")
        return self._name

    def uuid(self, index: int) -> str:
        return f"GPU-0000000{index}-fake"

    def pci_bus_id(self, index: int) -> str:
        return f"00000000:{0x3B + index:02X}:00.0"

    def driver_version(self) -> str:
        return "999.1"

    def nvml_version(self) -> str:
        return "13.999.1"

    def architecture(self, index: int) -> int | None:
        return self.arch

    def supports_energy_counter(self, index: int) -> bool:
        return self.arch >= 5

    def energy_mj(self, index: int) -> int:
        self._check("energy_mj")
        fails = self.counter_fails_from_read
        if fails is not None and self.calls["energy_mj"] > fails:
            raise NvmlNotSupportedError("nvmlDeviceGetTotalEnergyConsumption", 3, "Not Supported")
        self._integrate()
        return int(round(self.reported_mj))

    def power_mw(self, index: int) -> int:
        self._check("power_mw")
        if not self.power_supported:
            raise NvmlNotSupportedError("nvmlDeviceGetPowerUsage", 3, "Not Supported")
        return int(self.power)

    def power_source(self, index: int) -> str:
        return POWER_SOURCE_FIELD

    def temperature_c(self, index: int) -> int | None:
        self._check("temperature_c")
        return 40 + int(self.power // 50_000)

    def sm_clock_mhz(self, index: int) -> int | None:
        self._check("sm_clock_mhz")
        return 1980 if self.power > self.idle_mw else 345

    def mig_enabled(self, index: int) -> bool:
        return self.mig

    def power_limit_mw(self, index: int) -> int | None:
        return 700_000

    def compute_processes(self, index: int) -> list[GpuProcess]:
        return [GpuProcess(pid, 1 << 30) for pid in self.processes]

    def close(self) -> None:
        self.closed = True


class Rig:
    """A fake clock, a fake GPU and the workload/sleep functions the protocol drives."""

    def __init__(self, *, busy_mw: int = 250_000, step_s: float = 0.125, **gpu_kwargs: object) -> None:
        self.clock = FakeClock()
        self.gpu = FakeGpu(self.clock, **gpu_kwargs)
        self.busy_mw, self.step_s = busy_mw, step_s
        self.steps = 0
        self.on_step: Callable[[int], None] | None = None

    def step(self) -> None:
        """One workload iteration: busy power for ``step_s``."""
        self.steps += 1
        if self.on_step is not None:
            self.on_step(self.steps)
        self.gpu.set_power(self.busy_mw)
        self.clock.advance(self.step_s)

    def sleep(self, seconds: float) -> None:
        """Idle for ``seconds``."""
        self.gpu.set_power(self.gpu.idle_mw)
        self.clock.advance(seconds)
