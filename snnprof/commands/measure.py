"""``snnprof measure CONFIG``: measured GPU energy (NVML) of a zoo model, next to its estimates.

The model and inputs come from the config (as for ``snnprof count``), placed on ``cuda:GPU``;
one iteration is an inference batch (``no_grad``, the zoo runner) or a training step (forward,
``output.float().pow(2).mean()``, backward, SGD step). The protocol is
:func:`snnprof.energy.measure.measure`. Without an NVIDIA GPU or NVML the command exits with
code 3 and one sentence. Everything heavy (torch, NVML) is imported inside the command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from snnprof.cli_common import (
    EXIT_BAD_INPUT,
    EXIT_NO_HARDWARE,
    err_console,
    errors,
    fail,
    out_console,
    write_outputs,
)
from snnprof.errors import ConfigError, HardwareMissingError

if TYPE_CHECKING:
    import torch

    from snnprof.config import RunConfig
    from snnprof.energy.measure import MeasureResult, MeasureSettings, Stats
    from snnprof.energy.nvml_backend import EnergyBackend

__all__ = ["MODES", "SCHEMA", "MeasureOptions", "build_report", "register", "render_report", "run_measurement"]

SCHEMA = "snnprof.measure/1"
MODES: tuple[str, ...] = ("inference", "train-step")
#: Learning rate of the train-step mode's plain SGD.
TRAIN_LR = 1e-3
_NO_GPU_HINT = "`snnprof count` estimates still work without a GPU"


@dataclass(frozen=True)
class MeasureOptions:
    """What the command line chose.

    Attributes:
        mode: ``inference`` or ``train-step``.
        gpu: CUDA index (``cuda:gpu``).
        method: ``auto``, ``counter`` or ``sampling``.
        interval_s: power sampling period, s.
        profiles: hardware profiles for the estimate (``None``: the config's).
    """

    mode: str = "inference"
    gpu: int = 0
    method: str = "auto"
    interval_s: float = 0.05
    profiles: tuple[str, ...] | None = None


# ---------------------------------------------------------------------------------------------
# hardware access (monkeypatched by the tests)
# ---------------------------------------------------------------------------------------------


def _open_backend() -> EnergyBackend:
    """The real NVML backend (raises NvmlUnavailableError without a GPU/NVML)."""
    from snnprof.energy.nvml_backend import NvmlBackend

    return NvmlBackend()


def _cuda_device(gpu: int) -> torch.device:
    """``cuda:gpu``, checking torch has CUDA and the index exists."""
    import torch

    if not torch.cuda.is_available():
        raise HardwareMissingError(
            f"cannot measure GPU energy: this torch build ({torch.__version__}) cannot use CUDA; {_NO_GPU_HINT}"
        )
    if not 0 <= gpu < torch.cuda.device_count():
        raise HardwareMissingError(f"--gpu {gpu}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(f"cuda:{gpu}")


# ---------------------------------------------------------------------------------------------
# workload
# ---------------------------------------------------------------------------------------------


def _to_device(inputs: Any, device: torch.device) -> Any:
    """Move a tensor / tuple / dict of tensors to ``device``."""
    if isinstance(inputs, dict):
        return {k: _to_device(v, device) for k, v in inputs.items()}
    if isinstance(inputs, tuple | list):
        return type(inputs)(_to_device(v, device) for v in inputs)
    return inputs.to(device) if hasattr(inputs, "to") else inputs


def _first_tensor(output: Any) -> torch.Tensor:
    """The first tensor in a model output (tensor, tuple/list or dict)."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    values = output.values() if isinstance(output, dict) else output
    for value in values:
        return _first_tensor(value)
    raise TypeError(f"the model returned no tensor ({type(output).__name__})")


def _make_step(cfg: RunConfig, mode: str, device: torch.device) -> Callable[[], object]:
    """Build the model and inputs on ``device`` and return one iteration of ``mode``."""
    import torch

    from snnprof.models import get_entry
    from snnprof.runner import build_model, load_checkpoint, make_inputs

    torch.manual_seed(cfg.input.seed)
    model = build_model(cfg)
    if cfg.model.checkpoint is not None:
        load_checkpoint(model, cfg.model.checkpoint, cfg.path)
    model = model.to(device)
    inputs = _to_device(make_inputs(cfg, model), device)
    run, steps = get_entry(cfg.model.name).run, cfg.input.time_steps
    if mode == "inference":
        model.eval()

        def infer() -> object:
            with torch.no_grad():
                return run(model, inputs, steps)

        return infer
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=TRAIN_LR)

    def train_step() -> object:
        optimizer.zero_grad(set_to_none=True)
        loss = _first_tensor(run(model, inputs, steps)).float().pow(2).mean()
        loss.backward()
        optimizer.step()
        return loss

    return train_step


