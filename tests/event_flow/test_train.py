"""The event_flow training loop: Trainer protocol, [train] validation, steps, evaluation, exact resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from snnprof.config import load_config, parse_config
from snnprof.data.synthetic_flow import generate_dataset
from snnprof.errors import ConfigError
from snnprof.models import create_model
from snnprof.reference_impls.event_flow_train import EVENT_FLOW_MODELS, EventFlowTrainer, parse_settings
from snnprof.reference_impls.training import Trainer, get_trainer, list_trainers

REPO = Path(__file__).resolve().parents[2]
#: The documented run (seed 0, one thread) ends at 0.67 x the zero-flow AEE; five other seeds end at 0.66 x to
#: 0.82 x and the two-thread run at 0.70 x (docs/event_flow.md). The slow test allows 0.8 x: a clear margin below
#: zero flow, not a tuned pass.
AEE_RATIO = 0.8
SMALL = """sequences = 4
eval_sequences = 2
events_per_sequence = 4000
height = 32
width = 32
window_loss = 2000
"""


def _cfg(tmp_path: Path, model: str = "lif_firenet_short", train: str = SMALL, source: str = "") -> object:
    source = source or 'source = "synthetic"'
    text = f"""[model]
name = "{model}"
kwargs = {{ base_channels = 4 }}
[input]
{source}
batch_size = 2
time_steps = 3
seed = 0
[train]
{train}"""
    path = tmp_path / "train.toml"
    path.write_text(text)
    return load_config(path)


def _trainer(cfg) -> EventFlowTrainer:
    torch.manual_seed(0)
    model = create_model(cfg.model.name, **cfg.model.kwargs)
    return get_trainer(cfg.model.name)(model, cfg, torch.device("cpu"))


def test_registered_for_every_event_flow_model():
    assert set(EVENT_FLOW_MODELS) <= set(list_trainers())


def test_settings_validation_names_the_key(tmp_path):
    path = tmp_path / "c.toml"
    assert parse_settings({}, path).passes_per_step == 10
    cases = [
        ({"lr_": 1.0}, "train.lr_", "unknown key"),
        ({"lr": "fast"}, "train.lr", "expected a number, got a string"),
        ({"lr": True}, "train.lr", "expected a number, got a boolean"),
        ({"optimizer": "rmsprop"}, "train.optimizer", "expected one of 'adam' or 'sgd'"),
        ({"window": 0}, "train.window", "expected a positive integer"),
        ({"window": 2.5}, "train.window", "expected an integer"),
        ({"clip_grad": -1.0}, "train.clip_grad", "expected a non-negative number"),
        ({"augment": 1}, "train.augment", "expected one of 'random', 'mirrored' or 'none'"),
        ({"mask_smoothness": "yes"}, "train.mask_smoothness", "expected a boolean"),
    ]
    for table, key, message in cases:
        with pytest.raises(ConfigError, match=message) as err:
            parse_settings(table, path)
        assert err.value.key == key and str(path) in str(err.value)


def test_steps_learn_something_and_evaluate_reports_the_baseline(tmp_path):
    trainer = _trainer(_cfg(tmp_path))
    assert isinstance(trainer, Trainer)
    assert trainer.steps_per_epoch() == 2 * 2  # 2 groups of 2 sequences x (4 passes / 2 per step)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    losses = [trainer.train_step(s)["loss"] for s in range(3)]
    assert all(math.isfinite(v) and v > 0 for v in losses)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))
    assert all(not t.requires_grad for s in trainer.model._states for t in s)  # truncated BPTT
    metrics = trainer.evaluate()
    assert {"aee", "aee_zero_flow", "outliers"} <= set(metrics)
    assert metrics["aee_zero_flow"] > 0 and math.isfinite(metrics["aee"]) and metrics["eval_passes"] > 0
    inputs = trainer.count_inputs()
    assert inputs.shape == (3, 2, 2, 32, 32) and inputs.sum(dim=(2, 3, 4)).eq(1000).all()


def test_resume_mid_sequence_is_exact(tmp_path):
    cfg = _cfg(tmp_path)
    straight = _trainer(cfg)
    for s in range(3):
        straight.train_step(s)
    first = _trainer(cfg)
    for s in range(2):
        first.train_step(s)
    saved = {"model": {k: v.clone() for k, v in first.model.state_dict().items()}, "trainer": first.state_dict()}
    path = tmp_path / "ckpt.pt"
    torch.save(saved, path)
    loaded = torch.load(path, weights_only=True)
    resumed = _trainer(cfg)
    resumed.model.load_state_dict(loaded["model"])
    resumed.load_state_dict(loaded["trainer"])
    resumed.train_step(2)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_dataset_source_and_bad_paths(tmp_path):
    generate_dataset(tmp_path / "train", 2, seed=1, height=32, width=32, num_events=4000)
    generate_dataset(tmp_path / "eval", 1, seed=9, height=32, width=32, num_events=4000)
    source = f'source = "dataset"\npath = "{tmp_path / "train"}"\nreader = "event_flow_h5"'
    cfg = _cfg(tmp_path, train=f'window_loss = 2000\neval_path = "{tmp_path / "eval"}"', source=source)
    trainer = _trainer(cfg)
    assert trainer.train_step(0)["loss"] > 0 and trainer.evaluate()["eval_passes"] > 0
    bad = _cfg(tmp_path, train=f'eval_path = "{tmp_path / "missing"}"', source=source)
    with pytest.raises(ConfigError, match="train.eval_path.*dataset path not found"):
        _trainer(bad)
    with pytest.raises(ConfigError, match="input.batch_size"):
        _trainer(_cfg(tmp_path, train="sequences = 1\nevents_per_sequence = 4000\nheight = 32\nwidth = 32"))


def test_shipped_training_config_is_valid():
    cfg = load_config(REPO / "configs" / "train_lif_firenet_small.toml")
    assert cfg.model.name == "lif_firenet"
    settings = parse_settings(dict(cfg.train), cfg.path)
    assert settings.window_loss // settings.window == 10  # truncated BPTT every 10 passes, as in the seed


def test_shipped_training_config_widens_the_prediction_init():
    """``pred_w_scale``: U(-s, s) prediction weights and zero bias; the seed's 0.01 stays the default."""
    cfg = load_config(REPO / "configs" / "train_lif_firenet_small.toml")
    assert cfg.model.kwargs["pred_w_scale"] == 0.1
    for kwargs, scale in ((cfg.model.kwargs, 0.1), ({"base_channels": 16, "neuron": "tudelft"}, 0.01)):
        torch.manual_seed(0)
        pred = create_model("lif_firenet", **kwargs).pred.conv2d
        assert pred.weight.abs().max() <= scale and pred.weight.abs().max() > 0.8 * scale
        assert torch.equal(pred.bias, torch.zeros_like(pred.bias))


