"""Reader of the Blender / Synthetic-NeRF layout (``nerf_synthetic/<scene>``), rays and ray batches.

Layout (``docs/seed_models.md`` §1.7)::

    <scene>/transforms_{train,val,test}.json   {"camera_angle_x": fov_x [rad],
                                                "frames": [{"file_path": "./train/r_0", "transform_matrix": 4x4}]}
    <scene>/train/r_0.png ...                  RGBA (or RGB) PNG, 8 or 16 bit

``transform_matrix`` is camera-to-world in the OpenGL convention (camera looks down -z, y up); the focal
length is ``0.5 * W / tan(0.5 * camera_angle_x)``; near 2 and far 6. As DVGO's ``load_blender_data``, an
image is read as float RGBA in [0, 1], optionally shrunk by ``downscale`` (area averaging of the RGBA
values, like ``cv2.INTER_AREA``; the focal length shrinks with it), then composited onto white
``rgb * a + (1 - a)`` (``white_bg=False``: onto black, ``rgb * a``).

The reader ``blender`` returns a data set of views whose items are ``(inputs, target)``: ``inputs`` =
``{"rays_o", "rays_d", "viewdirs"}`` each ``[H, W, 3]`` (DVGO ``get_rays``, pixel centres, ``rays_d``
with camera z = -1, unit ``viewdirs``) and ``target`` the image ``[H, W, 3]`` -- what ``snnprof compare``
and the NeRF zoo models take. :class:`RaySet` flattens views into rays for training and
:func:`ray_batch` / :func:`iter_ray_batches` draw random ray batches that depend only on
``(seed, step)``, so a resumed run draws the same batches.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from snnprof.data import register_reader
from snnprof.data.cameras import camera_rays
from snnprof.errors import ConfigError
from snnprof.io import atomic_write_bytes

__all__ = [
    "FAR",
    "NEAR",
    "BlenderViews",
    "RaySet",
    "encode_png",
    "iter_ray_batches",
    "load_blender",
    "ray_batch",
    "read_png",
    "view_rays",
    "write_png",
]

logger = logging.getLogger(__name__)

#: Near and far bounds of the Blender scenes (scene units).
NEAR, FAR = 2.0, 6.0
_SPLITS = ("train", "val", "test")
_LAYOUT = ("a Blender scene folder with transforms_{train,val,test}.json ({camera_angle_x, frames: "
           "[{file_path, transform_matrix}]}) and RGBA PNG images")


# --------------------------------------------------------------------------- PNG I/O


def read_png(path: Path) -> torch.Tensor:
    """An image file as float RGBA ``[H, W, 4]`` in [0, 1] (RGB, grey and palette images get alpha 1).

    Raises:
        ConfigError: the file is missing or not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64) / 65535.0
                arr = np.stack([arr, arr, arr, np.ones_like(arr)], -1)
            else:
                arr = np.asarray(img.convert("RGBA"), dtype=np.float64) / 255.0
    except FileNotFoundError:
        raise ConfigError(str(path), "", "image file not found (named by a frame's file_path)") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ConfigError(str(path), "", f"not a readable PNG image ({err})") from None
    return torch.from_numpy(arr).float()


