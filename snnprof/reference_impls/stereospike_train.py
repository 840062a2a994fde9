"""StereoSpike's reference training loop (``urancon/StereoSpike`` ``train.py``, ``network/loss.py``).

Per sample batch (``docs/seed_models.md`` section 3.3): ``reset_net``; ``(preds, spikes) = net(x)``;
``Total_Loss``; ``backward``; Adam step. The loss is summed over the four depth heads, with the
ground truth bilinearly resized to each head's size (all heads are full resolution here)::

    L   = sum_s w_s * (SI(pred_s, gt) + alpha * GM(pred_s, gt))     [+ beta * spike penalty]
    SI  = 1/n sum R^2 - lambda/n^2 (sum R)^2      R = pred - gt over the n non-NaN pixels (lambda = 1)
    GM  = 1/n sum (|Sobel_x R| + |Sobel_y R|)    (R = 0 at NaN pixels; sums over the non-NaN ones)
    pen = sum_tensors sum(s^2) / (2 numel)        (bottleneck + skip tensors; off by default)

Metric: MDE = mean |depth1 - gt| over non-NaN pixels, in metres, averaged over test samples. Its
trivial baseline ``mde_baseline_mean`` predicts the training set's mean depth everywhere.

``[train]`` keys (all optional; defaults = the seed's code):

* ``lr`` (2e-4), ``weight_decay`` (0.0): Adam.
* ``schedule``: ``"code"`` (``MultiStepLR([8, 42, 60], 0.5)``, 70 epochs in the seed) or ``"paper"``
  (paper v2: lr / 10 at epochs 10, 25, 40, 30 epochs); ``milestones`` / ``gamma`` override it.
* ``alpha`` (0.5), ``scale_weights`` ([1, 1, 1, 1]), ``si_lambda`` (1.0; < 1 makes SI sensitive to
  the mean offset, as in Eigen et al. 2014), ``penalize_spikes`` (false), ``beta`` (1.0).
* ``depth_prior``: ``"none"`` (seed), ``"train_mean"`` (start the output I-neurons at the training
  set's mean depth, the seed's ``set_init_depths_potentials``) or a number in metres. SI is blind
  to a constant offset; GM sees the level only through its zero padding (image border, NaN holes),
  so without a prior the absolute level is found late in training.
* synthetic data (``[input] source = "synthetic"``): ``train_scenes`` (8), ``test_scenes`` (2),
  ``frames_per_scene`` (10), ``boxes`` (3), ``edge_rate`` (1.5), ``noise_rate`` (0.02); the scenes'
  size is the model's ``height`` x ``width``.
* dataset (``source = "dataset"``, ``reader = "mvsec"``): ``test_path`` (a second sequence read with
  the same reader kwargs) or ``test_fraction`` (0.2: the last frames of the sequence).
* ``epochs``: read by the ``snnprof train`` harness, accepted here.

An unknown key or a bad value raises ``ConfigError(cfg.path, "train.<key>", ...)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BeforeValidator, Field, field_validator, model_validator
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from snnprof.errors import ConfigError
from snnprof.reference_impls.training import register_trainer
from snnprof.validation import NonNegativeFloat, PositiveFloat, PositiveInt, StrictModel, describe, validate

__all__ = [
    "SCHEDULES",
    "StereoSpikeTrainer",
    "TrainSettings",
    "gradient_matching_loss",
    "mean_depth_error",
    "parse_settings",
    "scale_invariant_loss",
    "spike_penalty",
    "total_loss",
]

logger = logging.getLogger(__name__)

#: ``schedule`` presets: (milestones, gamma).
SCHEDULES: dict[str, tuple[tuple[int, ...], float]] = {"code": ((8, 42, 60), 0.5), "paper": ((10, 25, 40), 0.1)}
_SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
_SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))


# --------------------------------------------------------------------------- loss and metric


def _residual(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(R with 0 at NaN pixels, valid mask, n valid)`` for ``pred``/``gt`` ``[B, 1, H, W]``."""
    mask = ~torch.isnan(gt)
    res = torch.where(mask, pred - torch.nan_to_num(gt), torch.zeros_like(pred))
    return res, mask, mask.sum()


