"""A deterministic synthetic NeRF scene written in the Blender / Synthetic-NeRF layout.

The stand-in of ``docs/seed_models.md`` §1.7 for ``nerf_synthetic/lego``: a few coloured boxes and spheres
on a base plate inside ``[-1, 1]^3`` (the zoo models' default bounding box), Lambertian shading under
one fixed light plus ambient light (view independent, so a radiance field represents it exactly),
rendered **analytically**: exact ray-box (slab) and ray-sphere intersections, nearest hit wins,
``supersample x supersample`` sub-pixel rays averaged into a straight-alpha RGBA pixel (alpha = the
covered fraction, so ``rgb * a + (1 - a)`` is the anti-aliased image on white).

Cameras are Blender's (``nerf_scene.pose_spherical``: OpenGL, looking down -z, y up) at radius 4 with
lego's ``camera_angle_x``: train and val views at seeded random azimuths and elevations on the upper
hemisphere, test views evenly spaced in azimuth at elevation -30 degrees (like the Blender test path).
Near 2 and far 6 hold for every view.

:func:`write_blender_scene` writes ``transforms_{train,val,test}.json`` (``camera_angle_x``,
``frames[].file_path = "./<split>/r_<i>"``, ``rotation``, ``transform_matrix`` 4x4 camera-to-world) and
8-bit RGBA PNGs ``<split>/r_<i>.png``, plus ``scene.json`` (the spec and the objects, for reference).
Everything follows from :class:`SceneSpec` (``seed``): the same spec gives byte-identical files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from snnprof.data.cameras import CAMERA_ANGLE_X, pose_spherical

__all__ = [
    "LIGHT_DIR",
    "SPLITS",
    "SceneObject",
    "SceneSpec",
    "make_objects",
    "render_view",
    "split_poses",
    "write_blender_scene",
]

logger = logging.getLogger(__name__)

#: Splits of the Blender layout.
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Unit direction towards the light (world coordinates, from above).
LIGHT_DIR: tuple[float, float, float] = (0.37139068, 0.55708601, 0.74278135)
#: Ambient share of the shading: colour * (AMBIENT + (1 - AMBIENT) * max(n . l, 0)).
AMBIENT = 0.4
#: Blender's per-frame ``rotation`` field (unused by the loaders, kept for the format).
FRAME_ROTATION = 0.012566370614359171


@dataclass(frozen=True)
class SceneSpec:
    """Parameters of a synthetic scene and its views.

    Attributes:
        image_size: H = W, pixels.
        train_views: views in ``train``.
        val_views: views in ``val``.
        test_views: views in ``test``.
        objects: coloured boxes/spheres on the base plate.
        supersample: sub-pixel rays per axis (anti-aliasing).
        radius: camera distance to the origin (scene units).
        camera_angle_x: horizontal field of view, radians.
        seed: seeds objects and cameras.
    """

    image_size: int = 64
    train_views: int = 40
    val_views: int = 4
    test_views: int = 8
    objects: int = 4
    supersample: int = 3
    radius: float = 4.0
    camera_angle_x: float = CAMERA_ANGLE_X
    seed: int = 0

    def __post_init__(self) -> None:
        """Validate sizes."""
        if self.image_size < 4 or self.supersample < 1 or self.objects < 0:
            raise ValueError(f"need image_size >= 4, supersample >= 1, objects >= 0; got {self}")
        if min(self.train_views, self.val_views, self.test_views) < 1:
            raise ValueError(f"every split needs at least one view; got {self}")
        if not self.radius > 2.0 or not 0 < self.camera_angle_x < math.pi:
            raise ValueError(f"need radius > 2 (cameras outside the box) and 0 < camera_angle_x < pi; got {self}")

    @property
    def focal(self) -> float:
        """Focal length in pixels: ``0.5 * W / tan(0.5 * camera_angle_x)``."""
        return 0.5 * self.image_size / math.tan(0.5 * self.camera_angle_x)

    def views(self, split: str) -> int:
        """Number of views of ``split``."""
        return {"train": self.train_views, "val": self.val_views, "test": self.test_views}[split]


@dataclass(frozen=True)
class SceneObject:
    """One solid of the scene.

    Attributes:
        kind: ``box`` (axis-aligned) or ``sphere``.
        center: centre ``(x, y, z)``.
        size: half extents ``(x, y, z)`` of a box; a sphere's radius is ``size[0]``.
        color: albedo ``(r, g, b)`` in [0, 1].
    """

    kind: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    color: tuple[float, float, float]


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    """HSV (all in [0, 1]) to RGB."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))[i]
    return round(r, 6), round(g, 6), round(b, 6)


