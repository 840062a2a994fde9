"""Measured GPU energy of code windows: :class:`EnergyMeter` (NVML energy counter or power sampling).

Two methods, and the one used is reported with every :class:`Measurement`:

* ``counter``: ``nvmlDeviceGetTotalEnergyConsumption`` (Volta and newer) read at the window's
  start and end; energy = end - start (mJ). A negative delta (counter wrap-around or a driver
  reload) makes the counter value invalid (flag ``counter_reset``); a zero delta means the
  window was shorter than the counter's ~100 ms update period (flag ``counter_unchanged``).
* ``sampling``: a background thread reads board power (mW) every ``sample_interval_s``
  (10-100 ms) on ``clock`` timestamps; energy = trapezoidal integral between the window's
  start and end (both sampled exactly at the window edges).

With ``cross_check=True`` (default) power is also sampled while the counter is in use, so every
window carries both numbers (``counter_j``, ``sampled_j``), and an energy counter that raises
``NotSupported`` in the middle of a run falls back to the samples without losing the open
windows. Around each window edge the meter calls ``sync`` (default: ``torch.cuda.synchronize``
when torch has initialised CUDA), then takes the timestamp, then reads the counter.

Windows are named, may nest and overlap; one meter serves any number of them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from snnprof.energy.nvml_backend import (
    EnergyBackend,
    GpuLostError,
    GpuNotFoundError,
    NvmlError,
    NvmlNotSupportedError,
    NvmlUnavailableError,
)
from snnprof.errors import SnnprofError

__all__ = [
    "FLAG_COUNTER_RESET",
    "FLAG_COUNTER_UNCHANGED",
    "FLAG_COUNTER_UNSUPPORTED",
    "FLAG_SAMPLER_ERROR",
    "MAX_INTERVAL_S",
    "METHODS",
    "METHOD_COUNTER",
    "METHOD_NONE",
    "METHOD_SAMPLING",
    "MIN_INTERVAL_S",
    "EnergyMeter",
    "Measurement",
    "PowerSampler",
    "WindowError",
    "WindowHandle",
    "cuda_sync",
    "parse_pci_bus_id",
    "resolve_nvml_index",
    "trapezoid_j",
]

logger = logging.getLogger(__name__)

METHOD_COUNTER = "counter"
METHOD_SAMPLING = "sampling"
METHOD_NONE = "none"
#: Accepted ``method`` arguments: ``auto`` picks the counter where supported.
METHODS: tuple[str, ...] = ("auto", METHOD_COUNTER, METHOD_SAMPLING)
MIN_INTERVAL_S = 0.01
MAX_INTERVAL_S = 0.1

#: The counter did not move: the window is shorter than its update period (~100 ms).
FLAG_COUNTER_UNCHANGED = "counter_unchanged"
#: The counter went backwards (wrap-around or driver reload): its value is invalid.
FLAG_COUNTER_RESET = "counter_reset"
#: The counter raised NotSupported at this window's edge; the meter switched to sampling.
FLAG_COUNTER_UNSUPPORTED = "counter_unsupported"
#: The power sampler failed during the window (its value is missing).
FLAG_SAMPLER_ERROR = "sampler_error"


class WindowError(SnnprofError):
    """A window name already open (``begin_window``) or not open (``end_window``)."""


@dataclass(frozen=True)
class Measurement:
    """Energy of one window on one GPU.

    Attributes:
        name: the window's name.
        gpu: NVML index of the GPU.
        start_s: window start on the meter's clock, seconds (``time.monotonic`` by default).
        duration_s: window length, seconds.
        energy_j: energy of the chosen method, joules; ``None`` when no valid value exists.
        method: ``counter``, ``sampling`` or ``none`` (which method gave ``energy_j``).
        counter_j: the energy counter's delta, joules (``None``: not used, unsupported or reset).
        sampled_j: the trapezoidal integral of power samples, joules (``None``: not sampled).
        samples: number of power samples in the window (edges included).
        flags: ``counter_unchanged``, ``counter_reset``, ``counter_unsupported``, ``sampler_error``.
    """

    name: str
    gpu: int
    start_s: float
    duration_s: float
    energy_j: float | None
    method: str
    counter_j: float | None = None
    sampled_j: float | None = None
    samples: int = 0
    flags: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """Whether ``energy_j`` holds a value."""
        return self.energy_j is not None

    @property
    def avg_power_w(self) -> float | None:
        """Average power over the window, watts (``None`` if invalid or zero-length)."""
        if self.energy_j is None or self.duration_s <= 0:
            return None
        return self.energy_j / self.duration_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field plus ``avg_power_w``."""
        return {
            "name": self.name,
            "gpu": self.gpu,
            "start_s": self.start_s,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "avg_power_w": self.avg_power_w,
            "method": self.method,
            "counter_j": self.counter_j,
            "sampled_j": self.sampled_j,
            "samples": self.samples,
            "flags": list(self.flags),
        }


