"""The ``blender`` reader on Blender-layout folders written by the tests, rays and ray batches."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from snnprof.data import get_reader, list_readers, open_dataset
from snnprof.data.blender import (
    RaySet,
    encode_png,
    iter_ray_batches,
    load_blender,
    ray_batch,
    read_png,
    view_rays,
)
from snnprof.errors import ConfigError
from snnprof.models.nerf_scene import pose_spherical

from .conftest import write_layout, write_png_u8

FOV = 0.69
H, W = 3, 5


def rgba_images(n: int, h: int = H, w: int = W, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8) for _ in range(n)]


def composite(u8: np.ndarray, white: bool = True) -> np.ndarray:
    rgba = u8.astype(np.float64) / 255.0
    rgb, a = rgba[..., :3], rgba[..., 3:]
    return rgb * a + (1 - a) if white else rgb * a


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, list[np.ndarray], list[np.ndarray]]:
    root = tmp_path / "scene"
    images = rgba_images(3)
    poses = [np.eye(4), pose_spherical(90.0, -30.0, 4.0).numpy().astype(np.float64), np.eye(4)]
    # frame 0 without a suffix (Blender style), frame 1 with one, frame 2 in another folder
    write_layout(root, "train", images, poses, fov=FOV, names=["./train/r_0", "train/r_1.png", "./other/img"])
    write_layout(root, "test", images[:2], poses[:2], fov=FOV)
    return root, images, poses


def test_reader_is_registered_and_returns_views(scene: tuple[Path, list, list]) -> None:
    root, images, _ = scene
    assert "blender" in list_readers()
    views = open_dataset("blender", root, split="train")
    assert len(views) == 3 and (views.height, views.width) == (H, W)
    inputs, target = views[1]
    assert set(inputs) == {"rays_o", "rays_d", "viewdirs"}
    assert all(v.shape == (H, W, 3) for v in inputs.values()) and target.shape == (H, W, 3)
    np.testing.assert_allclose(target.numpy(), composite(images[1]), atol=1e-6)
    assert get_reader("blender")(root).images.shape == (2, H, W, 3)  # default split: test
    with pytest.raises(IndexError):
        views[3]


def test_white_and_black_background_compositing(scene: tuple[Path, list, list]) -> None:
    root, images, _ = scene
    white = load_blender(root, "train")
    black = load_blender(root, "train", white_bg=False)
    for i in range(3):
        np.testing.assert_allclose(white.images[i].numpy(), composite(images[i]), atol=1e-6)
        np.testing.assert_allclose(black.images[i].numpy(), composite(images[i], white=False), atol=1e-6)


def test_focal_and_rays_of_the_identity_camera_by_hand(scene: tuple[Path, list, list]) -> None:
    root, _, _ = scene
    views = load_blender(root, "train")
    focal = 0.5 * W / math.tan(0.5 * FOV)
    assert views.focal == pytest.approx(focal)
    inputs, _ = views[0]
    assert torch.equal(inputs["rays_o"], torch.zeros(H, W, 3))
    for j in range(H):
        for i in range(W):
            expected = [(i + 0.5 - W / 2) / focal, -(j + 0.5 - H / 2) / focal, -1.0]
            np.testing.assert_allclose(inputs["rays_d"][j, i].numpy(), expected, rtol=1e-6, atol=1e-7)
    norm = inputs["rays_d"].norm(dim=-1, keepdim=True)
    torch.testing.assert_close(inputs["viewdirs"], inputs["rays_d"] / norm)


def test_centre_ray_of_a_posed_camera_passes_through_the_origin(scene: tuple[Path, list, list]) -> None:
    root, _, poses = scene
    inputs, _ = load_blender(root, "train")[1]
    o, d = inputs["rays_o"][H // 2, W // 2].double(), inputs["rays_d"][H // 2, W // 2].double()
    c2w = torch.from_numpy(poses[1])
    torch.testing.assert_close(o, c2w[:3, 3])
    torch.testing.assert_close(d, -c2w[:3, 2], atol=1e-6, rtol=1e-6)  # camera z = -1, pixel at the centre
    assert torch.linalg.cross(o, d).norm() < 1e-5 and float(o @ d) < 0
    assert float(o.norm()) == pytest.approx(4.0, abs=1e-6)


def test_downscale_averages_rgba_then_composites(tmp_path: Path) -> None:
    images = rgba_images(1, 4, 6, seed=3)
    write_layout(tmp_path, "val", images, [np.eye(4)], fov=FOV)
    views = load_blender(tmp_path, "val", downscale=2)
    rgba = images[0].astype(np.float64).reshape(2, 2, 3, 2, 4).mean(axis=(1, 3)) / 255.0
    expected = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
    np.testing.assert_allclose(views.images[0].numpy(), expected, atol=1e-6)
    assert views.focal == pytest.approx(0.5 * 3 / math.tan(0.5 * FOV))


def test_rgb_pngs_get_alpha_one_and_max_views(tmp_path: Path) -> None:
    rgb = [np.full((2, 2, 3), v, dtype=np.uint8) for v in (10, 200)]
    write_layout(tmp_path, "train", rgb, [np.eye(4)] * 2, fov=FOV)
    views = load_blender(tmp_path, "train", max_views=1)
    assert len(views) == 1
    np.testing.assert_allclose(views.images[0].numpy(), np.full((2, 2, 3), 10 / 255.0), atol=1e-7)


def test_png_round_trip_is_exact_for_8_bit_values(tmp_path: Path) -> None:
    u8 = rgba_images(1, 5, 7, seed=9)[0]
    (tmp_path / "x.png").write_bytes(encode_png(torch.from_numpy(u8.astype(np.float64) / 255.0)))
    assert np.array_equal((read_png(tmp_path / "x.png").numpy() * 255).round().astype(np.uint8), u8)


def _bad_json(root: Path, meta: object) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "transforms_test.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("meta", "key"),
    [
        ({"frames": []}, "camera_angle_x"),
        ({"camera_angle_x": 7.0, "frames": []}, "camera_angle_x"),
        ({"camera_angle_x": 0.5, "frames": []}, "frames"),
        ({"camera_angle_x": 0.5, "frames": [{"transform_matrix": np.eye(4).tolist()}]}, "frames[0].file_path"),
        ({"camera_angle_x": 0.5, "frames": [{"file_path": "a", "transform_matrix": [[1, 0, 0, 0]]}]},
         "frames[0].transform_matrix"),
    ],
)
def test_bad_transforms_name_the_file_and_key(tmp_path: Path, meta: object, key: str) -> None:
    _bad_json(tmp_path, meta)
    with pytest.raises(ConfigError) as err:
        load_blender(tmp_path, "test")
    assert err.value.key == key and err.value.path.endswith("transforms_test.json")


def test_missing_or_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataset folder not found"):
        load_blender(tmp_path / "nope")
    tmp_path.joinpath("empty").mkdir()
    with pytest.raises(ConfigError, match="transforms_test.json: file not found"):
        load_blender(tmp_path / "empty")
    (tmp_path / "empty" / "transforms_test.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable JSON"):
        load_blender(tmp_path / "empty")
    _bad_json(tmp_path / "noimg", {"camera_angle_x": 0.5, "frames": [{"file_path": "./test/r_0",
                                                                       "transform_matrix": np.eye(4).tolist()}]})
    with pytest.raises(ConfigError, match=r"r_0\.png: image file not found"):
        load_blender(tmp_path / "noimg")
    (tmp_path / "noimg" / "test").mkdir()
    (tmp_path / "noimg" / "test" / "r_0.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="not a readable PNG"):
        load_blender(tmp_path / "noimg")


def test_bad_options_and_mixed_sizes(scene: tuple[Path, list, list], tmp_path: Path) -> None:
    root, _, _ = scene
    for kwargs, key in (({"split": "bogus"}, "split"), ({"downscale": 0}, "downscale"),
                        ({"downscale": 4}, "downscale"), ({"max_views": 0}, "max_views"),
                        ({"white_bg": 1}, "white_bg")):
        with pytest.raises(ConfigError) as err:
            load_blender(root, **kwargs)
        assert err.value.key == key
    mixed = tmp_path / "mixed"
    write_layout(mixed, "test", [rgba_images(1)[0], rgba_images(1, 4, 4)[0]], [np.eye(4)] * 2)
    with pytest.raises(ConfigError, match="like the split's first image"):
        load_blender(mixed)


def _rays(n: int) -> RaySet:
    index = torch.arange(n, dtype=torch.float32)
    return RaySet(index[:, None].repeat(1, 3), -index[:, None].repeat(1, 3), torch.ones(n, 3),
                  torch.stack([index, index * 2, index * 3], -1))


def test_ray_batches_depend_only_on_seed_and_step() -> None:
    rays = _rays(50)
    a_in, a_rgb = ray_batch(rays, 7, 16, seed=3)
    b_in, b_rgb = ray_batch(rays, 7, 16, seed=3)
    assert torch.equal(a_rgb, b_rgb) and all(torch.equal(a_in[k], b_in[k]) for k in a_in)
    index = a_rgb[:, 0].long()
    assert torch.equal(a_in["rays_o"], rays.rays_o[index]) and torch.equal(a_rgb, rays.rgb[index])
    assert not torch.equal(ray_batch(rays, 8, 16, seed=3)[1], a_rgb)
    assert not torch.equal(ray_batch(rays, 7, 16, seed=4)[1], a_rgb)
    batches = iter_ray_batches(rays, 16, seed=3, start_step=6)
    next(batches)
    assert torch.equal(next(batches)[1], a_rgb)
    with pytest.raises(ValueError, match="no rays"):
        ray_batch(rays.subset(torch.zeros(50, dtype=torch.bool)), 0, 4, 0)


def test_ray_set_from_views_and_mean_colour(scene: tuple[Path, list, list]) -> None:
    root, images, _ = scene
    views = load_blender(root, "train")
    rays = RaySet.from_views(views)
    assert len(rays) == 3 * H * W
    pixel = H * W + 2 * W + 3  # view 1, row 2, column 3
    torch.testing.assert_close(rays.rays_d[pixel], views[1][0]["rays_d"][2, 3])
    torch.testing.assert_close(rays.rgb[pixel], views.images[1, 2, 3])
    expected = np.mean([composite(im).reshape(-1, 3) for im in images], axis=(0, 1))
    np.testing.assert_allclose(rays.mean_color().numpy(), expected, atol=1e-6)
    single = view_rays(torch.eye(4), 2, 2, 1.0)
    assert single["rays_d"][0, 0].tolist() == [-0.5, 0.5, -1.0]


def test_write_png_u8_helper_matches_reader(tmp_path: Path) -> None:
    write_png_u8(tmp_path / "a.png", np.zeros((1, 1, 4), dtype=np.uint8))
    assert read_png(tmp_path / "a.png").tolist() == [[[0.0, 0.0, 0.0, 0.0]]]
