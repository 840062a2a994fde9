"""MVSEC reader on hdf5 files written by the tests, and the synthetic stereo scene generator."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from snnprof.data import get_reader, list_readers, open_dataset
from snnprof.data.mvsec import close_small_holes, histogram
from snnprof.data.synthetic_stereo import (
    BASELINE_FOCAL,
    SceneSpec,
    _boxes,
    _render_view,
    counts_to_events,
    disparity,
    render_scene,
    write_mvsec,
)
from snnprof.errors import ConfigError, SnnprofError

H, W = 6, 8


def _write_h5(path: Path, datasets: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as handle:
        for key, value in datasets.items():
            handle.create_dataset(key, data=value)
    return path


def _hand_sequence(folder: Path, name: str = "indoor_flying1") -> tuple[Path, Path]:
    """Two depth maps at t = 10.05 s and 10.10 s with hand-placed events, NaN and 0 holes."""
    left = np.array(
        [  # x, y, t, p
            [1, 2, 9.99, 1],  # before ts[0] - 50 ms: dropped by both windows
            [1, 2, 10.0105, 1],  # anchor of the seed's windows (dropped by its strict '>')
            [1, 2, 10.0200, 1],  # window 0
            [1, 2, 10.0300, -1],  # window 0, OFF
            [3, 4, 10.0490, 1],  # window 0
            [7, 5, 10.0700, -1],  # window 1
            [7, 5, 10.0800, -1],  # window 1
            [9, 1, 10.0800, 1],  # x = 9 outside the 8-px-wide image: dropped
            [2, 0, 10.0990, 1],  # window 1
        ]
    )
    right = np.array([[4, 4, 10.005, 1], [0, 0, 10.0200, 1], [5, 3, 10.0900, -1]])  # first = right anchor
    depth = np.full((2, H, W), 3.0, dtype=np.float32)
    depth[0, 0, 0] = np.nan
    depth[1, 5, 7] = 0.0
    depth[1, 2, 3] = 4.5
    data = _write_h5(folder / f"{name}_data.hdf5", {"davis/left/events": left, "davis/right/events": right})
    gt = _write_h5(
        folder / f"{name}_gt.hdf5",
        {"davis/left/depth_image_rect": depth, "davis/left/depth_image_rect_ts": np.array([10.05, 10.10])},
    )
    return data, gt


def test_registered() -> None:
    assert "mvsec" in list_readers()


@pytest.mark.parametrize("window", ["seed", "preceding"])
def test_reader_hand_counts(tmp_path: Path, window: str) -> None:
    data, _ = _hand_sequence(tmp_path)
    ds = get_reader("mvsec")(data, window=window)
    assert len(ds) == 2 and (ds.height, ds.width) == (H, W)
    x0, y0 = ds[0]
    x1, _ = ds[1]
    assert x0.shape == (1, 4, H, W) and y0.shape == (1, H, W) and x0.dtype == torch.float32
    expected0 = torch.zeros(4, H, W)
    expected0[0, 2, 1] = 1 if window == "seed" else 2  # the seed drops its anchor event at 10.0105
    expected0[1, 2, 1] = 1
    expected0[0, 4, 3] = 1
    expected0[2, 0, 0] = 1
    expected0[2, 4, 4] = 0 if window == "seed" else 1  # each camera's stream has its own anchor
    expected1 = torch.zeros(4, H, W)
    expected1[1, 5, 7] = 2
    expected1[0, 0, 2] = 1
    expected1[3, 3, 5] = 1
    assert torch.equal(x0[0], expected0)
    assert torch.equal(x1[0], expected1)


def test_reader_nan_holes_and_zero_invalid(tmp_path: Path) -> None:
    data, _ = _hand_sequence(tmp_path)
    ds = open_dataset("mvsec", data)
    y0, y1 = ds[0][1][0], ds[1][1][0]
    assert torch.isnan(y0[0, 0]) and int(torch.isnan(y0).sum()) == 1
    assert torch.isnan(y1[5, 7]) and int(torch.isnan(y1).sum()) == 1  # 0 = no ground truth -> NaN
    assert float(y1[2, 3]) == 4.5 and float(y0[3, 3]) == 3.0


def test_reader_monocular_crop_folder_and_close_holes(tmp_path: Path) -> None:
    _hand_sequence(tmp_path)
    ds = open_dataset("mvsec", tmp_path, monocular=True, frames=[1, 2], close_holes=24)
    assert len(ds) == 1
    x, y = ds[0]
    assert x.shape == (1, 2, H, W)
    assert not torch.isnan(y).any() and float(y[0, 5, 7]) == 3.0  # 1-pixel hole filled from its ring


def test_reader_rectification_maps(tmp_path: Path) -> None:
    data, _ = _hand_sequence(tmp_path)
    calib = tmp_path / "calib"
    calib.mkdir()
    ys, xs = np.mgrid[0:H, 0:W].astype(float)
    for side in ("left", "right"):
        np.savetxt(calib / f"indoor_flying_{side}_x_map.txt", xs + 1.5)  # shift right by 1.5 px
        np.savetxt(calib / f"indoor_flying_{side}_y_map.txt", ys)
    ds = open_dataset("mvsec", data, calib_dir=str(calib), window="preceding")
    x1 = ds[1][0][0]
    assert float(x1[0, 0, 3]) == 1  # event at x = 2 lands on floor(3.5) = 3
    assert float(x1[1, 5, 7]) == 0  # x = 7 -> 8.5: outside the image, dropped


def test_histogram_polarities() -> None:
    events = np.array([[0, 0, 0.1, 1], [0, 0, 0.2, 0], [1, 1, 0.3, -1], [1, 1, 0.4, 1]])
    h = histogram(events, 2, 2)
    assert h.tolist() == [[[1, 0], [0, 1]], [[1, 0], [0, 1]]]


def test_close_small_holes_hand() -> None:
    d = np.full((5, 5), 4.0, dtype=np.float32)
    d[2, 2] = np.nan
    d[1, 2] = 2.0
    d[4, :] = 0.0  # a 5-pixel hole
    out = close_small_holes(d, 5)
    assert out[2, 2] == 2.0 and (out[4] == 0).all()
    assert (close_small_holes(d, 6)[4] == 4.0).all()
    assert close_small_holes(d, 0)[2, 2] == 0.0


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataset not found") as err:
        open_dataset("mvsec", tmp_path / "nope_data.hdf5")
    assert "nope_data.hdf5" in str(err.value) and "davis/left/events" in str(err.value)
    with pytest.raises(ConfigError, match="one \\*_data.hdf5"):
        open_dataset("mvsec", tmp_path)


def test_missing_ground_truth(tmp_path: Path) -> None:
    data, gt = _hand_sequence(tmp_path)
    gt.unlink()
    with pytest.raises(ConfigError, match="ground-truth file not found") as err:
        open_dataset("mvsec", data)
    assert str(gt) in str(err.value)


def test_wrong_format(tmp_path: Path) -> None:
    data, _ = _hand_sequence(tmp_path)
    data.write_text("not hdf5")
    with pytest.raises(ConfigError, match="not a readable HDF5 file") as err:
        open_dataset("mvsec", data)
    assert isinstance(err.value, SnnprofError) and str(data) in str(err.value)


@pytest.mark.parametrize(
    "which,key",
    [("data", "davis/right/events"), ("gt", "davis/left/depth_image_rect_ts"), ("gt", "davis/left/depth_image_rect")],
)
def test_missing_keys(tmp_path: Path, which: str, key: str) -> None:
    data, gt = _hand_sequence(tmp_path)
    target = data if which == "data" else gt
    with h5py.File(target, "a") as handle:
        del handle[key]
    with pytest.raises(ConfigError, match="missing dataset") as err:
        open_dataset("mvsec", data)
    assert err.value.key == key and err.value.path == str(target)
    if which == "data":  # monocular reads only the left camera
        assert len(open_dataset("mvsec", data, monocular=True)) == 2


def test_bad_shapes_and_options(tmp_path: Path) -> None:
    data, _ = _hand_sequence(tmp_path)
    with h5py.File(data, "a") as handle:
        del handle["davis/left/events"]
        handle.create_dataset("davis/left/events", data=np.zeros((3, 3)))
    with pytest.raises(ConfigError, match=r"\[N, 4\]"):
        open_dataset("mvsec", data)
    _hand_sequence(tmp_path)
    with pytest.raises(ConfigError, match="window"):
        open_dataset("mvsec", data, window="after")
    with pytest.raises(ConfigError, match="frames"):
        open_dataset("mvsec", data, frames=[1, 9])


# --------------------------------------------------------------------------- synthetic scenes

SMALL = SceneSpec(height=40, width=60, frames=4, boxes=2, seed=11)


def test_render_is_deterministic() -> None:
    a, b = render_scene(SMALL), render_scene(SMALL)
    c = render_scene(SceneSpec(height=40, width=60, frames=4, boxes=2, seed=12))
    assert np.array_equal(a.counts, b.counts) and np.array_equal(a.depth, b.depth, equal_nan=True)
    assert not np.array_equal(a.counts, c.counts)
    assert a.counts.shape == (4, 4, 40, 60) and a.depth.shape == (4, 40, 60)
    assert np.array_equal(a.counts, np.round(a.counts)) and a.counts.min() >= 0
    assert np.allclose(np.diff(a.timestamps), 0.05)


def test_depth_ranges_and_holes() -> None:
    scene = render_scene(SceneSpec(height=60, width=80, frames=3, boxes=3, hole_fraction=0.05, seed=2))
    valid = scene.depth[~np.isnan(scene.depth)]
    assert valid.min() >= 1.0 and valid.max() <= 10.0
    assert 0.02 < np.isnan(scene.depth).mean() < 0.06  # about hole_fraction (rounded square sides)
    assert (valid < 5.0).any()  # boxes are nearer than the background


def test_right_camera_is_disparity_shifted() -> None:
    spec = SceneSpec(height=50, width=120, frames=1, boxes=1, seed=4)
    boxes = _boxes(spec, np.random.Generator(np.random.PCG64(spec.seed)))
    box = boxes[0]
    left_i, left_d = _render_view(spec, boxes, 0, right=False)
    right_i, _ = _render_view(spec, boxes, 0, right=True)
    d = disparity(box.depth, spec.width)
    assert d == pytest.approx(BASELINE_FOCAL * 120 / 346 / box.depth)
    row = box.y0 + box.h // 2
    xs = [x for x in range(spec.width) if left_d[row, x] == box.depth]
    for x in xs:  # a box pixel at x in the left image is seen at x - d in the right image
        xr = x - d
        if np.floor(xr) >= 0 and np.ceil(xr) < spec.width and float(xr).is_integer():
            assert right_i[row, int(xr)] == left_i[row, x]
    # the box's left edge moves by round(d) pixels (within one pixel of discretisation)
    left_edge = min(xs)
    right_xs = [x for x in range(spec.width) if right_i[row, x] >= 0.5]
    assert abs((left_edge - min(right_xs)) - d) <= 1.0


def test_written_files_round_trip(tmp_path: Path) -> None:
    scene = render_scene(SMALL)
    data, gt = write_mvsec(scene, tmp_path, "synthetic1")
    with h5py.File(data) as handle:
        events = handle["davis/left/events"][()]
        assert events.dtype == np.float64 and events.shape[1] == 4
        assert set(np.unique(events[:, 3])) <= {-1.0, 1.0} and np.all(np.diff(events[:, 2]) >= 0)
    with h5py.File(gt) as handle:
        assert handle["davis/left/depth_image_rect"].dtype == np.float32
    exact = open_dataset("mvsec", data, window="preceding")
    seed = open_dataset("mvsec", data)
    for k in range(4):
        assert np.array_equal(exact.counts(k), scene.counts[k])
        diff = scene.counts[k] - seed.counts(k)
        assert diff.sum() == (2 if k == 0 else 0)  # the seed drops each camera's anchor event
    assert np.array_equal(exact.depth, scene.depth, equal_nan=True)
    again = tmp_path / "again"
    write_mvsec(render_scene(SMALL), again, "synthetic1")
    with h5py.File(data) as a, h5py.File(again / "synthetic1_data.hdf5") as b:
        assert np.array_equal(a["davis/right/events"][()], b["davis/right/events"][()])


def test_counts_to_events_windows() -> None:
    counts = np.zeros((2, 2, 3, 3))
    counts[0, 0, 1, 1] = 2
    counts[1, 1, 0, 2] = 3
    ts = np.array([5.0, 5.05])
    ev = counts_to_events(counts, ts, 0.05, seed=0)
    assert len(ev) == 5 and ev[0, 2] == pytest.approx(5.0 - 0.05 + 1e-3)
    assert np.all(ev[:2, 2] < 5.0) and np.all((ev[2:, 2] > 5.0) & (ev[2:, 2] < 5.05))
    assert ev[2:, 3].tolist() == [-1.0] * 3 and ev[:2, 3].tolist() == [1.0, 1.0]


def test_spec_validation() -> None:
    with pytest.raises(ValueError):
        SceneSpec(height=4)
    with pytest.raises(ValueError):
        SceneSpec(box_depth=(0.0, 1.0))
