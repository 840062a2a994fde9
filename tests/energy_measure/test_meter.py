"""EnergyMeter on the scripted fake GPU: counter and sampling paths, flags, windows, index mapping."""

from __future__ import annotations

import time

import pytest

from snnprof.energy.meter import (
    FLAG_COUNTER_RESET,
    FLAG_COUNTER_UNCHANGED,
    FLAG_COUNTER_UNSUPPORTED,
    FLAG_SAMPLER_ERROR,
    METHOD_COUNTER,
    METHOD_NONE,
    METHOD_SAMPLING,
    EnergyMeter,
    WindowError,
    parse_pci_bus_id,
    resolve_nvml_index,
    trapezoid_j,
)
from snnprof.energy.nvml_backend import (
    GpuLostError,
    GpuNotFoundError,
    NvmlNotSupportedError,
    NvmlUnavailableError,
)
from snnprof.errors import HardwareMissingError
from tests.energy_measure.fakes import FakeClock, FakeGpu, Rig


def meter_for(rig: Rig, **kwargs: object) -> EnergyMeter:
    kwargs.setdefault("background", False)
    return EnergyMeter(0, backend=rig.gpu, nvml_index=0, clock=rig.clock, sync=lambda: None, **kwargs)


# --------------------------------------------------------------------------- counter path


def test_counter_window_is_exact_and_cross_checked() -> None:
    rig = Rig(busy_mw=250_000, step_s=0.125)
    meter = meter_for(rig)
    assert meter.method == METHOD_COUNTER
    rig.step()  # power is busy from here on
    meter.begin_window("w")
    for _ in range(8):
        rig.step()
    m = meter.end_window("w")
    assert m.method == METHOD_COUNTER
    assert m.duration_s == 8 * 0.125
    assert m.counter_j == 250.0 * 8 * 0.125  # 250 W for 1 s
    assert m.energy_j == m.counter_j
    assert m.sampled_j == 250.0  # trapezoid over the edge samples, constant power
    assert m.avg_power_w == 250.0
    assert m.flags == ()
    assert m.valid


def test_counter_unchanged_in_a_short_window_is_flagged_not_silent() -> None:
    rig = Rig(counter_period_s=0.125, step_s=1 / 64)
    meter = meter_for(rig, cross_check=False)
    meter.begin_window("short")
    rig.step()  # 15.6 ms, inside one counter period
    m = meter.end_window("short")
    assert m.counter_j == 0.0
    assert FLAG_COUNTER_UNCHANGED in m.flags


def test_counter_period_quantises_like_nvml() -> None:
    rig = Rig(counter_period_s=0.125, busy_mw=256_000, step_s=0.0625)
    meter = meter_for(rig, cross_check=False)
    rig.sleep(0.0625)  # t = 1024.0625
    meter.begin_window("w")  # counter shows the value at 1024.0
    for _ in range(4):
        rig.step()  # t = 1024.3125; last update at 1024.25
    m = meter.end_window("w")
    # updates at .125 and .25 add idle 0.0625 s at 50 W plus busy 0.1875 s at 256 W
    assert m.counter_j == pytest.approx(50.0 * 0.0625 + 256.0 * 0.1875, abs=1e-3)


# --------------------------------------------------------------------------- sampling path


def test_pre_volta_uses_sampling_with_trapezoids() -> None:
    rig = Rig(arch=4)  # Pascal: no energy counter
    meter = meter_for(rig)
    assert meter.method == METHOD_SAMPLING
    rig.gpu.set_power(100_000)
    meter.begin_window("w")  # sample (t0, 100 W)
    rig.clock.advance(0.25)
    rig.gpu.set_power(200_000)
    meter.sample_power()  # (t0 + .25, 200 W)
    rig.clock.advance(0.5)
    rig.gpu.set_power(300_000)
    m = meter.end_window("w")  # (t0 + .75, 300 W)
    expected = (100 + 200) / 2 * 0.25 + (200 + 300) / 2 * 0.5
    assert m.method == METHOD_SAMPLING
    assert m.energy_j == m.sampled_j == expected
    assert m.counter_j is None
    assert m.samples == 3


