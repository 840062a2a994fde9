"""``snnprof compare``: JSON results and ratios, TCP/TP/ANN invariants end to end, quality hook, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from snnprof.cli import app
from snnprof.comparison import ratio
from snnprof.data import list_readers, register_reader
from snnprof.models import create_model, get_entry
from snnprof.models.nerf_metrics import psnr
from snnprof.models.nerf_render import ChunkStats
from snnprof.run import json_safe, summarize_chunks

runner = CliRunner()
D_KWARGS = 'num_voxels = 13824, chunk = 96, init = "scene", seed = 0'
IMAGE = 12


def config(tmp_path: Path, name: str, model: str, kwargs: str, *, source: str = "", batch: int = 1,
           extra_model: str = "") -> Path:
    inputs = source or f'source = "synthetic"\nkwargs = {{ image_size = {IMAGE} }}'
    text = (f'[model]\nname = "{model}"\nkwargs = {{ {kwargs} }}\n{extra_model}'
            f"[input]\n{inputs}\nbatch_size = {batch}\ntime_steps = 1\nseed = 0\n")
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def tcp_tp_ann(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("cmp")
    paths = [config(tmp, "tcp", "spikingnerf_d", f'layout = "tcp", {D_KWARGS}'),
             config(tmp, "tp", "spikingnerf_d", f'layout = "tp", {D_KWARGS}'),
             config(tmp, "ann", "dvgo_ann", D_KWARGS)]
    out = tmp / "cmp.json"
    result = invoke("compare", *paths, "--json", out, "-p", "cmos45nm_fp32", "-p", "spikesim_rram")
    assert result.exit_code == 0, result.output
    return {"json": json.loads(out.read_text()), "stdout": result.stdout}


def test_json_schema_and_runs(tcp_tp_ann: dict[str, Any]) -> None:
    data = tcp_tp_ann["json"]
    assert data["schema"] == "snnprof.compare/1" and data["reference"] == "tcp"
    assert data["profiles"] == ["cmos45nm_fp32", "spikesim_rram"]
    assert [r["label"] for r in data["runs"]] == ["tcp", "tp", "ann"]
    for run in data["runs"]:
        assert run["profile"]["schema"] == "snnprof.profile/1"
        assert set(run["profile"]["energy"]) == {"cmos45nm_fp32", "spikesim_rram"}
        assert isinstance(run["metrics"]["macs"], int) and run["wall_s"] > 0
    assert data["warnings"] == [
        "untrained weights: tcp, tp, ann (no [model] checkpoint); counts and energies depend on the weights "
        "through the spikes, so these figures describe random networks"]


def test_tcp_vs_tp_invariants_in_the_json(tcp_tp_ann: dict[str, Any]) -> None:
    tcp, tp, _ = tcp_tp_ann["json"]["runs"]
    ratios = tcp_tp_ann["json"]["ratios"]["tp"]
    assert tcp["metrics"]["macs"] == tp["metrics"]["macs"] > 0 and ratios["macs"] == 1.0
    assert tcp["metrics"]["points"] == tp["metrics"]["points"]
    assert tcp["render"]["time_steps_max"] <= tp["render"]["time_steps_max"]
    assert all(a["time_steps"] <= b["time_steps"] and a["batch"] <= b["batch"]
               for a, b in zip(tcp["render"]["per_chunk"], tp["render"]["per_chunk"], strict=True))
    assert ratios["time_steps_mean"] >= 1 and ratios["energy_pj.spikesim_rram"] >= 1
    assert tcp["render"]["padding_fraction"] <= tp["render"]["padding_fraction"]
    chunks = tcp["render"]["per_chunk"]
    assert tcp["metrics"]["macs"] == sum(c["points"] for c in chunks) * 39 * 128


def test_snn_vs_ann_energy_reduction(tcp_tp_ann: dict[str, Any]) -> None:
    data = tcp_tp_ann["json"]
    tcp, _, ann = data["runs"]
    assert ann["metrics"]["macs"] == tcp["metrics"]["macs"] * 21_760 // 4_992
    e_snn, e_ann = (r["metrics"]["energy_pj.cmos45nm_fp32"] for r in (tcp, ann))
    assert data["energy_reduction_pct"]["cmos45nm_fp32"]["ann"] == pytest.approx((1 - e_snn / e_ann) * 100)
    assert 40 < data["energy_reduction_pct"]["cmos45nm_fp32"]["ann"] < 90
    assert "tcp vs ann on cmos45nm_fp32" in tcp_tp_ann["stdout"] and "less energy" in tcp_tp_ann["stdout"]
    assert ann["render"]["time_steps_max"] is None and tcp["firing_rates"]["rgbnet.lif1"] > 0


def test_same_configs_twice_give_identical_counts(tmp_path: Path) -> None:
    path = config(tmp_path, "tcp", "spikingnerf_d", f'layout = "tcp", {D_KWARGS}')
    out = tmp_path / "same.json"
    result = invoke("compare", path, path, "--json", out, "--profile", "spikesim_rram", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    data = json.loads(out.read_text())
    first, second = (r["profile"] for r in data["runs"])
    assert first["totals"] == second["totals"] and first["energy"] == second["energy"]
    assert [r["label"] for r in data["runs"]] == ["tcp#1", "tcp#2"]


@pytest.mark.parametrize("case", ["one_config", "missing_file", "bad_kwargs", "bad_profile"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, case: str) -> None:
    good = config(tmp_path, "good", "dvgo_ann", D_KWARGS)
    bad = config(tmp_path, "bad", "spikingnerf_d", f'layout = "sideways", {D_KWARGS}')
    args = {"one_config": [good], "missing_file": [good, tmp_path / "absent.toml"], "bad_kwargs": [good, bad],
            "bad_profile": [good, good, "--profile", "quantum"]}[case]
    out = tmp_path / "out.json"
    result = invoke("compare", *args, "--json", out)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    assert not out.exists()


def test_help_has_an_example() -> None:
    result = invoke("compare", "--help")
    assert result.exit_code == 0 and "Example" in result.stdout and "snnprof compare" in result.stdout


# --------------------------------------------------------------------------- quality hook


def _views_reader(path: Path, **kwargs: Any) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Views stored by the test: (rays of one view [H, W, 3] each, ground-truth image [H, W, 3])."""
    data = torch.load(path, weights_only=True)
    keys = ("rays_o", "rays_d", "viewdirs")
    return [({k: data[k][i] for k in keys}, data["rgb"][i]) for i in range(data["rgb"].shape[0])]


