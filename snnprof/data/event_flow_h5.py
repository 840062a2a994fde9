"""Reader of the event_flow h5 layout (UZH-FPV, MVSEC, ECD, HQF as preprocessed by tudelft/event_flow).

Layout (``docs/seed_models.md`` section 4.5): ``events/xs``, ``events/ys``, ``events/ts`` (seconds),
``events/ps`` (1/0 or +1/-1 polarity) and the root attribute ``t0``; optional groups ``flow_dt1`` and
``flow_dt4`` of ``[2, H, W]`` (x, y) ground-truth flow maps (pixels) with a ``timestamp`` attribute.

Passes (one network forward each) follow the seed's ``H5Loader``:

* ``mode = "events"``: consecutive windows of ``window`` events (the training mode, 1000 events);
* ``mode = "gtflow_dt1"`` / ``"gtflow_dt4"``: windows of ``window`` ground-truth intervals (1, or a
  fraction such as 0.25 that splits an interval by event index); the pass carries the GT map that
  ends its interval and ``dt_gt``.

Each pass becomes the seed's input representation: timestamps normalised to [0, 1] within the
pass, polarity mapped to +-1, then ``cnt`` (``[2, H, W]`` per-polarity event counts, both positive),
or ``voxel`` (``[num_bins, H, W]``, signed, bilinear in time), the event mask ``[1, H, W]``, the
event list ``[N, 4]`` = (ts, y, x, p) and its polarity mask ``[N, 2]``. Passes with 10 events or
fewer are emptied, as in the seed. Events outside the resolution are dropped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from snnprof.data import register_reader
from snnprof.errors import SnnprofError

__all__ = [
    "MODES",
    "ArraySource",
    "EventFlowClips",
    "EventFlowDataError",
    "EventSource",
    "Flips",
    "H5Source",
    "PassData",
    "PassReader",
    "collate_passes",
    "encode_events",
    "event_flow_h5",
    "open_sources",
]

logger = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("events", "gtflow_dt1", "gtflow_dt4")
_EVENT_KEYS: tuple[str, ...] = ("events/xs", "events/ys", "events/ts", "events/ps")
_MIN_EVENTS = 10  # passes with this many events or fewer are emptied (seed behaviour)
_LAYOUT = "the event_flow h5 layout (events/xs, events/ys, events/ts, events/ps; flow_dt1/flow_dt4 groups)"


class EventFlowDataError(SnnprofError):
    """A dataset path or file does not fit the event_flow h5 layout (message names path and expectation)."""


class EventSource(Protocol):
    """One event sequence: slices of events and its ground-truth flow maps."""

    name: str

    @property
    def num_events(self) -> int:
        """Events in the sequence."""
        ...

    @property
    def resolution(self) -> tuple[int, int] | None:
        """Sensor ``(H, W)`` if the source knows it."""
        ...

    def read(self, i0: int, i1: int) -> tuple[np.ndarray, ...]:
        """Events ``[i0, i1)`` as ``(xs, ys, ts - t0, ps)``."""
        ...

    def timestamps(self) -> np.ndarray:
        """All absolute event times (for ground-truth window lookup)."""
        ...

    def flow_index(self, group: str) -> list[tuple[str, float]]:
        """``(name, absolute timestamp)`` of the maps of ``group``, sorted by time."""
        ...

    def flow_map(self, group: str, name: str) -> np.ndarray:
        """One ``[2, H, W]`` map."""
        ...


@dataclass
class ArraySource:
    """An in-memory sequence (e.g. a synthetic one) with the same interface as :class:`H5Source`."""

    name: str
    xs: np.ndarray
    ys: np.ndarray
    ts: np.ndarray
    ps: np.ndarray
    t0: float = 0.0
    flows: dict[str, list[tuple[str, float, np.ndarray]]] | None = None
    sensor: tuple[int, int] | None = None

    @classmethod
    def from_sequence(cls, seq: Any, name: str = "synthetic") -> ArraySource:
        """Wrap a :class:`~snnprof.data.synthetic_flow.FlowSequence`."""
        return cls(name, seq.xs, seq.ys, seq.ts, seq.ps, seq.t0, seq.flows, tuple(seq.resolution))

    @property
    def num_events(self) -> int:  # noqa: D102
        return int(self.xs.shape[0])

    @property
    def resolution(self) -> tuple[int, int] | None:  # noqa: D102
        return self.sensor

    def read(self, i0: int, i1: int) -> tuple[np.ndarray, ...]:  # noqa: D102
        return self.xs[i0:i1], self.ys[i0:i1], self.ts[i0:i1] - self.t0, self.ps[i0:i1]

    def timestamps(self) -> np.ndarray:  # noqa: D102
        return self.ts

    def flow_index(self, group: str) -> list[tuple[str, float]]:  # noqa: D102
        maps = (self.flows or {}).get(group)
        if not maps:
            raise EventFlowDataError(f"{self.name}: no '{group}' ground-truth flow maps; expected {_LAYOUT}")
        return sorted(((n, float(t)) for n, t, _ in maps), key=lambda item: item[1])

    def flow_map(self, group: str, name: str) -> np.ndarray:  # noqa: D102
        return next(m for n, _, m in (self.flows or {})[group] if n == name)


class H5Source:
    """A sequence in an event_flow ``.h5`` file; the layout is checked when the source is created.

    Args:
        path: the ``.h5`` file.

    Raises:
        EventFlowDataError: not an HDF5 file, or a required dataset/attribute is missing.
    """

    def __init__(self, path: Path) -> None:
        import h5py

        self.path = Path(path)
        self.name = str(self.path)
        self._ts: np.ndarray | None = None
        try:
            with h5py.File(self.path, "r") as f:
                missing = [k for k in _EVENT_KEYS if k not in f]
                if missing:
                    raise EventFlowDataError(f"{self.path}: missing {', '.join(missing)}; expected {_LAYOUT}")
                self._num = int(f["events/xs"].shape[0])
                if any(int(f[k].shape[0]) != self._num for k in _EVENT_KEYS):
                    raise EventFlowDataError(f"{self.path}: events/xs, ys, ts, ps differ in length; expected {_LAYOUT}")
                self.t0 = float(f.attrs["t0"]) if "t0" in f.attrs else (float(f["events/ts"][0]) if self._num else 0.0)
                self._sensor = self._sensor_attr(f)
        except OSError as err:
            raise EventFlowDataError(f"{self.path}: cannot read as HDF5 ({err}); expected {_LAYOUT}") from None

    @staticmethod
    def _sensor_attr(f: Any) -> tuple[int, int] | None:
        value = f.attrs.get("sensor_resolution")
        if value is None or len(value) != 2:
            return None
        return int(value[0]), int(value[1])

    @property
    def num_events(self) -> int:  # noqa: D102
        return self._num

    @property
    def resolution(self) -> tuple[int, int] | None:  # noqa: D102
        return self._sensor

    def _file(self) -> Any:
        import h5py

        return h5py.File(self.path, "r")

    def read(self, i0: int, i1: int) -> tuple[np.ndarray, ...]:  # noqa: D102
        with self._file() as f:
            xs, ys = f["events/xs"][i0:i1], f["events/ys"][i0:i1]
            ts, ps = f["events/ts"][i0:i1], f["events/ps"][i0:i1]
        return xs, ys, ts.astype(np.float64) - self.t0, ps

    def timestamps(self) -> np.ndarray:  # noqa: D102
        if self._ts is None:
            with self._file() as f:
                self._ts = f["events/ts"][:].astype(np.float64)
        return self._ts

    def flow_index(self, group: str) -> list[tuple[str, float]]:  # noqa: D102
        with self._file() as f:
            if group not in f or not len(f[group]):
                raise EventFlowDataError(f"{self.path}: no '{group}' ground-truth flow maps; expected {_LAYOUT}")
            items = [(n, d.attrs.get("timestamp")) for n, d in f[group].items()]
        if any(t is None for _, t in items):
            raise EventFlowDataError(f"{self.path}: a '{group}' map lacks the 'timestamp' attribute")
        return sorted(((n, float(t)) for n, t in items), key=lambda item: item[1])

    def flow_map(self, group: str, name: str) -> np.ndarray:  # noqa: D102
        with self._file() as f:
            return np.asarray(f[group][name][:], dtype=np.float32)


@dataclass(frozen=True)
class Flips:
    """Augmentation flags of a sequence (seed: horizontal, vertical and polarity flips)."""

    horizontal: bool = False
    vertical: bool = False
    polarity: bool = False


@dataclass
class PassData:
    """One pass in the seed's representations (tensors on the CPU, float32).

    Attributes:
        inputs: ``cnt`` ``[2, H, W]`` or ``voxel`` ``[num_bins, H, W]``.
        event_list: ``[N, 4]`` rows (ts in [0, 1], y, x, p in +-1).
        pol_mask: ``[N, 2]`` (positive, negative) indicators.
        event_mask: ``[1, H, W]``, 1 where the pass has events.
        gtflow: ``[2, H, W]`` ground truth (pixels over ``dt_gt``), or ``None``.
        dt_input: time spanned by the pass's events, seconds.
        dt_gt: ground-truth interval, seconds (0 without ground truth).
    """

    inputs: torch.Tensor
    event_list: torch.Tensor
    pol_mask: torch.Tensor
    event_mask: torch.Tensor
    gtflow: torch.Tensor | None
    dt_input: float
    dt_gt: float


def _image(xs: torch.Tensor, ys: torch.Tensor, values: torch.Tensor, hw: tuple[int, int], acc: bool) -> torch.Tensor:
    img = torch.zeros(hw, dtype=torch.float32)
    return img.index_put_((ys.long(), xs.long()), values, accumulate=acc)


def encode_events(
    xs: torch.Tensor, ys: torch.Tensor, ts: torch.Tensor, ps: torch.Tensor, resolution: tuple[int, int], *,
    encoding: str, num_bins: int,
) -> torch.Tensor:
    """The network input of one pass.

    Args:
        xs: columns (float32).
        ys: rows (float32).
        ts: timestamps normalised to [0, 1].
        ps: polarities in +-1.
        resolution: ``(H, W)``.
        encoding: ``"cnt"`` (per-polarity counts) or ``"voxel"`` (signed, bilinear in time).
        num_bins: voxel bins (2 for ``cnt``).
    """
    if encoding == "cnt":
        pos, neg = (ps > 0).float(), (ps < 0).float()
        return torch.stack([_image(xs, ys, pos, resolution, True), _image(xs, ys, neg, resolution, True)])
    scaled = ts * (num_bins - 1)
    bins = [_image(xs, ys, ps * (1 - (scaled - b).abs()).clamp_min(0), resolution, True) for b in range(num_bins)]
    return torch.stack(bins)


class PassReader:
    """Cuts one sequence into passes and encodes them.

    Args:
        source: the sequence.
        mode: ``"events"``, ``"gtflow_dt1"`` or ``"gtflow_dt4"``.
        window: events per pass (``events``) or ground-truth intervals per pass.
        encoding: ``"cnt"`` or ``"voxel"``.
        num_bins: input channels.
        resolution: ``(H, W)``; default: the source's ``sensor_resolution`` or its flow-map shape.
    """

    def __init__(
        self, source: EventSource, mode: str = "events", window: float = 1000, *, encoding: str = "cnt",
        num_bins: int = 2, resolution: tuple[int, int] | None = None,
    ) -> None:
        _check_options(mode, window, encoding, num_bins, source.name)
        self.source, self.mode, self.window = source, mode, float(window)
        self.encoding, self.num_bins = encoding, int(num_bins)
        self._group = "flow_dt1" if mode == "gtflow_dt1" else "flow_dt4"
        self._gt = source.flow_index(self._group) if mode != "events" else []
        self.resolution = resolution or source.resolution or self._gt_shape()
        self.num_passes = self._count_passes()

    def _gt_shape(self) -> tuple[int, int]:
        if not self._gt:
            raise EventFlowDataError(f"{self.source.name}: resolution unknown (no 'sensor_resolution' attribute); "
                                     "pass resolution = [H, W]")
        shape = self.source.flow_map(self._group, self._gt[0][0]).shape
        return int(shape[-2]), int(shape[-1])

    def _count_passes(self) -> int:
        if self.mode == "events":
            return self.source.num_events // int(self.window)
        n = 0
        while math.ceil((n + 1) * self.window) < len(self._gt):
            n += 1
        return n

    def _bounds(self, n: int) -> tuple[int, int, int]:
        """Event index range of pass ``n`` and its ground-truth map index (-1 in events mode)."""
        if self.mode == "events":
            w = int(self.window)
            return n * w, (n + 1) * w, -1
        row, w = n * self.window, self.window
        idx0, idx1 = math.floor(row), math.ceil(row + w)
        if w < 1 and idx1 - idx0 > 1:
            idx0 += idx1 - idx0 - 1
        ts = self.source.timestamps()
        e0 = int(np.searchsorted(ts, self._gt[idx0][1], side="left"))
        e1 = int(np.searchsorted(ts, self._gt[idx1][1], side="left"))
        if w < 1:
            delta = e1 - e0
            e0, e1 = int(e0 + (row - idx0) * delta), int(e0 + (row + w - idx0) * delta)
        return e0, e1, idx1

    def read(self, n: int, flips: Flips | None = None) -> PassData:
        """Pass ``n`` (``0 <= n < num_passes``), optionally flipped."""
        if not 0 <= n < self.num_passes:
            raise IndexError(f"pass {n} out of range (0..{self.num_passes - 1})")
        flips = flips or Flips()
        e0, e1, gt_idx = self._bounds(n)
        xs, ys, ts, ps = _formatted(*self.source.read(e0, e1), self.resolution)
        dt_input = float(ts[-1] - ts[0]) if ts.numel() else 0.0
        span = ts[-1] - ts[0] if ts.numel() > 1 else torch.tensor(0.0, dtype=torch.float64)
        tsn = ((ts - ts[0]) / span).float() if span > 0 else torch.zeros_like(ts, dtype=torch.float32)
        xs, ys, ps = _flip_events(xs, ys, ps, flips, self.resolution)
        gt, dt_gt = self._ground_truth(gt_idx, flips)
        return PassData(
            inputs=encode_events(xs, ys, tsn, ps, self.resolution, encoding=self.encoding, num_bins=self.num_bins),
            event_list=torch.stack([tsn, ys, xs, ps], dim=1),
            pol_mask=torch.stack([(ps > 0).float(), (ps < 0).float()], dim=1),
            event_mask=_image(xs, ys, torch.ones_like(xs), self.resolution, False).unsqueeze(0),
            gtflow=gt, dt_input=dt_input, dt_gt=dt_gt,
        )

    def _ground_truth(self, idx: int, flips: Flips) -> tuple[torch.Tensor | None, float]:
        if idx < 0:
            return None, 0.0
        flow = torch.from_numpy(np.array(self.source.flow_map(self._group, self._gt[idx][0]), dtype=np.float32))
        if flips.horizontal:
            flow = flow.flip(-1) * torch.tensor([-1.0, 1.0]).view(2, 1, 1)
        if flips.vertical:
            flow = flow.flip(-2) * torch.tensor([1.0, -1.0]).view(2, 1, 1)
        dt_gt = self._gt[idx][1] - self._gt[idx - 1][1] if idx > 0 else 0.0
        return flow, float(dt_gt)


def _check_options(mode: str, window: float, encoding: str, num_bins: int, where: str) -> None:
    if mode not in MODES:
        raise EventFlowDataError(f"{where}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not window > 0 or (mode == "events" and float(window) != int(window)):
        raise EventFlowDataError(f"{where}: window must be a positive number (an integer in events mode), got {window}")
    if encoding not in ("cnt", "voxel") or num_bins < 1 or (encoding == "cnt" and num_bins != 2):
        raise EventFlowDataError(f"{where}: encoding must be 'cnt' (num_bins = 2) or 'voxel', got {encoding!r}, "
                                 f"num_bins = {num_bins}")


def _formatted(xs: Any, ys: Any, ts: Any, ps: Any, hw: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """Float tensors, polarity in +-1, events outside ``hw`` dropped, tiny passes emptied."""
    x = torch.from_numpy(np.asarray(xs, dtype=np.float32))
    y = torch.from_numpy(np.asarray(ys, dtype=np.float32))
    t = torch.from_numpy(np.asarray(ts, dtype=np.float64))
    p = torch.where(torch.from_numpy(np.asarray(ps).astype(np.float32)) > 0, 1.0, -1.0)
    keep = (x >= 0) & (x < hw[1]) & (y >= 0) & (y < hw[0])
    if not bool(keep.all()):
        x, y, t, p = x[keep], y[keep], t[keep], p[keep]
    if x.numel() <= _MIN_EVENTS:
        x, y, t, p = x[:0], y[:0], t[:0], p[:0]
    return x, y, t, p


def _flip_events(
    xs: torch.Tensor, ys: torch.Tensor, ps: torch.Tensor, flips: Flips, hw: tuple[int, int]
) -> tuple[torch.Tensor, ...]:
    if flips.horizontal:
        xs = hw[1] - 1 - xs
    if flips.vertical:
        ys = hw[0] - 1 - ys
    if flips.polarity:
        ps = -ps
    return xs, ys, ps


def collate_passes(passes: list[PassData]) -> dict[str, torch.Tensor]:
    """Batch passes (one per sequence); event lists are zero-padded (zero polarity mask) to the longest.

    Returns:
        ``inputs [B, C, H, W]``, ``event_list [B, N, 4]``, ``pol_mask [B, N, 2]``, ``event_mask
        [B, 1, H, W]``, ``gtflow [B, 2, H, W]`` (zeros without ground truth), ``dt_input [B]``, ``dt_gt [B]``.
    """
    longest = max(1, *(p.event_list.shape[0] for p in passes))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, 0, 0, longest - t.shape[0]))

    like = passes[0].inputs
    return {
        "inputs": torch.stack([p.inputs for p in passes]),
        "event_list": torch.stack([pad(p.event_list) for p in passes]),
        "pol_mask": torch.stack([pad(p.pol_mask) for p in passes]),
        "event_mask": torch.stack([p.event_mask for p in passes]),
        "gtflow": torch.stack([p.gtflow if p.gtflow is not None else like.new_zeros((2, *like.shape[-2:]))
                               for p in passes]),
        "dt_input": torch.tensor([p.dt_input for p in passes], dtype=torch.float64),
        "dt_gt": torch.tensor([p.dt_gt for p in passes], dtype=torch.float64),
    }


class EventFlowClips(Dataset):
    """Clips of ``passes`` consecutive passes of each sequence: items ``(inputs [T, C, H, W], target)``.

    ``target`` holds the collated pass data over time (``event_list [T, N, 4]`` ... see
    :func:`collate_passes`, with T in place of B). Clips never straddle two sequences.

    Args:
        readers: one pass reader per sequence.
        passes: passes per clip (T).
    """

    def __init__(self, readers: list[PassReader], passes: int) -> None:
        if passes < 1:
            raise EventFlowDataError(f"passes must be a positive integer, got {passes}")
        self.readers, self.passes = readers, int(passes)
        self.index = [(r, c * passes) for r, reader in enumerate(readers) for c in range(reader.num_passes // passes)]
        if not self.index:
            names = ", ".join(r.source.name for r in readers)
            raise EventFlowDataError(f"{names}: too few events/ground-truth maps for one clip of {passes} passes")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r, first = self.index[i]
        batch = collate_passes([self.readers[r].read(first + t) for t in range(self.passes)])
        return batch.pop("inputs"), batch


def open_sources(path: Path) -> list[H5Source]:
    """The ``.h5`` file at ``path``, or every ``.h5`` file under the folder ``path`` (sorted).

    Raises:
        EventFlowDataError: the path is missing, or a folder holds no ``.h5`` file.
    """
    path = Path(path)
    if path.is_file():
        return [H5Source(path)]
    if not path.is_dir():
        raise EventFlowDataError(f"{path}: dataset path not found; expected an .h5 file or a folder of .h5 files")
    files = sorted(p for p in path.rglob("*.h5") if p.is_file())
    if not files:
        raise EventFlowDataError(f"{path}: no .h5 files in the folder; expected {_LAYOUT}")
    return [H5Source(p) for p in files]


@register_reader("event_flow_h5")
def event_flow_h5(
    path: Path,
    *,
    mode: str = "events",
    window: float = 1000,
    passes: int = 10,
    encoding: str = "cnt",
    num_bins: int = 2,
    resolution: tuple[int, int] | list[int] | None = None,
) -> EventFlowClips:
    """Open an event_flow ``.h5`` file or folder as clips of ``passes`` passes (see module docstring).

    Args:
        path: ``.h5`` file or folder of them.
        mode: ``"events"``, ``"gtflow_dt1"`` or ``"gtflow_dt4"``.
        window: events per pass, or ground-truth intervals per pass.
        passes: passes per item (T).
        encoding: ``"cnt"`` or ``"voxel"``.
        num_bins: input channels.
        resolution: ``[H, W]``; default from the file.
    """
    hw = (int(resolution[0]), int(resolution[1])) if resolution is not None else None
    readers = [PassReader(s, mode, window, encoding=encoding, num_bins=num_bins, resolution=hw)
               for s in open_sources(path)]
    return EventFlowClips(readers, passes)
