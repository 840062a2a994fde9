"""The small NVML interface behind GPU energy measurement, and its real implementation.

:class:`EnergyBackend` is everything the meter and the measurement protocol need from a GPU
(device count, identity, architecture, the cumulative energy counter in mJ, power in mW,
temperature, SM clock, MIG mode, power limit, compute processes). :class:`NvmlBackend`
implements it with NVIDIA's official ``nvidia-ml-py`` bindings (module ``pynvml``), imported
lazily inside the constructor: importing this module never loads NVML. Tests drive a scripted
fake instead.

NVML failures become specific snnprof exceptions:

* :class:`NvmlUnavailableError` (a :class:`~snnprof.errors.HardwareMissingError`): no library,
  driver not loaded, library/driver mismatch, no permission, no GPU, the deprecated ``pynvml``
  wrapper package installed instead of ``nvidia-ml-py``;
* :class:`GpuNotFoundError`: a GPU index that does not exist;
* :class:`GpuLostError`: the GPU fell off the bus (``NVML_ERROR_GPU_IS_LOST``);
* :class:`NvmlNotSupportedError`: the query is not supported on this device or driver;
* :class:`NvmlError`: any other NVML failure (the message names the call and the NVML code).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, TypeVar, runtime_checkable

from snnprof.errors import HardwareMissingError, SnnprofError

__all__ = [
    "ARCH_NAMES",
    "ARCH_VOLTA",
    "POWER_SOURCE_FIELD",
    "POWER_SOURCE_USAGE",
    "EnergyBackend",
    "GpuLostError",
    "GpuNotFoundError",
    "GpuProcess",
    "NvmlBackend",
    "NvmlError",
    "NvmlNotSupportedError",
    "NvmlUnavailableError",
    "architecture_name",
    "check_official_bindings",
    "error_for_code",
    "nvml_status",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: NVML architecture codes (``nvmlDeviceGetArchitecture``) and their names.
ARCH_NAMES: dict[int, str] = {
    2: "Kepler",
    3: "Maxwell",
    4: "Pascal",
    5: "Volta",
    6: "Turing",
    7: "Ampere",
    8: "Ada",
    9: "Hopper",
    10: "Blackwell",
}
#: ``NVML_DEVICE_ARCH_VOLTA``: the first architecture with the total-energy counter.
ARCH_VOLTA = 5
#: Power read from the ``NVML_FI_DEV_POWER_INSTANT`` field (instantaneous on every architecture).
POWER_SOURCE_FIELD = "NVML_FI_DEV_POWER_INSTANT"
#: Power read from ``nvmlDeviceGetPowerUsage`` (a 1 s average on Ampere (except GA100) and newer).
POWER_SOURCE_USAGE = "nvmlDeviceGetPowerUsage"

# NVML return codes (nvml.h; equal to pynvml.NVML_ERROR_*, checked by the tests).
_UNINITIALIZED = 1
_INVALID_ARGUMENT = 2
_NOT_SUPPORTED = 3
_NO_PERMISSION = 4
_NOT_FOUND = 6
_DRIVER_NOT_LOADED = 9
_LIBRARY_NOT_FOUND = 12
_FUNCTION_NOT_FOUND = 13
_GPU_IS_LOST = 15
_LIB_RM_VERSION_MISMATCH = 18
_GPU_NOT_FOUND = 28
_SUCCESS = 0
_MIG_ENABLE = 1
_TEMPERATURE_GPU = 0
_CLOCK_SM = 1

#: Why NVML is unusable, per return code of ``nvmlInit`` (or of any call, for these codes).
_UNAVAILABLE_REASONS: dict[int, str] = {
    _LIBRARY_NOT_FOUND: "the NVIDIA driver's NVML library (libnvidia-ml.so.1 / nvml.dll) was not found",
    _DRIVER_NOT_LOADED: "the NVIDIA driver is not loaded",
    _LIB_RM_VERSION_MISMATCH: "the NVML library and the loaded NVIDIA driver differ in version "
    "(typically after a driver upgrade without a reboot)",
    _NO_PERMISSION: "no permission to access the NVIDIA GPU through NVML",
    _UNINITIALIZED: "NVML is not initialised",
}


class NvmlUnavailableError(HardwareMissingError):
    """No usable NVIDIA GPU or NVML library (``snnprof count`` estimates still work).

    Attributes:
        reason: what is missing, as a short clause (e.g. ``the NVIDIA driver is not loaded``).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"cannot measure GPU energy: {reason}")


