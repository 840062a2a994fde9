"""Deterministic synthetic stereo event scenes with known depth, written in the MVSEC hdf5 layout.

A stand-in for MVSEC ``indoor_flying`` (``docs/seed_models.md`` section 3.5). A scene is a textured
background plane whose depth grows linearly from the bottom row (``background_depth[0]``, near) to
the top row (``background_depth[1]``, far), and ``boxes`` fronto-parallel textured boxes at depths in
``box_depth`` that slide horizontally over the frames. Both DAVIS cameras are rendered:
the right camera sees every surface shifted left by its disparity::

    disparity [px] = BASELINE_FOCAL * (W / 346) / depth [m],   BASELINE_FOCAL = 7.0 * 19.941772

(the seed's depth <-> disparity relation, scaled with the image width). Intensities are bar
textures fixed to each surface (bars at least ``MIN_BAR`` = 3 px wide); per 50 ms window, each
polarity channel of each camera gets ``Poisson(edge_rate)`` events at intensity edges plus
``Poisson(noise_rate)`` everywhere. The left ground-truth depth has NaN holes (``holes`` random
rectangles per frame covering about ``hole_fraction`` of the image).

:func:`render_scene` returns the arrays (event counts ``[K, 4, H, W]``, depth ``[K, H, W]``,
timestamps ``[K]``); :func:`write_mvsec` stores a scene as ``<name>_data.hdf5`` (``davis/{left,right}/
events`` float64 ``[N, 4]`` rows ``(x, y, t [s], p in {-1, +1})``, time-sorted) and ``<name>_gt.hdf5``
(``davis/left/depth_image_rect`` float32 ``[K, H, W]``, ``davis/left/depth_image_rect_ts`` float64
``[K]``), which the ``mvsec`` reader reads back to the same counts. Everything is drawn from a
``numpy.random.Generator(PCG64(seed))``: the same spec gives identical arrays.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "BASELINE_FOCAL",
    "SceneArrays",
    "SceneSpec",
    "counts_to_events",
    "disparity",
    "render_scene",
    "write_mvsec",
]

logger = logging.getLogger(__name__)

#: Baseline x focal length of the MVSEC DAVIS stereo rig at 346 px width (px * m), as in the seed.
BASELINE_FOCAL: float = 7.0 * 19.941772
#: Width of the MVSEC sensor the constant refers to, pixels.
REFERENCE_WIDTH: int = 346
#: Narrowest texture bar, pixels (keeps textures from aliasing into noise at low resolution).
MIN_BAR: float = 3.0
#: Margin kept between generated event times and window edges, seconds.
TIME_MARGIN: float = 1e-3


@dataclass(frozen=True)
class SceneSpec:
    """Parameters of one synthetic stereo sequence.

    Attributes:
        height: H, pixels.
        width: W, pixels.
        frames: K, depth maps (one per 50 ms window).
        boxes: number of boxes.
        box_depth: (near, far) range of box depths, metres.
        background_depth: background depth at the bottom and the top row, metres.
        edge_rate: mean events per edge pixel, polarity and window.
        noise_rate: mean noise events per pixel, polarity and window.
        hole_fraction: target fraction of NaN ground-truth pixels per frame.
        holes: NaN rectangles per frame.
        speed: maximal box speed, pixels per frame at 346 px width (scaled with W).
        dt: window length, seconds (MVSEC depth maps come at 20 Hz).
        t0: timestamp of the first depth map, seconds.
        seed: generator seed.
    """

    height: int = 260
    width: int = 346
    frames: int = 10
    boxes: int = 3
    box_depth: tuple[float, float] = (1.0, 4.0)
    background_depth: tuple[float, float] = (5.0, 10.0)
    edge_rate: float = 1.5
    noise_rate: float = 0.02
    hole_fraction: float = 0.02
    holes: int = 3
    speed: float = 6.0
    dt: float = 0.05
    t0: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        """Validate sizes and ranges."""
        if self.height < 8 or self.width < 8 or self.frames < 1 or self.boxes < 0:
            raise ValueError(f"need height, width >= 8, frames >= 1, boxes >= 0; got {self}")
        if not 0 < self.box_depth[0] <= self.box_depth[1] or self.background_depth[0] <= 0:
            raise ValueError(f"depths must be positive ranges, got {self.box_depth}, {self.background_depth}")
        if self.edge_rate < 0 or self.noise_rate < 0 or not 0 <= self.hole_fraction < 1 or self.dt <= 0:
            raise ValueError("rates must be >= 0, hole_fraction in [0, 1) and dt > 0")


@dataclass(frozen=True)
class SceneArrays:
    """A rendered scene.

    Attributes:
        counts: event counts ``[K, 4, H, W]`` float32 (left ON, left OFF, right ON, right OFF).
        depth: left rectified depth ``[K, H, W]`` float32, metres, NaN = no ground truth.
        timestamps: depth-map timestamps ``[K]`` float64, seconds.
        spec: the parameters.
    """

    counts: np.ndarray
    depth: np.ndarray
    timestamps: np.ndarray
    spec: SceneSpec


def disparity(depth: np.ndarray | float, width: int) -> np.ndarray | float:
    """Stereo disparity in pixels of a point at ``depth`` metres, for images ``width`` pixels wide."""
    return BASELINE_FOCAL * (width / REFERENCE_WIDTH) / depth


@dataclass(frozen=True)
class _Box:
    x0: float
    y0: int
    w: int
    h: int
    depth: float
    vx: float
    bar: float
    phase: float


def _boxes(spec: SceneSpec, rng: np.random.Generator) -> list[_Box]:
    h, w = spec.height, spec.width
    out = []
    for _ in range(spec.boxes):
        bw, bh = int(rng.integers(w // 8, w // 3 + 1)), int(rng.integers(h // 8, h // 3 + 1))
        out.append(
            _Box(
                x0=float(rng.uniform(0, w - bw)),
                y0=int(rng.integers(0, h - bh + 1)),
                w=bw,
                h=bh,
                depth=float(rng.uniform(*spec.box_depth)),
                vx=float(rng.uniform(-spec.speed, spec.speed)) * w / REFERENCE_WIDTH,
                bar=float(rng.uniform(3, 8)) * w / REFERENCE_WIDTH,
                phase=float(rng.uniform(0, 1)),
            )
        )
    return sorted(out, key=lambda b: -b.depth)  # painter's order: far to near


def _bar_texture(coord: np.ndarray, bar: float, phase: float) -> np.ndarray:
    """Piecewise-constant intensity in [0, 1) from a bar pattern along ``coord`` (pixels)."""
    idx = np.floor(coord / max(bar, MIN_BAR) + phase)
    return np.mod(idx * 0.6180339887, 1.0)


def _render_view(spec: SceneSpec, boxes: list[_Box], frame: int, right: bool) -> tuple[np.ndarray, np.ndarray]:
    """Intensity and depth images ``[H, W]`` of one camera at one frame."""
    h, w = spec.height, spec.width
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    near, far = spec.background_depth
    depth = far + (near - far) * ys / max(h - 1, 1)
    shift = disparity(depth, w) if right else 0.0
    intensity = _bar_texture(xs + shift, 5.0 * w / REFERENCE_WIDTH, 0.0) * 0.5
    for box in boxes:
        bx = box.x0 + box.vx * frame
        bx = np.mod(bx, w)  # boxes wrap around the field of view
        d = disparity(box.depth, w) if right else 0.0
        u = np.mod(xs + d - bx, w)
        inside = (u < box.w) & (ys >= box.y0) & (ys < box.y0 + box.h)
        depth = np.where(inside, box.depth, depth)
        intensity = np.where(inside, 0.5 + 0.5 * _bar_texture(u, box.bar, box.phase), intensity)
    return intensity, depth


def _edges(intensity: np.ndarray) -> np.ndarray:
    """Boolean map of pixels whose intensity differs from the right or lower neighbour."""
    e = np.zeros(intensity.shape, dtype=bool)
    e[:, :-1] |= intensity[:, :-1] != intensity[:, 1:]
    e[:-1, :] |= intensity[:-1, :] != intensity[1:, :]
    return e


def _holes(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    """Boolean NaN mask ``[H, W]`` of ``holes`` rectangles covering about ``hole_fraction``."""
    mask = np.zeros((spec.height, spec.width), dtype=bool)
    if spec.holes < 1 or spec.hole_fraction <= 0:
        return mask
    side = max(1, int(round(np.sqrt(spec.hole_fraction * spec.height * spec.width / spec.holes))))
    for _ in range(spec.holes):
        y = int(rng.integers(0, max(spec.height - side, 0) + 1))
        x = int(rng.integers(0, max(spec.width - side, 0) + 1))
        mask[y : y + side, x : x + side] = True
    return mask


def render_scene(spec: SceneSpec) -> SceneArrays:
    """Render a stereo scene: event counts, left depth with NaN holes and timestamps.

    Args:
        spec: the scene parameters (the seed fixes everything).

    Returns:
        The scene arrays (see :class:`SceneArrays`).
    """
    rng = np.random.Generator(np.random.PCG64(int(spec.seed)))
    boxes = _boxes(spec, rng)
    k, h, w = spec.frames, spec.height, spec.width
    counts = np.zeros((k, 4, h, w), dtype=np.float32)
    depth = np.zeros((k, h, w), dtype=np.float32)
    for f in range(k):
        for cam, right in ((0, False), (1, True)):
            intensity, view_depth = _render_view(spec, boxes, f, right)
            rate = spec.edge_rate * _edges(intensity) + spec.noise_rate
            counts[f, 2 * cam : 2 * cam + 2] = rng.poisson(np.broadcast_to(rate, (2, h, w)))
            if not right:
                depth[f] = view_depth
        depth[f][_holes(spec, rng)] = np.nan
    timestamps = spec.t0 + spec.dt * np.arange(k, dtype=np.float64)
    return SceneArrays(counts=counts, depth=depth, timestamps=timestamps, spec=spec)


def counts_to_events(counts: np.ndarray, timestamps: np.ndarray, dt: float, seed: int) -> np.ndarray:
    """Expand per-window counts of ONE camera into time-sorted MVSEC events.

    Window ``k`` covers ``(ts[k] - dt, ts[k])``; its events get times drawn uniformly in
    ``[ts[k] - dt + 2 ms, ts[k] - 1 ms]``, except that the earliest event of the whole stream is
    placed at exactly ``ts[0] - dt + 1 ms`` (the anchor of the seed's first-event-aligned windows;
    the seed's strict ``t > t_first`` test then drops that one event, see the ``mvsec`` reader).

    Args:
        counts: ``[K, 2, H, W]`` non-negative integer counts (channel 0 ON, 1 OFF).
        timestamps: ``[K]`` window end times, seconds.
        dt: window length, seconds (> 3 ms).
        seed: seed of the time jitter.

    Returns:
        float64 ``[N, 4]`` rows ``(x, y, t, p)`` with ``p = +1`` (ON) or ``-1`` (OFF), sorted by time.
    """
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    n = counts.astype(np.int64)
    frame, pol, y, x = np.nonzero(n)
    reps = n[frame, pol, y, x]
    frame, pol, y, x = (np.repeat(a, reps) for a in (frame, pol, y, x))
    lo = timestamps[frame] - dt + 2 * TIME_MARGIN
    t = lo + rng.uniform(0.0, 1.0, size=frame.shape) * (dt - 3 * TIME_MARGIN)
    events = np.stack([x.astype(np.float64), y.astype(np.float64), t, np.where(pol == 0, 1.0, -1.0)], axis=1)
    events = events[np.argsort(events[:, 2], kind="stable")]
    if len(events) and events[0, 2] < timestamps[0]:  # only an event of window 0 can become the anchor
        events[0, 2] = timestamps[0] - dt + TIME_MARGIN
    return events


def _atomic_h5(path: Path, datasets: dict[str, np.ndarray]) -> None:
    """Write ``{key: array}`` to an hdf5 file atomically (temp file + ``os.replace``)."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as handle:
            for key, value in datasets.items():
                handle.create_dataset(key, data=value)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_mvsec(scene: SceneArrays, folder: str | Path, name: str = "synthetic_flying1") -> tuple[Path, Path]:
    """Store a scene as MVSEC ``<name>_data.hdf5`` + ``<name>_gt.hdf5`` in ``folder`` (atomically).

    Args:
        scene: a rendered scene.
        folder: destination folder (created if missing).
        name: sequence name.

    Returns:
        ``(data_path, gt_path)``.
    """
    folder = Path(folder)
    seed = scene.spec.seed
    left = counts_to_events(scene.counts[:, 0:2], scene.timestamps, scene.spec.dt, seed=seed * 2 + 1)
    right = counts_to_events(scene.counts[:, 2:4], scene.timestamps, scene.spec.dt, seed=seed * 2 + 2)
    data_path, gt_path = folder / f"{name}_data.hdf5", folder / f"{name}_gt.hdf5"
    _atomic_h5(data_path, {"davis/left/events": left, "davis/right/events": right})
    _atomic_h5(
        gt_path,
        {"davis/left/depth_image_rect": scene.depth, "davis/left/depth_image_rect_ts": scene.timestamps},
    )
    logger.debug("wrote %s (%d + %d events) and %s", data_path, len(left), len(right), gt_path)
    return data_path, gt_path
