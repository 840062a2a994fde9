"""``snnprof data synth``: every reader's synthetic set is read back by that reader; the shipped dataset config runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from snnprof.cli import app
from snnprof.data import get_reader, list_readers
from snnprof.data.synth import SYNTHETIC_SETS, list_synthetic, write_synthetic

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
FAST = ["cifar10", "cifar10dvs", "mvsec", "event_flow_h5"]


def test_every_reader_has_a_synthetic_set() -> None:
    assert list_synthetic() == list_readers()
    assert all(s.reader == name for name, s in SYNTHETIC_SETS.items())


@pytest.mark.parametrize("name", FAST)
def test_reader_reads_what_synth_writes(tmp_path: Path, name: str) -> None:
    path = write_synthetic(name, tmp_path / name, seed=3)
    dataset = get_reader(name)(path)
    assert len(dataset) > 0
    inputs, _target = dataset[0]
    assert inputs is not None


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(list_synthetic()) - set(FAST)))
def test_reader_reads_what_synth_writes_slow(tmp_path: Path, name: str) -> None:
    test_reader_reads_what_synth_writes(tmp_path, name)


def test_same_seed_same_files(tmp_path: Path) -> None:
    a, b = write_synthetic("cifar10", tmp_path / "a", 1), write_synthetic("cifar10", tmp_path / "b", 1)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_cli_synth_then_the_shipped_dataset_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["data", "synth", "cifar10dvs", "--out", "data/cifar10dvs"])
    assert result.exit_code == 0, result.output
    assert 'reader = "cifar10dvs"' in result.stdout
    out = tmp_path / "out.json"
    config = REPO / "configs" / "sj_spiking_cnn_dataset.toml"
    result = runner.invoke(app, ["count", str(config), "--dataset", "--max-batches", "2", "--json", str(out), "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["sample_stats"]["n"] == 8 and data["totals"]["sops"] > 0


def test_cli_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "synth", "imagenet", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown reader 'imagenet'" in result.stderr
    (tmp_path / "file").write_text("x", encoding="utf-8")
    result = runner.invoke(app, ["data", "synth", "cifar10", "--out", str(tmp_path / "file")])
    assert result.exit_code == 2 and "--out" in result.stderr
    listing = runner.invoke(app, ["data", "list", "--json", str(tmp_path / "l.json")])
    assert listing.exit_code == 0 and [r["reader"] for r in json.loads((tmp_path / "l.json").read_text())]
