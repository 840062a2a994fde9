"""The synthetic NeRF scene of the zoo: analytic geometry, Blender-style cameras and rays.

The scene is a small "toy lego" inside ``[-1, 1]^3``: boxes and axis-aligned cylinders. Each
primitive is *separable*: its soft occupancy is ``plane(a, b) * line(c)`` for some axis split, e.g. a
cylinder along z is ``disc(x, y) * interval(z)``. So the same scene initialises DVGO's dense voxel grid
(sampled occupancy) and TensoRF's vector-matrix factors exactly (one component per primitive).

Cameras follow the Blender / Synthetic-NeRF convention (``docs/seed_models.md`` §1.7): OpenGL camera looking
down -z, y up, poses on a sphere of radius 4 at elevation -30 degrees, ``camera_angle_x`` of lego,
near 2 and far 6. ``make_inputs`` gives the rays of ``batch_size`` views as
``{"rays_o", "rays_d", "viewdirs"}``, each ``[V, H, W, 3]``, deterministic in ``seed``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snnprof.data.cameras import CAMERA_ANGLE_X, camera_rays, pose_spherical
from snnprof.models.common import model_device, seeded_generator

__all__ = [
    "CAMERA_ANGLE_X",
    "SCENE",
    "SCENE_BOX",
    "Primitive",
    "camera_rays",
    "line_factor",
    "make_inputs",
    "occupancy",
    "plane_factor",
    "pose_spherical",
    "run",
    "scene_factors",
    "view_poses",
]

logger = logging.getLogger(__name__)

#: Scene bounding box ``(xyz_min, xyz_max)``.
SCENE_BOX: tuple[tuple[float, float, float], tuple[float, float, float]] = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))


@dataclass(frozen=True)
class Primitive:
    """A separable solid: ``plane(x[a0], x[a1]) * line(x[axis])``.

    Attributes:
        kind: ``box`` (rectangle x interval) or ``cylinder`` (disc x interval).
        axis: the line axis (0 = x, 1 = y, 2 = z); the plane spans the two others.
        center: centre ``(x, y, z)``.
        size: half extents ``(x, y, z)``; for a cylinder the radius is the plane axes' value.
    """

    kind: str
    axis: int
    center: tuple[float, float, float]
    size: tuple[float, float, float]

    def plane_axes(self) -> tuple[int, int]:
        """The two axes of the plane factor, in increasing order."""
        a0, a1 = (a for a in range(3) if a != self.axis)
        return a0, a1


#: The toy scene: a base plate, a drum, two bars and a block.
SCENE: tuple[Primitive, ...] = (
    Primitive("box", 2, (0.0, 0.0, -0.7), (0.75, 0.75, 0.12)),
    Primitive("cylinder", 2, (0.0, 0.0, -0.2), (0.42, 0.42, 0.4)),
    Primitive("cylinder", 0, (0.0, 0.35, 0.45), (0.7, 0.16, 0.16)),
    Primitive("cylinder", 1, (-0.45, 0.0, 0.05), (0.18, 0.6, 0.18)),
    Primitive("box", 2, (0.5, -0.45, -0.2), (0.18, 0.18, 0.4)),
)


def _soft_step(inside_margin: torch.Tensor, width: float) -> torch.Tensor:
    """0 outside, 1 inside, a sigmoid ramp of ``width`` (world units) across the boundary."""
    return torch.sigmoid(inside_margin / width)


def plane_factor(prim: Primitive, u: torch.Tensor, v: torch.Tensor, width: float) -> torch.Tensor:
    """Soft indicator of the primitive's cross-section at plane coordinates ``(u, v)`` (broadcast)."""
    a0, a1 = prim.plane_axes()
    du, dv = u - prim.center[a0], v - prim.center[a1]
    if prim.kind == "cylinder":
        return _soft_step(prim.size[a0] - torch.sqrt(du * du + dv * dv), width)
    return _soft_step(prim.size[a0] - du.abs(), width) * _soft_step(prim.size[a1] - dv.abs(), width)


def line_factor(prim: Primitive, w: torch.Tensor, width: float) -> torch.Tensor:
    """Soft indicator of the primitive's extent along its axis at coordinate ``w``."""
    return _soft_step(prim.size[prim.axis] - (w - prim.center[prim.axis]).abs(), width)