def _estimates(cfg: RunConfig, profiles: tuple[str, ...] | None) -> dict[str, dict[str, Any]]:
    """Estimated energy of the config on each hardware profile (``snnprof count``), joules."""
    from snnprof.runner import run_count

    result = run_count(cfg, profiles=list(profiles) if profiles else None)
    return {
        name: {
            "total_j": entry["total_pj"] * 1e-12,
            "per_sample_j": entry["per_sample_pj"] * 1e-12,
            "fidelity": entry.get("provenance", {}).get("fidelity"),
            "source": entry.get("provenance", {}).get("source"),
            "warnings": list(entry.get("warnings", [])),
        }
        for name, entry in result.energy.items()
    }


def run_measurement(
    cfg: RunConfig,
    options: MeasureOptions,
    settings: MeasureSettings,
    backend: EnergyBackend,
    progress: Callable[[str], None] | None = None,
) -> tuple[MeasureResult, dict[str, dict[str, Any]], HardwareMissingError | None]:
    """Estimate, then measure; a GPU lost mid-way returns the partial result and its error.

    Returns:
        ``(measured, estimated, error)``; ``error`` is ``None`` for a complete measurement.
    """
    from snnprof.energy.measure import MeasurementInterruptedError, measure
    from snnprof.energy.meter import EnergyMeter

    device = _cuda_device(options.gpu)
    estimated = _estimates(cfg, options.profiles)
    step = _make_step(cfg, options.mode, device)
    meter = EnergyMeter(options.gpu, backend=backend, method=options.method, sample_interval_s=options.interval_s)
    label = f"{cfg.model.name} {options.mode}"
    try:
        result = measure(
            step, meter, settings, samples_per_iter=cfg.input.batch_size, label=label, progress=progress
        )
    except MeasurementInterruptedError as err:
        return err.partial, estimated, err
    except RuntimeError as err:  # CUDA out of memory, shape errors ...
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(cfg.path, "model", f"the {options.mode} workload failed on {device}: {first}") from None
    finally:
        meter.close()
    return result, estimated, None


# ---------------------------------------------------------------------------------------------
# report: data, then rendering
# ---------------------------------------------------------------------------------------------


