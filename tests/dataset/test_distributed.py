"""Distributed counts: batch sharding without padding, 2 CPU ranks over gloo under a real ``torchrun``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snnprof.dataset.distributed import DistContext, first_failure, world_from_env
from snnprof.dataset.errors import DistributedRunError
from snnprof.dataset.sharding import BatchShardSampler
from tests.dataset import _tiny

REPO = Path(__file__).resolve().parents[2]
LAUNCH = Path(__file__).with_name("_launch.py")


@pytest.mark.parametrize("n", [1, 7, 8, 9, 23])
@pytest.mark.parametrize("world", [1, 2, 3, 5])
@pytest.mark.parametrize("limit", [None, 6])
def test_shards_are_the_single_process_batches_dealt_round_robin(n: int, world: int, limit: int | None) -> None:
    batch = 4
    total = n if limit is None else min(n, limit)
    single = [list(range(s, min(s + batch, total))) for s in range(0, total, batch)]
    seen: list[list[int]] = []
    for rank in range(world):
        sampler = BatchShardSampler(range(n), batch_size=batch, num_replicas=world, rank=rank, limit=limit)
        idx = list(sampler)
        assert len(sampler) == len(idx)
        got = [idx[i:i + batch] for i in range(0, len(idx), batch)]  # what a DataLoader(batch_size=4) makes
        assert got == [single[k] for k in range(rank, len(single), world)]
        seen.extend(got)
    assert sorted(i for b in seen for i in b) == list(range(total))  # no padding, no duplicates


def test_resume_skips_the_done_batches() -> None:
    sampler = BatchShardSampler(range(10), batch_size=4, start_batch=1)
    assert list(sampler) == list(range(4, 10)) and sampler.batches == [1, 2]


def test_world_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert world_from_env() == DistContext(rank=3, world_size=4, local_rank=1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(DistributedRunError, match="RANK=4"):
        world_from_env()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(DistributedRunError, match="WORLD_SIZE"):
        world_from_env()


def test_first_failure_names_the_rank() -> None:
    ok = {"ok": True, "result": {}}
    assert first_failure([ok, ok]) is None
    err = first_failure([ok, {"ok": False, "rank": 1, "error": "boom"}, {"ok": False, "rank": 2, "error": "x"}])
    assert str(err) == "rank 1 of 3 failed: boom (1 more rank(s) failed)"


def _torchrun(*args: str | Path, nproc: int = 2, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra_env)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(LAUNCH),
           *(str(a) for a in args)]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)


def _config(tmp_path: Path, n: int, kwargs: str = "{}") -> Path:
    data = _tiny.write_data(tmp_path / "data.pt", _tiny.spike_data(n))
    config = tmp_path / "run.toml"
    config.write_text(_tiny.config_text(data, batch_size=3, kwargs=kwargs), encoding="utf-8")
    return config


@pytest.mark.usefixtures("tiny_zoo")
def test_two_gloo_ranks_equal_one_process_exactly(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from snnprof.cli import app

    config = _config(tmp_path, 11)  # batches of 3: 3, 3, 3, 2 -> rank 0 gets batches 0, 2; rank 1 gets 1, 3
    single, dist = tmp_path / "single.json", tmp_path / "dist.json"
    assert CliRunner().invoke(app, ["count", str(config), "--dataset", "--json", str(single), "-q"]).exit_code == 0
    run = _torchrun("count", config, "--dataset", "--json", dist, "-q")
    assert run.returncode == 0, run.stderr
    a, b = json.loads(single.read_text()), json.loads(dist.read_text())
    assert b["config"]["dataset"]["world_size"] == 2
    assert a["totals"] == b["totals"] and a["batch_size"] == b["batch_size"] == 11
    for la, lb in zip(a["layers"], b["layers"], strict=True):  # every count, list and kind tally
        ints = {k: v for k, v in la.items() if not isinstance(v, float)}
        assert ints == {k: v for k, v in lb.items() if not isinstance(v, float)}
    sa, sb = a["sample_stats"], b["sample_stats"]
    assert (sa["n"], sa["moments"]["total"], sa["moments"]["min"], sa["moments"]["max"]) == (
        sb["n"], sb["moments"]["total"], sb["moments"]["min"], sb["moments"]["max"])
    for name in ("macs", "sops", "spikes"):
        assert sb[name] == pytest.approx(sa[name])
    for profile, spread in sa["energy_pj"].items():
        assert sb["energy_pj"][profile] == pytest.approx(spread)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_failing_rank_is_reported_by_rank_0_and_nothing_is_written(tmp_path: Path) -> None:
    config = _config(tmp_path, 11, kwargs="{ fail_at = 4 }")  # sample 4 is in batch 1: rank 1's
    out = tmp_path / "out.json"
    run = _torchrun("count", config, "--dataset", "--json", out, "-q")
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: rank 1 of 2 failed: cannot read samples 3..5 of {tmp_path / 'data.pt'} (reader "
                      "'tiny_spikes'): OSError: corrupt record 4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.pt", "run.toml"]


def test_a_lost_gather_is_one_error_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist

    from snnprof.dataset.distributed import DistContext, gather_outcomes

    def timed_out(*args: object, **kwargs: object) -> None:
        raise RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Timed out waiting 5000ms\nmore")

    monkeypatch.setattr(dist, "all_gather_object", timed_out)
    monkeypatch.setenv("SNNPROF_DIST_TIMEOUT_S", "5")
    with pytest.raises(DistributedRunError) as info:
        gather_outcomes(DistContext(1, 2, 1, "gloo"), {"ok": True})
    assert info.value.every_rank
    assert str(info.value).startswith("rank 1 of 2 lost contact with the other ranks")
    assert "timeout 5 s" in str(info.value) and "Timed out waiting 5000ms" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_a_hung_rank_ends_in_an_error_line_on_the_others(tmp_path: Path) -> None:
    config = _config(tmp_path, 11, kwargs="{ hang_at = 4 }")  # rank 1 stops itself reading sample 4
    out = tmp_path / "out.json"
    run = _torchrun("count", config, "--dataset", "--json", out, "-q", SNNPROF_DIST_TIMEOUT_S="5")
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors and errors[0].startswith("error: rank 0 of 2 lost contact with the other ranks"), run.stderr
    assert "Traceback" not in run.stderr.split("error:")[0] or not errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.pt", "run.toml"]


def test_python_dash_m_snnprof() -> None:
    run = subprocess.run([sys.executable, "-m", "snnprof", "--version"], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0 and run.stdout.startswith("snnprof ")