def test_other_models_are_refused(tmp_path):
    cfg = parse_config('[model]\nname = "lif_firenet"\n', tmp_path / "c.toml")
    with pytest.raises(ConfigError, match="event_flow model"):
        EventFlowTrainer(torch.nn.Linear(2, 2), cfg, torch.device("cpu"))


def test_snnprof_train_harness_resume_equals_one_run(tmp_path):
    from snnprof.reference_impls.harness import TrainOptions, run_training

    cfg_path = tmp_path / "train.toml"
    _cfg(tmp_path)  # writes train.toml
    text = cfg_path.read_text().replace("[train]\n", "[train]\nepochs = 2\n")
    cfg_path.write_text(text)
    straight = run_training(cfg_path, TrainOptions(out=tmp_path / "a", max_steps=5, threads=1, count=False))
    run_training(cfg_path, TrainOptions(out=tmp_path / "b", max_steps=3, threads=1, count=False))
    resumed = run_training(cfg_path, TrainOptions(out=tmp_path / "b", max_steps=5, resume=True, threads=1, count=True))
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert straight.global_step == resumed.global_step == 5
    assert resumed.last is not None and {"aee", "aee_zero_flow"} <= set(resumed.last["eval"])
    assert resumed.count is not None and resumed.count.result.totals.neurons == 5 * 4 * 32 * 32


def test_shipped_training_config_runs_a_few_steps(tmp_path):
    from snnprof.reference_impls.harness import TrainOptions, run_training

    result = run_training(REPO / "configs" / "train_lif_firenet_small.toml",
                          TrainOptions(out=tmp_path / "run", max_steps=2, threads=1, count=False))
    assert result.global_step == 2 and result.last is not None
    assert result.last["eval"]["aee_zero_flow"] > 0 and math.isfinite(result.last["eval"]["aee"])


@pytest.mark.slow
def test_shipped_training_config_learns(tmp_path):
    """The documented run: AEE ends well below the zero-flow baseline (docs/event_flow.md)."""
    from snnprof.reference_impls.harness import TrainOptions, run_training

    result = run_training(REPO / "configs" / "train_lif_firenet_small.toml",
                          TrainOptions(out=tmp_path / "run", threads=1, count=True))
    final = result.last["eval"]
    assert final["aee"] < AEE_RATIO * final["aee_zero_flow"]
    assert result.count is not None and result.count.result.totals.spikes > 0