def _comparison(measured: MeasureResult, estimated: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Measured per-sample energy (mean) over each profile's estimate."""
    summary = measured.summary()
    out: dict[str, Any] = {}
    for name, est in estimated.items():
        per_sample = est["per_sample_j"]
        ratios = {}
        for key in ("energy_per_sample_j", "dynamic_per_sample_j"):
            stats = summary.get(key)
            ratios[key.replace("_j", "_over_estimate")] = (
                stats.mean / per_sample if stats is not None and per_sample > 0 else None
            )
        out[name] = ratios
    return out


def _cross_check(measured: MeasureResult) -> dict[str, Any] | None:
    """Sampling vs counter over the trials that have both (``sampled_j / counter_j``)."""
    ratios = [t.sampled_j / t.counter_j for t in measured.trials if t.sampled_j is not None and t.counter_j]
    if not ratios:
        return None
    return {"sampled_over_counter_mean": sum(ratios) / len(ratios), "min": min(ratios), "max": max(ratios),
            "trials": len(ratios)}


def build_report(
    cfg: RunConfig, options: MeasureOptions, measured: MeasureResult, estimated: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The JSON-ready report (schema ``snnprof.measure/1``): measured, estimated, comparison."""
    return {
        "schema": SCHEMA,
        "status": measured.status,
        "model": cfg.model.name,
        "mode": options.mode,
        "batch_size": cfg.input.batch_size,
        "time_steps": cfg.input.time_steps,
        "cuda_device": options.gpu,
        "method_requested": options.method,
        "config": cfg.to_dict(),
        "measured": measured.to_dict(),
        "estimated": estimated,
        "estimate_scope": "forward pass (inference) of one batch; a train step also runs backward and update",
        "comparison": _comparison(measured, estimated),
        "cross_check": _cross_check(measured),
    }


def _joules(value: float | None) -> str:
    """Energy in J with an SI prefix (``—`` for ``None``)."""
    from snnprof.render import format_energy_pj

    return "—" if value is None else format_energy_pj(value * 1e12)


def _plain(value: float | None, unit: str) -> str:
    """A W or s value with an SI prefix."""
    from snnprof.render import format_si

    return "—" if value is None else format_si(value, unit)


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("energy / iteration", "energy_per_iter_j", "J"),
    ("energy / sample", "energy_per_sample_j", "J"),
    ("dynamic / iteration", "dynamic_per_iter_j", "J"),
    ("dynamic / sample", "dynamic_per_sample_j", "J"),
    ("average power", "avg_power_w", "W"),
    ("window", "wall_s", "s"),
    ("time / iteration", "iter_s", "s"),
)


def _cell(stats: Stats | None, attr: str, unit: str) -> str:
    """One formatted statistic."""
    if stats is None:
        return "—"
    value = getattr(stats, attr)
    return _joules(value) if unit == "J" else _plain(value, unit)


def _measured_table(measured: MeasureResult) -> Table:
    """Mean/std/min/max of each measured quantity over the valid trials."""
    n = len(measured.valid_trials)
    table = Table(title=f"Measured ({n} trial(s), {', '.join(measured.methods) or 'no'} method)", title_justify="left")
    table.add_column("quantity", no_wrap=True)
    for header in ("mean", "std", "min", "max"):
        table.add_column(header, justify="right", no_wrap=True)
    summary = measured.summary()
    for label, key, unit in _ROWS:
        stats = summary.get(key)
        table.add_row(label, *(_cell(stats, a, unit) for a in ("mean", "std", "min", "max")))
    return table


def _ratio(value: float | None) -> str:
    """A measured/estimated ratio, ``2,880×`` or ``1.23×``."""
    if value is None:
        return "—"
    return f"{value:,.0f}×" if abs(value) >= 1000 else f"{value:.3g}×"


def _estimate_table(report: Mapping[str, Any]) -> Table:
    """Estimated energy per sample on each profile next to the measured one."""
    summary = report["measured"]["summary"]
    total = (summary.get("energy_per_sample_j") or {}).get("mean")
    dynamic = (summary.get("dynamic_per_sample_j") or {}).get("mean")
    table = Table(title="Per sample: measured (mean) vs estimated (hardware profiles)", title_justify="left")
    for header in ("profile", "fidelity", "estimated", "measured", "dynamic", "dyn./est."):
        table.add_column(header, justify="left" if header in ("profile", "fidelity") else "right", no_wrap=True)
    for name, est in report["estimated"].items():
        ratio = report["comparison"][name]["dynamic_per_sample_over_estimate"]
        table.add_row(
            name, str(est.get("fidelity") or "—"), _joules(est["per_sample_j"]), _joules(total), _joules(dynamic),
            _ratio(ratio),
        )
    return table


def _header(report: Mapping[str, Any]) -> Text:
    """Model, mode and GPU line."""
    gpu = report["measured"]["gpu"]
    return Text(
        f"{report['model']}  {report['mode']} · batch {report['batch_size']} · T {report['time_steps']} · "
        f"GPU {gpu['index']} {gpu['name']} ({gpu['architecture']}) · driver {gpu['driver_version']} · "
        f"NVML {gpu['nvml_version']} · power via {gpu['power_source']}",
        style="bold",
    )


def _state_line(measured: Mapping[str, Any]) -> Text:
    """Idle baseline, temperatures and SM clocks."""
    idle = measured["idle"]
    parts = []
    if idle and idle["power_w"] is not None:
        parts.append(f"idle {_plain(idle['power_w'], 'W')} over {_plain(idle['duration_s'], 's')} ({idle['method']})")
    trials = measured["trials"]
    temps = [t[k] for t in trials for k in ("temperature_start_c", "temperature_end_c") if t[k] is not None]
    clocks = [t[k] for t in trials for k in ("sm_clock_start_mhz", "sm_clock_end_mhz") if t[k] is not None]
    if temps:
        parts.append(f"temperature {min(temps)}–{max(temps)} °C")
    if clocks:
        parts.append(f"SM clock {min(clocks)}–{max(clocks)} MHz")
    return Text(" · ".join(parts) or "no idle baseline")


def render_report(report: Mapping[str, Any], measured: MeasureResult) -> RenderableType:
    """The terminal view of a report."""
    parts: list[RenderableType] = [_header(report)]
    if report["status"] != "complete":
        parts.append(Text(f"PARTIAL RESULT: {report['measured']['error']}", style="bold red"))
    parts += [_measured_table(measured), _state_line(report["measured"])]
    check = report["cross_check"]
    if check is not None:
        parts.append(Text(
            f"cross-check: power sampling / energy counter = {check['sampled_over_counter_mean']:.3f} "
            f"(min {check['min']:.3f}, max {check['max']:.3f}, {check['trials']} trial(s))"
        ))
    parts.append(_estimate_table(report))
    notes = [report["measured"]["tolerance"], f"estimates cover the {report['estimate_scope']}"]
    notes += [f"warning: {w}" for w in report["measured"]["warnings"]]
    parts += [Text(n, style="dim" if not n.startswith("warning") else "yellow") for n in notes]
    return Group(*parts)


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

    try:
        return _open_backend()
    except NvmlUnavailableError as err:
        fail(HardwareMissingError(f"cannot measure GPU energy: {err.reason}; {_NO_GPU_HINT}."), EXIT_NO_HARDWARE)


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
                measured, estimated, error = run_measurement(
                    cfg, options, settings, backend, progress=lambda phase: status.update(f"measuring: {phase}")
                )
        finally:
            backend.close()
        report = build_report(cfg, options, measured, estimated)
        if json_out is not None:
            write_outputs({json_out: json.dumps(report, indent=2, allow_nan=False) + "\n"})
        out_console.print(render_report(report, measured))
        if json_out is not None:
            out_console.print(f"wrote {json_out}" + (" (partial)" if error else ""), highlight=False)
        if error is not None:
            raise error


def register(app: typer.Typer) -> None:
    """Add ``snnprof measure`` to the app."""
    app.command(no_args_is_help=True)(measure)
