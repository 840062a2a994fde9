r"""Synthetic event sequences with known optical flow, written in the event_flow h5 layout.

A textured pattern (a sum of bright Gaussian blobs in log intensity, periodic over a canvas larger than
the sensor) translates at a constant velocity :math:`(u, v)` px/s. An idealised event camera
(contrast threshold ``C`` on log intensity, per-pixel reference level, linear interpolation of the
crossing times) turns it into events. Ground-truth flow is constant: :math:`(u\,dt, v\,dt)` px over
each ground-truth interval ``dt``, chosen so that one interval holds about ``events_per_gt`` events
(so event-count windows and ground-truth windows match). Everything is drawn from
``numpy.random.default_rng(seed)``: the same seed gives the same file, byte for byte in content.

File layout (``docs/seed_models.md`` section 4.5): ``events/xs``, ``events/ys`` (uint16),
``events/ts`` (float64 seconds), ``events/ps`` (uint8, 1 = positive); root attributes ``t0``,
``duration``, ``sensor_resolution`` (H, W); groups ``flow_dt1`` and ``flow_dt4`` with float32
``[2, H, W]`` (x, y) flow maps carrying a ``timestamp`` attribute.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["FlowSequence", "TextureParams", "generate_dataset", "generate_sequence", "write_event_flow_h5"]

logger = logging.getLogger(__name__)

_START_TIME = 100.0  # s: absolute time of the first sample (files store absolute times, t0 subtracted on read)
_SUBSTEP_PX = 0.1  # maximum displacement per simulation substep, pixels


@dataclass(frozen=True)
class TextureParams:
    """Texture and sensor model of the synthetic scenes.

    Attributes:
        blobs_per_kpx: Gaussian blobs per 1000 canvas pixels.
        sigma: ``(min, max)`` blob standard deviation, pixels.
        amplitude: ``(min, max)`` absolute blob amplitude in log intensity.
        bright_fraction: probability that a blob is brighter than the background (else darker). With
            only bright blobs the polarity pattern of one window shows the motion direction (leading
            edges positive, trailing edges negative); mixed signs make it ambiguous without memory.
        contrast: event contrast threshold ``C`` (log intensity).
        speed: ``(min, max)`` speed, pixels per second (direction uniform).
    """

    blobs_per_kpx: float = 6.0
    sigma: tuple[float, float] = (1.5, 4.0)
    amplitude: tuple[float, float] = (0.5, 1.5)
    bright_fraction: float = 1.0
    contrast: float = 0.25
    speed: tuple[float, float] = (200.0, 400.0)


@dataclass
class FlowSequence:
    """One synthetic sequence in memory.

    Attributes:
        xs: event columns (uint16).
        ys: event rows (uint16).
        ts: event times, seconds (float64, absolute, non-decreasing).
        ps: polarities (uint8, 1 positive, 0 negative).
        resolution: sensor ``(H, W)``.
        velocity: true ``(u, v)`` in pixels per second (x right, y down).
        gt_dt: ground-truth interval, seconds.
        gt_timestamps: times of the ``flow_dt1`` maps, seconds (absolute).
        t0: time origin of the sequence (``t0`` attribute), seconds.
        flows: ``{"flow_dt1": [...], "flow_dt4": [...]}`` of ``(name, timestamp, [2, H, W] map)``.
    """

    xs: np.ndarray
    ys: np.ndarray
    ts: np.ndarray
    ps: np.ndarray
    resolution: tuple[int, int]
    velocity: tuple[float, float]
    gt_dt: float
    gt_timestamps: np.ndarray
    t0: float
    flows: dict[str, list[tuple[str, float, np.ndarray]]] = field(default_factory=dict)

    @property
    def num_events(self) -> int:
        """Number of events."""
        return int(self.xs.shape[0])


@dataclass(frozen=True)
class _Texture:
    """Blob centres/sizes/amplitudes on a periodic canvas of ``period`` pixels."""

    cx: np.ndarray
    cy: np.ndarray
    sigma: np.ndarray
    amp: np.ndarray
    period: float

    def log_intensity(self, shift_x: float, shift_y: float, height: int, width: int) -> np.ndarray:
        """Log intensity ``[H, W]`` of the texture moved by ``(shift_x, shift_y)`` pixels."""
        gx = self._profile(np.arange(width, dtype=np.float64), self.cx + shift_x)
        gy = self._profile(np.arange(height, dtype=np.float64), self.cy + shift_y)
        return np.ascontiguousarray((self.amp[:, None] * gy).T) @ gx

    def _profile(self, coords: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """Periodic 1-D Gaussian of every blob ``[K, len(coords)]``."""
        half = self.period / 2
        d = np.mod(coords[None, :] - centres[:, None] + half, self.period) - half
        g = np.exp(-(d * d) / (2 * self.sigma[:, None] ** 2))
        g[g < 1e-12] = 0.0  # flush the tails: denormals make the product below ~100x slower
        return g


def _umask() -> int:
    """The process umask (files written via a temporary file get the usual permissions)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _texture(rng: np.random.Generator, height: int, width: int, params: TextureParams) -> _Texture:
    period = float(2 * max(height, width))
    count = max(1, round(params.blobs_per_kpx * period * period / 1000))
    sign = np.where(rng.uniform(0, 1, count) < params.bright_fraction, 1.0, -1.0)
    amp = rng.uniform(*params.amplitude, count) * sign
    return _Texture(
        cx=rng.uniform(0, period, count), cy=rng.uniform(0, period, count),
        sigma=rng.uniform(*params.sigma, count), amp=amp, period=period,
    )