def test_psnr_and_ssim_with_checkpoint_and_ground_truth(tmp_path: Path) -> None:
    if "test_nerf_views" not in list_readers():  # registered here, not at import (keeps collection clean)
        register_reader("test_nerf_views")(_views_reader)
    model = create_model("dvgo_ann", num_voxels=13824, chunk=96, init="scene", seed=0).eval()
    rays = get_entry("dvgo_ann").make_inputs(model, 2, 1, 0, image_size=IMAGE)
    with torch.no_grad():
        clean = model(**rays).rgb
    target = (clean + 0.03).clamp(0, 1)
    torch.save({**rays, "rgb": target}, tmp_path / "views.pt")
    torch.save(model.state_dict(), tmp_path / "model.pt")
    source = f'source = "dataset"\npath = "{tmp_path / "views.pt"}"\nreader = "test_nerf_views"'
    trained = config(tmp_path, "trained", "dvgo_ann", D_KWARGS, source=source, batch=2,
                     extra_model=f'checkpoint = "{tmp_path / "model.pt"}"\n')
    untrained = config(tmp_path, "untrained", "dvgo_ann", D_KWARGS, source=source, batch=2)
    out = tmp_path / "q.json"
    result = invoke("compare", trained, untrained, "--json", out)
    assert result.exit_code == 0, result.output
    runs = json.loads(out.read_text())["runs"]
    assert runs[0]["quality"]["psnr"] == pytest.approx(psnr(clean.clamp(0, 1), target), rel=1e-6)
    assert 0 < runs[0]["quality"]["ssim"] <= 1
    assert runs[1]["quality"] == {} and "checkpoint" in runs[1]["quality_note"]


# --------------------------------------------------------------------------- pure helpers


def test_summarize_chunks_and_ratios() -> None:
    stats = [ChunkStats(0, 4, 40, 20, 10, 6, 3, 4, 6 * 39, 39), ChunkStats(0, 2, 10, 5, 4, 2, 2, 1, 0, 39)]
    summary = summarize_chunks(stats)
    assert summary is not None
    assert (summary.points, summary.time_steps_max, summary.batch_max) == (8, 3, 4)
    assert summary.time_steps_mean == 2.5 and summary.padding_fraction == 1 - 8 / 14
    assert summary.sparsity == pytest.approx(6 * 39 / (14 * 39))
    assert summarize_chunks([]) is None
    assert [ratio(v, 2.0) for v in (2.0, 3.0)] == [1.0, 1.5]
    assert ratio(1.0, 0.0) is None and ratio(None, 1.0) is None and ratio(1.0, float("inf")) is None
    cleaned = json_safe({"psnr": float("inf"), "x": [1.0, float("nan")], "n": 3})
    assert cleaned == {"psnr": None, "x": [1.0, None], "n": 3}
