"""StereoSpike reference loop: loss and metric on hand values, [train] validation, short runs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from snnprof.config import parse_config
from snnprof.data.synthetic_stereo import SceneSpec, render_scene, write_mvsec
from snnprof.errors import ConfigError
from snnprof.models import create_model
from snnprof.reference_impls.stereospike_train import (
    StereoSpikeTrainer,
    gradient_matching_loss,
    mean_depth_error,
    parse_settings,
    scale_invariant_loss,
    spike_penalty,
    total_loss,
)
from snnprof.reference_impls.training import Trainer, get_trainer

NAN = math.nan


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-5, abs=1e-6)


CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows).reshape(1, 1, len(rows), len(rows[0]))


# --------------------------------------------------------------------------- loss and metric


def test_scale_invariant_hand_values() -> None:
    pred = _t([[1, 2], [3, 4]])
    assert float(scale_invariant_loss(pred, _t([[1, 1], [NAN, 5]]))) == approx(2 / 3)  # R = 0, 1, -1
    gt = _t([[0, 0], [0, NAN]])  # R = 1, 2, 3: 14/3 - 36/9
    assert float(scale_invariant_loss(pred, gt)) == approx(14 / 3 - 4)
    assert float(scale_invariant_loss(pred, gt, si_lambda=0.5)) == approx(14 / 3 - 2)
    assert float(scale_invariant_loss(pred + 7.0, gt)) == approx(14 / 3 - 4)  # blind to offsets
    assert float(scale_invariant_loss(pred, _t([[NAN, NAN], [NAN, NAN]]))) == 0.0


def test_gradient_matching_hand_values() -> None:
    gt = torch.zeros(1, 1, 3, 3)
    pred = gt.clone()
    pred[0, 0, 1, 1] = 1.0  # a unit residual: |Sobel| sums to 8 per direction
    assert float(gradient_matching_loss(pred, gt)) == approx(16 / 9)
    gt[0, 0, 0, 0] = NAN  # the corner leaves the sum (|1| + |1|) and n drops to 8
    assert float(gradient_matching_loss(pred, gt)) == approx(14 / 8)
    assert float(gradient_matching_loss(pred + 3.0, torch.full((1, 1, 3, 3), 3.0))) == approx(16 / 9)
    # a uniform offset R = 1 shows only through the zero padding: |Sobel_x| is 3, 4, 3 down each of
    # the two outer columns (20 per direction), 0 inside
    flat = torch.zeros(1, 1, 3, 3)
    assert float(gradient_matching_loss(flat + 1.0, flat)) == approx(2 * 20 / 9)


def test_total_loss_sums_scales() -> None:
    gt = torch.zeros(1, 1, 3, 3)
    pred = gt.clone()
    pred[0, 0, 1, 1] = 1.0
    si, gm = float(scale_invariant_loss(pred, gt)), 16 / 9
    assert si == approx(1 / 9 - 1 / 81)
    assert float(total_loss([pred] * 4, gt)) == approx(4 * (si + 0.5 * gm))
    assert float(total_loss([pred] * 4, gt, scale_weights=(1, 0, 0, 0), alpha=1.0)) == approx(si + gm)
    spikes = [torch.tensor([[0.0, 1.0], [2.0, 0.0]])]
    assert float(spike_penalty(spikes)) == approx(5 / 8)
    with_pen = total_loss([pred], gt, scale_weights=(1,), spikes=spikes, beta=2.0)
    assert float(with_pen) == approx(si + 0.5 * gm + 2 * 5 / 8)
    small = torch.full((1, 1, 2, 2), 4.0)  # a head at another size: the GT is resized bilinearly
    assert float(total_loss([small], torch.full((1, 1, 4, 4), 4.0), scale_weights=(1,))) == approx(0.0)


def test_mean_depth_error_hand() -> None:
    assert mean_depth_error(_t([[1, 2], [3, 4]]), _t([[2, 2], [NAN, 0]])) == approx(5 / 3)
    assert math.isnan(mean_depth_error(_t([[1.0]]), _t([[NAN]])))


def test_loss_gradient_ignores_nan_pixels() -> None:
    pred = torch.ones(1, 1, 4, 4, requires_grad=True)
    gt = torch.full((1, 1, 4, 4), 2.0)
    gt[0, 0, 0, 0] = NAN
    total_loss([pred], gt, scale_weights=(1,)).backward()
    assert torch.isfinite(pred.grad).all()


# --------------------------------------------------------------------------- settings


def test_settings_defaults_are_the_seed_code() -> None:
    s = parse_settings({}, "c.toml")
    assert (s.lr, s.weight_decay, s.milestones, s.gamma, s.alpha) == (2e-4, 0.0, (8, 42, 60), 0.5, 0.5)
    assert (s.scale_weights, s.si_lambda, s.penalize_spikes, s.depth_prior) == ((1.0,) * 4, 1.0, False, "none")
    paper = parse_settings({"schedule": "paper", "epochs": 30}, "c.toml")
    assert (paper.milestones, paper.gamma) == ((10, 25, 40), 0.1)
    assert parse_settings({"milestones": [5, 2], "gamma": 0.3}, "c").milestones == (2, 5)
    assert parse_settings({"depth_prior": 3}, "c").depth_prior == 3.0


@pytest.mark.parametrize(
    "table,key",
    [
        ({"learning_rate": 1e-3}, "train.learning_rate"),
        ({"lr": -1.0}, "train.lr"),
        ({"lr": "fast"}, "train.lr"),
        ({"schedule": "cosine"}, "train.schedule"),
        ({"milestones": [1.5]}, "train.milestones[0]"),
        ({"milestones": 3}, "train.milestones"),
        ({"depth_prior": True}, "train.depth_prior"),
        ({"scale_weights": [1, 2, 3, 4, 5]}, "train.scale_weights"),
        ({"penalize_spikes": 1}, "train.penalize_spikes"),
        ({"depth_prior": "median"}, "train.depth_prior"),
        ({"train_scenes": 0}, "train.train_scenes"),
        ({"test_fraction": 1.0}, "train.test_fraction"),
    ],
)
def test_bad_train_keys(table: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(table, "run.toml")
    assert err.value.key == key and "run.toml" in str(err.value)


# --------------------------------------------------------------------------- short runs

TINY = """
[model]
name = "{name}"
kwargs = {{ {size}{extra} }}
[input]
source = "{source}"
batch_size = 2
seed = 3
{input_extra}
[train]
train_scenes = 2
test_scenes = 1
frames_per_scene = 2
depth_prior = "train_mean"
{train_extra}
"""


def _trainer(*, name: str = "stereospike", extra: str = "", source: str = "synthetic", input_extra: str = "",
             train_extra: str = "", path: Path | str = "tiny.toml", size: str = "height = 16, width = 24",
             ) -> StereoSpikeTrainer:  # fmt: skip
    text = TINY.format(name=name, extra=extra, source=source, input_extra=input_extra, train_extra=train_extra,
                       size=size)  # fmt: skip
    cfg = parse_config(text, path)
    torch.manual_seed(0)
    model = create_model(cfg.model.name, **cfg.model.kwargs)
    return get_trainer(cfg.model.name)(model, cfg, torch.device("cpu"))


@pytest.mark.parametrize(
    "name,extra", [("stereospike", ""), ("stereospike", ", monocular = true"), ("stereospike_ann", "")]
)
def test_short_run(name: str, extra: str) -> None:
    trainer = _trainer(name=name, extra=extra)
    assert isinstance(trainer, Trainer)
    assert trainer.steps_per_epoch() == 2  # 2 scenes x 2 frames, batch 2
    before = [p.detach().clone() for p in trainer.model.parameters()]
    metrics = [trainer.train_step(0)]
    assert all(math.isfinite(m["loss"]) and math.isfinite(m["mde"]) for m in metrics)
    assert metrics[0]["lr"] == 2e-4
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))
    trainer.end_epoch(0)
    result = trainer.evaluate()
    assert {"loss", "mde", "mde_baseline_mean", "density_mean"} <= set(result)
    assert result["mde_baseline_mean"] > 0 and math.isfinite(result["mde"])
    channels = 2 if "monocular" in extra else 4
    assert trainer.count_inputs().shape == (2, 1, channels, 16, 24)


def test_state_round_trip_and_schedule() -> None:
    trainer = _trainer(train_extra="milestones = [1]\ngamma = 0.1")
    trainer.train_step(0)
    trainer.end_epoch(0)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(2e-5)
    state = trainer.state_dict()
    fresh = _trainer(train_extra="milestones = [1]\ngamma = 0.1")
    fresh.load_state_dict(state)
    assert fresh.optimizer.param_groups[0]["lr"] == pytest.approx(2e-5)
    assert fresh.scheduler.last_epoch == 1 and fresh.depth_prior == trainer.depth_prior > 0


def test_deterministic_order_and_data() -> None:
    a, b = _trainer(), _trainer()
    assert torch.equal(a._batch_indices(0), b._batch_indices(0))
    assert a.baseline_depth == b.baseline_depth
    assert a.train_step(0)["loss"] == pytest.approx(b.train_step(0)["loss"], rel=1e-5)


def test_dataset_source(tmp_path: Path) -> None:
    data, _ = write_mvsec(render_scene(SceneSpec(16, 24, frames=5, seed=1)), tmp_path, "seq1")
    input_extra = f'path = "{data}"\nreader = "mvsec"\nkwargs = {{ window = "preceding" }}'
    trainer = _trainer(source="dataset", input_extra=input_extra, path=tmp_path / "run.toml")
    assert (len(trainer.train_set), len(trainer.test_set)) == (4, 1)
    assert math.isfinite(trainer.train_step(0)["loss"])
    with pytest.raises(ConfigError, match="model.kwargs"):
        _trainer(size="height = 32, width = 24", source="dataset", input_extra=input_extra, path=tmp_path / "run.toml")


def test_training_config_parses() -> None:
    from snnprof.config import load_config

    cfg = load_config(CONFIGS / "train_stereospike_small.toml")
    settings = parse_settings(dict(cfg.train), cfg.path)
    assert cfg.model.name == "stereospike" and settings.depth_prior == "train_mean"


@pytest.mark.slow
def test_learns_on_synthetic_scenes() -> None:
    """The full demonstration of docs/stereospike.md: MDE well below the predict-the-mean baseline."""
    from snnprof.config import load_config

    cfg = load_config(CONFIGS / "train_stereospike_small.toml")
    torch.manual_seed(cfg.input.seed)
    model = create_model(cfg.model.name, **cfg.model.kwargs)
    trainer = get_trainer(cfg.model.name)(model, cfg, torch.device("cpu"))
    epochs = int(cfg.train["epochs"])
    for epoch in range(epochs):
        for i in range(trainer.steps_per_epoch()):
            trainer.train_step(epoch * trainer.steps_per_epoch() + i)
        trainer.end_epoch(epoch)
    result = trainer.evaluate()
    assert result["mde"] < 0.75 * result["mde_baseline_mean"], result