def _crossings(prev: np.ndarray, cur: np.ndarray, ref: np.ndarray, contrast: float) -> tuple[np.ndarray, ...]:
    """Events of one substep: ``(flat pixel, fraction of the substep, polarity)`` and the updated reference."""
    diff = cur - ref
    count = np.floor(np.abs(diff) / contrast).astype(np.int64)
    pix = np.flatnonzero(count)
    if pix.size == 0:
        return pix, np.zeros(0), np.zeros(0, dtype=np.uint8), ref
    sign = np.sign(diff.flat[pix])
    reps = count.flat[pix]
    pix_rep = np.repeat(pix, reps)
    level = np.arange(pix_rep.size) - np.repeat(np.cumsum(reps) - reps, reps) + 1
    sign_rep = np.repeat(sign, reps)
    start, stop = prev.flat[pix_rep], cur.flat[pix_rep]
    target = ref.flat[pix_rep] + sign_rep * level * contrast
    span = np.where(stop != start, stop - start, 1.0)
    frac = np.clip((target - start) / span, 0.0, 1.0)
    new_ref = ref.copy()
    new_ref.flat[pix] += sign * reps * contrast
    return pix_rep, frac, (sign_rep > 0).astype(np.uint8), new_ref


def _simulate(
    texture: _Texture, velocity: tuple[float, float], height: int, width: int, *, num_events: int, contrast: float
) -> tuple[np.ndarray, ...]:
    """Run the event camera until ``num_events`` events; returns ``(xs, ys, ts, ps)`` with ts from 0."""
    speed = math.hypot(*velocity)
    dt = _SUBSTEP_PX / speed
    ref = prev = texture.log_intensity(0.0, 0.0, height, width)
    chunks: list[tuple[np.ndarray, ...]] = []
    total, step = 0, 0
    while total < num_events:
        step += 1
        if step > 10_000_000 // max(height * width // 1024, 1):
            raise RuntimeError("synthetic scene produces too few events; raise the texture contrast")
        t = step * dt
        cur = texture.log_intensity(velocity[0] * t, velocity[1] * t, height, width)
        pix, frac, pol, ref = _crossings(prev, cur, ref, contrast)
        prev = cur
        if pix.size:
            times = (step - 1 + frac) * dt
            order = np.argsort(times, kind="stable")
            chunks.append((pix[order], times[order], pol[order]))
            total += pix.size
    pix = np.concatenate([c[0] for c in chunks])[:num_events]
    ts = np.concatenate([c[1] for c in chunks])[:num_events]
    ps = np.concatenate([c[2] for c in chunks])[:num_events]
    return (pix % width).astype(np.uint16), (pix // width).astype(np.uint16), ts, ps


def _flow_maps(
    velocity: tuple[float, float], stamps: np.ndarray, gt_dt: float, shape: tuple[int, int], every: int
) -> list[tuple[str, float, np.ndarray]]:
    """Constant flow maps ``[2, H, W]`` (px over ``every`` intervals) at every ``every``-th stamp."""
    disp = np.empty((2, *shape), dtype=np.float32)
    disp[0], disp[1] = velocity[0] * gt_dt * every, velocity[1] * gt_dt * every
    return [(f"flow_{i:010d}", float(t), disp.copy()) for i, t in enumerate(stamps[::every])]


def generate_sequence(
    seed: int,
    *,
    height: int = 64,
    width: int = 64,
    num_events: int = 40_000,
    events_per_gt: int = 1000,
    params: TextureParams | None = None,
) -> FlowSequence:
    """Generate one translating-texture sequence.

    Args:
        seed: RNG seed (texture, direction, speed).
        height: sensor rows, pixels.
        width: sensor columns, pixels.
        num_events: events to generate.
        events_per_gt: mean events per ground-truth interval (sets ``gt_dt``).
        params: texture and sensor model.

    Returns:
        The sequence (absolute times start at 100 s).
    """
    if min(height, width, num_events, events_per_gt) <= 0:
        raise ValueError("height, width, num_events and events_per_gt must be positive")
    params = params or TextureParams()
    rng = np.random.default_rng(int(seed))
    texture = _texture(rng, height, width, params)
    angle, speed = rng.uniform(0, 2 * math.pi), rng.uniform(*params.speed)
    velocity = (speed * math.cos(angle), speed * math.sin(angle))
    xs, ys, ts, ps = _simulate(texture, velocity, height, width, num_events=num_events, contrast=params.contrast)
    duration = float(ts[-1]) if ts.size else 0.0
    gt_dt = duration * events_per_gt / max(num_events, 1)
    stamps = np.arange(0.0, duration + 1e-12, gt_dt) + _START_TIME if gt_dt > 0 else np.zeros(0)
    flows = {
        "flow_dt1": _flow_maps(velocity, stamps, gt_dt, (height, width), 1),
        "flow_dt4": _flow_maps(velocity, stamps, gt_dt, (height, width), 4),
    }
    return FlowSequence(xs, ys, ts + _START_TIME, ps, (height, width), velocity, gt_dt, stamps, _START_TIME, flows)


def write_event_flow_h5(path: str | os.PathLike[str], seq: FlowSequence) -> Path:
    """Write ``seq`` in the event_flow h5 layout, atomically (temporary file + ``os.replace``).

    Args:
        path: destination ``.h5`` file (parents created).
        seq: the sequence.

    Returns:
        The destination path.
    """
    import h5py

    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("events/xs", data=seq.xs)
            f.create_dataset("events/ys", data=seq.ys)
            f.create_dataset("events/ts", data=seq.ts)
            f.create_dataset("events/ps", data=seq.ps)
            f.attrs["t0"] = seq.t0
            f.attrs["duration"] = float(seq.ts[-1] - seq.t0) if seq.num_events else 0.0
            f.attrs["sensor_resolution"] = np.asarray(seq.resolution, dtype=np.int64)
            for group, maps in seq.flows.items():
                grp = f.create_group(group)
                for name, stamp, flow in maps:
                    grp.create_dataset(name, data=flow).attrs["timestamp"] = stamp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def generate_dataset(
    folder: str | os.PathLike[str], count: int, seed: int, **kwargs: object
) -> list[Path]:
    """Write ``count`` sequences ``seq_000.h5 ...`` into ``folder`` (sequence ``i`` uses seed ``seed + i``).

    Args:
        folder: output folder (created).
        count: number of sequences.
        seed: base seed.
        **kwargs: forwarded to :func:`generate_sequence`.
    """
    out = Path(folder)
    return [
        write_event_flow_h5(out / f"seq_{i:03d}.h5", generate_sequence(seed + i, **kwargs))  # type: ignore[arg-type]
        for i in range(count)
    ]
