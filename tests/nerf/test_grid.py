"""Grid sampling equals DVGO's / TensoRF's ``F.grid_sample(align_corners=True)`` and is fully counted."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import snnprof
from snnprof.models.nerf_grid import PLANE_AXES, AlphaMask, DenseGrid, MaskGrid, VMField, normalize_coords

LO, HI = torch.tensor([-1.0, -0.5, -2.0]), torch.tensor([1.0, 1.5, 0.0])


def points(n: int = 200) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return LO + (HI - LO) * torch.rand(n, 3, generator=gen)


def test_dense_grid_matches_dvgo_grid_sample() -> None:
    grid = DenseGrid(4, (5, 7, 6), LO, HI)
    grid.grid.data.normal_(generator=torch.Generator().manual_seed(0))
    xyz = points()
    ind = normalize_coords(xyz, LO, HI).flip(-1).reshape(1, 1, 1, -1, 3)
    expected = F.grid_sample(grid.grid, ind, mode="bilinear", align_corners=True).reshape(4, -1).t()
    torch.testing.assert_close(grid(xyz), expected, rtol=1e-5, atol=1e-5)


def test_vm_field_matches_tensorf_grid_sample() -> None:
    field = VMField(3, (6, 5, 7), reduce=False, scale=1.0, generator=torch.Generator().manual_seed(0))
    coords = normalize_coords(points(), LO, HI)
    parts = []
    for mode, ((a0, a1), line_axis) in enumerate(PLANE_AXES):  # TensoRF compute_appfeature
        plane_xy = coords[:, [a0, a1]].reshape(1, -1, 1, 2)
        line_xy = torch.stack([torch.zeros_like(coords[:, line_axis]), coords[:, line_axis]], -1).reshape(1, -1, 1, 2)
        plane = F.grid_sample(field.planes[mode], plane_xy, align_corners=True).reshape(3, -1)
        line = F.grid_sample(field.lines[mode], line_xy, align_corners=True).reshape(3, -1)
        parts.append(plane * line)
    expected = torch.cat(parts).t()
    torch.testing.assert_close(field(coords), expected, rtol=1e-5, atol=1e-5)
    field.reduce = True
    torch.testing.assert_close(field(coords), expected.sum(-1), rtol=1e-5, atol=1e-5)


def test_masks_and_counting() -> None:
    mask = torch.zeros(5, 5, 5, dtype=torch.bool)
    mask[2, 2, 2] = True
    centre = (LO + HI) / 2
    cache = MaskGrid(mask, LO, HI)
    alpha = AlphaMask(mask.float(), LO, HI)
    probe = torch.stack([centre, LO, HI + 1])
    assert cache(probe).tolist() == [True, False, False]
    assert alpha(probe[:2]).tolist() == [True, False]
    result = snnprof.profile(DenseGrid(2, (4, 4, 4), LO, HI), points(10), strict=True)
    assert result.totals.macs == 0 and result.totals.flops >= 15 * 10 * 2 and result.unsupported == []