def occupancy(xyz: torch.Tensor, width: float = 0.04) -> torch.Tensor:
    """Soft occupancy ``sum_p plane_p * line_p`` of the scene at points ``[..., 3]`` (0 empty, >= 1 solid).

    Args:
        xyz: world points.
        width: boundary ramp width (world units).
    """
    total = torch.zeros(xyz.shape[:-1], dtype=xyz.dtype, device=xyz.device)
    for prim in SCENE:
        a0, a1 = prim.plane_axes()
        total = total + plane_factor(prim, xyz[..., a0], xyz[..., a1], width) * line_factor(
            prim, xyz[..., prim.axis], width)
    return total


def scene_factors(grid_size: tuple[int, int, int], xyz_min: tuple[float, ...], xyz_max: tuple[float, ...],
                  width: float = 0.04) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """The scene's primitives as TensoRF VM factors on a grid.

    Args:
        grid_size: resolution per axis.
        xyz_min: lower box corner.
        xyz_max: upper box corner.
        width: boundary ramp width.

    Returns:
        One ``(line_axis, plane [size[a1], size[a0]], line [size[axis]])`` per primitive, the plane
        indexed like TensoRF's planes (rows = second plane axis).
    """
    coords = [torch.linspace(xyz_min[a], xyz_max[a], grid_size[a]) for a in range(3)]
    out = []
    for prim in SCENE:
        a0, a1 = prim.plane_axes()
        v, u = torch.meshgrid(coords[a1], coords[a0], indexing="ij")
        out.append((prim.axis, plane_factor(prim, u, v, width), line_factor(prim, coords[prim.axis], width)))
    return out


def view_poses(views: int, seed: int, radius: float = 4.0, elevation: float = -30.0) -> list[torch.Tensor]:
    """``views`` camera poses evenly spread in azimuth, rotated and tilted by a seeded offset."""
    gen = seeded_generator(seed)
    offset = float(torch.rand((), generator=gen)) * 360.0
    tilt = (torch.rand(views, generator=gen) - 0.5) * 10.0
    return [pose_spherical(offset + 360.0 * k / views, elevation + float(tilt[k]), radius) for k in range(views)]


def make_inputs(model: nn.Module, batch_size: int, time_steps: int, seed: int, *, image_size: int = 32,
                radius: float = 4.0, elevation: float = -30.0,
                camera_angle_x: float = CAMERA_ANGLE_X) -> dict[str, torch.Tensor]:
    """Rays of ``batch_size`` synthetic views ``{"rays_o", "rays_d", "viewdirs"}``, each ``[V, H, W, 3]``.

    Args:
        model: the radiance-field model (its device is used).
        batch_size: V, views (images) to render.
        time_steps: must be 1: SpikingNeRF's time axis comes from the ray samples, not the config.
        seed: seeds the camera placement.
        image_size: H = W, pixels.
        radius: camera distance to the origin.
        elevation: camera elevation (degrees).
        camera_angle_x: horizontal field of view (radians).

    Raises:
        ValueError: non-positive sizes or ``time_steps != 1``.
    """
    if time_steps != 1:
        raise ValueError(f"time_steps must be 1 (the SNN time axis is the ray's sample points), got {time_steps}")
    if batch_size < 1 or image_size < 1:
        raise ValueError(f"batch_size and image_size must be positive, got {batch_size}, {image_size}")
    focal = 0.5 * image_size / math.tan(0.5 * camera_angle_x)
    rays = [camera_rays(c2w, image_size, image_size, focal) for c2w in view_poses(batch_size, seed, radius, elevation)]
    rays_o = torch.stack([o for o, _ in rays])
    rays_d = torch.stack([d for _, d in rays])
    viewdirs = rays_d / rays_d.norm(dim=-1, keepdim=True)
    device = model_device(model)
    return {"rays_o": rays_o.to(device), "rays_d": rays_d.to(device), "viewdirs": viewdirs.to(device)}


def run(model: nn.Module, inputs: dict[str, torch.Tensor], time_steps: int) -> torch.Tensor:
    """Render every view: ``model(**inputs).rgb`` (``[V, H, W, 3]``); chunk statistics stay on the model."""
    del time_steps
    out: Any = model(**inputs)
    return out.rgb