def trapezoid_j(samples: Sequence[tuple[float, float]], start_s: float, end_s: float) -> tuple[float, int]:
    """Trapezoidal integral of power samples between two times.

    Args:
        samples: ``(time_s, power_mw)`` pairs, any order.
        start_s: window start, seconds.
        end_s: window end, seconds.

    Returns:
        ``(energy_j, n)``: the integral over the samples inside ``[start_s, end_s]`` in joules
        (mW x s / 1000) and how many samples it used (0 J with fewer than two).
    """
    inside = sorted(s for s in samples if start_s <= s[0] <= end_s)
    energy_mj = sum((p0 + p1) / 2 * (t1 - t0) for (t0, p0), (t1, p1) in zip(inside, inside[1:], strict=False))
    return energy_mj / 1000.0, len(inside)


class PowerSampler:
    """A timeline of ``(time_s, power_mw)`` samples, filled by a background thread or by hand.

    Args:
        read_mw: returns the current power, milliwatts.
        clock: monotonic clock, seconds.
        interval_s: seconds between background samples.
        background: start a daemon thread in :meth:`start` (``False``: only :meth:`sample`).
    """

    def __init__(
        self, read_mw: Callable[[], int], clock: Callable[[], float], interval_s: float, background: bool = True
    ) -> None:
        self._read, self._clock, self.interval_s, self.background = read_mw, clock, interval_s, background
        self._samples: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def sample(self, at_s: float | None = None) -> tuple[float, float]:
        """Read power now and append it; ``at_s`` overrides the timestamp (window edges)."""
        power = float(self._read())
        stamp = self._clock() if at_s is None else at_s
        with self._lock:
            self._samples.append((stamp, power))
        return stamp, power

    def _loop(self) -> None:
        """Background loop: one sample per interval until stopped or an error."""
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception as err:  # reported at the next window end
                self.error = err
                logger.warning("power sampling stopped: %s", err)
                return

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the background thread (no-op if running or ``background=False``)."""
        if not self.background or self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="snnprof-power-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and join the background thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, 5 * self.interval_s))
            self._thread = None

    def integrate(self, start_s: float, end_s: float) -> tuple[float, int]:
        """Energy between two times, joules, and the number of samples used (see :func:`trapezoid_j`)."""
        with self._lock:
            samples = list(self._samples)
        return trapezoid_j(samples, start_s, end_s)

    def trim(self, before_s: float | None) -> None:
        """Drop samples older than ``before_s`` (all of them for ``None``)."""
        with self._lock:
            self._samples = [] if before_s is None else [s for s in self._samples if s[0] >= before_s]


@dataclass
class _Open:
    """Book-keeping of one open window."""

    start_s: float
    energy_mj: int | None
    sampled: bool
    flags: list[str] = field(default_factory=list)


@dataclass
class WindowHandle:
    """What ``with meter.window(name) as w`` yields; ``w.measurement`` is set when the block ends."""

    name: str
    measurement: Measurement | None = None


def parse_pci_bus_id(bus_id: str) -> tuple[int, int, int] | None:
    """``(domain, bus, device)`` of a PCI bus id such as ``00000000:3B:00.0`` (``None`` if malformed)."""
    try:
        domain, bus, rest = bus_id.strip().split(":")
        return int(domain, 16), int(bus, 16), int(rest.split(".")[0], 16)
    except ValueError:
        return None


def _torch_pci(cuda_index: int) -> tuple[int, int, int] | None:
    """PCI address of a CUDA device from torch, if torch is imported and has CUDA."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    try:
        props = torch.cuda.get_device_properties(cuda_index)
        return int(props.pci_domain_id), int(props.pci_bus_id), int(props.pci_device_id)
    except (AttributeError, RuntimeError, AssertionError):
        return None


