"""The OTTT reference training loop: settings, loss, OTTT_A vs OTTT_O, augmentation, data sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnprof.config import parse_config
from snnprof.data import synthetic_images as si
from snnprof.errors import ConfigError
from snnprof.models import create_model
from snnprof.reference_impls.ottt_train import OTTTTrainer, augment_batch, ottt_loss, parse_settings
from snnprof.reference_impls.training import get_trainer, list_trainers

BASE = """\
[model]
name = "ottt_vgg11_ws"
kwargs = {{ num_classes = 10, width = 0.0625 }}
[input]
source = "synthetic"
batch_size = 3
time_steps = 2
seed = 0
kwargs = {{ image_size = 8{frames} }}
[train]
batch_size = 8
train_samples = 40
test_samples = 20
{extra}
"""


def make(tmp_path: Path, extra: str = "", frames: str = "", in_channels: int = 3) -> OTTTTrainer:
    text = BASE.format(extra=extra, frames=frames)
    if in_channels != 3:
        text = text.replace("width = 0.0625", f"width = 0.0625, in_channels = {in_channels}")
    cfg = parse_config(text, tmp_path / "train.toml")
    torch.manual_seed(0)
    model = create_model(cfg.model.name, **cfg.model.kwargs)
    return get_trainer(cfg.model.name)(model, cfg, torch.device("cpu"))


def test_registered_for_the_three_ottt_models() -> None:
    assert {"ottt_vgg11_ws", "ottt_vgg11f_ws", "ottt_nfresnet34"} <= set(list_trainers())
    assert get_trainer("ottt_nfresnet34") is OTTTTrainer


def test_defaults_are_the_seed_cifar_run(tmp_path: Path) -> None:
    cfg = parse_config('[model]\nname = "ottt_vgg11_ws"\n[train]\n', tmp_path / "x.toml")
    s = parse_settings(cfg)
    assert (s.epochs, s.batch_size, s.optimizer, s.lr, s.momentum, s.weight_decay) == (300, 128, "sgd", 0.1, 0.9, 0.0)
    assert (s.scheduler, s.t_max, s.loss_lambda, s.online_update, s.augment) == ("cosine", 300, 0.05, False, False)
    cfg = parse_config('[model]\nname = "ottt_vgg11_ws"\n[train]\nepochs = 7\nlr = 1\n', tmp_path / "x.toml")
    assert parse_settings(cfg).t_max == 7 and parse_settings(cfg).lr == 1.0


@pytest.mark.parametrize(
    ("extra", "key"),
    [('bogus = 1', "train.bogus"), ('lr = "fast"', "train.lr"), ("eval_batch_size = true", "train.eval_batch_size"),
     ("loss_lambda = 2.0", "train.loss_lambda"), ('optimizer = "rmsprop"', "train.optimizer"),
     ("eval_batch_size = 0", "train.eval_batch_size"), ("online_update = 1", "train.online_update")],
)  # fmt: skip
def test_bad_train_keys(tmp_path: Path, extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        make(tmp_path, extra)
    assert info.value.key == key and str(tmp_path / "train.toml") in str(info.value)


def test_bad_synthetic_kwargs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="input.kwargs.colour"):
        make(tmp_path, frames=", colour = 1")


def test_loss_closed_form() -> None:
    out = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    y = torch.tensor([0, 2])
    ce = (-torch.log_softmax(out, 1)[torch.arange(2), y]).mean()
    mse = ((out - torch.nn.functional.one_hot(y, 3)) ** 2).mean()
    torch.testing.assert_close(ottt_loss(out, y, 3, 0.05, 6), (0.95 * ce + 0.05 * mse) / 6)
    torch.testing.assert_close(ottt_loss(out, y, 3, 0.0, 4), ce / 4)


@pytest.mark.parametrize(("online", "expected_steps"), [(False, 1), (True, 2)])
def test_ottt_a_steps_once_per_batch_ottt_o_once_per_time_step(tmp_path: Path, online: bool, expected_steps: int):
    trainer = make(tmp_path, f'optimizer = "adamw"\nonline_update = {str(online).lower()}')
    metrics = trainer.train_step(0)
    assert set(metrics) == {"loss", "accuracy", "lr"}
    steps = {int(s["step"]) for s in trainer.optimizer.state.values()}
    assert steps == {expected_steps}  # T = 2


def test_ottt_a_gradient_is_the_sum_of_per_step_gradients(tmp_path: Path) -> None:
    trainer = make(tmp_path, "lr = 0.0\nmomentum = 0.0")
    model = trainer.model
    trainer.train_step(0)
    accumulated = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    from snnprof.reference_impls.ottt_train import _fetch

    x, y = _fetch(trainer.train_set, trainer._batch_index(0))
    per_step = {n: torch.zeros_like(g) for n, g in accumulated.items()}
    for t in range(2):
        model.zero_grad()
        ottt_loss(model(x, init=(t == 0)), y, 10, 0.05, 2).backward()
        for n, p in model.named_parameters():
            if n in per_step and p.grad is not None:
                per_step[n] += p.grad
    for name, grad in accumulated.items():
        torch.testing.assert_close(grad, per_step[name])


def test_epoch_order_is_a_seeded_permutation(tmp_path: Path) -> None:
    trainer = make(tmp_path)
    assert trainer.steps_per_epoch() == 5
    epoch0 = np.concatenate([trainer._batch_index(k) for k in range(5)])
    epoch1 = np.concatenate([trainer._batch_index(5 + k) for k in range(5)])
    assert sorted(epoch0.tolist()) == list(range(40)) == sorted(epoch1.tolist())
    assert not np.array_equal(epoch0, epoch1)
    assert np.array_equal(make(tmp_path)._batch_index(3), trainer._batch_index(3))


def test_augmentation(tmp_path: Path) -> None:
    x = torch.randn(6, 3, 8, 8)
    a = augment_batch(x, np.random.default_rng([0, 1]))
    b = augment_batch(x, np.random.default_rng([0, 1]))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, x)
    frames = torch.randn(4, 1, 2, 8, 8).expand(4, 3, 2, 8, 8).contiguous()  # identical frames per sample
    out = augment_batch(frames, np.random.default_rng(5))
    assert out.shape == frames.shape
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])  # crop consistent over time
    # Padding is a zero pixel after normalisation: -mean / std per channel.
    pad = torch.full((1, 2, 8, 8), 1e3)
    cropped = augment_batch(pad.unsqueeze(1), np.random.default_rng(0))
    pads = [-0.2728 / 0.2225, -0.1295 / 0.1290]
    for channel in range(2):
        values = torch.unique(cropped[:, :, channel]).tolist()
        assert all(v == 1e3 or v == pytest.approx(pads[channel]) for v in values)


def test_evaluate_and_count_inputs(tmp_path: Path) -> None:
    trainer = make(tmp_path)
    ev = trainer.evaluate()
    assert set(ev) == {"accuracy", "loss", "chance", "samples"}
    assert ev["chance"] == 0.1 and ev["samples"] == 20.0 and 0.0 <= ev["accuracy"] <= 1.0
    assert trainer.count_inputs().shape == (3, 3, 8, 8)
    trainer.train_step(0)
    state = trainer.state_dict()
    assert set(state) == {"optimizer", "scheduler"}
    trainer.end_epoch(0)
    assert trainer.scheduler.last_epoch == 1
    trainer.load_state_dict(state)
    assert trainer.scheduler.last_epoch == 0


def test_synthetic_event_frames(tmp_path: Path) -> None:
    trainer = make(tmp_path, frames=", frames = true", in_channels=2)
    x = trainer.train_set.tensors[0]
    assert x.shape == (40, 2, 2, 8, 8)  # [N, T, 2, S, S]
    metrics = trainer.train_step(0)
    assert np.isfinite(metrics["loss"])
    assert trainer.count_inputs().shape == (2, 3, 2, 8, 8)  # [T, B, C, H, W]


def test_dataset_source_reads_cifar_files(tmp_path: Path) -> None:
    si.write_cifar(tmp_path, si.ImageClassesSpec(image_size=32, seed=1), train_per_class=3, test_per_class=2)
    extra = "augment = true"
    source = f'source = "dataset"\nreader = "cifar10"\npath = "{tmp_path}"'
    text = BASE.format(extra=extra, frames="").replace('source = "synthetic"', source)
    text = text.replace("train_samples = 40\ntest_samples = 20", "train_samples = 16")
    cfg = parse_config(text, tmp_path / "train.toml")
    model = create_model(cfg.model.name, **cfg.model.kwargs)
    trainer = OTTTTrainer(model, cfg, torch.device("cpu"))
    assert len(trainer.train_set) == 16 and len(trainer.test_set) == 20  # train capped, test whole
    assert trainer.settings.augment
    assert np.isfinite(trainer.train_step(0)["loss"])
    assert trainer.evaluate()["chance"] == 0.1


def test_synthetic_frames_need_two_input_channels(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="in_channels = 2"):
        make(tmp_path, frames=", frames = true")
