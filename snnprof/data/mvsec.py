"""MVSEC hdf5 reader (registered as ``mvsec``): stereo event-count histograms and rectified depth.

Reads one MVSEC sequence (``docs/seed_models.md`` section 3.5), e.g. ``indoor_flying1``:

* ``<name>_data.hdf5``: ``davis/left/events`` and ``davis/right/events``, float64 ``[N, 4]`` rows
  ``(x, y, t [s], p)`` with ``p = +1`` ON (anything else counts as OFF), sorted by time;
* ``<name>_gt.hdf5``: ``davis/left/depth_image_rect`` float32 ``[K, H, W]`` in metres (NaN or 0 =
  no ground truth) and ``davis/left/depth_image_rect_ts`` ``[K]`` in seconds (20 Hz).

Sample ``k`` is ``(inputs, target)``: ``inputs [1, C, H, W]`` float32 event counts of the 50 ms
window of depth map ``k`` (C = 4: left ON, left OFF, right ON, right OFF; C = 2 with
``monocular=True``) and ``target [1, H, W]`` float32 depth in metres with NaN holes.

Windows (``window=``):

* ``"seed"`` (default, StereoSpike's ``mvsecCumulateSpikesIntoFrames``): keep events with
  ``ts[0] - dt < t < ts[-1]``, anchor at the first kept event ``t1`` and give window ``k`` the events
  with ``t1 + k dt < t < t1 + (k + 1) dt`` (open interval, so the anchor event itself is dropped);
* ``"preceding"``: events with ``ts[k] - dt <= t < ts[k]`` (the 50 ms before each depth map).

Optional preprocessing as in the seed: ``frames = [start, end)`` crops take-off/landing,
``calib_dir`` rectifies events with ``*_{left,right}_{x,y}_map.txt`` maps (dropping those that land
outside the image), and ``close_holes = A`` fills ground-truth holes smaller than ``A`` pixels with
the lowest valid depth around them (an approximation of the seed's ``area_closing(A)``, which it
ran with ``A = 24``; 0 disables). Zeros in the ground truth then become NaN.

Bad input raises :class:`~snnprof.errors.ConfigError` naming the file, the missing key and what
was expected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from snnprof.data import register_reader
from snnprof.errors import ConfigError

__all__ = ["DATA_KEYS", "GT_KEYS", "WINDOWS", "MVSECDataset", "close_small_holes", "histogram", "mvsec"]

logger = logging.getLogger(__name__)

#: Keys read from ``<name>_data.hdf5`` and ``<name>_gt.hdf5``.
DATA_KEYS: tuple[str, ...] = ("davis/left/events", "davis/right/events")
GT_KEYS: tuple[str, ...] = ("davis/left/depth_image_rect", "davis/left/depth_image_rect_ts")
WINDOWS: tuple[str, ...] = ("seed", "preceding")
_LAYOUT = (
    "an MVSEC sequence: <name>_data.hdf5 (davis/left/events, davis/right/events: float64 [N, 4] x, y, t, p) "
    "with <name>_gt.hdf5 beside it (davis/left/depth_image_rect [K, H, W], davis/left/depth_image_rect_ts [K])"
)


@dataclass(frozen=True)
class _Files:
    data: Path
    gt: Path


def _resolve(path: Path, gt_path: str | Path | None) -> _Files:
    """Find the data and ground-truth files of ``path`` (a ``*_data.hdf5`` file or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*_data.hdf5"))
        if len(found) != 1:
            what = "none" if not found else ", ".join(p.name for p in found)
            raise ConfigError(str(path), "", f"expected a folder holding one *_data.hdf5 (found {what}); {_LAYOUT}")
        path = found[0]
    if not path.is_file():
        raise ConfigError(str(path), "", f"dataset not found; expected {_LAYOUT}")
    if gt_path is not None:
        gt = Path(gt_path)
    elif path.name.endswith("_data.hdf5"):
        gt = path.with_name(path.name[: -len("_data.hdf5")] + "_gt.hdf5")
    else:
        raise ConfigError(str(path), "", f"cannot find the ground truth (not *_data.hdf5, no gt_path); {_LAYOUT}")
    if not gt.is_file():
        raise ConfigError(str(gt), "", f"ground-truth file not found (needed for {path.name}); expected {_LAYOUT}")
    return _Files(path, gt)


def _read(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read ``keys`` of an hdf5 file into memory, with clear errors for bad files and missing keys."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ConfigError(str(path), "", f"not a readable HDF5 file ({err}); expected {_LAYOUT}") from None
    with handle:
        out = {}
        for key in keys:
            if key not in handle or not isinstance(handle[key], h5py.Dataset):
                present = sorted(_list_datasets(handle))
                raise ConfigError(
                    str(path), key, f"missing dataset; found {present or 'no datasets'}; expected {_LAYOUT}"
                )
            out[key] = np.asarray(handle[key][()])
    return out


def _list_datasets(handle: Any) -> list[str]:
    import h5py

    names: list[str] = []
    handle.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names[:10]


def _check_events(events: np.ndarray, path: Path, key: str) -> np.ndarray:
    if events.ndim != 2 or events.shape[1] != 4:
        raise ConfigError(str(path), key, f"expected events [N, 4] (x, y, t, p), got shape {list(events.shape)}")
    events = events.astype(np.float64, copy=False)
    if events.shape[0] > 1 and np.any(np.diff(events[:, 2]) < 0):
        events = events[np.argsort(events[:, 2], kind="stable")]
    return events


def _check_gt(depth: np.ndarray, ts: np.ndarray, path: Path) -> None:
    if depth.ndim != 3:
        raise ConfigError(str(path), GT_KEYS[0], f"expected depth [K, H, W], got shape {list(depth.shape)}")
    if ts.ndim != 1 or ts.shape[0] != depth.shape[0]:
        raise ConfigError(str(path), GT_KEYS[1], f"expected [K] = [{depth.shape[0]}] timestamps, got {list(ts.shape)}")


def _load_map(folder: Path, side: str, axis: str) -> np.ndarray:
    found = sorted(folder.glob(f"*_{side}_{axis}_map.txt"))
    if not found:
        raise ConfigError(str(folder), f"*_{side}_{axis}_map.txt", "rectification map not found")
    return np.loadtxt(found[0])


def _rectify(events: np.ndarray, x_map: np.ndarray, y_map: np.ndarray) -> np.ndarray:
    """Map raw pixel coordinates through the calibration maps (as the seed's ``mvsecRectifyEvents``)."""
    x = np.clip(events[:, 0].astype(np.int64), 0, x_map.shape[1] - 1)
    y = np.clip(events[:, 1].astype(np.int64), 0, x_map.shape[0] - 1)
    out = events.copy()
    out[:, 0], out[:, 1] = x_map[y, x], y_map[y, x]
    return out


def _inside(events: np.ndarray, height: int, width: int) -> np.ndarray:
    """Events whose (truncated) pixel lies inside the image."""
    x, y = np.floor(events[:, 0]), np.floor(events[:, 1])
    return events[(x >= 0) & (x < width) & (y >= 0) & (y < height)]


def histogram(events: np.ndarray, height: int, width: int) -> np.ndarray:
    """Event counts ``[2, H, W]`` float32 (channel 0: ``p == 1`` ON, channel 1: other polarities OFF).

    Args:
        events: ``[N, 4]`` rows ``(x, y, t, p)`` inside the image.
        height: H, pixels.
        width: W, pixels.
    """
    x = events[:, 0].astype(np.int64)
    y = events[:, 1].astype(np.int64)
    channel = (events[:, 3] != 1).astype(np.int64)
    flat = np.bincount(channel * height * width + y * width + x, minlength=2 * height * width)
    return flat.reshape(2, height, width).astype(np.float32)


def close_small_holes(depth: np.ndarray, area: int) -> np.ndarray:
    """Fill connected invalid regions (NaN or 0) smaller than ``area`` pixels with their lowest valid neighbour.

    Args:
        depth: ``[H, W]`` depth map, metres.
        area: holes of fewer pixels are filled (0: nothing is filled).

    Returns:
        A copy with small holes filled; larger holes keep their NaN/0.
    """
    from scipy import ndimage

    out = np.nan_to_num(depth, nan=0.0).astype(np.float32)
    if area <= 0:
        return out
    labels, count = ndimage.label(out == 0, structure=np.ones((3, 3)))
    if count == 0:
        return out
    sizes = np.bincount(labels.ravel())
    small = np.flatnonzero(sizes < area)
    small = small[small > 0]
    if small.size == 0:
        return out
    small_labels = np.where(np.isin(labels, small), labels, 0)
    ring = ndimage.grey_dilation(small_labels, size=(3, 3)) * (out > 0)
    fill = ndimage.minimum(out, labels=ring, index=small)
    lookup = np.zeros(sizes.size, dtype=np.float32)
    lookup[small] = np.nan_to_num(np.asarray(fill, dtype=np.float32), nan=0.0)
    holes = small_labels > 0
    out[holes] = lookup[small_labels[holes]]
    return out


class MVSECDataset(Dataset):
    """An MVSEC sequence as ``(inputs [1, C, H, W], target [1, H, W])`` samples (see the module doc).

    Attributes:
        files: the data and ground-truth paths.
        depth: ground truth ``[K, H, W]`` float32, metres, NaN holes.
        timestamps: ``[K]`` depth-map timestamps, seconds.
        monocular: only the left camera (C = 2).
        window: ``seed`` or ``preceding``.
        dt: window length, seconds.
    """

    def __init__(
        self,
        files: _Files,
        depth: np.ndarray,
        timestamps: np.ndarray,
        events: tuple[np.ndarray, ...],
        *,
        window: str,
        dt: float,
    ) -> None:
        self.files = files
        self.depth = depth
        self.timestamps = timestamps
        self.monocular = len(events) == 1
        self.window = window
        self.dt = float(dt)
        self._events = events
        self._bounds = [self._window_bounds(ev) for ev in events]

    @property
    def height(self) -> int:
        """H, pixels."""
        return int(self.depth.shape[1])

    @property
    def width(self) -> int:
        """W, pixels."""
        return int(self.depth.shape[2])

    def _window_bounds(self, events: np.ndarray) -> np.ndarray:
        """``[K, 2]`` index ranges of each window in the time-sorted ``events``."""
        t, ts, k = events[:, 2], self.timestamps, len(self.timestamps)
        if self.window == "preceding":
            lo = np.searchsorted(t, ts - self.dt, side="left")
            hi = np.searchsorted(t, ts, side="left")
            return np.stack([lo, hi], axis=1)
        if len(t) == 0:
            return np.zeros((k, 2), dtype=np.int64)
        first = t[0]
        rel_start = np.arange(k, dtype=np.float64) * self.dt
        lo = np.searchsorted(t - first, rel_start, side="right")
        hi = np.searchsorted(t - first, rel_start + self.dt, side="left")
        return np.stack([lo, np.maximum(lo, hi)], axis=1)

    def counts(self, index: int) -> np.ndarray:
        """Event counts ``[C, H, W]`` of window ``index``."""
        maps = [
            histogram(ev[b[index, 0] : b[index, 1]], self.height, self.width)
            for ev, b in zip(self._events, self._bounds, strict=True)
        ]
        return np.concatenate(maps, axis=0)

    def __len__(self) -> int:
        """Number of depth maps (samples)."""
        return int(self.depth.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs [1, C, H, W], target [1, H, W])`` of depth map ``index``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index %= len(self)
        inputs = torch.from_numpy(self.counts(index)).unsqueeze(0)
        target = torch.from_numpy(np.ascontiguousarray(self.depth[index])).unsqueeze(0)
        return inputs, target


def _crop(depth: np.ndarray, ts: np.ndarray, frames: Any, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if frames is None:
        return depth, ts
    if not (isinstance(frames, list | tuple) and len(frames) == 2 and all(isinstance(f, int) for f in frames)):
        raise ConfigError(str(path), "frames", f"expected [start, end) depth-map indices, got {frames!r}")
    start, end = frames
    if not 0 <= start < end <= len(ts):
        raise ConfigError(str(path), "frames", f"expected 0 <= start < end <= {len(ts)}, got {list(frames)}")
    return depth[start:end], ts[start:end]


def _prepare_events(events: np.ndarray, ts: np.ndarray, dt: float, shape: tuple[int, int], maps: Any) -> np.ndarray:
    """Keep the events of the cropped span, rectify them if maps are given, drop those outside the image."""
    keep = events[(events[:, 2] > ts[0] - dt) & (events[:, 2] < ts[-1])]
    if maps is not None:
        keep = _rectify(keep, *maps)
    return _inside(keep, *shape)


@register_reader("mvsec")
def mvsec(
    path: Path,
    *,
    gt_path: str | None = None,
    monocular: bool = False,
    frames: list[int] | None = None,
    window: str = "seed",
    window_s: float = 0.05,
    calib_dir: str | None = None,
    close_holes: int = 0,
) -> MVSECDataset:
    """Open an MVSEC sequence (see the module docstring for the layout and options).

    Args:
        path: ``<name>_data.hdf5`` (its ``<name>_gt.hdf5`` beside it) or a folder holding one pair.
        gt_path: explicit ground-truth file.
        monocular: left camera only (2 input channels).
        frames: ``[start, end)`` depth maps to keep (the seed crops take-off and landing).
        window: ``seed`` (first-event-aligned, the seed's code) or ``preceding`` (``[ts - dt, ts)``).
        window_s: window length, seconds.
        calib_dir: folder with ``*_{left,right}_{x,y}_map.txt`` rectification maps (none: events are
            taken as already rectified).
        close_holes: fill ground-truth holes smaller than this many pixels (0: off; the seed used 24).

    Raises:
        ConfigError: missing files, not HDF5, missing keys, wrong shapes or bad options.
    """
    files = _resolve(path, gt_path)
    if window not in WINDOWS:
        raise ConfigError(str(files.data), "window", f"expected one of {WINDOWS}, got {window!r}")
    if float(window_s) <= 0:
        raise ConfigError(str(files.data), "window_s", f"expected a positive window length in seconds, got {window_s}")
    gt = _read(files.gt, GT_KEYS)
    depth, ts = gt[GT_KEYS[0]], gt[GT_KEYS[1]].astype(np.float64)
    _check_gt(depth, ts, files.gt)
    depth, ts = _crop(depth, ts, frames, files.gt)
    if len(ts) == 0:
        raise ConfigError(str(files.gt), GT_KEYS[0], "expected at least one depth map")
    keys = DATA_KEYS[:1] if monocular else DATA_KEYS
    raw = _read(files.data, keys)
    shape = (int(depth.shape[1]), int(depth.shape[2]))
    events = []
    for key, side in zip(keys, ("left", "right"), strict=False):
        maps = None
        if calib_dir is not None:
            maps = (_load_map(Path(calib_dir), side, "x"), _load_map(Path(calib_dir), side, "y"))
        events.append(_prepare_events(_check_events(raw[key], files.data, key), ts, window_s, shape, maps))
    depth = np.stack([close_small_holes(d, int(close_holes)) for d in depth]).astype(np.float32)
    depth[depth == 0] = np.nan
    logger.debug("mvsec %s: %d depth maps, %s events", files.data, len(ts), [len(e) for e in events])
    return MVSECDataset(files, depth, ts, tuple(events), window=window, dt=window_s)
