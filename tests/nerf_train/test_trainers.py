"""The NeRF loops through the ``snnprof train`` harness: tiny runs, exact resume, bad input, the PSNR target."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from snnprof.config import load_config
from snnprof.data.blender import RaySet, load_blender
from snnprof.data.synthetic_scene import SceneSpec, write_blender_scene
from snnprof.errors import ConfigError
from snnprof.reference_impls.harness import COUNT_FILE, MODEL_FILE, TrainOptions, read_metrics, run_training
from snnprof.reference_impls.training import list_trainers
from snnprof.workload import build_model

from .conftest import TINY, tiny_config


def test_trainers_are_registered() -> None:
    assert {"spikingnerf_d", "dvgo_ann", "spikingnerf_t", "tensorf_ann", "nerf_mlp", "refnerf"} <= set(list_trainers())


@pytest.mark.parametrize("key", sorted(TINY))
def test_tiny_run_evaluates_saves_pngs_and_counts(tmp_path: Path, key: str) -> None:
    config = tiny_config(tmp_path, key)
    out = tmp_path / "run"
    res = run_training(config, TrainOptions(out=out, threads=1))
    records = read_metrics(out / "metrics.jsonl")
    assert [r["global_step"] for r in records] == [2, 4]
    for record in records:
        ev = record["eval"]
        assert 0.0 < ev["psnr"] < 60.0 and 0.0 < ev["psnr_constant_baseline"] < 60.0 and -1 <= ev["ssim"] <= 1
        assert math.isfinite(record["train"]["loss"]) and record["train"]["lr"] > 0
    if key.startswith(("spikingnerf_d", "dvgo")):  # coarse_iters = 2: the first evaluation is the coarse model's
        assert [r["eval"]["stage"] for r in records] == [0.0, 1.0]
    renders = tmp_path / "renders"
    assert sorted(p.name for p in renders.iterdir()) == ["step000002", "step000004", "target"]
    assert sorted(p.name for p in (renders / "step000004").iterdir()) == ["r_0.png", "r_1.png"]
    count = json.loads((out / COUNT_FILE).read_text())
    assert count["schema"] == "snnprof.profile/1" and res.count is not None
    if key not in ("spikingnerf_t", "tensorf_ann"):  # TensoRF's alpha mask of an untrained density is empty
        assert res.count.result.totals.dense_macs > 0
    model = build_model(load_config(config))
    model.load_state_dict(torch.load(out / MODEL_FILE, weights_only=True))


def test_constant_colour_baseline_by_hand(tmp_path: Path) -> None:
    from snnprof.reference_impls.nerf_train import DVGOTrainer

    cfg = load_config(tiny_config(tmp_path, "dvgo_ann"))
    trainer = DVGOTrainer(build_model(cfg), cfg, "cpu")
    root = write_blender_scene(tmp_path / "scene", SceneSpec(image_size=16, train_views=3, test_views=2, seed=0))
    train, test = load_blender(root, "train"), load_blender(root, "test")
    mean = train.images.double().reshape(-1, 3).mean(0)
    per_view = [-10 * math.log10(float(((img.double() - mean) ** 2).mean())) for img in test.images]
    assert trainer.baseline_psnr == pytest.approx(sum(per_view) / 2, abs=1e-4)
    assert torch.equal(trainer.train_rays.rgb, RaySet.from_views(train).rgb)
    assert trainer.count_inputs()["rays_o"].shape == (1, 16, 16, 3)


@pytest.mark.parametrize("key", ["spikingnerf_d", "spikingnerf_t", "spikingnerf_d_pg", "refnerf"])
def test_resume_repeats_the_uninterrupted_run(tmp_path: Path, key: str) -> None:
    """Split before the fine stage / alpha-mask update (step 2) and inside it (step 3; pg: between two scalings)."""
    config = tiny_config(tmp_path, key, epochs=3)
    straight, split = tmp_path / "straight", tmp_path / "split"
    run_training(config, TrainOptions(out=straight, threads=1, count=False))
    run_training(config, TrainOptions(out=split, threads=1, count=False, max_steps=2))
    run_training(config, TrainOptions(out=split, threads=1, count=False, max_steps=3, resume=True))
    run_training(config, TrainOptions(out=split, threads=1, count=False, resume=True))
    a = torch.load(straight / MODEL_FILE, weights_only=True)
    b = torch.load(split / MODEL_FILE, weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    evals = [[r["eval"] for r in read_metrics(d / "metrics.jsonl") if not r["partial"]] for d in (straight, split)]
    assert evals[0] == evals[1]


def test_compare_scores_the_trained_checkpoint_like_the_loop(tmp_path: Path) -> None:
    """``snnprof compare``'s PSNR/SSIM hook on the ``blender`` reader equals the loop's last evaluation."""
    from snnprof.pipeline import run_config

    out = tmp_path / "run"
    run_training(tiny_config(tmp_path, "spikingnerf_d"), TrainOptions(out=out, threads=1, count=False))
    final = read_metrics(out / "metrics.jsonl")[-1]["eval"]
    root = write_blender_scene(tmp_path / "scene", SceneSpec(image_size=16, train_views=3, test_views=2, seed=0))
    kwargs, _ = TINY["spikingnerf_d"]
    cmp = tmp_path / "cmp.toml"
    checkpoint = (out / MODEL_FILE).as_posix()
    cmp.write_text(f'[model]\nname = "spikingnerf_d"\nkwargs = {{ {kwargs} }}\ncheckpoint = "{checkpoint}"\n'
                   f'[input]\nsource = "dataset"\npath = "{root.as_posix()}"\nreader = "blender"\nbatch_size = 2\n')
    run = run_config(load_config(cmp), ["cmos45nm_fp32"], side_by_side=True)
    assert run.quality["psnr"] == pytest.approx(final["psnr"], abs=1e-6)
    assert run.quality["ssim"] == pytest.approx(final["ssim"], abs=1e-6)


def test_blender_dataset_source_with_downscale(tmp_path: Path) -> None:
    root = write_blender_scene(tmp_path / "data", SceneSpec(image_size=16, train_views=3, test_views=2, seed=1))
    config = tiny_config(tmp_path, "nerf_mlp", source="dataset",
                         input_extra=f'path = "{root.as_posix()}"\nreader = "blender"\nkwargs = {{ downscale = 2 }}')
    out = tmp_path / "run"
    run_training(config, TrainOptions(out=out, threads=1, max_steps=2))
    ev = read_metrics(out / "metrics.jsonl")[-1]["eval"]
    assert ev["ssim"] is None  # 8x8 renders: smaller than the SSIM window, reported as null
    assert ev["psnr"] > 0


@pytest.mark.parametrize(
    ("key", "change", "where"),
    [
        ("spikingnerf_d", {"extra": "coarse_iters = 4"}, "train.coarse_iters"),
        ("spikingnerf_d", {"extra": "bogus = 1"}, "train.bogus"),
        ("spikingnerf_t", {"extra": 'l1_weight_initial = "many"'}, "train.l1_weight_initial"),
        ("nerf_mlp", {"extra": 'weight_init = "xavier"'}, "train.weight_init"),
        ("nerf_mlp", {"source": "dataset", "input_extra": 'path = "."\nreader = "cifar10"'}, "input.reader"),
        ("nerf_mlp", {"source": "dataset", "input_extra": 'path = "."\nreader = "blender"\nkwargs = { split = "val" }'},
         "input.kwargs.split"),
        ("nerf_mlp", {"source": "dataset", "input_extra": 'path = "."\nreader = "blender"\nkwargs = { zoom = 2 }'},
         "input.kwargs"),
    ],
)
def test_bad_train_config_names_the_key_and_writes_nothing(tmp_path: Path, key: str, change: dict[str, str],
                                                           where: str) -> None:
    config = tiny_config(tmp_path, key, **change)
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as err:
        run_training(config, TrainOptions(out=out, threads=1))
    assert err.value.key == where and str(config) in str(err.value)
    assert not out.exists() and not (tmp_path / "renders").exists()


def test_the_dvgo_loop_refuses_other_models(tmp_path: Path) -> None:
    from snnprof.models import create_model
    from snnprof.reference_impls.nerf_train import DVGOTrainer, TensoRFTrainer

    cfg = load_config(tiny_config(tmp_path, "spikingnerf_d"))
    with pytest.raises(ConfigError, match="spikingnerf_d / dvgo_ann"):
        DVGOTrainer(create_model("nerf_mlp", hidden=8, samples=4), cfg, "cpu")
    with pytest.raises(ConfigError, match="spikingnerf_t / tensorf_ann"):
        TensoRFTrainer(create_model("nerf_mlp", hidden=8, samples=4), cfg, "cpu")


@pytest.mark.slow
def test_spikingnerf_d_tcp_reaches_far_above_the_constant_baseline(tmp_path: Path) -> None:
    """32x32 synthetic scene, 150 coarse + 200 fine steps: at least 10 dB above the constant-colour PSNR."""
    config = tiny_config(
        tmp_path, "spikingnerf_d", epochs=7, spe=50,
        kwargs='layout = "tcp", num_voxels = 32768, init = "dvgo"',
        extra="coarse_iters = 150\ncoarse_num_voxels = 13824\ncoarse_alpha_init = 1e-4\nlr_decay_steps = 1000\n"
              "cache_update_every = 50",
    ).read_text().replace("image_size = 16", "image_size = 32").replace("train_views = 3", "train_views = 24")
    path = tmp_path / "slow.toml"
    path.write_text(config.replace("batch_rays = 48", "batch_rays = 512"))
    out = tmp_path / "run"
    run_training(path, TrainOptions(out=out, threads=1, count=False))
    final = read_metrics(out / "metrics.jsonl")[-1]["eval"]
    assert final["stage"] == 1.0
    assert final["psnr"] >= final["psnr_constant_baseline"] + 10.0
    assert final["ssim"] > 0.8


def test_progressive_scaling_follows_dvgo(tmp_path: Path) -> None:
    """pg_scale = [1, 2]: the fine stage starts at num_voxels / 4, doubles twice, rebuilds Adam, lowers act_shift."""
    from snnprof.reference_impls.nerf_train import DVGOTrainer

    cfg = load_config(tiny_config(tmp_path, "spikingnerf_d_pg", epochs=3))
    model = build_model(cfg)
    trainer = DVGOTrainer(model, cfg, "cpu")
    shift0, sizes = float(model.act_shift), []
    for step in range(6):
        trainer.train_step(step)
        sizes.append(model.density.world_size)
    # coarse steps 0-1 leave the fine grids alone; the fine stage starts at 3375 / 4 and scales before its
    # (1-based) steps 1 and 2, as DVGO checks ``global_step in pg_scale`` before the update
    assert sizes[:2] == [(15, 15, 15)] * 2
    assert sizes[2] == model._world_size(3375 // 2) != model._world_size(3375 // 4)
    assert sizes[3] == sizes[4] == sizes[5] == (15, 15, 15)
    assert model.mask_cache.mask.shape == (15, 15, 15) and model.num_voxels == 3375
    assert float(model.act_shift) == pytest.approx(shift0 - 2.0)
    assert trainer.lr_origin == 1  # the schedule restarts at the last rebuild (fine step 1, 0-based)


def test_cache_refresh_schedule_is_dvgos() -> None:
    from snnprof.reference_impls.nerf_train import _refresh_cache

    assert [t for t in range(3000) if _refresh_cache(t, 1000)] == [499, 1499, 2499]  # global steps 500, 1500, 2500
    assert not any(_refresh_cache(t, 0) for t in range(10))


def test_occupancy_cache_uses_the_voxel_size_ratio() -> None:
    """DVGO's ``activate_density`` default interval is ``voxel_size_ratio`` (1 here), not ``stepsize`` x it."""
    from snnprof.models import create_model

    model = create_model("spikingnerf_d", num_voxels=512, init="dvgo", fast_color_thres=1e-2, alpha_init=1e-4)
    # alpha(interval 1) = 1 - (1 + e^(d + s))^-1; pick d so that alpha is 1.5e-2 at interval 1 (< 1e-2 at 0.5)
    target = 1.5e-2
    shift = float(model.act_shift)
    density = math.log(1 / (1 - target) - 1) - shift
    with torch.no_grad():
        model.density.grid.fill_(density)
    assert model.interval == pytest.approx(0.5) and model.voxel_size_ratio == pytest.approx(1.0)
    assert model.update_occupancy_cache() == 512  # kept: 1.5e-2 > 1e-2 (interval 0.5 would give 7.5e-3)
