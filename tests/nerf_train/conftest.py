"""Shared fixtures and helpers of the NeRF data and training tests (tiny scenes: the suite must stay fast)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests._threads import one_thread


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread (tiny tensors on a busy 2-core machine; see tests/_threads.py)."""
    yield from one_thread()


def write_png_u8(path: Path, array: np.ndarray) -> None:
    """Write a uint8 ``[H, W, 3|4]`` array as PNG (the test's own writer, independent of the code under test)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode="RGBA" if array.shape[-1] == 4 else "RGB").save(path)


def write_layout(root: Path, split: str, images: list[np.ndarray], poses: list[np.ndarray], *,
                 fov: float = 0.69, names: list[str] | None = None) -> None:
    """A Blender-layout split: ``transforms_<split>.json`` + PNGs named by ``names`` (default ``./split/r_i``)."""
    names = names or [f"./{split}/r_{i}" for i in range(len(images))]
    frames = []
    for name, image, pose in zip(names, images, poses, strict=True):
        file = root / (name if name.endswith(".png") else name + ".png")
        write_png_u8(file, image)
        frames.append({"file_path": name, "rotation": 0.0, "transform_matrix": pose.tolist()})
    (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": fov, "frames": frames}))


TINY_TRAIN = """\
[model]
name = "{model}"
kwargs = {{ {kwargs} }}
[input]
source = "{source}"
batch_size = 1
time_steps = 1
seed = {seed}
{input_extra}
[train]
epochs = {epochs}
steps_per_epoch = {spe}
batch_rays = 48
eval_views = 2
image_size = 16
train_views = 3
test_views = 2
render_dir = "{render_dir}"
{extra}
[energy]
profiles = ["cmos45nm_fp32"]
"""

_SAMPLES = "coarse_samples = 6\nfine_samples = 5\nproposal_width = 8"  # the proposal-guided NeRF loop, tiny

#: Tiny model kwargs and loop keys per trainer family.
_COARSE = "coarse_iters = 2\ncoarse_num_voxels = 1728\ncoarse_alpha_init = 1e-2"  # an occupied cache at once
TINY: dict[str, tuple[str, str]] = {
    "spikingnerf_d": ('layout = "tcp", num_voxels = 3375, init = "dvgo"', _COARSE),
    "spikingnerf_d_tp": ('layout = "tp", num_voxels = 3375, init = "dvgo"', _COARSE),
    "dvgo_ann": ('num_voxels = 3375, init = "dvgo"', _COARSE),
    "spikingnerf_t": ('grid_size = 10, init = "tensorf"', "alpha_mask_updates = [2, 4]"),
    "tensorf_ann": ('grid_size = 10, init = "tensorf"', "alpha_mask_updates = [2, 4]"),
    "spikingnerf_d_pg": ('layout = "tcp", num_voxels = 3375, init = "dvgo"', _COARSE + "\npg_scale = [1, 2]"),
    "nerf_mlp": ("hidden = 16, samples = 8", 'weight_init = "torch"\nwarmup_steps = 2\n' + _SAMPLES),
    "refnerf": ("hidden = 16, bottle_neck_dim = 8, samples = 8",
                'weight_init = "torch"\nwarmup_steps = 2\n' + _SAMPLES),
}


def tiny_config(tmp_path: Path, key: str, name: str = "tiny.toml", **kw: Any) -> Path:
    """Write a tiny training config for ``key`` (a :data:`TINY` entry); ``kw`` overrides template fields."""
    model_kwargs, extra = TINY[key]
    values: dict[str, Any] = {"model": key.removesuffix("_tp").removesuffix("_pg"), "kwargs": model_kwargs,
                              "source": "synthetic", "seed": 0, "input_extra": "", "epochs": 2, "spe": 2,
                              "render_dir": (tmp_path / "renders").as_posix(), "extra": extra} | kw
    path = tmp_path / name
    path.write_text(TINY_TRAIN.format(**values), encoding="utf-8")
    return path
