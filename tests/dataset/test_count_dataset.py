"""``snnprof count CONFIG --dataset``: whole-data-set totals, spread across samples, faults, checkpoints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from snnprof.cli import app
from tests.dataset import _tiny

runner = CliRunner()
N = 10  # samples; batch 4 -> batches of 4, 4, 2

pytestmark = pytest.mark.usefixtures("tiny_zoo")


def _setup(tmp_path: Path, n: int = N, **cfg: str | int) -> tuple[Path, torch.Tensor]:
    x = _tiny.spike_data(n)
    data = _tiny.write_data(tmp_path / "data.pt", x)
    config = tmp_path / "run.toml"
    config.write_text(_tiny.config_text(data, **cfg), encoding="utf-8")  # type: ignore[arg-type]
    return config, x


def _count(*args: str | Path) -> object:
    return runner.invoke(app, ["count", *(str(a) for a in args)])


def _one_error_line(result: object, *needles: str) -> None:
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in lines[0]


def _check_stats(stats: dict, per: np.ndarray) -> None:
    assert stats["n"] == per.shape[0]
    for i, name in enumerate(("macs", "sops", "spikes")):
        assert stats[name]["mean"] == pytest.approx(per[:, i].mean())
        assert stats[name]["std"] == pytest.approx(per[:, i].std())
        assert (stats[name]["min"], stats[name]["max"]) == (per[:, i].min(), per[:, i].max())


@pytest.mark.parametrize("model", list(_tiny.MODELS))
def test_dataset_totals_and_spread_are_closed_form(tmp_path: Path, model: str) -> None:
    config, x = _setup(tmp_path, model=model, kwargs="{ offset = 0.25 }" if model == "tiny_ann" else "{}")
    out = tmp_path / "out.json"
    result = _count(config, "--dataset", "--json", out)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    per = _tiny.expected_per_sample(x, model)
    assert data["batch_size"] == N and data["config"]["dataset"]["samples"] == N
    assert data["config"]["dataset"]["batches"] == 3
    tot = data["totals"]
    assert (tot["macs"], tot["sops"], tot["spikes"]) == tuple(int(v) for v in per.sum(0))
    _check_stats(data["sample_stats"], per)
    if model != "tiny_ann":
        assert tot["neuron_updates"] == N * _tiny.T * _tiny.OUT
    # energy spread: cmos45nm_fp32 prices MACs 4.6 and SOPs 0.9 pJ, nothing else that varies
    energy = per @ np.array([4.6, 0.9, 0.0])
    spread = data["sample_stats"]["energy_pj"]["cmos45nm_fp32"]
    assert spread["mean"] == pytest.approx(data["energy"]["cmos45nm_fp32"]["total_pj"] / N)
    assert spread["mean"] == pytest.approx(energy.mean())
    assert spread["std"] == pytest.approx(energy.std())
    assert (spread["min"], spread["max"]) == (pytest.approx(energy.min()), pytest.approx(energy.max()))
    assert "Across samples" in result.stdout


def test_loihi_energy_spread_adds_fixed_neuron_updates(tmp_path: Path) -> None:
    config, x = _setup(tmp_path)
    out = tmp_path / "out.json"
    assert _count(config, "--dataset", "--json", out, "-q").exit_code == 0
    data = json.loads(out.read_text())
    per = _tiny.expected_per_sample(x)
    fixed = 52.0 * _tiny.T * _tiny.OUT  # neuron updates per sample x 52 pJ
    energy = per @ np.array([0.0, 23.6, 1.7]) + fixed
    spread = data["sample_stats"]["energy_pj"]["loihi"]
    assert spread["mean"] == pytest.approx(energy.mean())
    assert spread["std"] == pytest.approx(energy.std())
    assert (spread["min"], spread["max"]) == (pytest.approx(energy.min()), pytest.approx(energy.max()))


def test_max_batches(tmp_path: Path) -> None:
    config, x = _setup(tmp_path)
    out = tmp_path / "out.json"
    assert _count(config, "--dataset", "--max-batches", "2", "--json", out, "-q").exit_code == 0
    data = json.loads(out.read_text())
    per = _tiny.expected_per_sample(x[:8])
    assert data["batch_size"] == 8 and data["totals"]["sops"] == per[:, 1].sum()
    _check_stats(data["sample_stats"], per)


def test_dataset_config_without_flag_counts_the_first_batch(tmp_path: Path) -> None:
    config, x = _setup(tmp_path)
    out = tmp_path / "out.json"
    assert _count(config, "--json", out, "-q").exit_code == 0
    data = json.loads(out.read_text())
    assert data["batch_size"] == 4 and data["sample_stats"] is None
    assert data["totals"]["sops"] == _tiny.expected_per_sample(x[:4])[:, 1].sum()


@pytest.mark.parametrize(
    ("kwargs", "needles"),
    [
        ("{ claim_extra = 3 }", ("ended early", "samples 8..11 missing", "len() = 13")),
        ("{ fail_at = 6 }", ("cannot read samples 4..7", "OSError: corrupt record 6")),
    ],
    ids=["ends_early", "reader_error_midway"],
)
def test_dataset_faults_give_one_error_and_no_file(tmp_path: Path, kwargs: str, needles: tuple[str, ...]) -> None:
    config, _ = _setup(tmp_path, kwargs=kwargs)
    out = tmp_path / "out.json"
    result = _count(config, "--dataset", "--json", out, "--csv", tmp_path / "out.csv")
    assert result.exit_code == 2
    _one_error_line(result, *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.pt", "run.toml"]  # nothing written


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--max-batches", "2"], "only apply with --dataset"),
        (["--dataset", "--checkpoint-every", "1"], "need --json"),
        (["--dataset", "--resume", "--json", "OUT"], "no checkpoint"),
        (["--dataset", "--device", "tpu"], "--device"),
    ],
)
def test_bad_dataset_options(tmp_path: Path, args: list[str], needle: str) -> None:
    config, _ = _setup(tmp_path)
    result = _count(config, *[str(tmp_path / "o.json") if a == "OUT" else a for a in args])
    assert result.exit_code == 2
    _one_error_line(result, needle)


def test_dataset_flag_needs_a_dataset_config(tmp_path: Path) -> None:
    config, _ = _setup(tmp_path, source="synthetic")
    result = _count(config, "--dataset")
    assert result.exit_code == 2
    _one_error_line(result, "input.source")


def test_cuda_without_a_gpu_is_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config, _ = _setup(tmp_path)
    result = _count(config, "--dataset", "--device", "cuda")
    assert result.exit_code == 3
    _one_error_line(result, "no CUDA device")


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    n = 18  # batches 0..4 (4, 4, 4, 4, 2); the flag breaks sample 13 = batch 3
    flag = tmp_path / "broken"
    config, _ = _setup(tmp_path, n=n, kwargs=f'{{ fail_at = 13, fail_flag = "{flag}" }}')
    ref, out = tmp_path / "ref.json", tmp_path / "out.json"
    assert _count(config, "--dataset", "--json", ref, "-q").exit_code == 0  # no flag: runs through
    ckpt = tmp_path / "out.json.ckpt"

    flag.touch()
    failed = _count(config, "--dataset", "--json", out, "--checkpoint-every", "2", "-q")
    assert failed.exit_code == 2 and not out.exists()
    saved = torch.load(ckpt, weights_only=True)  # plain data only
    assert (saved["batches_done"], saved["samples_done"]) == (2, 8)

    flag.unlink()
    resumed = _count(config, "--dataset", "--json", out, "--resume", "--checkpoint-every", "2", "-q")
    assert resumed.exit_code == 0, resumed.output
    a, b = json.loads(ref.read_text()), json.loads(out.read_text())
    assert b["config"]["dataset"].pop("resumed_at_batch") == 2
    a["config"]["dataset"].pop("resumed_at_batch")
    assert a == b  # exact: counts, rates, per-step/channel lists, sample moments, energy
    assert not ckpt.exists()  # removed after the result was written


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path: Path) -> None:
    flag = tmp_path / "broken"
    flag.touch()
    config, _ = _setup(tmp_path, n=12, kwargs=f'{{ fail_at = 9, fail_flag = "{flag}" }}')
    out = tmp_path / "out.json"
    assert _count(config, "--dataset", "--json", out, "--checkpoint-every", "1", "-q").exit_code == 2
    result = _count(config, "--dataset", "--json", out, "--resume", "-p", "loihi")
    assert result.exit_code == 2
    _one_error_line(result, "checkpoint is of another run", "other hardware profiles")
    assert not out.exists() and out.with_name("out.json.ckpt").is_file()


def _interrupted(tmp_path: Path) -> tuple[Path, Path, dict]:
    """A run that failed at batch 3 of 4-sample batches (18 samples), with its checkpoint after 2 batches."""
    flag = tmp_path / "broken"
    flag.touch()
    config, _ = _setup(tmp_path, n=18, kwargs=f'{{ fail_at = 13, fail_flag = "{flag}" }}')
    out = tmp_path / "out.json"
    assert _count(config, "--dataset", "--json", out, "--checkpoint-every", "2", "-q").exit_code == 2
    flag.unlink()
    return config, out, torch.load(out.with_name("out.json.ckpt"), weights_only=True)


#: ``(what is done to the saved checkpoint, the key the error names)``; every field of the layout.
CORRUPTIONS: dict[str, tuple[object, str]] = {
    "format-missing": (lambda c: c.pop("format"), "format"),
    "format-other": (lambda c: c.update(format="snnprof.count-checkpoint/1"), "format"),
    "batches-missing": (lambda c: c.pop("batches_done"), "batches_done"),
    "batches-negative": (lambda c: c.update(batches_done=-5), "batches_done"),
    "batches-too-many": (lambda c: c.update(batches_done=1000), "batches_done"),
    "batches-string": (lambda c: c.update(batches_done="2"), "batches_done"),
    "batches-inconsistent": (lambda c: c.update(batches_done=3), "samples_done"),
    "samples-missing": (lambda c: c.pop("samples_done"), "samples_done"),
    "samples-wrong": (lambda c: c.update(samples_done=7), "samples_done"),
    "samples-float": (lambda c: c.update(samples_done=8.0), "samples_done"),
    "fingerprint-missing": (lambda c: c.pop("fingerprint"), "fingerprint"),
    "fingerprint-not-a-table": (lambda c: c.update(fingerprint=[1]), "fingerprint"),
    "config-hash-missing": (lambda c: c["fingerprint"].pop("config_sha256"), "fingerprint.config_sha256"),
    "config-hash-bad": (lambda c: c["fingerprint"].update(config_sha256="x"), "fingerprint.config_sha256"),
    "config-hash-other": (lambda c: c["fingerprint"].update(config_sha256="0" * 64), "fingerprint"),
    "profiles-type": (lambda c: c["fingerprint"].update(profiles="loihi"), "fingerprint.profiles"),
    "batch-size-zero": (lambda c: c["fingerprint"].update(batch_size=0), "fingerprint.batch_size"),
    "batch-size-other": (lambda c: c["fingerprint"].update(batch_size=2), "samples_done"),
    "dataset-len-other": (lambda c: c["fingerprint"].update(dataset_len=19), "fingerprint"),
    "data-hash-missing": (lambda c: c["fingerprint"].pop("data_sha256"), "fingerprint.data_sha256"),
    "data-hash-other": (lambda c: c["fingerprint"].update(data_sha256="f" * 64), "fingerprint"),
    "version-other": (lambda c: c["fingerprint"].update(snnprof_version="0.0.0"), "fingerprint"),
    "profiler-missing": (lambda c: c.pop("profiler"), "profiler"),
    "profiler-none": (lambda c: c.update(profiler=None), "profiler"),
    "profiler-empty": (lambda c: c.update(profiler={}), "profiler"),
    "profiler-layers-wrong": (lambda c: c["profiler"].update(layers=[{"name": 3}]), "profiler"),
    "profiler-samples-count": (lambda c: c["profiler"]["samples"].update(n=5), "profiler.samples.n"),
    "unknown-key": (lambda c: c.update(extra=1), "extra"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupted_resume_file_is_rejected_with_one_line(tmp_path: Path, case: str) -> None:
    config, out, saved = _interrupted(tmp_path)
    corrupt, key = CORRUPTIONS[case]
    corrupt(saved)  # type: ignore[operator]
    ckpt = out.with_name("out.json.ckpt")
    torch.save(saved, ckpt)
    result = _count(config, "--dataset", "--json", out, "--resume", "-q")
    assert result.exit_code == 2, result.output
    _one_error_line(result, str(ckpt), f": {key}: " if key else "")
    assert not out.exists()


def test_resume_refuses_changed_data_files(tmp_path: Path) -> None:
    config, out, _ = _interrupted(tmp_path)
    data = tmp_path / "data.pt"
    os.utime(data, ns=(1, 1))  # same contents, another modification time
    result = _count(config, "--dataset", "--json", out, "--resume", "-q")
    assert result.exit_code == 2
    _one_error_line(result, "the data files changed")
