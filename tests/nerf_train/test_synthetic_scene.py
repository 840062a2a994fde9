"""The synthetic scene generator: analytic renders by hand, determinism, the Blender-layout round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from snnprof.data.blender import load_blender
from snnprof.data.synthetic_scene import (
    AMBIENT,
    LIGHT_DIR,
    SPLITS,
    SceneObject,
    SceneSpec,
    make_objects,
    render_view,
    split_poses,
    write_blender_scene,
)
from snnprof.models.nerf_scene import pose_spherical

SMALL = SceneSpec(image_size=12, train_views=3, val_views=1, test_views=2, supersample=2, seed=5)
FOCAL5 = SceneSpec(image_size=5).focal  # 5-pixel views, lego's field of view


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", ["sphere", "box"])
def test_centre_pixel_of_a_head_on_view_by_hand(kind: str) -> None:
    obj = SceneObject(kind, (0.0, 0.0, 0.0), (0.5, 0.5, 0.5), (1.0, 0.5, 0.25))
    c2w = pose_spherical(0.0, 0.0, 4.0)  # camera at (0, 4, 0) looking down -y
    torch.testing.assert_close(c2w[:3, 3], torch.tensor([0.0, 4.0, 0.0]), atol=1e-6, rtol=0)
    image = render_view([obj], c2w, 5, FOCAL5, supersample=1)
    shade = AMBIENT + (1 - AMBIENT) * LIGHT_DIR[1]  # the hit normal is +y for both solids
    np.testing.assert_allclose(image[2, 2].numpy(), [1.0 * shade, 0.5 * shade, 0.25 * shade, 1.0], atol=1e-9)
    assert float(image[0, 0, 3]) == 0.0  # the corner ray (0.39 rad off axis) misses


def test_nearest_hit_wins_and_coverage_is_the_alpha() -> None:
    far = SceneObject("box", (0.0, -0.5, 0.0), (0.4, 0.1, 0.4), (0.0, 0.0, 1.0))
    near = SceneObject("sphere", (0.0, 0.3, 0.0), (0.2, 0.2, 0.2), (1.0, 0.0, 0.0))
    c2w = pose_spherical(0.0, 0.0, 4.0)
    image = render_view([far, near], c2w, 5, FOCAL5, supersample=1)
    assert image[2, 2, 0] > 0 and image[2, 2, 2] == 0  # the red sphere in front of the blue box
    fine = render_view([near], c2w, 5, FOCAL5, supersample=4)
    assert 0 < float(fine[..., 3].sum()) < 25 and set(np.unique(fine[..., 3].numpy() * 16).round()) <= set(range(17))


def test_objects_are_seeded_and_inside_the_box() -> None:
    for seed in range(6):
        spec = SceneSpec(seed=seed, objects=5)
        objects = make_objects(spec)
        assert objects == make_objects(SceneSpec(seed=seed, objects=5)) and len(objects) == 6
        for obj in objects:
            half = np.array(obj.size if obj.kind == "box" else (obj.size[0],) * 3)
            assert np.all(np.abs(np.array(obj.center)) + half <= 1.0)
            assert all(0.0 <= c <= 1.0 for c in obj.color)
    assert make_objects(SceneSpec(seed=0)) != make_objects(SceneSpec(seed=1))


def test_cameras_look_at_the_origin_from_radius_4() -> None:
    for split in SPLITS:
        poses = split_poses(SMALL, split)
        assert len(poses) == SMALL.views(split)
        for c2w in poses:
            eye, forward = c2w[:3, 3].double(), -c2w[:3, 2].double()
            assert float(eye.norm()) == pytest.approx(4.0, abs=1e-5)
            torch.testing.assert_close(forward, -eye / eye.norm(), atol=1e-5, rtol=0)
            assert float(eye[2]) > 0  # upper hemisphere
    elevations = [float(torch.asin(p[2, 3] / 4.0)) for p in split_poses(SMALL, "test")]
    np.testing.assert_allclose(np.degrees(elevations), 30.0, atol=1e-4)


def test_same_spec_gives_byte_identical_files(tmp_path: Path) -> None:
    a = write_blender_scene(tmp_path / "a", SMALL)
    b = write_blender_scene(tmp_path / "b", SMALL)
    assert files(a) == files(b)
    c = write_blender_scene(tmp_path / "c", SceneSpec(**{**SMALL.__dict__, "seed": 6}))
    assert files(c)["test/r_0.png"] != files(a)["test/r_0.png"]
    names = set(files(a))
    assert {"transforms_train.json", "transforms_val.json", "transforms_test.json", "scene.json"} <= names
    assert {f"train/r_{i}.png" for i in range(3)} | {"val/r_0.png", "test/r_0.png", "test/r_1.png"} <= names


def test_round_trip_through_the_reader(tmp_path: Path) -> None:
    root = write_blender_scene(tmp_path / "scene", SMALL)
    meta = json.loads((root / "transforms_test.json").read_text())
    assert meta["camera_angle_x"] == SMALL.camera_angle_x
    assert [f["file_path"] for f in meta["frames"]] == ["./test/r_0", "./test/r_1"]
    views = load_blender(root, "test")
    assert views.images.shape == (2, 12, 12, 3) and views.focal == pytest.approx(SMALL.focal)
    objects = make_objects(SMALL)
    for i, c2w in enumerate(split_poses(SMALL, "test")):
        torch.testing.assert_close(views.poses[i], c2w, atol=1e-6, rtol=0)
        rgba = render_view(objects, c2w, 12, SMALL.focal, SMALL.supersample)
        expected = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
        assert float((views.images[i].double() - expected).abs().max()) <= 1.0 / 255  # two 8-bit roundings
    assert 0.0 < float(views.images.mean()) < 1.0


def test_existing_folder_is_refused_unless_overwrite(tmp_path: Path) -> None:
    root = write_blender_scene(tmp_path / "s", SMALL)
    with pytest.raises(FileExistsError):
        write_blender_scene(root, SMALL)
    (root / "stale.txt").write_text("x")
    write_blender_scene(root, SMALL, overwrite=True)
    assert not (root / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary folder left behind


@pytest.mark.parametrize("bad", [{"image_size": 2}, {"train_views": 0}, {"radius": 1.5}, {"objects": -1}])
def test_bad_specs_are_rejected(bad: dict[str, int | float]) -> None:
    with pytest.raises(ValueError):
        SceneSpec(**bad)
