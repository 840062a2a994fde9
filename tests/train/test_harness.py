"""The ``snnprof train`` harness with a tiny fake Trainer: files, metrics, exact resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from spikingjelly.activation_based import functional
from typer.testing import CliRunner

from snnprof.cli import app
from snnprof.errors import ConfigError
from snnprof.models import sj_cnn
from snnprof.reference_impls import training
from snnprof.reference_impls.harness import (
    CHECKPOINT,
    COUNT_FILE,
    METRICS,
    MODEL_FILE,
    TrainOptions,
    read_metrics,
    run_training,
)

runner = CliRunner()

FAKE = """\
[model]
name = "sj_spiking_cnn"
kwargs = {{ in_channels = 2, num_classes = 4, image_size = 8 }}
[input]
source = "synthetic"
batch_size = 2
time_steps = 2
seed = 5
kwargs = {{ image_size = 8 }}
[train]
epochs = 3
steps = 3
{extra}
[energy]
profiles = ["cmos45nm_fp32", "loihi"]
"""


class FakeTrainer:
    """Minimal Trainer: random spikes from the *global* RNG (so resume must restore it), SGD + momentum."""

    def __init__(self, model: torch.nn.Module, cfg: Any, device: torch.device) -> None:
        unknown = sorted(set(cfg.train) - {"epochs", "steps", "lr"})
        if unknown:
            raise ConfigError(cfg.path, f"train.{unknown[0]}", "unknown key for the fake loop")
        self.model, self.cfg = model, cfg
        self.steps = int(cfg.train.get("steps", 3))
        self.opt = torch.optim.SGD(model.parameters(), lr=float(cfg.train.get("lr", 0.05)), momentum=0.9)
        self.ended: list[int] = []
        self.seen_epochs = cfg.train["epochs"]

    def steps_per_epoch(self) -> int:
        return self.steps

    def train_step(self, step: int) -> dict[str, float]:
        self.model.train()
        x = (torch.rand(2, 2, 2, 8, 8) < 0.3).float()
        functional.reset_net(self.model)
        loss = self.model(x).pow(2).mean() + 0.01 * torch.randn(())
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        functional.reset_net(self.model)
        return {"loss": float(loss.detach()), "step": float(step)}

    def end_epoch(self, epoch: int) -> None:
        self.ended.append(epoch)

    def evaluate(self) -> dict[str, float]:
        torch.rand(7)  # evaluation consuming RNG must not change the training stream
        return {"score": float(sum(p.detach().abs().sum() for p in self.model.parameters())), "chance": 0.25}

    def count_inputs(self) -> torch.Tensor:
        return sj_cnn.make_inputs(self.model, 2, self.cfg.input.time_steps, seed=1, image_size=8)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["optimizer"])


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    training._load_all()
    monkeypatch.setitem(training._TRAINERS, "sj_spiking_cnn", FakeTrainer)


def config(tmp_path: Path, extra: str = "", name: str = "fake.toml") -> Path:
    path = tmp_path / name
    path.write_text(FAKE.format(extra=extra), encoding="utf-8")
    return path


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / MODEL_FILE, weights_only=True)


def test_files_metrics_and_count(tmp_path: Path, fake: None) -> None:
    out = tmp_path / "run"
    res = run_training(config(tmp_path), TrainOptions(out=out))
    assert (res.global_step, res.steps_per_epoch, res.epochs, res.steps_run) == (9, 3, 3, 9)
    assert sorted(p.name for p in out.iterdir()) == sorted([CHECKPOINT, MODEL_FILE, METRICS, COUNT_FILE])
    records = read_metrics(out / METRICS)
    assert [(r["epoch"], r["global_step"], r["epoch_steps"], r["partial"]) for r in records] == [
        (0, 3, 3, False), (1, 6, 3, False), (2, 9, 3, False)]  # fmt: skip
    assert records[1]["train"]["step"] == pytest.approx((3 + 4 + 5) / 3)  # per-epoch mean of train metrics
    assert set(records[0]["eval"]) == {"score", "chance"}
    ckpt = torch.load(out / CHECKPOINT, weights_only=True)
    assert ckpt["format"] == "snnprof.train/1" and ckpt["model_name"] == "sj_spiking_cnn"
    assert (ckpt["epoch"], ckpt["global_step"], ckpt["epoch_steps"]) == (3, 9, 0)
    assert set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python"}
    for key, value in weights(out).items():
        assert torch.equal(value, ckpt["model"][key])
    count = json.loads((out / COUNT_FILE).read_text())
    assert count["schema"] == "snnprof.profile/1" and count["model"] == "sj_spiking_cnn"
    assert set(count["energy"]) == {"cmos45nm_fp32", "loihi"}
    assert count["config"]["model"]["checkpoint"] == str(out / MODEL_FILE)
    assert count["time_steps"] == 2 and count["batch_size"] == 2
    assert res.count is not None and res.count.result.totals.neurons > 0
    assert not torch.are_deterministic_algorithms_enabled()  # global flags restored


def test_model_pt_loads_in_a_count_config(tmp_path: Path, fake: None) -> None:
    out = tmp_path / "run"
    run_training(config(tmp_path), TrainOptions(out=out, max_steps=2, count=False))
    cfg = tmp_path / "count.toml"
    cfg.write_text(
        '[model]\nname = "sj_spiking_cnn"\nkwargs = { in_channels = 2, num_classes = 4, image_size = 8 }\n'
        f'checkpoint = "{out / MODEL_FILE}"\n[input]\nbatch_size = 2\ntime_steps = 2\nkwargs = {{ image_size = 8 }}\n'
    )
    result = runner.invoke(app, ["count", str(cfg), "--json", str(tmp_path / "c.json"), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "c.json").read_text())["config"]["model"]["checkpoint"] == str(out / MODEL_FILE)


@pytest.mark.parametrize("split", [2, 3, 4])  # inside an epoch, at an epoch end, inside the next one
def test_resume_is_exact(tmp_path: Path, fake: None, split: int) -> None:
    cfg = config(tmp_path)
    straight, parts = tmp_path / "straight", tmp_path / "parts"
    run_training(cfg, TrainOptions(out=straight, max_steps=7, count=False))
    first = run_training(cfg, TrainOptions(out=parts, max_steps=split, count=False))
    assert first.global_step == split
    second = run_training(cfg, TrainOptions(out=parts, max_steps=7, resume=True, count=False))
    assert second.steps_run == 7 - split and second.global_step == 7
    a, b = weights(straight), weights(parts)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ckpt_a = torch.load(straight / CHECKPOINT, weights_only=True)
    ckpt_b = torch.load(parts / CHECKPOINT, weights_only=True)
    mom_a = [s["momentum_buffer"] for s in ckpt_a["trainer"]["optimizer"]["state"].values()]
    mom_b = [s["momentum_buffer"] for s in ckpt_b["trainer"]["optimizer"]["state"].values()]
    assert all(torch.equal(x, y) for x, y in zip(mom_a, mom_b, strict=True))
    full = [r for r in read_metrics(straight / METRICS) if not r["partial"]]
    resumed = [r for r in read_metrics(parts / METRICS) if not r["partial"]]
    assert [(r["epoch"], r["train"], r["eval"]) for r in full] == [(r["epoch"], r["train"], r["eval"]) for r in resumed]


def test_epochs_override_reaches_the_trainer_and_max_steps_caps(tmp_path: Path, fake: None) -> None:
    res = run_training(config(tmp_path), TrainOptions(out=tmp_path / "r", epochs=1, count=False))
    assert res.global_step == 3 and res.epochs == 1
    res = run_training(config(tmp_path), TrainOptions(out=tmp_path / "r2", epochs=5, max_steps=4, count=False))
    assert res.global_step == 4 and res.last is not None and res.last["partial"]
    assert torch.load(tmp_path / "r2" / CHECKPOINT, weights_only=True)["epoch_steps"] == 1


def test_seed_option_changes_the_run(tmp_path: Path, fake: None) -> None:
    cfg = config(tmp_path)
    run_training(cfg, TrainOptions(out=tmp_path / "a", max_steps=2, count=False))
    run_training(cfg, TrainOptions(out=tmp_path / "b", max_steps=2, count=False, overwrite=True))
    run_training(cfg, TrainOptions(out=tmp_path / "c", max_steps=2, count=False, seed=6))
    a, b, c = weights(tmp_path / "a"), weights(tmp_path / "b"), weights(tmp_path / "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# ----------------------------------------------------------------------------- CLI and bad input


def invoke(*args: Any):
    return runner.invoke(app, ["train", *[str(a) for a in args]])


def one_error_line(result, *needles: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[-1]


def test_cli_happy_path(tmp_path: Path, fake: None) -> None:
    out = tmp_path / "run"
    result = invoke(config(tmp_path), "--out", out, "--max-steps", 4)
    assert result.exit_code == 0, result.output
    assert "trained sj_spiking_cnn" in result.stdout and f"wrote {out / COUNT_FILE}" in result.stdout
    assert "partial epoch 1" in result.stderr
    result = invoke(config(tmp_path), "--out", out, "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert read_metrics(out / METRICS)[-1]["global_step"] == 9


def test_help_has_an_example() -> None:
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    assert "snnprof train configs/" in result.stdout and "--max-steps" in result.stdout


def test_model_without_trainer(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = invoke(config(tmp_path), "--out", out)
    assert result.exit_code == 2
    one_error_line(result, "model.name", "no reference training loop for 'sj_spiking_cnn'")
    assert not out.exists()


def test_bad_train_key(tmp_path: Path, fake: None) -> None:
    out = tmp_path / "run"
    result = invoke(config(tmp_path, "bogus = 1"), "--out", out)
    assert result.exit_code == 2
    one_error_line(result, "train.bogus", str(tmp_path / "fake.toml"))
    assert not out.exists()


def test_missing_dataset_path(tmp_path: Path, fake: None) -> None:
    path = config(tmp_path)
    source = f'source = "dataset"\nreader = "cifar10"\npath = "{tmp_path}/nope"'
    path.write_text(path.read_text().replace('source = "synthetic"', source))
    result = invoke(path, "--out", tmp_path / "run")
    assert result.exit_code == 2
    one_error_line(result, "input.path", "nope")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("epochs", ["0", "x"])
def test_bad_epochs(tmp_path: Path, fake: None, epochs: str) -> None:
    result = invoke(config(tmp_path), "--out", tmp_path / "run", "--epochs", epochs)
    assert result.exit_code == 2
    assert not (tmp_path / "run").exists()


def test_bad_epochs_in_config(tmp_path: Path, fake: None) -> None:
    path = config(tmp_path)
    path.write_text(path.read_text().replace("epochs = 3", 'epochs = "many"'))
    result = invoke(path, "--out", tmp_path / "run")
    assert result.exit_code == 2
    one_error_line(result, "train.epochs", "positive integer")


def test_bad_device(tmp_path: Path, fake: None) -> None:
    result = invoke(config(tmp_path), "--out", tmp_path / "run", "--device", "tpu")
    assert result.exit_code == 2
    one_error_line(result, "--device", "cpu, cuda")
    if not torch.cuda.is_available():
        result = invoke(config(tmp_path), "--out", tmp_path / "run", "--device", "cuda")
        assert result.exit_code == 3
    assert not (tmp_path / "run").exists()


def test_existing_run_needs_resume_or_overwrite(tmp_path: Path, fake: None) -> None:
    out = tmp_path / "run"
    assert invoke(config(tmp_path), "--out", out, "--max-steps", 1, "-q").exit_code == 0
    before = (out / CHECKPOINT).read_bytes()
    result = invoke(config(tmp_path), "--out", out)
    assert result.exit_code == 2
    one_error_line(result, str(out), "--resume or --overwrite")
    assert (out / CHECKPOINT).read_bytes() == before
    assert invoke(config(tmp_path), "--out", out, "--max-steps", 2, "--overwrite", "-q").exit_code == 0
    assert [r["global_step"] for r in read_metrics(out / METRICS)] == [2]


def test_resume_without_checkpoint(tmp_path: Path, fake: None) -> None:
    result = invoke(config(tmp_path), "--out", tmp_path / "run", "--resume")
    assert result.exit_code == 2
    one_error_line(result, str(tmp_path / "run" / CHECKPOINT), "no checkpoint to resume from")


def test_resume_with_a_checkpoint_of_another_model(tmp_path: Path, fake: None) -> None:
    out = tmp_path / "run"
    assert invoke(config(tmp_path), "--out", out, "--max-steps", 1, "-q").exit_code == 0
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    other = tmp_path / "ottt.toml"
    other.write_text('[model]\nname = "ottt_vgg11_ws"\nkwargs = { width = 0.0625 }\n'
                     '[input]\ntime_steps = 1\nkwargs = { image_size = 8 }\n[train]\ntrain_samples = 8\n')  # fmt: skip
    result = invoke(other, "--out", out, "--resume")
    assert result.exit_code == 2
    one_error_line(result, str(out / CHECKPOINT), "'sj_spiking_cnn'", "'ottt_vgg11_ws'")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    # Same model, other kwargs: refused too.
    result = invoke(config(tmp_path).parent / "fake.toml", "--out", out, "--resume")
    assert result.exit_code == 0
    path = config(tmp_path, name="wide.toml")
    path.write_text(path.read_text().replace("num_classes = 4", "num_classes = 5"))
    result = invoke(path, "--out", out, "--resume")
    assert result.exit_code == 2
    one_error_line(result, "num_classes")


def test_not_a_checkpoint(tmp_path: Path, fake: None) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT).write_bytes(b"junk")
    result = invoke(config(tmp_path), "--out", out, "--resume")
    assert result.exit_code == 2
    one_error_line(result, str(out / CHECKPOINT), "cannot load checkpoint")
    assert (out / CHECKPOINT).read_bytes() == b"junk"