def _visible_entry(cuda_index: int, visible: str, backend: EnergyBackend) -> int:
    """NVML index of entry ``cuda_index`` of ``CUDA_VISIBLE_DEVICES`` (integers or GPU-UUIDs)."""
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if not 0 <= cuda_index < len(entries):
        raise GpuNotFoundError(f"cuda:{cuda_index} does not exist: CUDA_VISIBLE_DEVICES={visible!r}")
    entry = entries[cuda_index]
    if entry.isdigit():
        return int(entry)
    for i in range(backend.device_count()):
        if backend.uuid(i).startswith(entry) or entry.startswith(backend.uuid(i)):
            return i
    raise GpuNotFoundError(f"CUDA_VISIBLE_DEVICES entry {entry!r} matches no GPU UUID that NVML sees")


def resolve_nvml_index(
    cuda_index: int, backend: EnergyBackend, env: Mapping[str, str] | None = None, torch_pci: Any = _torch_pci
) -> int:
    """NVML index of CUDA device ``cuda_index`` (NVML ignores ``CUDA_VISIBLE_DEVICES``).

    Matches the PCI address torch reports when CUDA is up; otherwise maps through
    ``CUDA_VISIBLE_DEVICES`` (integers or UUIDs); otherwise the identity.

    Raises:
        GpuNotFoundError: no such GPU.
    """
    env = os.environ if env is None else env
    count = backend.device_count()
    pci = torch_pci(cuda_index)
    if pci is not None:
        for i in range(count):
            if parse_pci_bus_id(backend.pci_bus_id(i)) == pci:
                return i
    visible = env.get("CUDA_VISIBLE_DEVICES")
    index = _visible_entry(cuda_index, visible, backend) if visible else cuda_index
    if not 0 <= index < count:
        raise GpuNotFoundError(f"no GPU {cuda_index}: NVML sees {count} GPU(s) (0..{count - 1})")
    return index


def cuda_sync(cuda_index: int) -> Callable[[], None]:
    """A sync function: ``torch.cuda.synchronize(cuda_index)`` once torch has initialised CUDA."""

    def sync() -> None:
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.synchronize(cuda_index)

    return sync