def test_trapezoid_closed_form_and_window_bounds() -> None:
    samples = [(2.0, 3000.0), (0.0, 1000.0), (1.0, 2000.0), (5.0, 9e9)]  # unsorted; last is outside
    energy, n = trapezoid_j(samples, 0.0, 2.0)
    assert n == 3
    assert energy == ((1000 + 2000) / 2 * 1 + (2000 + 3000) / 2 * 1) / 1000
    assert trapezoid_j([(0.0, 5.0)], 0.0, 1.0) == (0.0, 1)


def test_background_sampler_thread_collects_samples() -> None:
    gpu = FakeGpu(time.monotonic, arch=4, idle_mw=80_000)
    meter = EnergyMeter(0, backend=gpu, nvml_index=0, sample_interval_s=0.01, sync=lambda: None)
    meter.begin_window("w")
    time.sleep(0.15)
    m = meter.end_window("w")
    meter.close()
    assert m.samples >= 5
    assert m.energy_j == pytest.approx(80.0 * m.duration_s, rel=1e-9)


@pytest.mark.parametrize("interval", [0.005, 0.2])
def test_sampling_interval_must_be_10_to_100_ms(interval: float) -> None:
    with pytest.raises(ValueError, match="0.01-0.1"):
        meter_for(Rig(), sample_interval_s=interval)


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("cross_check", [False, True])
def test_counter_wraparound_is_invalid_and_flagged(cross_check: bool) -> None:
    rig = Rig()
    meter = meter_for(rig, cross_check=cross_check)
    rig.step()
    meter.begin_window("w")
    rig.step()
    rig.gpu.reset_counter()  # driver reload: end value < start value
    rig.step()
    m = meter.end_window("w")
    assert FLAG_COUNTER_RESET in m.flags
    assert m.counter_j is None
    if cross_check:
        assert m.method == METHOD_SAMPLING
        assert m.energy_j == 250.0 * 0.25
    else:
        assert m.method == METHOD_NONE
        assert m.energy_j is None and not m.valid


def test_not_supported_at_first_read_falls_back_to_sampling() -> None:
    rig = Rig(counter_fails_from_read=0)  # claims Volta+, but the counter read is refused (vGPU)
    meter = meter_for(rig)
    rig.step()
    meter.begin_window("w")
    rig.step()
    m = meter.end_window("w")
    assert meter.method == METHOD_SAMPLING
    assert m.method == METHOD_SAMPLING
    assert FLAG_COUNTER_UNSUPPORTED in m.flags
    assert m.energy_j == 250.0 * 0.125


def test_not_supported_mid_window_keeps_open_windows_through_samples() -> None:
    rig = Rig(counter_fails_from_read=2)  # two begin reads work, then NotSupported
    meter = meter_for(rig)
    rig.step()
    meter.begin_window("outer")
    meter.begin_window("inner")
    rig.step()
    inner = meter.end_window("inner")
    rig.step()
    outer = meter.end_window("outer")
    assert inner.method == outer.method == METHOD_SAMPLING
    assert FLAG_COUNTER_UNSUPPORTED in inner.flags
    assert inner.energy_j == 250.0 * 0.125
    assert outer.energy_j == 250.0 * 0.25
    meter.begin_window("later")
    rig.step()
    later = meter.end_window("later")
    assert later.method == METHOD_SAMPLING and later.flags == ()


def test_power_failing_at_window_end_keeps_the_counter_value() -> None:
    rig = Rig()
    meter = meter_for(rig)
    rig.step()
    meter.begin_window("w")
    rig.step()
    rig.gpu.power_supported = False
    m = meter.end_window("w")
    assert FLAG_SAMPLER_ERROR in m.flags
    assert m.method == METHOD_COUNTER and m.energy_j == 250.0 * 0.125 and m.sampled_j is None


def test_forced_counter_on_pre_volta_is_refused() -> None:
    with pytest.raises(NvmlNotSupportedError, match="energy counter"):
        meter_for(Rig(arch=4), method="counter")


def test_neither_counter_nor_power_is_hardware_missing() -> None:
    with pytest.raises(NvmlUnavailableError, match="neither the energy counter nor power"):
        meter_for(Rig(arch=4, power_supported=False))


def test_gpu_lost_at_window_end_raises() -> None:
    rig = Rig()
    meter = meter_for(rig)
    meter.begin_window("w")
    rig.gpu.lost = True
    with pytest.raises(GpuLostError):
        meter.end_window("w")
    assert meter.open_windows == ()


