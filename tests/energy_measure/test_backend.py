"""NvmlBackend over a fake ``pynvml`` module (real error classes and constants), and lazy imports."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pynvml
import pytest

from snnprof.energy import nvml_backend as nb
from snnprof.energy.nvml_backend import (
    POWER_SOURCE_FIELD,
    POWER_SOURCE_USAGE,
    GpuLostError,
    GpuNotFoundError,
    NvmlBackend,
    NvmlError,
    NvmlNotSupportedError,
    NvmlUnavailableError,
    check_official_bindings,
    error_for_code,
    nvml_status,
)
from snnprof.errors import HardwareMissingError


def err(code: int) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)


def fake_nvml(**overrides: object) -> SimpleNamespace:
    """A module-like object with pynvml's constants/errors and scripted device functions."""
    field = SimpleNamespace(
        nvmlReturn=0, valueType=pynvml.NVML_VALUE_TYPE_UNSIGNED_INT, value=SimpleNamespace(uiVal=123_000)
    )
    funcs = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlDeviceGetCount": lambda: 2,
        "nvmlDeviceGetHandleByIndex": lambda i: f"h{i}",
        "nvmlDeviceGetName": lambda h: b"NVIDIA Fake",
        "nvmlDeviceGetUUID": lambda h: "GPU-1234",
        "nvmlDeviceGetPciInfo": lambda h: SimpleNamespace(busId=b"00000000:3B:00.0"),
        "nvmlSystemGetDriverVersion": lambda: "550.54",
        "nvmlSystemGetNVMLVersion": lambda: "12.550.54",
        "nvmlDeviceGetArchitecture": lambda h: pynvml.NVML_DEVICE_ARCH_HOPPER,
        "nvmlDeviceGetTotalEnergyConsumption": lambda h: 987_654,
        "nvmlDeviceGetFieldValues": lambda h, ids: [field],
        "nvmlDeviceGetPowerUsage": lambda h: 111_000,
        "nvmlDeviceGetTemperature": lambda h, s: 55,
        "nvmlDeviceGetClockInfo": lambda h, c: 1980,
        "nvmlDeviceGetMigMode": lambda h: [1, 1],
        "nvmlDeviceGetEnforcedPowerLimit": lambda h: 700_000,
        "nvmlDeviceGetComputeRunningProcesses": lambda h: [SimpleNamespace(pid=42, usedGpuMemory=1024)],
        "_nvmlGetFunctionPointer": lambda name: None,
    }
    constants = {k: getattr(pynvml, k) for k in dir(pynvml) if k.startswith("NVML_")}
    return SimpleNamespace(NVMLError=pynvml.NVMLError, **constants, **{**funcs, **overrides})


def raising(code: int):
    def fn(*args: object) -> None:
        raise err(code)

    return fn


def test_return_codes_match_pynvml() -> None:
    for name in ("UNINITIALIZED", "NOT_SUPPORTED", "NO_PERMISSION", "DRIVER_NOT_LOADED", "LIBRARY_NOT_FOUND",
                 "FUNCTION_NOT_FOUND", "GPU_IS_LOST", "LIB_RM_VERSION_MISMATCH", "GPU_NOT_FOUND", "NOT_FOUND",
                 "INVALID_ARGUMENT"):
        assert getattr(nb, f"_{name}") == getattr(pynvml, f"NVML_ERROR_{name}"), name
    assert nb.ARCH_VOLTA == pynvml.NVML_DEVICE_ARCH_VOLTA
    assert nb.ARCH_NAMES[pynvml.NVML_DEVICE_ARCH_HOPPER] == "Hopper"
    assert nb._MIG_ENABLE == pynvml.NVML_DEVICE_MIG_ENABLE
    assert (nb._TEMPERATURE_GPU, nb._CLOCK_SM) == (pynvml.NVML_TEMPERATURE_GPU, pynvml.NVML_CLOCK_SM)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (pynvml.NVML_ERROR_GPU_IS_LOST, GpuLostError),
        (pynvml.NVML_ERROR_NOT_SUPPORTED, NvmlNotSupportedError),
        (pynvml.NVML_ERROR_FUNCTION_NOT_FOUND, NvmlNotSupportedError),
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, NvmlUnavailableError),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, NvmlUnavailableError),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, NvmlUnavailableError),
        (pynvml.NVML_ERROR_NO_PERMISSION, NvmlUnavailableError),
        (pynvml.NVML_ERROR_UNKNOWN, NvmlError),
    ],
)
def test_error_mapping(code: int, cls: type) -> None:
    mapped = error_for_code(code, "nvmlDeviceGetPowerUsage", str(err(code)))
    assert type(mapped) is cls
    if cls in (GpuLostError, NvmlUnavailableError):
        assert isinstance(mapped, HardwareMissingError)


