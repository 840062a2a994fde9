"""The measurement protocol on the scripted fake GPU and fake clock: closed-form energies."""

from __future__ import annotations

import json

import pytest

from snnprof.energy.measure import (
    STATUS_PARTIAL,
    MeasurementInterruptedError,
    MeasureResult,
    MeasureSettings,
    Stats,
    measure,
)
from snnprof.energy.meter import METHOD_COUNTER, METHOD_SAMPLING, EnergyMeter
from snnprof.errors import HardwareMissingError
from tests.energy_measure.fakes import Rig

IDLE_W, BUSY_W, STEP_S, BATCH = 50.0, 250.0, 0.125, 4


def settings(**kw: object) -> MeasureSettings:
    base = dict(iters=8, trials=3, warmup_iters=2, min_window_s=0.0, idle_s=1.0, cooldown_s=0.5,
                cooldown_jitter=0.0, max_extensions=5)
    base.update(kw)
    return MeasureSettings(**base)


def run(rig: Rig, cfg: MeasureSettings | None = None, **meter_kw: object) -> MeasureResult:
    meter_kw.setdefault("background", False)
    meter = EnergyMeter(0, backend=rig.gpu, nvml_index=0, clock=rig.clock, sync=lambda: None, **meter_kw)
    return measure(rig.step, meter, cfg or settings(), samples_per_iter=BATCH, sleep=rig.sleep, label="fake")


def rig(**kw: object) -> Rig:
    return Rig(busy_mw=int(BUSY_W * 1000), step_s=STEP_S, idle_mw=int(IDLE_W * 1000), **kw)


def test_counter_path_idle_subtraction_is_exact() -> None:
    result = run(rig())
    assert result.status == "complete" and result.error is None
    assert result.idle is not None
    assert result.idle.power_w == IDLE_W
    assert result.idle.duration_s == 1.0
    assert result.methods == (METHOD_COUNTER,)
    assert len(result.trials) == 3
    iters = 8
    wall = iters * STEP_S
    total = BUSY_W * wall
    dynamic = total - IDLE_W * wall
    for trial in result.trials:
        assert trial.iterations == iters and trial.samples == iters * BATCH
        assert trial.wall_s == wall
        assert trial.energy_j == total
        assert trial.idle_j == IDLE_W * wall
        assert trial.dynamic_j == dynamic == (BUSY_W - IDLE_W) * wall
        assert trial.per(trial.dynamic_j, "sample") == (BUSY_W - IDLE_W) * STEP_S / BATCH
        assert trial.avg_power_w == BUSY_W
        assert trial.attempts == 1 and trial.flags == ()
    summary = result.summary()
    assert summary["energy_per_iter_j"] == Stats(3, BUSY_W * STEP_S, 0.0, BUSY_W * STEP_S, BUSY_W * STEP_S)
    assert summary["dynamic_per_sample_j"].mean == (BUSY_W - IDLE_W) * STEP_S / BATCH
    assert summary["iter_s"].mean == STEP_S


def test_temperature_and_sm_clock_logged_at_trial_edges() -> None:
    trial = run(rig()).trials[0]
    # the fake reports 40 + P/50 W °C and a high clock when busy (warm-up precedes every window)
    assert (trial.temperature_start_c, trial.temperature_end_c) == (45, 45)
    assert (trial.sm_clock_start_mhz, trial.sm_clock_end_mhz) == (1980, 1980)


def test_pre_volta_sampling_path() -> None:
    result = run(rig(arch=4))  # Pascal: no counter; constant power per phase -> trapezoids exact
    assert result.gpu.method == METHOD_SAMPLING
    assert result.methods == (METHOD_SAMPLING,)
    assert result.idle.power_w == IDLE_W
    assert [t.energy_j for t in result.trials] == [BUSY_W * 8 * STEP_S] * 3
    assert all(t.counter_j is None for t in result.trials)


def test_windows_sized_from_warm_up_and_min_seconds() -> None:
    result = run(rig(), settings(iters=4, min_window_s=3.0))
    # warm-up gives 0.125 s/iter -> ceil(3 / 0.125) = 24 iterations >= 4
    assert [t.iterations for t in result.trials] == [24, 24, 24]
    assert all(t.wall_s >= 3.0 for t in result.trials)


def test_counter_not_moving_in_a_short_window_extends_it() -> None:
    r = Rig(busy_mw=250_000, step_s=1 / 64, counter_period_s=0.125)
    result = run(r, settings(iters=2, warmup_iters=0, trials=1, idle_s=0.5), cross_check=False)
    trial = result.trials[0]
    assert trial.attempts > 1
    assert "did not move" in trial.notes[0]
    assert trial.valid and trial.energy_j > 0
    assert trial.iterations == 2 * 2 ** (trial.attempts - 1)