def test_gpu_lost_in_the_sampler_thread_surfaces_at_window_end() -> None:
    gpu = FakeGpu(time.monotonic, arch=4)
    meter = EnergyMeter(0, backend=gpu, nvml_index=0, sample_interval_s=0.01, sync=lambda: None)
    meter.begin_window("w")
    gpu.lost = True
    time.sleep(0.05)
    with pytest.raises(GpuLostError):
        meter.end_window("w")
    meter.close()


def test_missing_library_raises_specific_hardware_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from snnprof.energy.nvml_backend import nvml_status

    if nvml_status() is None:
        pytest.skip("an NVIDIA GPU with NVML is present")
    with pytest.raises(NvmlUnavailableError) as info:
        EnergyMeter(0)
    assert isinstance(info.value, HardwareMissingError)
    assert "NVML" in str(info.value) or "NVIDIA" in str(info.value)


# --------------------------------------------------------------------------- windows


def test_nested_and_overlapping_windows() -> None:
    rig = Rig(busy_mw=256_000, step_s=0.125)
    meter = meter_for(rig, cross_check=False)
    meter.begin_window("a")
    rig.step()
    meter.begin_window("b")  # nested in a, overlaps c
    rig.step()
    a = meter.end_window("a")
    meter.begin_window("c")
    rig.step()
    b = meter.end_window("b")
    rig.step()
    c = meter.end_window("c")
    per_step = 256.0 * 0.125
    assert (a.energy_j, b.energy_j, c.energy_j) == (2 * per_step, 2 * per_step, 2 * per_step)
    assert (a.duration_s, b.duration_s, c.duration_s) == (0.25, 0.25, 0.25)


def test_window_names_must_be_unique_and_open() -> None:
    meter = meter_for(Rig())
    meter.begin_window("w")
    with pytest.raises(WindowError, match="already open"):
        meter.begin_window("w")
    with pytest.raises(WindowError, match="not open"):
        meter.end_window("x")
    assert meter.end_window("w", cancel=True) is None


def test_context_manager_sets_measurement_and_cancels_on_error() -> None:
    rig = Rig()
    meter = meter_for(rig)
    with meter.window("ok") as w:
        rig.step()
    assert w.measurement is not None and w.measurement.energy_j == 250.0 * 0.125
    with pytest.raises(RuntimeError), meter.window("boom") as w2:
        raise RuntimeError("workload failed")
    assert w2.measurement is None
    assert meter.open_windows == ()


def test_sync_runs_before_each_edge_timestamp() -> None:
    clock = FakeClock()
    events: list[str] = []

    def timed() -> float:
        events.append("clock")
        return clock()

    gpu = FakeGpu(clock)
    meter = EnergyMeter(0, backend=gpu, nvml_index=0, clock=timed, sync=lambda: events.append("sync"),
                        background=False, cross_check=False)
    events.clear()
    meter.begin_window("w")
    meter.end_window("w")
    assert events == ["sync", "clock", "sync", "clock"]


# --------------------------------------------------------------------------- CUDA -> NVML index


def test_parse_pci_bus_id() -> None:
    assert parse_pci_bus_id("00000000:3B:00.0") == (0, 0x3B, 0)
    assert parse_pci_bus_id("garbage") is None


def test_resolve_index_through_cuda_visible_devices() -> None:
    gpu = FakeGpu(FakeClock(), count=4)
    no_torch = lambda i: None  # noqa: E731
    assert resolve_nvml_index(0, gpu, {}, no_torch) == 0
    assert resolve_nvml_index(0, gpu, {"CUDA_VISIBLE_DEVICES": "2,0"}, no_torch) == 2
    assert resolve_nvml_index(1, gpu, {"CUDA_VISIBLE_DEVICES": "2,0"}, no_torch) == 0
    assert resolve_nvml_index(0, gpu, {"CUDA_VISIBLE_DEVICES": "GPU-00000003"}, no_torch) == 3
    with pytest.raises(GpuNotFoundError):
        resolve_nvml_index(2, gpu, {"CUDA_VISIBLE_DEVICES": "2,0"}, no_torch)
    with pytest.raises(GpuNotFoundError):
        resolve_nvml_index(7, gpu, {}, no_torch)


def test_resolve_index_prefers_the_pci_address_torch_reports() -> None:
    gpu = FakeGpu(FakeClock(), count=4)
    assert resolve_nvml_index(0, gpu, {"CUDA_VISIBLE_DEVICES": "0"}, lambda i: (0, 0x3B + 3, 0)) == 3