def test_missing_library_on_this_machine() -> None:
    reason = nvml_status()
    if reason is None:
        pytest.skip("an NVIDIA GPU with NVML is present")
    with pytest.raises(NvmlUnavailableError) as info:
        NvmlBackend()
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("code", "needle"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "libnvidia-ml.so.1"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "driver is not loaded"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "reboot"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "permission"),
    ],
)
def test_init_failures_name_what_is_missing(code: int, needle: str) -> None:
    with pytest.raises(NvmlUnavailableError, match=needle):
        NvmlBackend(fake_nvml(nvmlInit=raising(code)))


def test_no_gpu_is_unavailable() -> None:
    with pytest.raises(NvmlUnavailableError, match="no NVIDIA GPU"):
        NvmlBackend(fake_nvml(nvmlDeviceGetCount=lambda: 0))


def test_deprecated_pynvml_wrapper_is_refused() -> None:
    wrapper = SimpleNamespace(nvmlInit=lambda: None, nvmlDeviceGetTotalEnergyConsumption=None, __file__="/x/pynvml.py")
    with pytest.raises(NvmlUnavailableError, match="deprecated `pynvml` package"):
        check_official_bindings(wrapper)
    check_official_bindings(pynvml)  # nvidia-ml-py passes


def test_queries_and_instant_power_field() -> None:
    backend = NvmlBackend(fake_nvml())
    assert backend.device_count() == 2
    assert backend.name(1) == "NVIDIA Fake"
    assert backend.pci_bus_id(0) == "00000000:3B:00.0"
    assert backend.supports_energy_counter(0)
    assert backend.energy_mj(0) == 987_654
    assert backend.power_mw(0) == 123_000
    assert backend.power_source(0) == POWER_SOURCE_FIELD
    assert (backend.temperature_c(0), backend.sm_clock_mhz(0), backend.power_limit_mw(0)) == (55, 1980, 700_000)
    assert backend.mig_enabled(0)
    assert [p.pid for p in backend.compute_processes(0)] == [42]
    with pytest.raises(GpuNotFoundError):
        backend.name(2)
    backend.close()
    backend.close()  # idempotent


def test_power_falls_back_to_power_usage_when_the_field_is_refused() -> None:
    refused = SimpleNamespace(nvmlReturn=pynvml.NVML_ERROR_NOT_SUPPORTED, valueType=1, value=None)
    backend = NvmlBackend(fake_nvml(nvmlDeviceGetFieldValues=lambda h, ids: [refused]))
    assert backend.power_mw(0) == 111_000
    assert backend.power_source(0) == POWER_SOURCE_USAGE
    backend = NvmlBackend(fake_nvml(nvmlDeviceGetFieldValues=raising(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)))
    assert backend.power_mw(1) == 111_000


def test_pre_volta_and_refused_counters_are_not_supported() -> None:
    pascal = NvmlBackend(fake_nvml(nvmlDeviceGetArchitecture=lambda h: pynvml.NVML_DEVICE_ARCH_PASCAL))
    assert not pascal.supports_energy_counter(0)
    vgpu = NvmlBackend(fake_nvml(nvmlDeviceGetTotalEnergyConsumption=raising(pynvml.NVML_ERROR_NOT_SUPPORTED)))
    assert not vgpu.supports_energy_counter(0)
    with pytest.raises(NvmlNotSupportedError):
        vgpu.energy_mj(0)


def test_gpu_lost_and_unsupported_metadata() -> None:
    backend = NvmlBackend(
        fake_nvml(
            nvmlDeviceGetTotalEnergyConsumption=raising(pynvml.NVML_ERROR_GPU_IS_LOST),
            nvmlDeviceGetTemperature=raising(pynvml.NVML_ERROR_NOT_SUPPORTED),
            nvmlDeviceGetMigMode=raising(pynvml.NVML_ERROR_NOT_SUPPORTED),
        )
    )
    with pytest.raises(GpuLostError, match="lost"):
        backend.energy_mj(0)
    assert backend.temperature_c(0) is None
    assert backend.mig_enabled(0) is False


IMPORT_CHECK = """
import builtins, sys
importers = []
_orig = builtins.__import__

def _spy(name, globals=None, *args, **kwargs):
    if name == "pynvml":
        importers.append((globals or {}).get("__name__", "?"))
    return _orig(name, globals, *args, **kwargs)

builtins.__import__ = _spy
import snnprof, snnprof.energy, snnprof.energy.meter, snnprof.energy.measure, snnprof.energy.nvml_backend, snnprof.cli
ours = [m for m in importers if m.startswith("snnprof")]
assert not ours, f"snnprof modules import pynvml at import time: {ours}"
nvml = sys.modules.get("pynvml")
assert nvml is None or nvml.nvmlLib is None, "the NVML library was loaded at import time"
"""


def test_importing_snnprof_does_not_import_nvml() -> None:
    # torch.cuda itself imports the pure-Python `pynvml` module (without loading the library);
    # snnprof's own modules must not import it, and nothing may load libnvidia-ml at import time.
    cmd = [sys.executable, "-c", IMPORT_CHECK]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