class GpuNotFoundError(HardwareMissingError):
    """The requested GPU index does not exist (the message lists the GPUs that do)."""


class GpuLostError(HardwareMissingError):
    """The GPU stopped answering (``NVML_ERROR_GPU_IS_LOST``: fell off the bus, Xid error, reset)."""


class NvmlError(SnnprofError):
    """An NVML call failed for another reason.

    Attributes:
        code: the NVML return code (``None`` when unknown).
        call: the NVML function that failed.
    """

    def __init__(self, call: str, code: int | None, text: str) -> None:
        self.call, self.code = call, code
        super().__init__(f"{call} failed: {text} (NVML code {code})")


class NvmlNotSupportedError(NvmlError):
    """The NVML query is not supported on this device or driver (``NVML_ERROR_NOT_SUPPORTED``)."""


def error_for_code(code: int | None, call: str, text: str) -> SnnprofError:
    """The snnprof exception for an NVML return code.

    Args:
        code: NVML return code (``NVMLError.value``).
        call: the NVML function that failed (for the message).
        text: NVML's own error string.

    Returns:
        :class:`GpuLostError`, :class:`NvmlNotSupportedError`, :class:`NvmlUnavailableError`,
        :class:`GpuNotFoundError` or :class:`NvmlError`.
    """
    if code == _GPU_IS_LOST:
        return GpuLostError(f"the GPU was lost ({call}: {text}); check `nvidia-smi` and the kernel log (Xid errors)")
    if code in (_NOT_SUPPORTED, _FUNCTION_NOT_FOUND):
        return NvmlNotSupportedError(call, code, text)
    if code in _UNAVAILABLE_REASONS:
        return NvmlUnavailableError(_UNAVAILABLE_REASONS[code])
    if code in (_GPU_NOT_FOUND, _NOT_FOUND, _INVALID_ARGUMENT) and "Handle" in call:
        return GpuNotFoundError(f"{call}: no such GPU ({text})")
    return NvmlError(call, code, text)


def architecture_name(code: int | None) -> str:
    """Human name of an NVML architecture code (``"unknown"`` for others)."""
    return ARCH_NAMES.get(code, "unknown") if code is not None else "unknown"


@dataclass(frozen=True)
class GpuProcess:
    """A compute process on a GPU (``nvmlDeviceGetComputeRunningProcesses``).

    Attributes:
        pid: process id as NVML reports it (the host's pid namespace inside containers).
        used_memory_bytes: GPU memory it holds, bytes (``None`` when NVML does not say).
    """

    pid: int
    used_memory_bytes: int | None = None


@runtime_checkable
class EnergyBackend(Protocol):
    """What GPU energy measurement needs from a device library. Indices are NVML indices.

    Queries that the device does not support raise :class:`NvmlNotSupportedError`; a GPU that
    stopped answering raises :class:`GpuLostError`.
    """

    def device_count(self) -> int:
        """Number of GPUs NVML sees."""
        ...

    def name(self, index: int) -> str:
        """Product name, e.g. ``NVIDIA H100 80GB HBM3``."""
        ...

    def uuid(self, index: int) -> str:
        """``GPU-xxxxxxxx-...`` UUID."""
        ...

    def pci_bus_id(self, index: int) -> str:
        """PCI bus id, ``DDDDDDDD:BB:DD.F``."""
        ...

    def driver_version(self) -> str:
        """NVIDIA driver version."""
        ...

    def nvml_version(self) -> str:
        """NVML library version."""
        ...

    def architecture(self, index: int) -> int | None:
        """NVML architecture code (5 = Volta, 7 = Ampere, 9 = Hopper ...); ``None`` if unknown."""
        ...

    def supports_energy_counter(self, index: int) -> bool:
        """Whether ``energy_mj`` works on this device (Volta or newer, and not refused)."""
        ...

    def energy_mj(self, index: int) -> int:
        """Total energy since the driver was (re)loaded, millijoules."""
        ...

    def power_mw(self, index: int) -> int:
        """Current board power, milliwatts (instant field value, else ``nvmlDeviceGetPowerUsage``)."""
        ...

    def power_source(self, index: int) -> str:
        """Which NVML path ``power_mw`` uses (:data:`POWER_SOURCE_FIELD` or :data:`POWER_SOURCE_USAGE`)."""
        ...

    def temperature_c(self, index: int) -> int | None:
        """GPU core temperature, °C (``None`` when not reported)."""
        ...

    def sm_clock_mhz(self, index: int) -> int | None:
        """Current SM clock, MHz (``None`` when not reported)."""
        ...

    def mig_enabled(self, index: int) -> bool:
        """Whether MIG mode is currently enabled."""
        ...

    def power_limit_mw(self, index: int) -> int | None:
        """Enforced power limit, milliwatts (``None`` when not reported)."""
        ...

    def compute_processes(self, index: int) -> list[GpuProcess]:
        """Compute processes holding a context on the GPU."""
        ...

    def close(self) -> None:
        """Release the library (idempotent)."""
        ...


