"""OTTT's reference training loop (``train_cifar.py`` / ``train_cifar10dvs.py`` / ``train_imagenet.py``).

``docs/seed_models.md`` section 5.3. Per batch, online through time::

    for t in 0..T-1:
        out_t  = net(x_t, init=(t == 0))                   # x_t = the image, or frame t
        loss_t = ((1 - lam) * CE(out_t, y) + lam * MSE(out_t, onehot(y))) / T
        loss_t.backward()                                  # graph of one step only (v.detach())
        OTTT_O (online_update = true): optimizer step after every time step
    OTTT_A (default): one optimizer step per batch, gradients accumulated over the T steps

The networks use OTTT's spikes-plus-trace gradient trick in ``train()`` mode
(``grad_with_rate``, see :mod:`snnprof.models.ottt`). Accuracy is the argmax of the logits summed
over T. Optimiser: SGD (lr 0.1, momentum 0.9, weight decay 0) or AdamW; learning rate cosine-annealed
per epoch over ``t_max`` epochs (default: ``epochs``). Training augmentation for image data:
random crop with 4-pixel padding, Cutout (p 0.5, area 2-40 %, aspect 0.4-2.5, random colour) and
horizontal flip; for event frames: 4-pixel padding and a random crop consistent over time.

``[train]`` keys (defaults = the seed's CIFAR run): ``epochs`` (300, read by the harness),
``batch_size`` (128), ``eval_batch_size`` (256), ``optimizer`` (``sgd``/``adamw``), ``lr`` (0.1),
``momentum`` (0.9), ``weight_decay`` (0.0), ``scheduler`` (``cosine``/``none``), ``t_max`` (epochs),
``loss_lambda`` (0.05), ``online_update`` (false), ``augment`` (true for datasets, false for
synthetic data), ``train_samples`` / ``test_samples`` (caps for datasets; sizes of the synthetic
set, default 2000 / 500). With ``[input] source = "synthetic"`` the data are separable image classes
(:mod:`snnprof.data.synthetic_images`, ``kwargs.image_size``; ``kwargs.frames =
true`` for event frames with ``time_steps`` frames), seeded by ``input.seed``. Every random draw of
the loop (epoch order, augmentation) comes from ``numpy.random.default_rng([seed, ..., step])``, so a
resumed run repeats the same batches.
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.data import Dataset, Subset, TensorDataset

from snnprof.data import get_reader
from snnprof.data.cifar import CIFAR_MEAN, CIFAR_STD, normalize_images
from snnprof.data.cifar10dvs import DVS_MEAN, DVS_STD, transform_frames
from snnprof.data.synthetic_images import (
    TEST_STREAM,
    TRAIN_STREAM,
    ImageClassesSpec,
    render_frames,
    render_images,
)
from snnprof.errors import ConfigError
from snnprof.models.ottt import from_batch
from snnprof.reference_impls.training import register_trainer
from snnprof.validation import NonNegativeFloat, PositiveInt, StrictModel, validate

__all__ = ["OTTTSettings", "OTTTTrainer", "augment_batch", "ottt_loss", "parse_settings"]

logger = logging.getLogger(__name__)

_SYNTHETIC_SIZES = (2000, 500)
_SYNTHETIC_KWARGS = ("image_size", "frames", "p")
_PAD = 4


class OTTTSettings(StrictModel):
    """Validated ``[train]`` settings (see the module docstring for meanings and defaults).

    ``t_max`` and ``augment`` are ``None`` in the table when absent; :func:`parse_settings` resolves
    them (``t_max = epochs``; ``augment`` true for datasets, false for synthetic data).
    """

    epochs: PositiveInt = 300
    batch_size: PositiveInt = 128
    eval_batch_size: PositiveInt = 256
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: NonNegativeFloat = 0.1
    momentum: NonNegativeFloat = 0.9
    weight_decay: NonNegativeFloat = 0.0
    scheduler: Literal["cosine", "none"] = "cosine"
    t_max: PositiveInt | None = None
    loss_lambda: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    online_update: bool = False
    augment: bool | None = None
    train_samples: PositiveInt | None = None
    test_samples: PositiveInt | None = None


def parse_settings(cfg: Any) -> OTTTSettings:
    """Validate ``cfg.train`` for the OTTT loop and resolve the data-dependent defaults.

    Raises:
        ConfigError: unknown key, wrong type or out-of-range value (``train.<key>: expected ...``).
    """
    settings = validate(OTTTSettings, dict(cfg.train), path=cfg.path, prefix="train")
    resolved: dict[str, Any] = {}
    if settings.t_max is None:
        resolved["t_max"] = settings.epochs
    if settings.augment is None:
        resolved["augment"] = cfg.input.source == "dataset"
    return settings.model_copy(update=resolved)


def ottt_loss(out: torch.Tensor, target: torch.Tensor, num_classes: int, lam: float, steps: int) -> torch.Tensor:
    """``((1 - lam) * CE(out, y) + lam * MSE(out, onehot(y))) / steps`` (plain CE / steps when ``lam = 0``)."""
    loss = F.cross_entropy(out, target)
    if lam > 0.0:
        mse = F.mse_loss(out, F.one_hot(target, num_classes).to(out.dtype))
        loss = (1.0 - lam) * loss + lam * mse
    return loss / steps


# ----------------------------------------------------------------------------- augmentation


def _pad_values(x: torch.Tensor) -> torch.Tensor:
    """Per-channel value of a zero pixel after normalisation (what padding a raw image gives)."""
    channels = x.shape[-3]
    if channels == 3:
        mean, std = CIFAR_MEAN, CIFAR_STD
    elif channels == 2:
        mean, std = DVS_MEAN, DVS_STD
    else:
        mean, std = (0.5,) * channels, (0.25,) * channels
    return -torch.tensor(mean, dtype=x.dtype) / torch.tensor(std, dtype=x.dtype)


def _crop(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Random crop after ``_PAD``-pixel padding; one offset per sample (shared by all its frames)."""
    h, w = x.shape[-2:]
    padded = _pad_values(x).view(-1, 1, 1).expand(*x.shape[:-2], h + 2 * _PAD, w + 2 * _PAD).clone()
    padded[..., _PAD : _PAD + h, _PAD : _PAD + w] = x
    offsets = rng.integers(0, 2 * _PAD + 1, size=(x.shape[0], 2))
    return torch.stack([padded[i, ..., dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])


def _cutout(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """torchtoolbox-style Cutout: p 0.5, area 2-40 %, aspect 0.4-2.5, one random colour per channel."""
    x = x.clone()
    h, w = x.shape[-2:]
    mean, std = torch.tensor(CIFAR_MEAN).view(-1, 1, 1), torch.tensor(CIFAR_STD).view(-1, 1, 1)
    for i in range(x.shape[0]):
        if rng.random() >= 0.5:
            continue
        area = rng.uniform(0.02, 0.4) * h * w
        ratio = math.exp(rng.uniform(math.log(0.4), math.log(1 / 0.4)))
        eh, ew = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < eh < h and 0 < ew < w:
            top, left = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
            colour = (torch.from_numpy(rng.integers(0, 256, size=3)).float().view(-1, 1, 1) / 255.0 - mean) / std
            x[i, :, top : top + eh, left : left + ew] = colour.to(x.dtype)
    return x


def augment_batch(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """The seed's training augmentation of a CPU batch.

    Images ``[B, 3, H, W]``: random crop (pad 4), Cutout, horizontal flip (p 0.5). Event frames
    ``[B, T, C, H, W]``: random crop (pad 4) consistent over time. Other images: crop and flip.
    """
    x = _crop(x, rng)
    if x.dim() == 5:
        return x
    if x.shape[1] == 3:
        x = _cutout(x, rng)
    flips = torch.from_numpy(rng.random(x.shape[0]) < 0.5)
    return torch.where(flips.view(-1, 1, 1, 1), x.flip(-1), x)


# ----------------------------------------------------------------------------- data


def _synthetic(cfg: Any, model: nn.Module, settings: OTTTSettings) -> tuple[Dataset, Dataset]:
    """The separable synthetic set as in-memory datasets (normalised like the real data)."""
    bad = sorted(set(cfg.input.kwargs) - set(_SYNTHETIC_KWARGS))
    if bad:
        raise ConfigError(cfg.path, f"input.kwargs.{bad[0]}", f"unknown; allowed: {', '.join(_SYNTHETIC_KWARGS)}")
    size, frames = int(cfg.input.kwargs.get("image_size", 32)), bool(cfg.input.kwargs.get("frames", False))
    classes, channels = int(model.num_classes), int(model.in_channels)
    if frames and channels != 2:
        expected = f"event frames have 2 polarities; set [model] kwargs in_channels = 2 (got {channels})"
        raise ConfigError(cfg.path, "input.kwargs.frames", expected)
    spec = ImageClassesSpec(num_classes=classes, image_size=size, channels=channels, seed=cfg.input.seed)
    out = []
    for stream, total in ((TRAIN_STREAM, settings.train_samples or _SYNTHETIC_SIZES[0]),
                          (TEST_STREAM, settings.test_samples or _SYNTHETIC_SIZES[1])):  # fmt: skip
        per_class = max(1, math.ceil(total / classes))
        if frames:
            counts, labels = render_frames(spec, per_class, cfg.input.time_steps, stream)
            x = torch.stack([transform_frames(torch.from_numpy(c), size) for c in counts])
        else:
            images, labels = render_images(spec, per_class, stream)
            mean, std = (CIFAR_MEAN, CIFAR_STD) if channels == 3 else ((0.5,) * channels, (0.25,) * channels)
            x = normalize_images(torch.from_numpy(images), mean, std)
        out.append(TensorDataset(x[:total], torch.from_numpy(labels)[:total]))
    return out[0], out[1]


def _from_reader(cfg: Any, settings: OTTTSettings) -> tuple[Dataset, Dataset]:
    """Train and test splits from the config's dataset reader (optionally capped)."""
    reader = get_reader(cfg.input.reader)
    kwargs = {k: v for k, v in cfg.input.kwargs.items() if k != "split"}
    splits = []
    for split, cap in (("train", settings.train_samples), ("test", settings.test_samples)):
        try:
            ds = reader(cfg.input.path, split=split, **kwargs)
        except TypeError as err:
            raise ConfigError(cfg.path, "input.kwargs", f"rejected by reader {cfg.input.reader!r}: {err}") from None
        splits.append(Subset(ds, range(min(cap, len(ds)))) if cap else ds)
    if len(splits[0]) == 0 or len(splits[1]) == 0:
        raise ConfigError(cfg.path, "input.path", f"{cfg.input.path}: the train or test split is empty")
    return splits[0], splits[1]


def _fetch(ds: Dataset, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack the samples ``index`` of a dataset into ``(inputs, targets)``."""
    if isinstance(ds, TensorDataset):
        idx = torch.from_numpy(index)
        return ds.tensors[0][idx], ds.tensors[1][idx]
    items = [ds[int(i)] for i in index]
    return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items], dtype=torch.int64)


def _targets(ds: Dataset) -> torch.Tensor:
    """All labels of a dataset (from ``targets`` when the reader provides it)."""
    if isinstance(ds, TensorDataset):
        return ds.tensors[1]
    if isinstance(ds, Subset) and hasattr(ds.dataset, "targets"):
        return torch.as_tensor(ds.dataset.targets)[list(ds.indices)]
    if hasattr(ds, "targets"):
        return torch.as_tensor(ds.targets)
    return _fetch(ds, np.arange(len(ds)))[1]  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the loop


@register_trainer("ottt_vgg11_ws", "ottt_vgg11f_ws", "ottt_nfresnet34")
class OTTTTrainer:
    """OTTT_A / OTTT_O online training through time (implements the harness's ``Trainer`` protocol).

    Args:
        model: an OTTT zoo network (single-step, ``forward(x, init)``), already on ``device``.
        cfg: the run config (``[train]`` validated by :func:`parse_settings`).
        device: where batches go.
    """

    def __init__(self, model: nn.Module, cfg: Any, device: torch.device) -> None:
        self.model, self.cfg, self.device = model, cfg, torch.device(device)
        self.settings = parse_settings(cfg)
        self.num_classes = int(getattr(model, "num_classes", cfg.model.kwargs.get("num_classes", 10)))
        if cfg.input.source == "dataset":
            self.train_set, self.test_set = _from_reader(cfg, self.settings)
        else:
            self.train_set, self.test_set = _synthetic(cfg, model, self.settings)
        self.seed, self.time_steps = int(cfg.input.seed), int(cfg.input.time_steps)
        self.optimizer = self._optimizer()
        s, cosine = self.settings, torch.optim.lr_scheduler.CosineAnnealingLR
        self.scheduler = cosine(self.optimizer, T_max=s.t_max) if s.scheduler == "cosine" else None
        self._order: tuple[int, np.ndarray] | None = None
        self._chance = self._chance_level()

    def _optimizer(self) -> torch.optim.Optimizer:
        s, params = self.settings, self.model.parameters()
        if s.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
        return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)

    def _chance_level(self) -> float:
        counts = torch.bincount(_targets(self.test_set), minlength=self.num_classes)
        return float(counts.max()) / float(counts.sum())

    def steps_per_epoch(self) -> int:
        """Batches per epoch (the last one may be smaller, as with a DataLoader without drop_last)."""
        return math.ceil(len(self.train_set) / self.settings.batch_size)

    def _batch_index(self, step: int) -> np.ndarray:
        epoch, k = divmod(step, self.steps_per_epoch())
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, 10, epoch]).permutation(len(self.train_set)))
        b = self.settings.batch_size
        return self._order[1][k * b : (k + 1) * b]

    def _steps_of(self, x: torch.Tensor) -> int:
        return x.shape[1] if x.dim() == 5 else self.time_steps

    def _forward_steps(self, x: torch.Tensor, y: torch.Tensor, backward: bool) -> tuple[torch.Tensor, float]:
        """Run the T steps (backward and optimiser steps when training); return summed logits and loss."""
        steps, online = self._steps_of(x), self.settings.online_update
        total, loss_sum = torch.zeros(()), 0.0
        for t in range(steps):
            if backward and online:
                self.optimizer.zero_grad(set_to_none=True)
            out = self.model(x[:, t] if x.dim() == 5 else x, init=(t == 0))
            loss = ottt_loss(out, y, self.num_classes, self.settings.loss_lambda, steps)
            if backward:
                loss.backward()
                if online:
                    self.optimizer.step()
            total = total + out.detach()
            loss_sum += float(loss.detach())
        return total, loss_sum

    def train_step(self, step: int) -> dict[str, float]:
        """One batch of online training; returns ``loss`` (summed over T), ``accuracy`` and ``lr``."""
        x, y = _fetch(self.train_set, self._batch_index(step))
        if self.settings.augment:
            x = augment_batch(x, np.random.default_rng([self.seed, 11, step]))
        x, y = x.to(self.device), y.to(self.device)
        self.model.train()
        if not self.settings.online_update:
            self.optimizer.zero_grad(set_to_none=True)
        total, loss = self._forward_steps(x, y, backward=True)
        if not self.settings.online_update:
            self.optimizer.step()
        accuracy = float((total.argmax(1) == y).float().mean())
        return {"loss": loss, "accuracy": accuracy, "lr": float(self.optimizer.param_groups[0]["lr"])}

    def end_epoch(self, epoch: int) -> None:
        """Step the per-epoch learning-rate schedule."""
        del epoch
        if self.scheduler is not None:
            self.scheduler.step()

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Test-set ``accuracy`` (argmax of logits summed over T), mean ``loss`` and ``chance`` (majority class)."""
        self.model.eval()
        correct, loss, n = 0, 0.0, len(self.test_set)
        for start in range(0, n, self.settings.eval_batch_size):
            x, y = _fetch(self.test_set, np.arange(start, min(n, start + self.settings.eval_batch_size)))
            x, y = x.to(self.device), y.to(self.device)
            total, batch_loss = self._forward_steps(x, y, backward=False)
            correct += int((total.argmax(1) == y).sum())
            loss += batch_loss * len(y)
        return {"accuracy": correct / n, "loss": loss / n, "chance": self._chance, "samples": float(n)}

    def count_inputs(self) -> torch.Tensor:
        """The first ``input.batch_size`` test samples as runner inputs (frames as ``[T, B, ...]``)."""
        n = min(self.cfg.input.batch_size, len(self.test_set))
        x, _ = _fetch(self.test_set, np.arange(n))
        return from_batch(x.to(self.device))

    def state_dict(self) -> dict[str, Any]:
        """Optimiser and scheduler state."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