def encode_png(image: torch.Tensor) -> bytes:
    """PNG bytes of ``[H, W, 3]`` (RGB) or ``[H, W, 4]`` (RGBA) values in [0, 1] (8 bit, rounded)."""
    from PIL import Image

    if image.dim() != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"expected an image [H, W, 3|4], got {tuple(image.shape)}")
    arr = (image.detach().double().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(arr, mode="RGBA" if arr.shape[-1] == 4 else "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: str | os.PathLike[str], image: torch.Tensor) -> Path:
    """Write ``image`` (see :func:`encode_png`) atomically to ``path``; returns the path."""
    return atomic_write_bytes(path, encode_png(image))


# --------------------------------------------------------------------------- the layout


@dataclass
class _Split:
    """One parsed ``transforms_<split>.json``."""

    camera_angle_x: float
    files: list[Path]
    poses: torch.Tensor  # [N, 4, 4]


def _image_file(root: Path, file_path: str) -> Path:
    """The image of a frame: ``root / file_path``, with ``.png`` appended when it has no suffix."""
    path = root / file_path
    return path if path.suffix else path.with_name(path.name + ".png")


def _read_split(root: Path, split: str) -> _Split:
    """Parse and validate ``root/transforms_<split>.json``."""
    if split not in _SPLITS:
        raise ConfigError(str(root), "split", f"expected one of {', '.join(_SPLITS)}, got {split!r}")
    if not root.is_dir():
        raise ConfigError(str(root), "", f"dataset folder not found; expected {_LAYOUT}")
    path = root / f"transforms_{split}.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", f"file not found; expected {_LAYOUT}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(str(path), "", f"not a readable JSON file ({err})") from None
    fov = meta.get("camera_angle_x") if isinstance(meta, dict) else None
    if isinstance(fov, bool) or not isinstance(fov, int | float) or not 0 < fov < math.pi:
        raise ConfigError(str(path), "camera_angle_x", f"expected a field of view in (0, pi) radians, got {fov!r}")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise ConfigError(str(path), "frames", "expected a non-empty array of {file_path, transform_matrix}")
    files, poses = [], []
    for i, frame in enumerate(frames):
        where = f"frames[{i}]"
        name = frame.get("file_path") if isinstance(frame, dict) else None
        if not isinstance(name, str) or not name:
            raise ConfigError(str(path), f"{where}.file_path", f"expected an image path string, got {name!r}")
        try:
            pose = torch.tensor(frame.get("transform_matrix"), dtype=torch.float32)
        except (TypeError, ValueError):
            pose = torch.zeros(0)
        if pose.shape != (4, 4) or not bool(torch.isfinite(pose).all()):
            raise ConfigError(str(path), f"{where}.transform_matrix", "expected a finite 4x4 camera-to-world matrix")
        files.append(_image_file(root, name))
        poses.append(pose)
    return _Split(float(fov), files, torch.stack(poses))


def _load_image(path: Path, downscale: int, white_bg: bool, size: tuple[int, int] | None) -> torch.Tensor:
    """One view as composited RGB ``[H, W, 3]`` (after the optional area downscale)."""
    rgba = read_png(path)
    if size is not None and tuple(rgba.shape[:2]) != size:
        raise ConfigError(str(path), "", f"expected {size[0]}x{size[1]} pixels like the split's first image, "
                                         f"got {rgba.shape[0]}x{rgba.shape[1]}")
    if downscale > 1:
        h, w = rgba.shape[0] // downscale, rgba.shape[1] // downscale
        if h < 1 or w < 1:
            raise ConfigError(str(path), "downscale", f"{downscale} leaves no pixel of a {rgba.shape[0]}-pixel image")
        rgba = F.interpolate(rgba.permute(2, 0, 1)[None], size=(h, w), mode="area")[0].permute(1, 2, 0)
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    return rgb * alpha + (1.0 - alpha) if white_bg else rgb * alpha


class BlenderViews(Dataset):
    """The views of one split: ``(inputs, target)`` per view (see the module docstring).

    Attributes:
        images: composited RGB ``[N, H, W, 3]`` in [0, 1].
        poses: camera-to-world ``[N, 4, 4]``.
        focal: focal length, pixels (after ``downscale``).
        camera_angle_x: horizontal field of view, radians.
        near: near bound (2).
        far: far bound (6).
        files: the image files.
    """

    def __init__(self, images: torch.Tensor, poses: torch.Tensor, camera_angle_x: float,
                 files: list[Path] | None = None) -> None:
        self.images, self.poses = images, poses
        self.camera_angle_x = float(camera_angle_x)
        self.focal = 0.5 * images.shape[2] / math.tan(0.5 * self.camera_angle_x)
        self.near, self.far = NEAR, FAR
        self.files = list(files or [])

    @property
    def height(self) -> int:
        """H, pixels."""
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        """W, pixels."""
        return int(self.images.shape[2])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"view {index} out of range for {len(self)} views")
        return view_rays(self.poses[index], self.height, self.width, self.focal), self.images[index]

    def rays(self, indices: list[int] | None = None) -> dict[str, torch.Tensor]:
        """Rays of several views, each ``[V, H, W, 3]`` (all views by default): the zoo runner's inputs."""
        chosen = range(len(self)) if indices is None else indices
        parts = [self[i][0] for i in chosen]
        return {key: torch.stack([p[key] for p in parts]) for key in ("rays_o", "rays_d", "viewdirs")}


def view_rays(c2w: torch.Tensor, height: int, width: int, focal: float) -> dict[str, torch.Tensor]:
    """``{"rays_o", "rays_d", "viewdirs"}`` of one camera, each ``[H, W, 3]`` (pixel centres, DVGO ``get_rays``)."""
    rays_o, rays_d = camera_rays(c2w.float(), height, width, focal)
    return {"rays_o": rays_o, "rays_d": rays_d, "viewdirs": rays_d / rays_d.norm(dim=-1, keepdim=True)}


def load_blender(path: str | os.PathLike[str], split: str = "test", downscale: int = 1, white_bg: bool = True,
                 max_views: int | None = None) -> BlenderViews:
    """Read one split of a Blender-layout scene.

    Args:
        path: the scene folder (holding ``transforms_<split>.json``).
        split: ``train``, ``val`` or ``test``.
        downscale: integer factor to shrink the images by (DVGO's ``half_res`` is 2).
        white_bg: composite onto white (the seeds' ``white_bkgd``) or black.
        max_views: read only the first ``max_views`` frames.

    Raises:
        ConfigError: a missing folder/file, malformed JSON, bad frames or images, bad options.
    """
    root = Path(path)
    if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
        raise ConfigError(str(root), "downscale", f"expected a positive integer, got {downscale!r}")
    if max_views is not None and (isinstance(max_views, bool) or not isinstance(max_views, int) or max_views < 1):
        raise ConfigError(str(root), "max_views", f"expected a positive integer, got {max_views!r}")
    if not isinstance(white_bg, bool):
        raise ConfigError(str(root), "white_bg", f"expected true or false, got {white_bg!r}")
    meta = _read_split(root, split)
    files, poses = meta.files[:max_views], meta.poses[:max_views]
    first = read_png(files[0])
    size = (int(first.shape[0]), int(first.shape[1]))
    images = torch.stack([_load_image(f, downscale, white_bg, size) for f in files])
    logger.info("blender %s/%s: %d views of %dx%d", root, split, len(files), images.shape[1], images.shape[2])
    return BlenderViews(images, poses, meta.camera_angle_x, files)


@register_reader("blender")
def blender(path: Path, split: str = "test", downscale: int = 1, white_bg: bool = True,
            max_views: int | None = None) -> BlenderViews:
    """Reader ``blender``: one split of a Blender-layout scene (see :func:`load_blender`)."""
    return load_blender(path, split=split, downscale=downscale, white_bg=white_bg, max_views=max_views)


# --------------------------------------------------------------------------- training rays


@dataclass
class RaySet:
    """Every ray of a set of views, flattened: ``rays_o``, ``rays_d``, ``viewdirs``, ``rgb`` each ``[N, 3]``."""

    rays_o: torch.Tensor
    rays_d: torch.Tensor
    viewdirs: torch.Tensor
    rgb: torch.Tensor

    @classmethod
    def from_views(cls, views: BlenderViews) -> RaySet:
        """All rays (view-major, then row-major pixels) of ``views`` with their target colours."""
        rays = views.rays()
        return cls(*(rays[k].reshape(-1, 3) for k in ("rays_o", "rays_d", "viewdirs")), views.images.reshape(-1, 3))

    def __len__(self) -> int:
        return int(self.rgb.shape[0])

    def subset(self, keep: torch.Tensor) -> RaySet:
        """The rays where the boolean mask ``keep [N]`` is true."""
        return RaySet(self.rays_o[keep], self.rays_d[keep], self.viewdirs[keep], self.rgb[keep])

    def mean_color(self) -> torch.Tensor:
        """Mean target colour ``[3]`` (the constant-colour baseline's prediction)."""
        return self.rgb.double().mean(0).float()


def ray_batch(rays: RaySet, step: int, batch_size: int, seed: int,
              device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Batch ``step``: ``batch_size`` rays drawn uniformly with replacement (DVGO's ``random`` sampler).

    The indices depend only on ``(seed, step)`` (a fresh generator per step), so batches are
    reproducible and a resumed run continues with the same ones.

    Returns:
        ``({"rays_o", "rays_d", "viewdirs"} each [batch_size, 3], target rgb [batch_size, 3])`` on ``device``.
    """
    if len(rays) == 0:
        raise ValueError("no rays to sample from")
    gen = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(step)) % (2**63))
    index = torch.randint(len(rays), (int(batch_size),), generator=gen)
    inputs = {"rays_o": rays.rays_o[index], "rays_d": rays.rays_d[index], "viewdirs": rays.viewdirs[index]}
    return {k: v.to(device) for k, v in inputs.items()}, rays.rgb[index].to(device)


def iter_ray_batches(rays: RaySet, batch_size: int, seed: int, start_step: int = 0,
                     device: torch.device | str = "cpu") -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Endless :func:`ray_batch` batches from ``start_step`` on."""
    step = int(start_step)
    while True:
        yield ray_batch(rays, step, batch_size, seed, device)
        step += 1
