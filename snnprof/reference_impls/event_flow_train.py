"""Reference training loop of the event_flow models (self-supervised optical flow, ``train_flow.py``).

Per optimisation step (``docs/seed_models.md`` section 4.3), for a batch of ``B`` sequences read in
lockstep: ``window_loss / window`` forward passes (10 windows of 1000 events) are associated with
their events, then the contrast-maximisation loss (:class:`~snnprof.reference_impls.event_flow_loss.
EventWarping`) is backpropagated, the gradient norm clipped (100), the optimiser (Adam, lr 2e-4)
stepped and the recurrent states detached (truncated BPTT). States are reset when the batch moves
to new sequences; each sequence gets random horizontal/vertical/polarity flips (p = 0.5).

Data: ``[input] source = "synthetic"`` writes nothing: it generates ``sequences`` training and
``eval_sequences`` held-out translating-texture sequences in memory
(:mod:`~snnprof.data.synthetic_flow`), seeded by ``input.seed``. ``source =
"dataset"`` with ``reader = "event_flow_h5"`` trains on the ``.h5`` file(s) at ``input.path`` and
evaluates on ``train.eval_path`` (default: the same files), which need ``flow_dt1``/``flow_dt4``.

:meth:`EventFlowTrainer.evaluate` runs every held-out sequence in ground-truth windows
(``gtflow_dt1``) and returns ``aee`` (pixels), ``aee_zero_flow`` (the zero-flow baseline: mean
ground-truth magnitude) and ``outliers`` (%Out, fraction).

``[train]`` keys (defaults): ``epochs`` 1 (read by the harness), ``lr`` 2e-4, ``lr_schedule`` "constant" (the
seed) / "cosine" (annealed to 0 over ``epochs``, per epoch), ``optimizer`` "adam" / "sgd",
``window`` 1000, ``window_loss`` 10000, ``flow_regul_weight`` 0.001, ``clip_grad`` 100.0 (0 disables),
``flow_scaling`` 0 (= max resolution), ``smoothness`` "code" / "paper", ``mask_smoothness`` true,
``augment`` "random" / "mirrored" / "none", ``sequences`` 8, ``eval_sequences`` 2, ``events_per_sequence`` 40000,
``height``/``width`` 64 (synthetic), ``eval_mode`` "gtflow_dt1", ``eval_window`` 1.0, ``eval_path``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from snnprof.data.event_flow_h5 import (
    ArraySource,
    EventFlowDataError,
    EventSource,
    Flips,
    PassReader,
    collate_passes,
    open_sources,
)
from snnprof.errors import ConfigError
from snnprof.models.event_flow_nets import RecurrentFlowNet
from snnprof.reference_impls.event_flow_loss import EventWarping, average_endpoint_error
from snnprof.reference_impls.training import register_trainer
from snnprof.validation import NonNegativeFloat, PositiveFloat, PositiveInt, StrictModel, validate

__all__ = ["EVENT_FLOW_MODELS", "EventFlowSettings", "EventFlowTrainer", "parse_settings"]

logger = logging.getLogger(__name__)

EVENT_FLOW_MODELS: tuple[str, ...] = (
    "lif_firenet", "lif_firenet_short", "lif_fireflownet", "plif_firenet", "alif_firenet", "xlif_firenet",
    "spiking_rec_evflownet", "firenet", "evflownet",
)


class EventFlowSettings(StrictModel):
    """The validated ``[train]`` table (see the module docstring for meanings and defaults)."""

    epochs: PositiveInt = 1
    lr: PositiveFloat = 2e-4
    lr_schedule: Literal["constant", "cosine"] = "constant"
    optimizer: Literal["adam", "sgd"] = "adam"
    window: PositiveInt = 1000
    window_loss: PositiveInt = 10000
    flow_regul_weight: NonNegativeFloat = 0.001
    clip_grad: NonNegativeFloat = 100.0
    flow_scaling: NonNegativeFloat = 0.0
    smoothness: Literal["code", "paper"] = "code"
    mask_smoothness: bool = True
    augment: Literal["random", "mirrored", "none"] = "random"
    sequences: PositiveInt = 8
    eval_sequences: PositiveInt = 2
    events_per_sequence: PositiveInt = 40000
    height: PositiveInt = 64
    width: PositiveInt = 64
    eval_mode: Literal["gtflow_dt1", "gtflow_dt4"] = "gtflow_dt1"
    eval_window: PositiveFloat = 1.0
    eval_path: str = ""

    @property
    def passes_per_step(self) -> int:
        """Forward passes per optimisation step (``window_loss / window``)."""
        return max(1, self.window_loss // self.window)


def parse_settings(table: dict[str, Any], path: Path) -> EventFlowSettings:
    """Validate ``[train]``; every problem raises ``ConfigError(path, "train.<key>", "expected ...")``."""
    return validate(EventFlowSettings, table, path=path, prefix="train")


def _synthetic_sources(seed: int, count: int, offset: int, s: EventFlowSettings) -> list[ArraySource]:
    from snnprof.data.synthetic_flow import generate_sequence

    return [
        ArraySource.from_sequence(
            generate_sequence(seed * 1000 + offset + i, height=s.height, width=s.width,
                              num_events=s.events_per_sequence, events_per_gt=s.window),
            name=f"synthetic[{seed * 1000 + offset + i}]",
        )
        for i in range(count)
    ]


@register_trainer(*EVENT_FLOW_MODELS)
class EventFlowTrainer:
    """The event_flow training loop (implements :class:`~snnprof.reference_impls.training.Trainer`).

    Args:
        model: an event_flow network (:class:`~snnprof.models.event_flow_nets.RecurrentFlowNet`).
        cfg: the run config (``cfg.train`` validated here).
        device: where to train.
    """

    def __init__(self, model: nn.Module, cfg: Any, device: torch.device) -> None:
        if not isinstance(model, RecurrentFlowNet):
            raise ConfigError(cfg.path, "model.name", f"the event_flow loop needs an event_flow model, got "
                                                      f"{type(model).__name__}")
        self.model, self.device, self.cfg = model, torch.device(device), cfg
        self.settings = parse_settings(dict(cfg.train), Path(cfg.path))
        self.batch = int(cfg.input.batch_size)
        self.seed = int(cfg.input.seed)
        train_sources, eval_sources = self._sources()
        s = self.settings
        self.train_readers = [PassReader(src, "events", s.window, encoding=model.encoding, num_bins=model.num_bins)
                              for src in train_sources]
        self.eval_sources = eval_sources
        if len(self.train_readers) < self._distinct or (s.augment == "mirrored" and self.batch % 2):
            raise ConfigError(cfg.path, "input.batch_size", f"expected at most {len(self.train_readers)} sequences "
                                                            "per batch (an even batch with augment = 'mirrored')")
        self.resolution = self.train_readers[0].resolution
        self.loss_fn = EventWarping(self.resolution, s.flow_scaling or None, s.flow_regul_weight,
                                    s.mask_smoothness, s.smoothness)
        self.optimizer = self._optimizer()
        self._current: tuple[int, int] | None = None
        self._flips: list[Flips] = []

    # ------------------------------------------------------------------------------------- data
    def _sources(self) -> tuple[list[EventSource], list[EventSource]]:
        s, inp = self.settings, self.cfg.input
        if inp.source == "synthetic":
            return _synthetic_sources(self.seed, s.sequences, 0, s), _synthetic_sources(self.seed, s.eval_sequences,
                                                                                         500, s)
        if inp.reader != "event_flow_h5":
            raise ConfigError(self.cfg.path, "input.reader", f"the event_flow loop reads 'event_flow_h5', got "
                                                             f"{inp.reader!r}")
        try:
            train = open_sources(inp.path)
            evals = open_sources(Path(s.eval_path)) if s.eval_path else train
        except EventFlowDataError as err:
            raise ConfigError(self.cfg.path, "train.eval_path" if s.eval_path else "input.path", str(err)) from None
        return list(train), list(evals)

    def _optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.settings.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.settings.lr)
        return torch.optim.Adam(params, lr=self.settings.lr)

    @property
    def _distinct(self) -> int:
        """Distinct sequences per batch (``mirrored`` shows each one twice)."""
        return self.batch // 2 if self.settings.augment == "mirrored" else self.batch

    def _schedule(self, epoch: int) -> list[tuple[int, list[int], int]]:
        """``(group, sequence indices, chunk)`` per step of ``epoch`` (groups shuffled per epoch)."""
        gen = torch.Generator().manual_seed(self.seed * 7919 + epoch)
        order = torch.randperm(len(self.train_readers), generator=gen).tolist()
        steps = []
        size = self._distinct
        for g in range(len(order) // size):
            members = order[g * size : (g + 1) * size]
            if size != self.batch:
                members = members + members
            chunks = min(self.train_readers[m].num_passes for m in members) // self.settings.passes_per_step
            steps += [(g, members, c) for c in range(chunks)]
        return steps

    def steps_per_epoch(self) -> int:
        """Optimisation steps per epoch (every group of ``B`` sequences, ``window_loss`` events per step)."""
        return max(len(self._schedule(0)), 1)

    def _group_flips(self, epoch: int, group: int) -> list[Flips]:
        """Per-slot flips: seed-style random H/V/polarity flips, or each sequence as-is and rotated by 180 degrees."""
        mode = self.settings.augment
        if mode == "none":
            return [Flips()] * self.batch
        if mode == "mirrored":
            half = self.batch // 2
            return [Flips()] * half + [Flips(horizontal=True, vertical=True)] * half
        gen = torch.Generator().manual_seed(self.seed * 104729 + epoch * 1009 + group)
        draws = (torch.rand(self.batch, 3, generator=gen) < 0.5).tolist()
        return [Flips(bool(h), bool(v), bool(p)) for h, v, p in draws]

    # ------------------------------------------------------------------------------------- training
    def train_step(self, step: int) -> dict[str, float]:
        """One truncated-BPTT update over ``window_loss`` events per sequence of the batch."""
        per_epoch = self.steps_per_epoch()
        epoch, index = divmod(step, per_epoch)
        schedule = self._schedule(epoch)
        group, members, chunk = schedule[index % len(schedule)]
        if self._current != (epoch, group) or chunk == 0:
            self.model.reset_states()
            self._flips = self._group_flips(epoch, group)
            self._current = (epoch, group)
        self.model.train()
        self.loss_fn.reset()
        first = chunk * self.settings.passes_per_step
        for n in range(first, first + self.settings.passes_per_step):
            batch = self._batch([self.train_readers[m].read(n, f) for m, f in zip(members, self._flips, strict=True)])
            out = self.model(batch["inputs"])
            self.loss_fn.add_pass(out["flow"], batch["event_list"], batch["pol_mask"], batch["event_mask"])
        loss = self.loss_fn()
        self.optimizer.zero_grad()
        loss.backward()
        if self.settings.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.clip_grad)
        self.optimizer.step()
        self.model.detach_states()
        self.loss_fn.reset()
        return {"loss": float(loss.detach())}

    def _batch(self, passes: list[Any]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in collate_passes(passes).items()}

    def end_epoch(self, epoch: int) -> None:
        """Cosine-anneal the learning rate after epoch ``epoch`` (``lr_schedule = "cosine"``; the seed has none)."""
        s = self.settings
        if s.lr_schedule != "cosine":
            return
        lr = s.lr * 0.5 * (1 + math.cos(math.pi * min(epoch + 1, s.epochs) / s.epochs))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # ------------------------------------------------------------------------------------- evaluation
    def evaluate(self) -> dict[str, float]:
        """AEE (px) over every held-out pass with valid pixels, the zero-flow baseline and %Out.

        The recurrent state of the training batch is saved and restored around the evaluation.
        """
        s = self.settings
        was_training, saved = self.model.training, self.model.states  # the training sequence's state survives
        self.model.eval()
        sums = {"aee": 0.0, "aee_zero_flow": 0.0, "outliers": 0.0}
        count = 0
        self.model.clear_states()  # the seed evaluates a freshly loaded model (from rest)
        with torch.no_grad():
            for source in self.eval_sources:
                reader = PassReader(source, s.eval_mode, s.eval_window, encoding=self.model.encoding,
                                    num_bins=self.model.num_bins, resolution=self.resolution)
                self.model.reset_states()
                for n in range(reader.num_passes):
                    batch = self._batch([reader.read(n)])
                    flow = self.model(batch["inputs"])["flow"][-1]
                    args = (batch["gtflow"], batch["event_mask"], batch["dt_input"], batch["dt_gt"])
                    scale = self.loss_fn.flow_scaling
                    err = average_endpoint_error(flow, *args, flow_scaling=scale)
                    zero = average_endpoint_error(flow * 0, *args, flow_scaling=scale)
                    if int(err.valid[0]) == 0:
                        continue
                    sums["aee"] += float(err.aee[0])
                    sums["aee_zero_flow"] += float(zero.aee[0])
                    sums["outliers"] += float(err.outliers[0])
                    count += 1
        self.model.states = saved
        self.model.train(was_training)
        metrics = {k: v / count if count else math.nan for k, v in sums.items()}
        return {**metrics, "eval_passes": float(count)}

    def count_inputs(self) -> torch.Tensor:
        """``[T, B, C, H, W]``: the first ``input.time_steps`` event windows of the held-out sequences."""
        steps, s = int(self.cfg.input.time_steps), self.settings
        readers = [PassReader(src, "events", s.window, encoding=self.model.encoding, num_bins=self.model.num_bins,
                              resolution=self.resolution) for src in self.eval_sources]
        usable = [r for r in readers if r.num_passes >= steps] or readers
        chosen = [usable[b % len(usable)] for b in range(self.batch)]
        frames = [torch.stack([r.read(min(t, r.num_passes - 1)).inputs for t in range(steps)]) for r in chosen]
        return torch.stack(frames, dim=1).to(self.device)

    # ------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Optimiser state, the batch's position and the model's recurrent state (exact resume mid-sequence)."""
        current = list(self._current) if self._current is not None else []
        return {"optimizer": self.optimizer.state_dict(), "current": current, "states": self.model.states}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.optimizer.load_state_dict(state["optimizer"])
        current = state.get("current") or []
        self._current = (int(current[0]), int(current[1])) if len(current) == 2 else None
        if self._current is not None:
            self._flips = self._group_flips(*self._current)
            self.model.states = list(state["states"])
