"""Measure a config's GPU energy (NVML) and estimate it on the hardware profiles (``snnprof measure``).

The model and inputs come from the config's workload (as for ``snnprof count``), placed on
``cuda:GPU``; one iteration is an inference batch (``no_grad``, the zoo runner) or a training step
(forward, ``output.float().pow(2).mean()``, backward, SGD step). The protocol is
:func:`snnprof.energy.measure.measure`; the estimates come from :func:`~snnprof.pipeline.core.run_config`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from snnprof.config import RunConfig
from snnprof.energy.measure_report import MeasureReport
from snnprof.errors import ConfigError, HardwareMissingError, first_line
from snnprof.pipeline.core import run_config
from snnprof.workload import entry_of, make_inputs, prepare_model, to_device

if TYPE_CHECKING:
    from snnprof.energy.measure import MeasureSettings
    from snnprof.energy.nvml_backend import EnergyBackend

__all__ = ["MODES", "NO_GPU_HINT", "TRAIN_LR", "MeasureOptions", "open_backend", "run_measurement"]

MODES: tuple[str, ...] = ("inference", "train-step")
#: Learning rate of the train-step mode's plain SGD.
TRAIN_LR = 1e-3
NO_GPU_HINT = "`snnprof count` estimates still work without a GPU"


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


def open_backend() -> EnergyBackend:
    """The real NVML backend (raises NvmlUnavailableError without a GPU/NVML)."""
    from snnprof.energy.nvml_backend import NvmlBackend

    return NvmlBackend()


def cuda_device(gpu: int) -> torch.device:
    """``cuda:gpu``, checking torch has CUDA and the index exists."""
    if not torch.cuda.is_available():
        raise HardwareMissingError(
            f"cannot measure GPU energy: this torch build ({torch.__version__}) cannot use CUDA; {NO_GPU_HINT}"
        )
    if not 0 <= gpu < torch.cuda.device_count():
        raise HardwareMissingError(f"--gpu {gpu}: torch sees {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(f"cuda:{gpu}")


# ---------------------------------------------------------------------------------------------
# workload
# ---------------------------------------------------------------------------------------------


def _first_tensor(output: Any) -> torch.Tensor:
    """The first tensor in a model output (tensor, tuple/list or dict)."""
    if isinstance(output, torch.Tensor):
        return output
    values = output.values() if isinstance(output, dict) else output
    for value in values:
        return _first_tensor(value)
    raise TypeError(f"the model returned no tensor ({type(output).__name__})")


def make_step(cfg: RunConfig, mode: str, device: torch.device) -> Callable[[], object]:
    """Build the model and inputs on ``device`` and return one iteration of ``mode``."""
    model = prepare_model(cfg, device, train=mode != "inference")
    inputs = to_device(make_inputs(cfg, model), device)
    run, steps = entry_of(cfg).run, cfg.input.time_steps  # errors on the device surface in run_measurement
    if mode == "inference":

        def infer() -> object:
            with torch.no_grad():
                return run(model, inputs, steps)

        return infer
    optimizer = torch.optim.SGD(model.parameters(), lr=TRAIN_LR)

    def train_step() -> object:
        optimizer.zero_grad(set_to_none=True)
        loss = _first_tensor(run(model, inputs, steps)).float().pow(2).mean()
        loss.backward()
        optimizer.step()
        return loss

    return train_step


def run_measurement(
    cfg: RunConfig,
    options: MeasureOptions,
    settings: MeasureSettings,
    backend: EnergyBackend,
    progress: Callable[[str], None] | None = None,
) -> tuple[MeasureReport, HardwareMissingError | None]:
    """Estimate, then measure; a GPU lost mid-way returns the partial report and its error.

    Returns:
        ``(report, error)``; ``error`` is ``None`` for a complete measurement.

    Raises:
        ConfigError: a bad config, or the workload fails on the device.
    """
    from snnprof.energy.measure import MeasurementInterruptedError, measure
    from snnprof.energy.meter import EnergyMeter

    device = cuda_device(options.gpu)
    estimated = run_config(cfg, options.profiles).energy
    step = make_step(cfg, options.mode, device)
    meter = EnergyMeter(options.gpu, backend=backend, method=options.method, sample_interval_s=options.interval_s)
    label = f"{cfg.model.name} {options.mode}"
    error: HardwareMissingError | None = None
    try:
        result = measure(step, meter, settings, samples_per_iter=cfg.input.batch_size, label=label, progress=progress)
    except MeasurementInterruptedError as err:
        result, error = err.partial, err
    except RuntimeError as err:  # CUDA out of memory, shape errors ...
        raise ConfigError(cfg.path, "model", f"the {options.mode} workload failed on {device}: "
                                             f"{first_line(err) or type(err).__name__}") from None
    finally:
        meter.close()
    report = MeasureReport(model=cfg.model.name, mode=options.mode, batch_size=cfg.input.batch_size,
                           time_steps=cfg.input.time_steps, cuda_device=options.gpu,
                           method_requested=options.method, config=cfg.to_dict(), measured=result,
                           estimated=estimated)
    return report, error
