"""The generic training harness behind ``snnprof train``: epochs, checkpoints, resume, metrics, final count.

A reference loop (:class:`~snnprof.reference_impls.training.Trainer`) owns data, loss, optimiser and
metrics; the harness owns everything generic::

    seed torch/numpy/random (and deterministic algorithms) -> build the zoo model -> Trainer(model, cfg, device)
    for step in global steps [resume point, min(epochs * steps_per_epoch, max_steps)):
        metrics = trainer.train_step(step)                   # averaged per epoch
        at an epoch end: trainer.end_epoch(e); trainer.evaluate(); checkpoint; one JSON line
    at a stop inside an epoch: checkpoint (with the epoch's running sums); evaluate; a "partial" line
    finally: count the trained model on trainer.count_inputs() -> count.json (schema snnprof.profile/1)

Files in the output folder: ``checkpoint.pt`` (model and trainer state, epoch, global step, RNG
states; ``torch.load(weights_only=True)``), ``model.pt`` (the model ``state_dict`` only, what a count
config's ``[model] checkpoint`` takes), ``metrics.jsonl`` and ``count.json``. Every file is written
atomically. ``evaluate()`` and the count run with the RNG states saved and restored, so a run resumed
from a checkpoint repeats the uninterrupted run exactly (same batches, same weights).

``[train] epochs`` (default 1) is read here (``--epochs`` overrides it, and the trainer sees the
overridden value); all other ``[train]`` keys belong to the loop.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from snnprof.config import RunConfig, load_config
from snnprof.errors import ConfigError, HardwareMissingError, SnnprofError
from snnprof.io import atomic_write_bytes, atomic_write_text
from snnprof.reference_impls.training import Trainer, UnknownTrainerError, get_trainer
from snnprof.run import Run
from snnprof.workload import build_model, load_checkpoint

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_FORMAT",
    "COUNT_FILE",
    "METRICS",
    "MODEL_FILE",
    "NullProgress",
    "TrainOptions",
    "TrainProgress",
    "TrainResult",
    "read_metrics",
    "run_training",
]

logger = logging.getLogger(__name__)

CHECKPOINT, MODEL_FILE, METRICS, COUNT_FILE = "checkpoint.pt", "model.pt", "metrics.jsonl", "count.json"
CHECKPOINT_FORMAT = "snnprof.train/1"
DEVICES: tuple[str, ...] = ("cpu", "cuda")


@dataclass(frozen=True)
class TrainOptions:
    """Command-line options of a training run (``None`` = take it from the config).

    Attributes:
        out: output folder (default ``runs/<config stem>``).
        epochs: total epochs (overrides ``[train] epochs``).
        max_steps: stop once the global step count reaches this (counted from step 0, so
            ``--max-steps 20`` then ``--resume --max-steps 40`` equals one ``--max-steps 40`` run).
        resume: continue from ``out/checkpoint.pt``.
        overwrite: start afresh in a folder that already holds a run.
        seed: seed (overrides ``[input] seed``; the loop's data and the model init follow it).
        device: ``cpu`` or ``cuda``.
        threads: torch intra-op threads (default: torch's choice); restored afterwards.
        count: count the trained model at the end.
    """

    out: Path | None = None
    epochs: int | None = None
    max_steps: int | None = None
    resume: bool = False
    overwrite: bool = False
    seed: int | None = None
    device: str = "cpu"
    threads: int | None = None
    count: bool = True


class TrainProgress(Protocol):
    """Where the harness reports progress (the CLI passes a Rich progress bar)."""

    def start(self, total: int, completed: int, steps_per_epoch: int) -> None:
        """Training of global steps ``completed..total`` begins."""
        ...

    def step(self, global_step: int, epoch: int, metrics: Mapping[str, float]) -> None:
        """Global step ``global_step`` (1-based count of steps done) finished."""
        ...

    def epoch(self, line: Mapping[str, Any]) -> None:
        """An epoch (or a partial one at a stop) was evaluated; ``line`` is its metrics record."""
        ...

    def finish(self) -> None:
        """Training is over (the final count follows)."""
        ...


class NullProgress:
    """A progress sink that shows nothing."""

    def start(self, total: int, completed: int, steps_per_epoch: int) -> None:  # noqa: D102
        del total, completed, steps_per_epoch

    def step(self, global_step: int, epoch: int, metrics: Mapping[str, float]) -> None:  # noqa: D102
        del global_step, epoch, metrics

    def epoch(self, line: Mapping[str, Any]) -> None:  # noqa: D102
        del line

    def finish(self) -> None:  # noqa: D102
        return None


@dataclass
class TrainResult:
    """What a training run did.

    Attributes:
        out: the output folder.
        model: zoo model name.
        epochs: total epochs of the schedule.
        steps_per_epoch: optimisation steps per epoch.
        global_step: steps done in total (including those before a resume).
        steps_run: steps done by this invocation.
        last: the last metrics record written (``None`` if none).
        count: the final count of the trained model, priced (``None`` with ``count=False``).
        files: files written.
        seconds: wall time of this invocation, seconds.
    """

    out: Path
    model: str
    epochs: int
    steps_per_epoch: int
    global_step: int
    steps_run: int
    last: dict[str, Any] | None
    count: Run | None
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


# ----------------------------------------------------------------------------- validation


def _epochs(cfg: RunConfig, override: int | None) -> int:
    """Total epochs: ``--epochs`` or ``[train] epochs`` (default 1)."""
    if override is not None:
        if override < 1:
            raise SnnprofError(f"--epochs: expected a positive integer, got {override}")
        return override
    value = cfg.train.get("epochs", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(cfg.path, "train.epochs", f"expected a positive integer, got {value!r}")
    return value


def _resolve_config(cfg: RunConfig, options: TrainOptions) -> tuple[RunConfig, int]:
    """Apply ``--seed`` / ``--epochs`` to the config; return it and the epoch count."""
    epochs = _epochs(cfg, options.epochs)
    inp = cfg.input if options.seed is None else cfg.input.model_copy(update={"seed": int(options.seed)})
    return cfg.replace(input=inp, train={**cfg.train, "epochs": epochs}), epochs


def _device(name: str) -> torch.device:
    if name not in DEVICES:
        raise SnnprofError(f"--device: expected one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise HardwareMissingError("--device cuda: no CUDA device is available to torch")
    return torch.device(name)


def _out_folder(cfg: RunConfig, options: TrainOptions) -> Path:
    """The output folder, checked against ``--resume`` / ``--overwrite``."""
    out = Path(options.out) if options.out is not None else Path("runs") / cfg.path.stem
    if out.exists() and not out.is_dir():
        raise SnnprofError(f"{out}: --out must be a folder, found a file")
    has_run = (out / CHECKPOINT).is_file()
    if options.resume and not has_run:
        raise SnnprofError(f"{out / CHECKPOINT}: no checkpoint to resume from")
    if has_run and not options.resume and not options.overwrite:
        raise SnnprofError(f"{out}: already holds a training run ({CHECKPOINT}); pass --resume or --overwrite")
    return out


def _make_trainer(cfg: RunConfig, model: nn.Module, device: torch.device) -> Trainer:
    try:
        factory = get_trainer(cfg.model.name)
    except UnknownTrainerError as err:
        raise ConfigError(cfg.path, "model.name", str(err.args[0])) from None
    trainer = factory(model, cfg, device)
    if not isinstance(trainer, Trainer):
        missing = [m for m in ("steps_per_epoch", "train_step", "end_epoch", "evaluate", "count_inputs",
                               "state_dict", "load_state_dict") if not callable(getattr(trainer, m, None))]  # fmt: skip
        raise SnnprofError(f"trainer {type(trainer).__name__} lacks Trainer methods: {', '.join(missing)}")
    return trainer


def _check_overrides(cfg: RunConfig, model: nn.Module) -> None:
    names = {name for name, _ in model.named_modules()}
    for layer in cfg.count.overrides:
        if layer.split("/", 1)[0] not in names:
            raise ConfigError(cfg.path, f"count.overrides.{layer}", f"no such layer in {cfg.model.name}")


# ----------------------------------------------------------------------------- checkpoints and RNG


def _rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), numpy and ``random`` states, as tensors/ints (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_initialized() else [],
        "numpy": [str(kind), torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "python": [int(version), list(internal), gauss_next],
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


@contextlib.contextmanager
def _isolated_rng() -> Iterator[None]:
    """Run evaluation/counting without disturbing the training RNG streams."""
    state = _rng_state()
    try:
        yield
    finally:
        _set_rng_state(state)


@contextlib.contextmanager
def _deterministic(seed: int, threads: int | None) -> Iterator[None]:
    """Seed every RNG, turn on deterministic algorithms (warn-only) and set threads; restore the flags after."""
    flags = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    old_threads = torch.get_num_threads()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        torch.set_num_threads(old_threads)


def _save(path: Path, obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for bad/unsafe files
        raise SnnprofError(f"{path}: cannot load checkpoint ({err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise SnnprofError(f"{path}: not a snnprof training checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    return ckpt


def _check_resume(ckpt: Mapping[str, Any], cfg: RunConfig, model: nn.Module, path: Path) -> None:
    """A checkpoint fits only the same model, constructor kwargs and state-dict shapes.

    Entries a model lists in ``resizable_state_keys()`` may differ in shape (grids scaled during training).
    """
    if ckpt.get("model_name") != cfg.model.name or ckpt.get("model_kwargs") != cfg.model.kwargs:
        raise ConfigError(
            cfg.path,
            "model",
            f"checkpoint {path} is for model {ckpt.get('model_name')!r} with kwargs {ckpt.get('model_kwargs')}, "
            f"the config trains {cfg.model.name!r} with kwargs {cfg.model.kwargs}",
        )
    own, state = model.state_dict(), ckpt.get("model", {})
    resizable = set(getattr(model, "resizable_state_keys", tuple)())  # e.g. DVGO's progressively scaled grids
    shaped = set(own) & set(state) - resizable
    bad = sorted(set(own) ^ set(state)) + sorted(k for k in shaped if own[k].shape != state[k].shape)
    if bad:
        raise ConfigError(cfg.path, "model", f"checkpoint {path} does not fit the model (keys: {', '.join(bad[:5])})")


# ----------------------------------------------------------------------------- metrics


def _clean(metrics: Mapping[str, Any], where: str) -> dict[str, float | None]:
    """Scalar metrics as JSON-safe floats (non-finite -> ``None``)."""
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SnnprofError(f"{where} returned a non-numeric metric {key!r}: {value!r}") from None
        out[str(key)] = number if math.isfinite(number) else None
    return out


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (empty list when absent)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_metrics(path: Path, records: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


# ----------------------------------------------------------------------------- the run


@dataclass
class _State:
    """Mutable loop state (what a checkpoint stores besides model/trainer/RNG)."""

    global_step: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counted: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


class _Run:
    """One validated training run (everything checked before anything is written)."""

    def __init__(self, config: str | Path, options: TrainOptions) -> None:
        cfg, self.epochs = _resolve_config(load_config(config), options)
        self.cfg, self.options = cfg, options
        self.device = _device(options.device)
        if options.max_steps is not None and options.max_steps < 1:
            raise SnnprofError(f"--max-steps: expected a positive integer, got {options.max_steps}")
        if options.threads is not None and options.threads < 1:
            raise SnnprofError(f"--threads: expected a positive integer, got {options.threads}")
        self.out = _out_folder(cfg, options)
        self.state = _State()
        self.ckpt = _read_checkpoint(self.out / CHECKPOINT) if options.resume else None

    def build(self) -> None:
        """Build model and trainer (seeded), then restore a checkpoint when resuming."""
        self.model = build_model(self.cfg)
        if self.cfg.model.checkpoint is not None and self.ckpt is None:
            load_checkpoint(self.model, self.cfg.model.checkpoint, self.cfg.path, self.cfg)
        _check_overrides(self.cfg, self.model)
        if self.ckpt is not None:
            _check_resume(self.ckpt, self.cfg, self.model, self.out / CHECKPOINT)
        self.model.to(self.device)
        self.trainer = _make_trainer(self.cfg, self.model, self.device)
        self.spe = int(self.trainer.steps_per_epoch())
        if self.spe < 1:
            raise SnnprofError(f"trainer {type(self.trainer).__name__}: steps_per_epoch() must be >= 1, got {self.spe}")
        if self.ckpt is not None:
            self._restore(self.ckpt)

    def _restore(self, ckpt: Mapping[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.trainer.load_state_dict(ckpt["trainer"])
        _set_rng_state(ckpt["rng"])
        self.state.global_step = int(ckpt["global_step"])
        self.state.sums, self.state.counted = dict(ckpt["epoch_sums"]), int(ckpt["epoch_steps"])
        self.state.records = [r for r in read_metrics(self.out / METRICS) if r["global_step"] <= self.state.global_step]

    def _checkpoint(self) -> None:
        s = self.state
        _save(self.out / MODEL_FILE, _cpu_state(self.model))
        _save(self.out / CHECKPOINT, {
            "format": CHECKPOINT_FORMAT, "model_name": self.cfg.model.name, "model_kwargs": dict(self.cfg.model.kwargs),
            "model": _cpu_state(self.model), "trainer": self.trainer.state_dict(), "rng": _rng_state(),
            "epoch": s.global_step // self.spe, "global_step": s.global_step, "steps_per_epoch": self.spe,
            "epoch_sums": dict(s.sums), "epoch_steps": s.counted, "seed": self.cfg.input.seed,
        })  # fmt: skip

    def _record(self, epoch: int, partial: bool, started: float) -> dict[str, Any]:
        """Evaluate, then append the epoch's record (mean train metrics + evaluation) to ``metrics.jsonl``."""
        s = self.state
        with _isolated_rng():
            evaluation = _clean(self.trainer.evaluate(), f"{type(self.trainer).__name__}.evaluate()")
        train = _clean({k: v / s.counted for k, v in s.sums.items()}, "train metrics") if s.counted else {}
        record = {"epoch": epoch, "global_step": s.global_step, "epoch_steps": s.counted, "partial": partial,
                  "train": train, "eval": evaluation, "elapsed_s": round(time.perf_counter() - started, 3)}  # fmt: skip
        s.records.append(record)
        _write_metrics(self.out / METRICS, s.records)
        return record

    def _epoch_end(self, epoch: int, started: float, progress: TrainProgress) -> None:
        self.trainer.end_epoch(epoch)
        record = self._record(epoch, False, started)
        self.state.sums, self.state.counted = {}, 0
        self._checkpoint()
        progress.epoch(record)

    def train(self, progress: TrainProgress) -> int:
        """Run the loop to ``min(epochs * steps_per_epoch, max_steps)``; return the steps run."""
        s, started = self.state, time.perf_counter()
        stop = self.epochs * self.spe
        if self.options.max_steps is not None:
            stop = min(stop, self.options.max_steps)
        if self.ckpt is None:
            self.out.mkdir(parents=True, exist_ok=True)
            for name in (CHECKPOINT, MODEL_FILE, METRICS, COUNT_FILE):
                (self.out / name).unlink(missing_ok=True)
        first = s.global_step
        progress.start(stop, min(first, stop), self.spe)
        where = f"{type(self.trainer).__name__}.train_step()"
        while s.global_step < stop:
            epoch = s.global_step // self.spe
            metrics = _clean(self.trainer.train_step(s.global_step), where)
            for key, value in metrics.items():
                s.sums[key] = s.sums.get(key, 0.0) + (value if value is not None else math.nan)
            s.counted += 1
            s.global_step += 1
            progress.step(s.global_step, epoch, metrics)
            if s.global_step % self.spe == 0:
                self._epoch_end(epoch, started, progress)
        if s.global_step % self.spe and s.global_step > first:
            record = self._record(s.global_step // self.spe, True, started)
            self._checkpoint()
            progress.epoch(record)
        progress.finish()
        return max(0, s.global_step - first)

    def count(self) -> Run:
        """Count the trained model on ``trainer.count_inputs()``, price it (the run pipeline); write ``count.json``."""
        from snnprof.pipeline import profile_model

        cfg = self.cfg
        self.model.eval()
        with _isolated_rng(), torch.no_grad():
            inputs = self.trainer.count_inputs()
            run = profile_model(cfg, self.model, inputs, cfg.energy.profiles, batch_size=None)
        run.result.config["model"]["checkpoint"] = str(self.out / MODEL_FILE)
        atomic_write_text(self.out / COUNT_FILE, run.to_json() + "\n")
        return run


def run_training(config: str | Path, options: TrainOptions, progress: TrainProgress | None = None) -> TrainResult:
    """Train the config's zoo model with its registered loop, checkpointing, then count it.

    Example:
        >>> opts = TrainOptions(out=Path("runs/x"), max_steps=5)
        >>> res = run_training("configs/train_ottt_vgg11_small.toml", opts)  # doctest: +SKIP
        >>> res.last["eval"]["accuracy"], res.count.totals.sops  # doctest: +SKIP

    Raises:
        ConfigError: bad config, ``[train]`` keys (from the loop), overrides, or a checkpoint of
            another model on resume.
        SnnprofError: bad options, an output folder holding another run, an unreadable checkpoint.
        HardwareMissingError: ``device='cuda'`` without CUDA.
    """
    started = time.perf_counter()
    run = _Run(config, options)
    with _deterministic(run.cfg.input.seed, options.threads):
        run.build()
        steps = run.train(progress or NullProgress())
        count = run.count() if options.count else None
    files = [run.out / n for n in (CHECKPOINT, MODEL_FILE, METRICS, COUNT_FILE) if (run.out / n).is_file()]
    return TrainResult(
        out=run.out,
        model=run.cfg.model.name,
        epochs=run.epochs,
        steps_per_epoch=run.spe,
        global_step=run.state.global_step,
        steps_run=steps,
        last=run.state.records[-1] if run.state.records else None,
        count=count,
        files=files,
        seconds=time.perf_counter() - started,
    )