def test_counter_that_never_moves_excludes_the_trial() -> None:
    r = Rig(step_s=1 / 1024, counter_period_s=1024.0)
    result = run(r, settings(iters=1, warmup_iters=0, trials=1, idle_s=0.0, max_extensions=2), cross_check=False)
    trial = result.trials[0]
    assert trial.attempts == 3 and not trial.valid
    assert "excluded" in trial.notes[-1]
    assert any("no valid energy" in w for w in result.warnings)
    assert result.summary()["energy_per_iter_j"] is None


def test_not_supported_mid_run_falls_back_to_sampling() -> None:
    # counter reads: idle begin/end (2), trial 1 begin/end (2), trial 2 begin -> NotSupported
    result = run(rig(counter_fails_from_read=4))
    assert [t.method for t in result.trials] == [METHOD_COUNTER, METHOD_SAMPLING, METHOD_SAMPLING]
    assert result.methods == (METHOD_COUNTER, METHOD_SAMPLING)
    assert [t.energy_j for t in result.trials] == [BUSY_W * 8 * STEP_S] * 3


def test_gpu_lost_mid_measurement_keeps_partial_results() -> None:
    r = rig()
    per_trial = 2 + 8  # warm-up + window iterations
    lose_at = 2 + 2 * per_trial + 2 + 3  # global warm-up, two full trials, trial 3 warm-up, 3 window steps

    def on_step(n: int) -> None:
        if n == lose_at:
            r.gpu.lost = True

    r.on_step = on_step
    with pytest.raises(MeasurementInterruptedError) as info:
        run(r)
    err = info.value
    assert isinstance(err, HardwareMissingError)
    assert "trial 3 of 3" in str(err) and "2 completed trial(s) kept" in str(err)
    partial = err.partial
    assert partial.status == STATUS_PARTIAL
    assert "lost" in partial.error
    assert len(partial.trials) == 2
    assert partial.to_dict()["status"] == "partial"
    assert partial.summary()["energy_per_iter_j"].n == 2


def test_workload_error_on_a_lost_gpu_is_an_interruption() -> None:
    r = rig()

    def on_step(n: int) -> None:
        if n == 5:
            r.gpu.lost = True
            raise RuntimeError("CUDA error: unspecified launch failure")

    r.on_step = on_step
    with pytest.raises(MeasurementInterruptedError, match="stopped during trial 1"):
        run(r)


def test_workload_error_on_a_healthy_gpu_propagates() -> None:
    r = rig()
    r.on_step = lambda n: (_ for _ in ()).throw(ValueError("bad shapes")) if n == 3 else None
    with pytest.raises(ValueError, match="bad shapes"):
        run(r)


def test_mig_and_other_processes_are_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.getpid", lambda: 1000)
    result = run(rig(mig=True, processes=(1000, 4242, 77)), settings(trials=1))
    assert result.gpu.mig_enabled
    assert result.gpu.other_processes == (77, 4242)
    text = " ".join(result.warnings)
    assert "MIG mode is enabled" in text and "cannot be separated" in text
    assert "2 other compute process(es)" in text and "4242" in text


def test_no_idle_baseline_means_no_dynamic_energy() -> None:
    result = run(rig(), settings(idle_s=0.0, trials=1))
    assert result.idle is None
    assert result.trials[0].dynamic_j is None
    assert any("idle power was not measured" in w for w in result.warnings)


def test_cooldown_is_randomised_but_seeded() -> None:
    a, b = rig(), rig()
    run(a, settings(cooldown_jitter=0.5, seed=3))
    run(b, settings(cooldown_jitter=0.5, seed=3))
    assert a.clock.now == b.clock.now


def test_result_is_json_ready_with_tolerance_and_versions() -> None:
    data = json.loads(json.dumps(run(rig(), settings(trials=2)).to_dict(), allow_nan=False))
    assert data["gpu"]["driver_version"] == "999.1" and data["gpu"]["nvml_version"] == "13.999.1"
    assert "±5 %" in data["tolerance"]
    assert data["summary"]["energy_per_sample_j"]["n"] == 2
    assert set(data["trials"][0]) >= {"energy_j", "dynamic_j", "energy_per_iter_j", "dynamic_per_sample_j",
                                      "temperature_start_c", "sm_clock_end_mhz", "method", "attempts"}


def test_stats_closed_form() -> None:
    s = Stats.of([1.0, 2.0, 3.0, 6.0])
    assert (s.n, s.mean, s.min, s.max) == (4, 3.0, 1.0, 6.0)
    assert s.std == pytest.approx(((4 + 1 + 0 + 9) / 3) ** 0.5)
    assert Stats.of([]) is None
    assert Stats.of([2.0]).std == 0.0


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        MeasureSettings(trials=0)
    with pytest.raises(ValueError):
        MeasureSettings(cooldown_jitter=2.0)