def _import_pynvml() -> ModuleType:
    """Import NVIDIA's ``nvidia-ml-py`` bindings, refusing the deprecated ``pynvml`` wrapper.

    Raises:
        NvmlUnavailableError: the package is missing or the wrong one is installed.
    """
    try:
        import pynvml
    except ImportError:
        raise NvmlUnavailableError(
            "the Python package nvidia-ml-py is not installed (pip install nvidia-ml-py)"
        ) from None
    check_official_bindings(pynvml)
    return pynvml


def check_official_bindings(module: Any) -> None:
    """Refuse the deprecated unofficial ``pynvml`` package (detected as Zeus does).

    Both it and ``nvidia-ml-py`` install a module named ``pynvml``; the unofficial one re-exports
    the bindings with ``import *`` and so lacks the private ``_nvmlGetFunctionPointer``.

    Raises:
        NvmlUnavailableError: naming the fix.
    """
    if not hasattr(module, "_nvmlGetFunctionPointer") or not hasattr(module, "nvmlDeviceGetTotalEnergyConsumption"):
        where = getattr(module, "__file__", "?")
        raise NvmlUnavailableError(
            f"the module `pynvml` at {where} comes from the deprecated `pynvml` package, not NVIDIA's "
            "nvidia-ml-py (fix: pip uninstall -y pynvml nvidia-ml-py && pip install nvidia-ml-py)"
        )


def _field_number(value: Any, nvml: Any) -> float:
    """Numeric content of a ``c_nvmlFieldValue_t`` according to its ``valueType``."""
    by_type = {
        getattr(nvml, "NVML_VALUE_TYPE_DOUBLE", 0): "dVal",
        getattr(nvml, "NVML_VALUE_TYPE_UNSIGNED_INT", 1): "uiVal",
        getattr(nvml, "NVML_VALUE_TYPE_UNSIGNED_LONG", 2): "ulVal",
        getattr(nvml, "NVML_VALUE_TYPE_UNSIGNED_LONG_LONG", 3): "ullVal",
        getattr(nvml, "NVML_VALUE_TYPE_SIGNED_LONG_LONG", 4): "sllVal",
        getattr(nvml, "NVML_VALUE_TYPE_SIGNED_INT", 5): "siVal",
        getattr(nvml, "NVML_VALUE_TYPE_UNSIGNED_SHORT", 6): "usVal",
    }
    return getattr(value.value, by_type.get(value.valueType, "uiVal"))


