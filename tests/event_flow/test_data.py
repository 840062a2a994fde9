"""event_flow h5 reader and the synthetic translating-texture generator, on files the tests write."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from snnprof.data import get_reader, list_readers
from snnprof.data.event_flow_h5 import (
    EventFlowDataError,
    Flips,
    H5Source,
    PassReader,
    event_flow_h5,
)
from snnprof.data.synthetic_flow import generate_dataset, generate_sequence, write_event_flow_h5

H, W = 4, 5


def _write(path: Path, xs, ys, ts, ps, *, t0: float = 10.0, flows: dict | None = None, drop: str = "") -> Path:
    with h5py.File(path, "w") as f:
        for key, data in (("xs", xs), ("ys", ys), ("ts", ts), ("ps", ps)):
            if key != drop:
                f.create_dataset(f"events/{key}", data=np.asarray(data))
        f.attrs["t0"] = t0
        f.attrs["sensor_resolution"] = [H, W]
        for group, maps in (flows or {}).items():
            for name, (stamp, flow) in maps.items():
                f.create_dataset(f"{group}/{name}", data=flow).attrs["timestamp"] = stamp
    return path


def _events(n: int = 24) -> tuple[np.ndarray, ...]:
    i = np.arange(n)
    return (i % W).astype(np.uint16), ((i // W) % H).astype(np.uint16), 10.0 + 0.1 * i, (i % 3 == 0).astype(np.uint8)


def test_reader_is_registered():
    assert "event_flow_h5" in list_readers()
    assert get_reader("event_flow_h5") is event_flow_h5


def test_events_mode_encodings_match_a_hand_count(tmp_path):
    xs, ys, ts, ps = _events()
    reader = PassReader(H5Source(_write(tmp_path / "a.h5", xs, ys, ts, ps)), "events", 12)
    assert reader.num_passes == 2 and reader.resolution == (H, W)
    p = reader.read(1)  # events 12..23
    cnt = np.zeros((2, H, W))
    for i in range(12, 24):
        cnt[0 if ps[i] else 1, ys[i], xs[i]] += 1
    assert np.array_equal(p.inputs.numpy(), cnt)
    ts_norm = (ts[12:24] - ts[12]) / (ts[23] - ts[12])
    assert torch.allclose(p.event_list[:, 0], torch.tensor(ts_norm, dtype=torch.float32))
    assert p.event_list[:, 1:3].tolist() == [[float(y), float(x)] for y, x in zip(ys[12:24], xs[12:24], strict=True)]
    assert p.event_list[:, 3].tolist() == [1.0 if v else -1.0 for v in ps[12:24]]
    assert p.pol_mask.sum(1).eq(1).all() and p.event_mask.sum() == float((cnt.sum(0) > 0).sum())
    assert math.isclose(p.dt_input, ts[23] - ts[12], rel_tol=1e-9) and p.gtflow is None


def test_voxel_encoding_is_bilinear_in_time(tmp_path):
    xs, ys, ts, ps = _events()
    p = PassReader(H5Source(_write(tmp_path / "a.h5", xs, ys, ts, ps)), "events", 12, encoding="voxel",
                   num_bins=3).read(0)
    vox = np.zeros((3, H, W))
    for i in range(12):
        t = (ts[i] - ts[0]) / (ts[11] - ts[0]) * 2
        for b in range(3):
            vox[b, ys[i], xs[i]] += (1 if ps[i] else -1) * max(0.0, 1 - abs(t - b))
    assert np.allclose(p.inputs.numpy(), vox, atol=1e-6)


def test_small_passes_are_emptied_and_flips_apply(tmp_path):
    xs, ys, ts, ps = _events()
    src = H5Source(_write(tmp_path / "a.h5", xs, ys, ts, ps))
    assert PassReader(src, "events", 8).read(0).event_list.shape == (0, 4)  # <= 10 events: empty (seed)
    plain = PassReader(src, "events", 12).read(0)
    flipped = PassReader(src, "events", 12).read(0, Flips(horizontal=True, vertical=True, polarity=True))
    assert torch.equal(flipped.inputs, plain.inputs.flip(-1).flip(-2).flip(0))


def test_ground_truth_windows(tmp_path):
    xs, ys, ts, ps = _events(40)  # ts 10.0 .. 13.9
    flow = {f"m{k}": (10.0 + k, np.full((2, H, W), [[[k]], [[-k]]], dtype=np.float32)) for k in range(4)}
    path = _write(tmp_path / "g.h5", xs, ys, ts, ps, flows={"flow_dt1": flow})
    reader = PassReader(H5Source(path), "gtflow_dt1", 1.0)
    assert reader.num_passes == 3  # maps at 10, 11, 12, 13: passes end at maps 1, 2, 3 (seed: ceil(row + w) < 4)
    p = reader.read(1)  # [11, 12): 10 events -> emptied (seed)
    assert p.event_list.shape[0] == 0 and p.dt_gt == pytest.approx(1.0) and p.gtflow[0, 0, 0].item() == 2.0
    half = PassReader(H5Source(path), "gtflow_dt1", 2.0).read(0)  # [10, 12): 20 events, GT map 2
    assert half.event_list.shape[0] == 20 and half.gtflow[0, 0, 0].item() == 2.0 and half.dt_gt == pytest.approx(1.0)
    quarter = PassReader(H5Source(path), "gtflow_dt1", 0.5)
    assert quarter.num_passes == 6
    q = quarter.read(2)  # row 1.0: first half of [11, 12) by event index (5 events: emptied), GT map 2
    assert q.gtflow[1, 0, 0].item() == -2.0
    flipped = PassReader(H5Source(path), "gtflow_dt1", 2.0).read(0, Flips(horizontal=True))
    assert flipped.gtflow[0, 0, 0].item() == -2.0 and flipped.gtflow[1, 0, 0].item() == -2.0


def test_synthetic_generator_is_deterministic_and_consistent(tmp_path):
    a = generate_sequence(3, height=32, width=40, num_events=5000, events_per_gt=500)
    b = generate_sequence(3, height=32, width=40, num_events=5000, events_per_gt=500)
    c = generate_sequence(4, height=32, width=40, num_events=5000, events_per_gt=500)
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("xs", "ys", "ts", "ps"))
    assert not np.array_equal(a.xs, c.xs)
    assert a.num_events == 5000 and np.all(np.diff(a.ts) >= 0) and a.xs.max() < 40 and a.ys.max() < 32
    assert set(np.unique(a.ps)) == {0, 1}
    u, v = a.velocity
    _, _, first = a.flows["flow_dt1"][1]
    assert np.allclose(first[0], u * a.gt_dt) and np.allclose(first[1], v * a.gt_dt)
    _, _, dt4 = a.flows["flow_dt4"][1]
    assert np.allclose(dt4[0], 4 * u * a.gt_dt, rtol=1e-5)
    counts = np.diff(np.searchsorted(a.ts, a.gt_timestamps))
    assert abs(counts.mean() - 500) < 50
    path = write_event_flow_h5(tmp_path / "s.h5", a)
    with h5py.File(path) as f:
        assert np.array_equal(f["events/ts"][:], a.ts) and f.attrs["t0"] == a.t0
        assert list(f.attrs["sensor_resolution"]) == [32, 40] and len(f["flow_dt1"]) == len(a.gt_timestamps)


def test_dataset_items_and_default_collate(tmp_path):
    generate_dataset(tmp_path / "data", 2, seed=0, height=32, width=32, num_events=6000)
    ds = event_flow_h5(tmp_path / "data", passes=3)
    assert len(ds) == 4  # 6 passes of 1000 events per file, 2 clips each
    inputs, target = ds[0]
    assert inputs.shape == (3, 2, 32, 32) and inputs.sum(dim=(1, 2, 3)).eq(1000).all()
    assert target["event_list"].shape == (3, 1000, 4) and target["gtflow"].shape == (3, 2, 32, 32)
    batch_inputs, batch_target = next(iter(DataLoader(ds, batch_size=2)))
    assert batch_inputs.shape == (2, 3, 2, 32, 32) and batch_target["pol_mask"].shape == (2, 3, 1000, 2)
    gt = event_flow_h5(tmp_path / "data" / "seq_000.h5", mode="gtflow_dt1", window=1.0, passes=2)
    assert gt[0][1]["dt_gt"].gt(0).all()


def test_bad_inputs_name_the_path_and_the_layout(tmp_path):
    with pytest.raises(EventFlowDataError, match="not found"):
        event_flow_h5(tmp_path / "missing.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EventFlowDataError, match="no .h5 files"):
        event_flow_h5(tmp_path / "empty")
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(EventFlowDataError, match=r"junk\.h5.*cannot read as HDF5"):
        event_flow_h5(junk)
    xs, ys, ts, ps = _events()
    no_ps = _write(tmp_path / "nops.h5", xs, ys, ts, ps, drop="ps")
    with pytest.raises(EventFlowDataError, match=r"nops\.h5: missing events/ps; expected the event_flow h5 layout"):
        event_flow_h5(no_ps)
    ok = _write(tmp_path / "ok.h5", xs, ys, ts, ps)
    with pytest.raises(EventFlowDataError, match="no 'flow_dt1' ground-truth"):
        event_flow_h5(ok, mode="gtflow_dt1", window=1.0)
    with pytest.raises(EventFlowDataError, match="too few events"):
        event_flow_h5(ok, window=12, passes=5)
    with pytest.raises(EventFlowDataError, match="mode must be"):
        event_flow_h5(ok, mode="frames")
