"""Explicit radiance-field grids: DVGO's dense voxel grid and occupancy mask, TensoRF's VM factors.

Sampling is multilinear interpolation written with gathers and elementwise arithmetic (the same values
as ``F.grid_sample(..., align_corners=True)`` inside the grid), so the profiler counts it as elementwise
``flops`` under the module's name (never as MACs) and nothing is reported as unsupported:

* :class:`DenseGrid` (DVGO ``DenseGrid``): trilinear interpolation, 8 corner products and 7 adds per
  output element plus the corner weights per point.
* :class:`MaskGrid` (DVGO ``MaskGrid``): nearest-voxel occupancy lookup.
* :class:`VMField` (TensoRF ``TensorVMSplit``): per component a bilinear plane and a linear line sample and
  their product, summed over components for the density.
* :class:`AlphaMask` (TensoRF ``AlphaGridMask``): trilinear sample of a binary volume, kept where > 0.

Coordinates are world coordinates inside the box ``[xyz_min, xyz_max]`` (scene units); points outside
are clamped to the border voxels (callers only query points inside the box).
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PLANE_AXES",
    "AlphaMask",
    "DenseGrid",
    "MaskGrid",
    "VMField",
    "interp_grid",
    "normalize_coords",
]

logger = logging.getLogger(__name__)

#: TensoRF's (plane axes, line axis) per mode: ``matMode`` and ``vecMode``.
PLANE_AXES: tuple[tuple[tuple[int, int], int], ...] = (((0, 1), 2), ((0, 2), 1), ((1, 2), 0))


def interp_grid(grid: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Multilinear interpolation of ``grid [C, S_1, ..., S_D]`` at continuous voxel indices ``pos [N, D]``.

    Index ``0`` is the first voxel centre and ``S_d - 1`` the last (``align_corners=True``); indices are
    clamped to the grid.

    Args:
        grid: values per voxel, channels first.
        pos: continuous indices per point and axis.

    Returns:
        ``[N, C]`` interpolated values.
    """
    channels, sizes = grid.shape[0], grid.shape[1:]
    flat = grid.reshape(channels, -1)
    strides = [math.prod(sizes[d + 1:]) for d in range(len(sizes))]
    lows, fracs = [], []
    for d, size in enumerate(sizes):
        p = pos[:, d].clamp(min=0, max=size - 1)
        low = p.floor().clamp(max=max(size - 2, 0))
        lows.append(low.long())
        fracs.append(p - low)
    out = None
    for corner in itertools.product((0, 1), repeat=len(sizes)):
        if any(c and size == 1 for c, size in zip(corner, sizes, strict=True)):
            continue
        index = sum((lows[d] + c) * strides[d] for d, c in enumerate(corner))
        weight = math.prod(fracs[d] if c else 1 - fracs[d] for d, c in enumerate(corner))
        term = flat[:, index] * weight
        out = term if out is None else out + term
    assert out is not None
    return out.t()


def normalize_coords(xyz: torch.Tensor, xyz_min: torch.Tensor, xyz_max: torch.Tensor) -> torch.Tensor:
    """Map world points to ``[-1, 1]`` per axis (``grid_sample`` coordinates with ``align_corners``).

    Args:
        xyz: points ``[N, 3]``.
        xyz_min: lower corner of the box ``[3]``.
        xyz_max: upper corner of the box ``[3]``.
    """
    return (xyz - xyz_min) / (xyz_max - xyz_min) * 2 - 1


def _resize_to(module: nn.Module, name: str, incoming: Any, *, parameter: bool) -> None:
    """Replace ``module.<name>`` by an empty tensor shaped like ``incoming`` (same rank and channels)."""
    own = getattr(module, name)
    if not isinstance(incoming, torch.Tensor) or incoming.shape == own.shape or incoming.dim() != own.dim():
        return
    if own.dim() == 5 and incoming.shape[:2] != own.shape[:2]:
        return  # another channel count is a genuine mismatch: let load_state_dict report it
    empty = torch.empty(incoming.shape, dtype=own.dtype, device=own.device)
    if parameter:
        setattr(module, name, nn.Parameter(empty, requires_grad=own.requires_grad))
    else:
        setattr(module, name, empty)