class EnergyMeter:
    """Measure the GPU energy of named windows (nest and overlap freely).

    Args:
        gpu: CUDA index of the GPU (``cuda:gpu``); mapped to the NVML index (see
            :func:`resolve_nvml_index`) unless ``nvml_index`` is given.
        backend: the device library; default a new :class:`~snnprof.energy.nvml_backend.NvmlBackend`
            (then closed by :meth:`close`).
        nvml_index: NVML index to use directly.
        method: ``auto`` (counter where supported, else sampling), ``counter`` or ``sampling``.
        sample_interval_s: power sampling period, 0.01-0.1 s.
        cross_check: also sample power while the counter is used (fallback + second opinion).
        sync: called before each window edge's reads; default :func:`cuda_sync`.
        clock: monotonic clock, seconds.
        background: run the sampler thread (tests use ``False`` and call :meth:`sample_power`).

    Raises:
        NvmlUnavailableError: no NVIDIA GPU / NVML (from the default backend), or neither energy
            nor power can be read on this GPU.
        GpuNotFoundError: no such GPU.
        NvmlNotSupportedError: ``method="counter"`` on a GPU without the energy counter.

    Example:
        >>> meter = EnergyMeter(gpu=0)  # doctest: +SKIP
        >>> with meter.window("epoch") as w:  # doctest: +SKIP
        ...     train_one_epoch()
        >>> w.measurement.energy_j, w.measurement.method  # doctest: +SKIP
        (1234.5, 'counter')
        >>> meter.begin_window("step"); step(); m = meter.end_window("step")  # doctest: +SKIP
    """

    def __init__(
        self,
        gpu: int = 0,
        *,
        backend: EnergyBackend | None = None,
        nvml_index: int | None = None,
        method: str = "auto",
        sample_interval_s: float = 0.05,
        cross_check: bool = True,
        sync: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if not MIN_INTERVAL_S <= sample_interval_s <= MAX_INTERVAL_S:
            raise ValueError(f"sample_interval_s must be within 0.01-0.1 s, got {sample_interval_s}")
        self._owns_backend = backend is None
        if backend is None:
            from snnprof.energy.nvml_backend import NvmlBackend

            backend = NvmlBackend()
        self.backend: EnergyBackend = backend
        self.clock = clock
        self.cross_check = cross_check
        self._open: dict[str, _Open] = {}
        self._power_ok = True
        self._counter = False
        self.index = nvml_index if nvml_index is not None else 0
        self._sampler = PowerSampler(lambda: backend.power_mw(self.index), clock, sample_interval_s, background)
        self._sync = sync if sync is not None else cuda_sync(gpu)
        try:
            if nvml_index is None:
                self.index = resolve_nvml_index(gpu, backend)
            self._counter = self._choose_counter(method)
            if not self._counter:
                self._check_power()
        except BaseException:
            self.close()
            raise

    def _choose_counter(self, method: str) -> bool:
        """Whether to use the energy counter (``method="counter"`` insists on it)."""
        if method == METHOD_SAMPLING:
            return False
        supported = self.backend.supports_energy_counter(self.index)
        if method == METHOD_COUNTER and not supported:
            raise NvmlNotSupportedError(
                "nvmlDeviceGetTotalEnergyConsumption", 3, "no energy counter on this GPU (pre-Volta or vGPU)"
            )
        return supported

    def _check_power(self) -> None:
        """Probe power reading once when the meter depends on it."""
        try:
            self.backend.power_mw(self.index)
        except NvmlNotSupportedError:
            self._power_ok = False
            raise NvmlUnavailableError(
                f"GPU {self.index} reports neither the energy counter nor power readings"
            ) from None

    @property
    def method(self) -> str:
        """The method new windows use: ``counter`` or ``sampling``."""
        return METHOD_COUNTER if self._counter else METHOD_SAMPLING

    @property
    def power_source(self) -> str:
        """The NVML power path used by sampling."""
        return self.backend.power_source(self.index)

    @property
    def open_windows(self) -> tuple[str, ...]:
        """Names of the windows currently open."""
        return tuple(self._open)

    def sync(self) -> None:
        """Wait for the GPU (the ``sync`` function)."""
        self._sync()

    def sample_power(self) -> tuple[float, float]:
        """Take one power sample now, ``(time_s, power_mw)`` (also what the thread does)."""
        return self._sampler.sample()

    def _switch_to_sampling(self, where: str) -> None:
        """The counter raised NotSupported: every later window samples power."""
        logger.warning("GPU %d: energy counter not supported (%s); falling back to power sampling", self.index, where)
        self._counter = False
        self._check_power()

    def _read_counter(self) -> int | None:
        """Counter value, mJ; ``None`` (and a switch to sampling) on NotSupported."""
        try:
            return self.backend.energy_mj(self.index)
        except NvmlNotSupportedError:
            self._switch_to_sampling("counter read")
            return None

    def begin_window(self, name: str) -> None:
        """Open window ``name``: sync, timestamp, read the counter and/or a first power sample.

        Raises:
            WindowError: ``name`` is already open.
            GpuLostError: the GPU stopped answering.
        """
        if name in self._open:
            raise WindowError(f"energy window {name!r} is already open")
        self._sync()
        start = self.clock()
        flags: list[str] = []
        energy = None
        if self._counter:
            energy = self._read_counter()
            if energy is None:
                flags.append(FLAG_COUNTER_UNSUPPORTED)
        sampled = self._power_ok and (not self._counter or self.cross_check)
        if sampled:
            self._sampler.sample(at_s=start)
            self._sampler.start()
        self._open[name] = _Open(start, energy, sampled, flags)

    def end_window(self, name: str, cancel: bool = False) -> Measurement | None:
        """Close window ``name`` and return its :class:`Measurement` (``None`` when ``cancel``).

        Raises:
            WindowError: ``name`` is not open.
            GpuLostError: the GPU stopped answering (here or in the sampler thread).
        """
        window = self._open.pop(name, None)
        if window is None:
            raise WindowError(f"energy window {name!r} is not open (open: {', '.join(self._open) or 'none'})")
        try:
            if cancel:
                return None
            return self._finish(name, window)
        finally:
            self._tidy_sampler()

    def _finish(self, name: str, window: _Open) -> Measurement:
        """Read the end of a window and pick the energy value."""
        self._sync()
        end = self.clock()
        flags = list(window.flags)
        counter_j = self._counter_energy(window, flags)
        sampled_j, samples = self._sampled_energy(window, end, flags)
        if counter_j is not None:
            energy, method = counter_j, METHOD_COUNTER
        elif sampled_j is not None:
            energy, method = sampled_j, METHOD_SAMPLING
        else:
            energy, method = None, METHOD_NONE
        measurement = Measurement(
            name, self.index, window.start_s, end - window.start_s, energy, method, counter_j, sampled_j, samples,
            tuple(flags),
        )
        if flags:
            logger.info("energy window %r: %s", name, ", ".join(flags))
        return measurement

    def _sampled_energy(self, window: _Open, end: float, flags: list[str]) -> tuple[float | None, int]:
        """Trapezoidal energy of a sampled window (``None`` if not sampled or the sampler failed)."""
        error = self._sampler.error
        if isinstance(error, GpuLostError):
            raise error
        if not window.sampled:
            return None, 0
        if error is not None:
            flags.append(FLAG_SAMPLER_ERROR)
            return None, 0
        try:
            self._sampler.sample(at_s=end)
        except NvmlError as err:
            logger.warning("power reading failed at window end: %s", err)
            flags.append(FLAG_SAMPLER_ERROR)
            return None, 0
        return self._sampler.integrate(window.start_s, end)

    def _counter_energy(self, window: _Open, flags: list[str]) -> float | None:
        """Counter delta of a window, joules; ``None`` with a flag when unusable."""
        if window.energy_mj is None:
            return None
        end_mj = self._read_counter()
        if end_mj is None:
            flags.append(FLAG_COUNTER_UNSUPPORTED)
            return None
        delta = end_mj - window.energy_mj
        if delta < 0:
            logger.warning("GPU %d: energy counter went backwards by %d mJ (wrap-around or driver reload)",
                           self.index, -delta)
            flags.append(FLAG_COUNTER_RESET)
            return None
        if delta == 0:
            flags.append(FLAG_COUNTER_UNCHANGED)
        return delta / 1000.0

    def _tidy_sampler(self) -> None:
        """Keep only samples an open window needs; stop the thread when none does."""
        starts = [w.start_s for w in self._open.values() if w.sampled]
        if starts:
            self._sampler.trim(min(starts))
        else:
            self._sampler.stop()
            self._sampler.trim(None)
            if not isinstance(self._sampler.error, GpuLostError):  # later windows try again
                self._sampler.error = None

    @contextmanager
    def window(self, name: str) -> Iterator[WindowHandle]:
        """Context manager around :meth:`begin_window` / :meth:`end_window`.

        The window is cancelled (no measurement) when the block raises.
        """
        handle = WindowHandle(name)
        self.begin_window(name)
        try:
            yield handle
        except BaseException:
            self.end_window(name, cancel=True)
            raise
        handle.measurement = self.end_window(name)

    def close(self) -> None:
        """Stop the sampler and release the backend if this meter created it."""
        self._sampler.stop()
        if self._owns_backend:
            self.backend.close()

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