def make_objects(spec: SceneSpec) -> list[SceneObject]:
    """The seeded scene: a grey-ish base plate and ``spec.objects`` boxes/spheres standing on it."""
    rng = np.random.default_rng([spec.seed, 1])
    plate_top = -0.6
    objects = [SceneObject("box", (0.0, 0.0, -0.7), (0.85, 0.85, 0.1), _hsv(rng.uniform(), 0.15, 0.75))]
    hues = (rng.uniform() + np.arange(spec.objects) / max(spec.objects, 1)) % 1.0
    for k in range(spec.objects):
        kind = "sphere" if rng.uniform() < 0.5 else "box"
        if kind == "sphere":
            r = float(rng.uniform(0.2, 0.35))
            size = (r, r, r)
        else:
            size = tuple(float(v) for v in rng.uniform(0.12, 0.3, size=3))
        x, y = (float(v) for v in rng.uniform(-0.75 + size[0], 0.75 - size[0], size=2))
        z = plate_top + size[2] + float(rng.uniform(0.0, 0.3))
        color = _hsv(float(hues[k]), float(rng.uniform(0.6, 0.9)), float(rng.uniform(0.6, 0.95)))
        objects.append(SceneObject(kind, (round(x, 6), round(y, 6), round(z, 6)),
                                   tuple(round(v, 6) for v in size), color))  # type: ignore[arg-type]
    return objects


def split_poses(spec: SceneSpec, split: str) -> list[torch.Tensor]:
    """Camera-to-world matrices ``[4, 4]`` of a split (train/val: seeded random; test: a -30 degree circle)."""
    n = spec.views(split)
    if split == "test":
        offset = float(np.random.default_rng([spec.seed, 2]).uniform(0, 360))
        return [pose_spherical(offset + 360.0 * k / n, -30.0, spec.radius) for k in range(n)]
    rng = np.random.default_rng([spec.seed, 3 if split == "train" else 4])
    azimuth, elevation = rng.uniform(0, 360, size=n), rng.uniform(-80, -10, size=n)
    return [pose_spherical(float(a), float(e), spec.radius) for a, e in zip(azimuth, elevation, strict=True)]