class DenseGrid(nn.Module):
    """A ``[1, C, X, Y, Z]`` voxel grid sampled trilinearly (DVGO ``DenseGrid``).

    Args:
        channels: C, values per voxel (1 for density, 12 for DVGO's feature grid ``k0``).
        world_size: voxels per axis ``(X, Y, Z)``.
        xyz_min: lower corner of the box ``[3]`` (copied into a buffer).
        xyz_max: upper corner of the box.
    """

    def __init__(self, channels: int, world_size: tuple[int, int, int], xyz_min: torch.Tensor,
                 xyz_max: torch.Tensor) -> None:
        super().__init__()
        self.channels = int(channels)
        self.grid = nn.Parameter(torch.zeros(1, self.channels, *world_size))
        self.register_buffer("xyz_min", xyz_min.detach().clone().float())
        self.register_buffer("xyz_max", xyz_max.detach().clone().float())

    @property
    def world_size(self) -> tuple[int, int, int]:
        """Voxels per axis."""
        x, y, z = self.grid.shape[2:]
        return int(x), int(y), int(z)

    def forward(self, xyz: torch.Tensor) -> torch.Tensor:
        """Trilinear samples ``[N, C]`` at world points ``xyz [N, 3]``."""
        size = torch.tensor(self.world_size, dtype=xyz.dtype, device=xyz.device)
        pos = (xyz - self.xyz_min) / (self.xyz_max - self.xyz_min) * (size - 1)
        return interp_grid(self.grid[0], pos)

    @torch.no_grad()
    def scale_volume_grid(self, world_size: tuple[int, int, int]) -> None:
        """Resample the grid to ``world_size`` voxels per axis (DVGO's progressive scaling)."""
        self.grid = nn.Parameter(F.interpolate(self.grid.data, size=tuple(world_size), mode="trilinear",
                                               align_corners=True))

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        """Take a saved grid of another resolution (a progressively scaled run resumed mid-way)."""
        _resize_to(self, "grid", state_dict.get(prefix + "grid"), parameter=True)
        super()._load_from_state_dict(state_dict, prefix, *args)


class MaskGrid(nn.Module):
    """Boolean occupancy cache looked up at the nearest voxel (DVGO ``MaskGrid``); outside is free.

    Args:
        mask: ``[X, Y, Z]`` booleans (True = may be occupied), stored as a buffer.
        xyz_min: lower corner of the box.
        xyz_max: upper corner of the box.
    """

    def __init__(self, mask: torch.Tensor, xyz_min: torch.Tensor, xyz_max: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.to(torch.bool))
        self.register_buffer("xyz_min", xyz_min.detach().clone().float())
        self.register_buffer("xyz_max", xyz_max.detach().clone().float())

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        """Take a saved mask of another resolution (a progressively scaled run resumed mid-way)."""
        _resize_to(self, "mask", state_dict.get(prefix + "mask"), parameter=False)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, xyz: torch.Tensor) -> torch.Tensor:
        """Booleans ``[N]``: the cache value of the voxel nearest to each point (False outside)."""
        xyz_min, xyz_max = self.xyz_min, self.xyz_max
        size = torch.tensor(self.mask.shape, device=xyz.device, dtype=xyz.dtype)
        ijk = torch.round((xyz - xyz_min) / (xyz_max - xyz_min) * (size - 1)).long()
        inside = ((ijk >= 0) & (ijk < size.long())).all(-1)
        ijk = ijk.clamp(min=0)
        ijk = torch.minimum(ijk, size.long() - 1)
        return inside & self.mask[ijk[:, 0], ijk[:, 1], ijk[:, 2]]