def scale_invariant_loss(pred: torch.Tensor, gt: torch.Tensor, si_lambda: float = 1.0) -> torch.Tensor:
    """``1/n sum R^2 - lambda/n^2 (sum R)^2`` over the non-NaN pixels of the whole batch (m^2).

    Args:
        pred: predicted depth ``[B, 1, H, W]``, metres.
        gt: ground truth, same shape, NaN = invalid.
        si_lambda: weight of the offset term (1 = the seed: blind to a constant offset).
    """
    res, _, n = _residual(pred, gt)
    if int(n) == 0:
        return pred.sum() * 0.0
    return (res**2).sum() / n - si_lambda * res.sum() ** 2 / n**2


def gradient_matching_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """``1/n sum (|Sobel_x R| + |Sobel_y R|)`` over the non-NaN pixels (Sobel with zero padding 1), m/px.

    Args:
        pred: predicted depth ``[B, 1, H, W]``, metres.
        gt: ground truth, same shape, NaN = invalid.
    """
    res, mask, n = _residual(pred, gt)
    if int(n) == 0:
        return pred.sum() * 0.0
    kernels = torch.tensor((_SOBEL_X, _SOBEL_Y), dtype=res.dtype, device=res.device).unsqueeze(1)
    grads = F.conv2d(res, kernels, padding=1)
    return (grads.abs().sum(dim=1, keepdim=True) * mask).sum() / n


