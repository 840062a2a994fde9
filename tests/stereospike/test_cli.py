"""`snnprof train` / `snnprof count` end to end on StereoSpike configs written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from snnprof.cli import app

runner = CliRunner()

TRAIN = """\
[model]
name = "stereospike"
kwargs = {{ height = 16, width = 24 }}
[input]
source = "{source}"
batch_size = 2
seed = 0
{extra}
[train]
epochs = 1
train_scenes = 2
test_scenes = 1
frames_per_scene = 2
depth_prior = "train_mean"
"""

COUNT = """\
[model]
name = "stereospike"
kwargs = {{ height = 32, width = 48 }}
checkpoint = "{checkpoint}"
[input]
source = "synthetic"
batch_size = 1
time_steps = 1
"""


def test_train_then_count_at_another_resolution(tmp_path: Path) -> None:
    cfg = tmp_path / "train.toml"
    cfg.write_text(TRAIN.format(source="synthetic", extra=""), encoding="utf-8")
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", str(cfg), "--out", str(out), "--max-steps", "2", "--quiet", "--threads", "1"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"mde", "mde_baseline_mean"} <= set(lines[-1]["eval"])
    count = json.loads((out / "count.json").read_text())
    assert count["model"] == "stereospike" and count["input_shapes"] == [[2, 1, 4, 16, 24]]
    # the weights do not depend on the resolution: the 16x24 run counts at 32x48
    count_cfg = tmp_path / "count.toml"
    count_cfg.write_text(COUNT.format(checkpoint=out / "model.pt"), encoding="utf-8")
    res = runner.invoke(app, ["count", str(count_cfg), "--json", str(tmp_path / "c.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "c.json").read_text())["per_sample"]["dense_macs"] == 461_389_824


def test_dataset_in_wrong_format_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "train.toml"
    missing = tmp_path / "seq_data.hdf5"
    missing.write_text("not hdf5", encoding="utf-8")
    (tmp_path / "seq_gt.hdf5").write_text("not hdf5 either", encoding="utf-8")
    cfg.write_text(TRAIN.format(source="dataset", extra=f'path = "{missing}"\nreader = "mvsec"'), encoding="utf-8")
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 2
    assert "not a readable HDF5 file" in res.output and "seq_gt.hdf5" in res.output
    assert not (out / "model.pt").exists()


def test_unknown_train_key_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "train.toml"
    cfg.write_text(TRAIN.format(source="synthetic", extra="") + "learning_rate = 0.1\n", encoding="utf-8")
    res = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "run"), "--quiet"])
    assert res.exit_code == 2 and "train.learning_rate" in res.output