def _text(value: Any) -> str:
    """NVML strings come back as ``str`` or ``bytes``."""
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlBackend:
    """:class:`EnergyBackend` over NVIDIA's ``nvidia-ml-py`` (``nvmlInit`` once, ``nvmlShutdown`` on close).

    Args:
        nvml: the bindings module; default: ``import pynvml`` (lazily, here). Tests pass a fake.

    Raises:
        NvmlUnavailableError: no bindings, no library, driver not loaded, version mismatch, no
            permission, or no GPU at all.

    Example:
        >>> backend = NvmlBackend()  # doctest: +SKIP
        >>> backend.name(0), backend.energy_mj(0)  # doctest: +SKIP
        ('NVIDIA H100 80GB HBM3', 123456789)
    """

    def __init__(self, nvml: ModuleType | Any | None = None) -> None:
        self._nvml = _import_pynvml() if nvml is None else nvml
        self._handles: dict[int, Any] = {}
        self._power_usage_only: set[int] = set()
        self._closed = True
        self._init()

    def _init(self) -> None:
        """``nvmlInit`` and a device count, every failure as :class:`NvmlUnavailableError`."""
        try:
            self._nvml.nvmlInit()
        except self._nvml.NVMLError as err:
            code = getattr(err, "value", None)
            reason = _UNAVAILABLE_REASONS.get(code, f"NVML failed to initialise: {err} (NVML code {code})")
            raise NvmlUnavailableError(reason) from None
        except OSError as err:  # a broken library file
            raise NvmlUnavailableError(f"the NVML library could not be loaded: {err}") from None
        self._closed = False
        if self.device_count() == 0:
            self.close()
            raise NvmlUnavailableError("NVML found no NVIDIA GPU")

    def _call(self, call: str, fn: Callable[..., T], *args: Any) -> T:
        """Run an NVML function, mapping ``NVMLError`` to the snnprof exception of its code."""
        try:
            return fn(*args)
        except self._nvml.NVMLError as err:
            raise error_for_code(getattr(err, "value", None), call, str(err)) from None

    def _handle(self, index: int) -> Any:
        """Cached device handle of NVML index ``index``."""
        if index not in self._handles:
            count = self.device_count()
            if not 0 <= index < count:
                raise GpuNotFoundError(f"no GPU with NVML index {index}: NVML sees {count} GPU(s) (0..{count - 1})")
            nvml = self._nvml
            self._handles[index] = self._call("nvmlDeviceGetHandleByIndex", nvml.nvmlDeviceGetHandleByIndex, index)
        return self._handles[index]

    def _optional(self, call: str, fn: Callable[..., T], *args: Any) -> T | None:
        """Like :meth:`_call`, but ``None`` when the query is not supported."""
        try:
            return self._call(call, fn, *args)
        except NvmlNotSupportedError:
            return None

    def device_count(self) -> int:  # noqa: D102
        return int(self._call("nvmlDeviceGetCount", self._nvml.nvmlDeviceGetCount))

    def name(self, index: int) -> str:  # noqa: D102
        return _text(self._call("nvmlDeviceGetName", self._nvml.nvmlDeviceGetName, self._handle(index)))

    def uuid(self, index: int) -> str:  # noqa: D102
        return _text(self._call("nvmlDeviceGetUUID", self._nvml.nvmlDeviceGetUUID, self._handle(index)))

    def pci_bus_id(self, index: int) -> str:  # noqa: D102
        info = self._call("nvmlDeviceGetPciInfo", self._nvml.nvmlDeviceGetPciInfo, self._handle(index))
        return _text(info.busId)

    def driver_version(self) -> str:  # noqa: D102
        return _text(self._call("nvmlSystemGetDriverVersion", self._nvml.nvmlSystemGetDriverVersion))

    def nvml_version(self) -> str:  # noqa: D102
        return _text(self._call("nvmlSystemGetNVMLVersion", self._nvml.nvmlSystemGetNVMLVersion))

    def architecture(self, index: int) -> int | None:  # noqa: D102
        fn = getattr(self._nvml, "nvmlDeviceGetArchitecture", None)
        if fn is None:
            return None
        code = self._optional("nvmlDeviceGetArchitecture", fn, self._handle(index))
        return None if code is None or code not in ARCH_NAMES else int(code)

    def supports_energy_counter(self, index: int) -> bool:
        """Volta or newer (or unknown) and a probe read of the counter succeeds."""
        arch = self.architecture(index)
        if arch is not None and arch < ARCH_VOLTA:
            return False
        try:
            self.energy_mj(index)
        except NvmlNotSupportedError:
            return False
        return True

    def energy_mj(self, index: int) -> int:  # noqa: D102
        fn = self._nvml.nvmlDeviceGetTotalEnergyConsumption
        return int(self._call("nvmlDeviceGetTotalEnergyConsumption", fn, self._handle(index)))

    def _instant_power_mw(self, index: int) -> int | None:
        """``NVML_FI_DEV_POWER_INSTANT`` (GPU scope), or ``None`` when the driver lacks it."""
        nvml = self._nvml
        field = getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", None)
        if field is None or not hasattr(nvml, "nvmlDeviceGetFieldValues"):
            return None
        try:
            values = self._call("nvmlDeviceGetFieldValues", nvml.nvmlDeviceGetFieldValues, self._handle(index), [field])
        except NvmlError as err:  # not supported, or an old driver's error; GPU loss propagates
            logger.debug("instant power field unavailable on GPU %d: %s", index, err)
            return None
        value = values[0]
        if getattr(value, "nvmlReturn", _SUCCESS) != _SUCCESS:
            return None
        return int(_field_number(value, nvml))

    def power_mw(self, index: int) -> int:  # noqa: D102
        if index not in self._power_usage_only:
            instant = self._instant_power_mw(index)
            if instant is not None:
                return instant
            self._power_usage_only.add(index)
            logger.info("GPU %d: instant power field not available; using %s", index, POWER_SOURCE_USAGE)
        fn = self._nvml.nvmlDeviceGetPowerUsage
        return int(self._call("nvmlDeviceGetPowerUsage", fn, self._handle(index)))

    def power_source(self, index: int) -> str:  # noqa: D102
        return POWER_SOURCE_USAGE if index in self._power_usage_only else POWER_SOURCE_FIELD

    def temperature_c(self, index: int) -> int | None:  # noqa: D102
        fn = self._nvml.nvmlDeviceGetTemperature
        sensor = getattr(self._nvml, "NVML_TEMPERATURE_GPU", _TEMPERATURE_GPU)
        return self._optional("nvmlDeviceGetTemperature", fn, self._handle(index), sensor)

    def sm_clock_mhz(self, index: int) -> int | None:  # noqa: D102
        fn = self._nvml.nvmlDeviceGetClockInfo
        clock = getattr(self._nvml, "NVML_CLOCK_SM", _CLOCK_SM)
        return self._optional("nvmlDeviceGetClockInfo", fn, self._handle(index), clock)

    def mig_enabled(self, index: int) -> bool:  # noqa: D102
        fn = getattr(self._nvml, "nvmlDeviceGetMigMode", None)
        modes = None if fn is None else self._optional("nvmlDeviceGetMigMode", fn, self._handle(index))
        enable = getattr(self._nvml, "NVML_DEVICE_MIG_ENABLE", _MIG_ENABLE)
        return bool(modes) and modes[0] == enable

    def power_limit_mw(self, index: int) -> int | None:  # noqa: D102
        fn = self._nvml.nvmlDeviceGetEnforcedPowerLimit
        return self._optional("nvmlDeviceGetEnforcedPowerLimit", fn, self._handle(index))

    def compute_processes(self, index: int) -> list[GpuProcess]:  # noqa: D102
        fn = self._nvml.nvmlDeviceGetComputeRunningProcesses
        procs = self._call("nvmlDeviceGetComputeRunningProcesses", fn, self._handle(index))
        return [GpuProcess(int(p.pid), getattr(p, "usedGpuMemory", None)) for p in procs]

    def close(self) -> None:
        """``nvmlShutdown`` once (NVML reference-counts init/shutdown)."""
        if self._closed:
            return
        self._closed = True
        self._handles.clear()
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as err:  # shutting down a lost GPU must not mask the real error
            logger.debug("nvmlShutdown failed: %s", err)

    def __enter__(self) -> NvmlBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def nvml_status(nvml: ModuleType | Any | None = None) -> str | None:
    """Capability report: ``None`` when NVML works and sees a GPU, else the reason it does not.

    Args:
        nvml: bindings module for tests; default ``pynvml``.

    Example:
        >>> reason = nvml_status()
        >>> reason is None or isinstance(reason, str)
        True
    """
    try:
        backend = NvmlBackend(nvml)
    except NvmlUnavailableError as err:
        return err.reason
    backend.close()
    return None
