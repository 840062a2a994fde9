"""``snnprof measure CONFIG``: measured GPU energy (NVML) of a model, next to its estimates.

The work is :func:`snnprof.pipeline.measure.run_measurement`; this module parses options, prints
:func:`snnprof.render.measure.render_measurement` and writes the JSON. Without an NVIDIA GPU or
NVML the command exits with code 3 and one sentence. Everything heavy is imported inside the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from snnprof.cli_common import (
    EXIT_BAD_INPUT,
    EXIT_NO_HARDWARE,
    check_outputs,
    err_console,
    errors,
    fail,
    out_console,
    strict_json,
    write_outputs,
)
from snnprof.errors import HardwareMissingError

if TYPE_CHECKING:
    from snnprof.energy.measure import MeasureSettings
    from snnprof.energy.nvml_backend import EnergyBackend

__all__ = ["register"]


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------


def _settings(iters: int, trials: int, warmup: int, timing: tuple[float, float, float]) -> MeasureSettings:
    """Protocol settings from the options."""
    from snnprof.energy.measure import MeasureSettings

    min_seconds, idle_seconds, cooldown = timing
    return MeasureSettings(
        iters=iters, trials=trials, warmup_iters=warmup, min_window_s=min_seconds, idle_s=idle_seconds,
        cooldown_s=cooldown,
    )


def _open_or_explain() -> EnergyBackend:
    """The backend, or exit 3 with one sentence naming what is missing."""
    from snnprof.energy.nvml_backend import NvmlUnavailableError
    from snnprof.pipeline import measure as pipeline

    try:
        return pipeline.open_backend()
    except NvmlUnavailableError as err:
        fail(HardwareMissingError(f"cannot measure GPU energy: {err.reason}; {pipeline.NO_GPU_HINT}."),
             EXIT_NO_HARDWARE)


def measure(
    config: Annotated[Path, typer.Argument(help="Run config (TOML), e.g. configs/sj_spiking_cnn.toml.")],
    *,
    mode: Annotated[str, typer.Option("--mode", help="inference (no_grad) or train-step (fwd+bwd+SGD).")] = "inference",
    iters: Annotated[int, typer.Option("--iters", min=1, help="Minimum iterations per measured window.")] = 32,
    trials: Annotated[int, typer.Option("--trials", min=1, help="Measured windows (trials).")] = 5,
    gpu: Annotated[int, typer.Option("--gpu", min=0, help="CUDA device index (cuda:I).")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON.")] = None,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Warm-up iterations before each window.")] = 5,
    min_seconds: Annotated[float, typer.Option("--min-seconds", min=0.0, help="Minimum window length, s.")] = 5.0,
    idle_seconds: Annotated[
        float, typer.Option("--idle-seconds", min=0.0, help="Idle-baseline length, s (0: skip).")
    ] = 5.0,
    cooldown: Annotated[float, typer.Option("--cooldown", min=0.0, help="Idle gap before each trial, s.")] = 3.0,
    interval_ms: Annotated[
        float, typer.Option("--interval-ms", min=10.0, max=100.0, help="Power sampling period, ms.")
    ] = 50.0,
    method: Annotated[str, typer.Option("--method", help="auto, counter or sampling.")] = "auto",
    profile: Annotated[
        list[str] | None, typer.Option("--profile", "-p", help="Hardware profile for the estimate; repeat.")
    ] = None,
) -> None:
    """Measure the GPU energy (NVML) of a zoo model and show it next to the estimated energy.

    Protocol: warm-up, idle baseline, K trials (>= --iters and --min-seconds), total and dynamic energy.

    Example: [bold]snnprof measure configs/sj_spiking_cnn.toml --mode train-step --trials 5 --json m.json[/bold]
    """
    from snnprof.config import load_config
    from snnprof.energy.meter import METHODS
    from snnprof.pipeline.measure import MODES, MeasureOptions, run_measurement
    from snnprof.render.measure import render_measurement

    check_outputs(json_out)
    with errors():
        cfg = load_config(config)
        if mode not in MODES:
            fail(ValueError(f"--mode: expected one of {', '.join(MODES)}, got {mode!r}"), EXIT_BAD_INPUT)
        if method not in METHODS:
            fail(ValueError(f"--method: expected one of {', '.join(METHODS)}, got {method!r}"), EXIT_BAD_INPUT)
        options = MeasureOptions(mode, gpu, method, interval_ms / 1000.0, tuple(profile) if profile else None)
        settings = _settings(iters, trials, warmup, (min_seconds, idle_seconds, cooldown))
        backend = _open_or_explain()
        try:
            with err_console.status(f"measuring {cfg.model.name} ({mode}) ...") as status:
                report, error = run_measurement(
                    cfg, options, settings, backend, progress=lambda phase: status.update(f"measuring: {phase}")
                )
        finally:
            backend.close()
        if json_out is not None:
            write_outputs({json_out: strict_json(report.to_dict())})
        out_console.print(render_measurement(report))
        if json_out is not None:
            out_console.print(f"wrote {json_out}" + (" (partial)" if error else ""), highlight=False)
        if error is not None:
            raise error


def register(app: typer.Typer) -> None:
    """Add ``snnprof measure`` to the app."""
    app.command(no_args_is_help=True)(measure)