class VMField(nn.Module):
    """TensoRF's vector-matrix factors: three (plane, line) pairs with ``n_comp`` components each.

    ``forward`` returns per point the products ``plane * line`` of every component ``[N, 3 * n_comp]``
    (appearance, fed to the basis matrix) or, with ``reduce=True``, their sum ``[N]`` (density feature).

    Args:
        n_comp: components per mode (TensoRF ``n_lamb_sigma`` = 16, ``n_lamb_sh`` = 48).
        grid_size: resolution per axis ``(X, Y, Z)``.
        reduce: sum the products over all components (density) instead of returning them.
        scale: standard deviation of the initial factors (TensoRF uses 0.1).
        generator: RNG for the initial factors (CPU).
    """

    def __init__(self, n_comp: int, grid_size: tuple[int, int, int], *, reduce: bool, scale: float = 0.1,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n_comp = int(n_comp)
        self.reduce = bool(reduce)
        for mode, ((a0, a1), line_axis) in enumerate(PLANE_AXES):
            plane = torch.randn(1, self.n_comp, grid_size[a1], grid_size[a0], generator=generator) * scale
            line = torch.randn(1, self.n_comp, grid_size[line_axis], 1, generator=generator) * scale
            self.register_parameter(f"plane_{mode}", nn.Parameter(plane))
            self.register_parameter(f"line_{mode}", nn.Parameter(line))

    @property
    def planes(self) -> list[nn.Parameter]:
        """The three plane factors ``[1, C, S_a1, S_a0]`` (parameters ``plane_0..2``)."""
        return [getattr(self, f"plane_{mode}") for mode in range(len(PLANE_AXES))]

    @property
    def lines(self) -> list[nn.Parameter]:
        """The three line factors ``[1, C, S_axis, 1]`` (parameters ``line_0..2``)."""
        return [getattr(self, f"line_{mode}") for mode in range(len(PLANE_AXES))]

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Factor products at normalised coordinates ``coords [N, 3]`` in ``[-1, 1]``."""
        parts = []
        for mode, ((a0, a1), line_axis) in enumerate(PLANE_AXES):
            plane, line = self.planes[mode][0], self.lines[mode][0, :, :, 0]  # [C, S_a1, S_a0], [C, S_line]
            scale = torch.tensor([plane.shape[1] - 1, plane.shape[2] - 1], dtype=coords.dtype, device=coords.device)
            plane_pos = (coords[:, [a1, a0]] + 1) / 2 * scale
            line_pos = (coords[:, [line_axis]] + 1) / 2 * (line.shape[1] - 1)
            parts.append(interp_grid(plane, plane_pos) * interp_grid(line, line_pos))
        products = torch.cat(parts, -1)  # [N, 3 * n_comp]
        return products.sum(-1) if self.reduce else products

    @torch.no_grad()
    def scale_grid(self, grid_size: tuple[int, int, int]) -> None:
        """Resample every factor to ``grid_size`` (TensoRF's ``upsample_volume_grid``)."""
        for mode, ((a0, a1), line_axis) in enumerate(PLANE_AXES):
            setattr(self, f"plane_{mode}", nn.Parameter(F.interpolate(
                self.planes[mode].data, size=(grid_size[a1], grid_size[a0]), mode="bilinear", align_corners=True)))
            setattr(self, f"line_{mode}", nn.Parameter(F.interpolate(
                self.lines[mode].data, size=(grid_size[line_axis], 1), mode="bilinear", align_corners=True)))


class AlphaMask(nn.Module):
    """Binary occupancy volume sampled trilinearly; a point is kept where the sample is > 0.

    Args:
        alpha: ``[X, Y, Z]`` volume of 0/1 values (stored as a float buffer).
        xyz_min: lower corner of the box.
        xyz_max: upper corner of the box.
    """

    def __init__(self, alpha: torch.Tensor, xyz_min: torch.Tensor, xyz_max: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("alpha", alpha.to(torch.float32)[None, None])
        self.register_buffer("xyz_min", xyz_min.detach().clone().float())
        self.register_buffer("xyz_max", xyz_max.detach().clone().float())

    def forward(self, xyz: torch.Tensor) -> torch.Tensor:
        """Booleans ``[N]``: True where the trilinear sample at the world point is positive."""
        size = torch.tensor(self.alpha.shape[2:], dtype=xyz.dtype, device=xyz.device)
        pos = (xyz - self.xyz_min) / (self.xyz_max - self.xyz_min) * (size - 1)
        return interp_grid(self.alpha[0], pos)[:, 0] > 0