def _subpixel_rays(c2w: torch.Tensor, size: int, focal: float, ss: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins and unit directions ``[H, W, ss*ss, 3]`` through a regular ``ss x ss`` sub-pixel grid."""
    sub = (torch.arange(ss, dtype=torch.float64) + 0.5) / ss
    j = torch.arange(size, dtype=torch.float64)[:, None, None, None] + sub[None, None, :, None]
    i = torch.arange(size, dtype=torch.float64)[None, :, None, None] + sub[None, None, None, :]
    j, i = torch.broadcast_tensors(j, i)
    dirs = torch.stack([(i - size * 0.5) / focal, -(j - size * 0.5) / focal, -torch.ones_like(i)], -1)
    rot = c2w[:3, :3].double()
    rays_d = (dirs.reshape(size, size, ss * ss, 1, 3) * rot).sum(-1)
    rays_d = rays_d / rays_d.norm(dim=-1, keepdim=True)
    return c2w[:3, 3].double().expand(rays_d.shape), rays_d


def _hit_box(o: torch.Tensor, d: torch.Tensor, obj: SceneObject) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry distance (``inf`` on a miss) and outward normal of the slab test for an axis-aligned box."""
    center, half = torch.tensor(obj.center, dtype=o.dtype), torch.tensor(obj.size, dtype=o.dtype)
    safe = torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    t1, t2 = (center - half - o) / safe, (center + half - o) / safe
    t_in, t_out = torch.minimum(t1, t2), torch.maximum(t1, t2)
    t_near, axis = t_in.max(-1)
    t_far = t_out.min(-1).values
    hit = (t_near <= t_far) & (t_near > 0)
    normal = torch.zeros_like(o).scatter(-1, axis.unsqueeze(-1), 1.0) * -torch.sign(safe)
    return torch.where(hit, t_near, torch.full_like(t_near, math.inf)), normal


def _hit_sphere(o: torch.Tensor, d: torch.Tensor, obj: SceneObject) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest positive root of ``|o + t d - c| = r`` (``inf`` on a miss) and the outward normal there."""
    center = torch.tensor(obj.center, dtype=o.dtype)
    oc = o - center
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - obj.size[0] ** 2)
    t = -b - torch.sqrt(disc.clamp(min=0))
    hit = (disc >= 0) & (t > 0)
    t = torch.where(hit, t, torch.full_like(t, math.inf))
    normal = (o + torch.nan_to_num(t, posinf=0.0).unsqueeze(-1) * d - center) / obj.size[0]
    return t, normal


def render_view(objects: list[SceneObject], c2w: torch.Tensor, size: int, focal: float,
                supersample: int = 3) -> torch.Tensor:
    """Analytic straight-alpha RGBA image ``[H, W, 4]`` (float64 in [0, 1]) of the objects.

    Args:
        objects: the scene.
        c2w: camera-to-world ``[4, 4]`` (OpenGL convention).
        size: H = W, pixels.
        focal: focal length, pixels.
        supersample: sub-pixel rays per axis.
    """
    o, d = _subpixel_rays(c2w, size, focal, supersample)
    best = torch.full(o.shape[:-1], math.inf, dtype=torch.float64)
    color = torch.zeros_like(o)
    light = torch.tensor(LIGHT_DIR, dtype=torch.float64)
    for obj in objects:
        t, normal = (_hit_box if obj.kind == "box" else _hit_sphere)(o, d, obj)
        shade = AMBIENT + (1 - AMBIENT) * (normal * light).sum(-1).clamp(min=0)
        closer = t < best
        best = torch.where(closer, t, best)
        albedo = torch.tensor(obj.color, dtype=torch.float64)
        color = torch.where(closer.unsqueeze(-1), albedo * shade.unsqueeze(-1), color)
    alpha = torch.isfinite(best).double()
    coverage = alpha.mean(-1)
    rgb = (color * alpha.unsqueeze(-1)).sum(-2) / alpha.sum(-1).clamp(min=1).unsqueeze(-1)
    return torch.cat([rgb, coverage.unsqueeze(-1)], -1).clamp(0, 1)


def _transforms(spec: SceneSpec, split: str, poses: list[torch.Tensor]) -> dict[str, object]:
    frames = [{"file_path": f"./{split}/r_{i}", "rotation": FRAME_ROTATION,
               "transform_matrix": [[round(float(v), 9) for v in row] for row in pose.tolist()]}
              for i, pose in enumerate(poses)]
    return {"camera_angle_x": spec.camera_angle_x, "frames": frames}


def write_blender_scene(root: str | os.PathLike[str], spec: SceneSpec, overwrite: bool = False) -> Path:
    """Render the scene and write it in the Blender layout under ``root`` (atomically, as a whole folder).

    Args:
        root: the scene folder to create (its parent must be writable).
        spec: scene parameters.
        overwrite: replace an existing folder (otherwise ``FileExistsError``).

    Returns:
        ``root`` as a :class:`~pathlib.Path`.

    Example:
        >>> write_blender_scene("data/synthetic64", SceneSpec(image_size=64, seed=0))  # doctest: +SKIP
    """
    from snnprof.data.blender import encode_png

    root = Path(root)
    if root.exists() and not overwrite:
        raise FileExistsError(f"{root}: already exists (pass overwrite=True to replace it)")
    root.parent.mkdir(parents=True, exist_ok=True)
    objects = make_objects(spec)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.", suffix=".tmp"))
    try:
        for split in SPLITS:
            poses = split_poses(spec, split)
            (tmp / split).mkdir()
            for i, pose in enumerate(poses):
                rgba = render_view(objects, pose, spec.image_size, spec.focal, spec.supersample)
                (tmp / split / f"r_{i}.png").write_bytes(encode_png(rgba))
            text = json.dumps(_transforms(spec, split, poses), indent=2) + "\n"
            (tmp / f"transforms_{split}.json").write_text(text, encoding="utf-8")
        meta = {"generator": "snnprof.data.synthetic_scene", "spec": asdict(spec),
                "objects": [asdict(o) for o in objects]}
        (tmp / "scene.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote synthetic Blender scene %s (%s)", root, spec)
    return root