def spike_penalty(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The seed's activity regulariser ``sum_t sum(s^2) / (2 numel(t))``."""
    total = torch.zeros(())
    for t in tensors:
        total = total.to(t.device) + (t**2).sum() / (2 * t.numel())
    return total


def total_loss(
    preds: Sequence[torch.Tensor],
    gt: torch.Tensor,
    *,
    alpha: float = 0.5,
    scale_weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    si_lambda: float = 1.0,
    spikes: Sequence[torch.Tensor] | None = None,
    beta: float = 1.0,
) -> torch.Tensor:
    """The seed's ``Total_Loss``: multi-scale SI + ``alpha`` x gradient matching (+ ``beta`` x spike penalty).

    Args:
        preds: depth heads ``[depth1, ..., depth4]``, each ``[B, 1, h, w]``.
        gt: ground truth ``[B, 1, H, W]`` (bilinearly resized to each head's size when it differs).
        alpha: gradient-matching weight.
        scale_weights: weight per head.
        si_lambda: offset weight of the SI term.
        spikes: tensors to penalise (``None``: no penalty).
        beta: penalty weight.
    """
    loss = preds[0].new_zeros(())
    for weight, pred in zip(scale_weights, preds, strict=False):
        target = gt
        if tuple(pred.shape[-2:]) != tuple(gt.shape[-2:]):
            target = F.interpolate(gt, size=tuple(pred.shape[-2:]), mode="bilinear", align_corners=False)
        loss = loss + weight * (
            scale_invariant_loss(pred, target, si_lambda) + alpha * gradient_matching_loss(pred, target)
        )
    if spikes is not None:
        loss = loss + beta * spike_penalty(spikes)
    return loss


def mean_depth_error(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """MDE: mean ``|pred - gt|`` over the non-NaN ground-truth pixels, metres (NaN if there are none)."""
    mask = ~torch.isnan(gt)
    if not bool(mask.any()):
        return math.nan
    return float((pred.detach()[mask] - gt[mask]).abs().mean())


# --------------------------------------------------------------------------- settings


def _depth_prior(value: Any) -> Any:
    """``"none"``, ``"train_mean"`` or a depth in metres (a float); anything else is refused."""
    if value in ("none", "train_mean"):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError(f"expected 'none', 'train_mean' or a depth in metres, got {describe(value)}")


class TrainSettings(StrictModel):
    """Validated ``[train]`` settings (see the module docstring for meanings and defaults).

    ``schedule`` picks the ``milestones``/``gamma`` preset of :data:`SCHEDULES`; explicit
    ``milestones`` (sorted here) or ``gamma`` override it.
    """

    epochs: PositiveInt = 1
    lr: PositiveFloat = 2e-4
    weight_decay: NonNegativeFloat = 0.0
    schedule: Literal["code", "paper"] = "code"
    milestones: tuple[Annotated[int, Field(ge=0)], ...] = SCHEDULES["code"][0]
    gamma: NonNegativeFloat = SCHEDULES["code"][1]
    alpha: NonNegativeFloat = 0.5
    scale_weights: Annotated[tuple[NonNegativeFloat, ...], Field(min_length=1, max_length=4)] = (1.0, 1.0, 1.0, 1.0)
    si_lambda: NonNegativeFloat = 1.0
    penalize_spikes: bool = False
    beta: NonNegativeFloat = 1.0
    depth_prior: Annotated[str | float, BeforeValidator(_depth_prior)] = "none"
    train_scenes: PositiveInt = 8
    test_scenes: PositiveInt = 2
    frames_per_scene: PositiveInt = 10
    boxes: Annotated[int, Field(ge=0)] = 3
    edge_rate: NonNegativeFloat = 1.5
    noise_rate: NonNegativeFloat = 0.02
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    test_path: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _presets(cls, data: Any) -> Any:
        """Fill ``milestones``/``gamma`` from ``schedule``; TOML arrays become tuples."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        preset = SCHEDULES.get(data.get("schedule", "code"))
        if preset is not None:
            data.setdefault("milestones", preset[0])
            data.setdefault("gamma", preset[1])
        for key in ("milestones", "scale_weights"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return data

    @field_validator("milestones")
    @classmethod
    def _sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sorted(value))


def parse_settings(table: dict[str, Any], path: Any) -> TrainSettings:
    """Validate the ``[train]`` table.

    Raises:
        ConfigError: ``train.<key>: expected ...`` for an unknown key or a bad value.
    """
    return validate(TrainSettings, table, path=path, prefix="train")


# --------------------------------------------------------------------------- data


def _synthetic(model: nn.Module, s: TrainSettings, seed: int) -> tuple[Dataset, Dataset]:
    """Train/test sets of rendered scenes at the model's resolution (different scene seeds)."""
    from snnprof.data.synthetic_stereo import SceneSpec, render_scene

    height, width = model.input_size

    def scenes(first: int, count: int) -> TensorDataset:
        xs, ys = [], []
        for i in range(count):
            spec = SceneSpec(
                height, width, frames=s.frames_per_scene, boxes=s.boxes,
                edge_rate=s.edge_rate, noise_rate=s.noise_rate, seed=first + i,
            )  # fmt: skip
            scene = render_scene(spec)
            xs.append(torch.from_numpy(scene.counts).unsqueeze(1))
            ys.append(torch.from_numpy(scene.depth).unsqueeze(1))
        return TensorDataset(torch.cat(xs), torch.cat(ys))

    base = 1000 * int(seed)
    return scenes(base, s.train_scenes), scenes(base + 500, s.test_scenes)


def _from_reader(cfg: Any, s: TrainSettings) -> tuple[Dataset, Dataset]:
    """Train/test sets from ``[input] path``/``reader`` (split by ``test_path`` or ``test_fraction``)."""
    from pathlib import Path

    from torch.utils.data import Subset

    from snnprof.data import get_reader

    reader = get_reader(cfg.input.reader)
    full = reader(Path(cfg.input.path), **cfg.input.kwargs)
    if s.test_path is not None:
        test_file = Path(s.test_path)
        if not test_file.is_absolute() and not test_file.exists():
            test_file = Path(cfg.path).parent / test_file
        return full, reader(test_file, **cfg.input.kwargs)
    n = len(full)
    n_test = max(1, int(round(n * s.test_fraction)))
    if n - n_test < 1:
        raise ConfigError(cfg.path, "train.test_fraction", f"leaves no training sample out of {n}")
    return Subset(full, range(n - n_test)), Subset(full, range(n - n_test, n))


def _stack(dataset: Dataset, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    items = [dataset[int(i)] for i in indices]
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def _mean_depth(dataset: Dataset) -> float:
    """Mean of the valid ground-truth pixels of a data set, metres."""
    total, count = 0.0, 0
    for i in range(len(dataset)):  # type: ignore[arg-type]
        y = dataset[i][1]
        valid = y[~torch.isnan(y)]
        total += float(valid.double().sum())
        count += valid.numel()
    return total / count if count else 0.0


# --------------------------------------------------------------------------- the loop


@register_trainer("stereospike", "stereospike_ann")
class StereoSpikeTrainer:
    """The seed's loop: Adam, MultiStepLR per epoch, SI + 0.5 GM loss, MDE metric (a :class:`Trainer`).

    Args:
        model: a ``stereospike`` or ``stereospike_ann`` zoo model (binocular or monocular).
        cfg: the run config (``cfg.train`` validated by :func:`parse_settings`).
        device: where to train.
    """

    def __init__(self, model: nn.Module, cfg: Any, device: torch.device | str) -> None:
        self.settings = parse_settings(dict(cfg.train), cfg.path)
        self.cfg, self.model, self.device = cfg, model.to(device), torch.device(device)
        self.batch_size = int(cfg.input.batch_size)
        self.seed = int(cfg.input.seed)
        if cfg.input.source == "dataset":
            self.train_set, self.test_set = _from_reader(cfg, self.settings)
        else:
            self.train_set, self.test_set = _synthetic(model, self.settings, self.seed)
        self._check_resolution()
        self.baseline_depth = _mean_depth(self.train_set)
        prior = self.settings.depth_prior
        self.depth_prior = self.baseline_depth if prior == "train_mean" else 0.0 if prior == "none" else float(prior)
        s = self.settings
        self.optimizer = torch.optim.Adam(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(s.milestones), gamma=s.gamma
        )
        self._order: tuple[int, torch.Tensor] | None = None
        logger.info("stereospike: %d train / %d test samples", len(self.train_set), len(self.test_set))

    def _check_resolution(self) -> None:
        x, y = self.test_set[0]
        if tuple(y.shape[-2:]) != tuple(self.model.input_size):
            raise ConfigError(
                self.cfg.path, "model.kwargs",
                f"height/width {tuple(self.model.input_size)} must match the data's {tuple(y.shape[-2:])}",
            )  # fmt: skip
        if x.shape[1] < self.model.in_channels:
            raise ConfigError(self.cfg.path, "input.kwargs", f"data has {x.shape[1]} channels, model needs 4")

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Collated ``[B, 1, C, H, W]`` on the device, cut to the model's channels (monocular: left)."""
        return x[:, :, : self.model.in_channels].to(self.device, torch.float32)

    def _forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        functional.reset_net(self.model)
        self.model.set_depth_prior(self.depth_prior)
        return self.model(self._inputs(x))

    def _loss(self, preds: list[torch.Tensor], spikes: list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        s = self.settings
        return total_loss(
            preds, y.to(self.device), alpha=s.alpha, scale_weights=s.scale_weights, si_lambda=s.si_lambda,
            spikes=spikes if s.penalize_spikes else None, beta=s.beta,
        )  # fmt: skip

    def steps_per_epoch(self) -> int:
        """Batches per epoch (the last incomplete batch is dropped, as the seed's ``drop_last``)."""
        return max(1, len(self.train_set) // self.batch_size)

    def _batch_indices(self, step: int) -> torch.Tensor:
        epoch, i = divmod(int(step), self.steps_per_epoch())
        if self._order is None or self._order[0] != epoch:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._order = (epoch, torch.randperm(len(self.train_set), generator=gen))
        return self._order[1][i * self.batch_size : (i + 1) * self.batch_size]

    def train_step(self, step: int) -> dict[str, float]:
        """One Adam step on batch ``step`` of the seeded shuffled order; returns loss, MDE and lr."""
        self.model.train()
        x, y = _stack(self.train_set, self._batch_indices(step).tolist())
        preds, spikes = self._forward(x)
        loss = self._loss(preds, spikes, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {
            "loss": float(loss.detach()),
            "mde": mean_depth_error(preds[0], y.to(self.device)),
            "lr": float(self.optimizer.param_groups[0]["lr"]),
        }

    def end_epoch(self, epoch: int) -> None:
        """Advance the MultiStepLR schedule (once per epoch, as the seed)."""
        del epoch
        self.scheduler.step()

    def evaluate(self) -> dict[str, float]:
        """Test loss, MDE (m), the predict-the-mean baseline MDE and the mean tensor density (batch 1)."""
        from snnprof.views.stereospike import DensityRecorder

        self.model.eval()
        loss = mde = base = 0.0
        n = len(self.test_set)  # type: ignore[arg-type]
        with torch.no_grad(), DensityRecorder(self.model) as rec:
            for i in range(n):
                x, y = _stack(self.test_set, [i])
                preds, spikes = self._forward(x)
                y = y.to(self.device)
                loss += float(self._loss(preds, spikes, y))
                mde += mean_depth_error(preds[0], y)
                base += mean_depth_error(torch.full_like(y, self.baseline_depth), y)
        density = rec.result()
        out = {"loss": loss / n, "mde": mde / n, "mde_baseline_mean": base / n}
        if density.mean is not None:
            out["density_mean"] = density.mean
        return out

    def count_inputs(self) -> torch.Tensor:
        """The first ``batch_size`` test samples ``[B, 1, C, H, W]`` (the zoo runner's inputs)."""
        n = min(self.batch_size, len(self.test_set))  # type: ignore[arg-type]
        return self._inputs(_stack(self.test_set, list(range(n)))[0])

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, scheduler and depth prior."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "depth_prior": self.depth_prior,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (``--resume``)."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.depth_prior = float(state.get("depth_prior", self.depth_prior))
