"""The converter registry, safe reading, ``load_upstream`` errors and ``snnprof convert`` on the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from snnprof.cli import app
from snnprof.convert import CONVERTERS, MODEL_SEEDS, UpstreamCheckpointError, convert_checkpoint, load_upstream
from snnprof.convert.base import read_checkpoint
from snnprof.errors import ConfigError
from snnprof.models import create_model, list_models

from .conftest import save

SEEDS = {"spikingnerf", "nerf", "stereospike", "event_flow", "ottt"}
runner = CliRunner()


def test_every_seed_model_has_a_converter() -> None:
    assert set(CONVERTERS) == SEEDS
    assert set(MODEL_SEEDS) == set(list_models()) - {"sj_spiking_cnn", "sj_nir_cnn"}  # the zoo models of no seed
    for seed, conv in CONVERTERS.items():
        assert {MODEL_SEEDS[m] for m in conv.models} == {seed} and "@" in conv.upstream


@pytest.mark.parametrize("seed", sorted(CONVERTERS))
def test_every_converter_refuses_an_unknown_layout(tmp_path: Path, seed: str) -> None:
    path = save(tmp_path / "x.pt", {"weird.weight": torch.zeros(2, 2)})
    with pytest.raises(UpstreamCheckpointError) as err:
        convert_checkpoint(seed, path)
    assert str(path) in str(err.value) and isinstance(err.value, ConfigError)


def test_reading_allows_numpy_and_refuses_pickled_objects(tmp_path: Path) -> None:
    arrays = {"a": np.arange(3, dtype=np.float32), "bits": np.packbits(np.ones(9, bool)), "s": np.float64(2.5)}
    assert read_checkpoint(save(tmp_path / "np.pt", arrays))["s"] == 2.5
    buffer = io.BytesIO()
    torch.save({"net": torch.nn.Linear(2, 2)}, buffer)
    (tmp_path / "module.pt").write_bytes(buffer.getvalue())
    with pytest.raises(UpstreamCheckpointError, match=r"pickled Python objects \(torch.nn.modules.linear.Linear"):
        read_checkpoint(tmp_path / "module.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(UpstreamCheckpointError, match="expected a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "text.pt")
    with pytest.raises(UpstreamCheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")


def test_load_upstream_errors_name_the_file_key_and_expectation(tmp_path: Path) -> None:
    state = create_model("stereospike", height=32, width=48).state_dict()
    path = save(tmp_path / "stereospike.pth", state)
    with pytest.raises(UpstreamCheckpointError, match="expected a zoo model with an upstream converter"):
        load_upstream("sj_spiking_cnn", path, {})
    with pytest.raises(UpstreamCheckpointError, match="expected a stereospike_ann checkpoint"):
        load_upstream("stereospike_ann", path, {})
    with pytest.raises(UpstreamCheckpointError, match="accepts"):
        load_upstream("stereospike", path, {"bogus": 1})
    assert set(load_upstream("stereospike", path, {"height": 32, "width": 48})) == set(state)


def _ottt_checkpoint(tmp_path: Path) -> Path:
    model = create_model("ottt_vgg11_ws", num_classes=5, width=0.125)
    net = {}
    for key, value in model.state_dict().items():
        name = key
        if key.startswith("features.") and key.split(".")[1] != "0":  # WrapedSNNOp: features.3.op.weight
            module, leaf = key.rsplit(".", 1)
            name = f"{module}.op.{leaf}"
        net[name.replace("classifier.", "classifier.0.op.")] = value
    return save(tmp_path / "checkpoint_max.pth", {"net": net, "epoch": 1})


def test_cli_converts_writes_atomically_and_prints_the_model_section(tmp_path: Path) -> None:
    path, out = _ottt_checkpoint(tmp_path), tmp_path / "out" / "model.pt"
    result = runner.invoke(app, ["convert", "ottt", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert 'name = "ottt_vgg11_ws"' in result.output and "num_classes = 5" in result.output
    state = torch.load(out, weights_only=True)
    model = create_model("ottt_vgg11_ws", num_classes=5, width=0.125)
    model.load_state_dict(state, strict=True)
    again = runner.invoke(app, ["convert", "ottt_vgg11_ws", str(path), "--out", str(out), "-q",
                                "--kwargs", json.dumps({"num_classes": 5, "width": 0.125})])
    assert again.exit_code == 0 and again.output == ""


@pytest.mark.parametrize(("args", "message"), [
    (["nosuchseed"], "expected a seed with a converter"),
    (["stereospike"], "expected a state dict of tensors"),
    (["ottt", "--model", "ottt_nfresnet34"], "expected a ottt_nfresnet34 checkpoint"),
    (["ottt", "--kwargs", "{bad"], "expected a JSON object"),
    (["ottt", "--kwargs", '{"num_classes": 3}'], "classifier.bias: expected shape [3]"),
])  # fmt: skip
def test_cli_bad_input_is_one_error_line_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    path, out = _ottt_checkpoint(tmp_path), tmp_path / "model.pt"
    if args[0] == "stereospike":
        save(path, {"net": [1, 2]})
    result = runner.invoke(app, ["convert", args[0], str(path), "--out", str(out), *args[1:]])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in " ".join(result.output.split())
    assert not out.exists() and "Traceback" not in result.output


def test_config_checkpoint_format_upstream_counts_the_converted_weights(tmp_path: Path) -> None:
    """``[model] checkpoint_format = "upstream"`` profiles an upstream checkpoint as its conversion does."""
    path = _ottt_checkpoint(tmp_path)
    converted = tmp_path / "model.pt"
    assert runner.invoke(app, ["convert", "ottt", str(path), "--out", str(converted), "-q"]).exit_code == 0
    body = ('kwargs = { num_classes = 5, width = 0.125 }\n{ckpt}[input]\nbatch_size = 1\ntime_steps = 2\n'
            'kwargs = { image_size = 32 }\n')
    for name, ckpt in (("up", f'checkpoint = "{path.name}"\ncheckpoint_format = "upstream"\n'),
                       ("ours", f'checkpoint = "{converted.name}"\n')):
        (tmp_path / f"{name}.toml").write_text('[model]\nname = "ottt_vgg11_ws"\n' + body.replace("{ckpt}", ckpt))
        result = runner.invoke(app, ["count", str(tmp_path / f"{name}.toml"), "--json", str(tmp_path / f"{name}.json"),
                                     "-q"])
        assert result.exit_code == 0, result.output
    up, ours = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("up", "ours"))
    assert up["layers"] == ours["layers"] and up["totals"] == ours["totals"]
    assert up["config"]["model"]["checkpoint_format"] == "upstream"


def test_config_upstream_format_needs_a_converter_and_a_checkpoint(tmp_path: Path) -> None:
    cases = {'name = "sj_spiking_cnn"\ncheckpoint_format = "upstream"\n': "expected a [model] checkpoint",
             'name = "ottt_vgg11_ws"\ncheckpoint_format = "pickle"\n': "expected one of"}
    for model, message in cases.items():
        (tmp_path / "c.toml").write_text(f"[model]\n{model}")
        result = runner.invoke(app, ["count", str(tmp_path / "c.toml")])
        assert result.exit_code == 2 and "model.checkpoint_format" in result.stderr and message in result.stderr
