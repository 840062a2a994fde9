"""Tiny NeRF zoo models and renders shared by the tests of tests/nerf (kept small: the suite must stay fast)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from snnprof.models import create_model, get_entry

#: Small DVGO grids (24^3 voxels), several chunks per view.
TINY_D: dict[str, Any] = {"num_voxels": 24**3, "chunk": 96, "init": "scene", "seed": 0}
#: Small TensoRF factors.
TINY_T: dict[str, Any] = {"grid_size": 24, "chunk": 96, "init": "scene", "seed": 0}
IMAGE = 12
VIEWS = 2


def tiny(name: str, **kwargs: Any) -> nn.Module:
    """An eval-mode zoo model with the tiny defaults of its family."""
    base = TINY_T if name in ("spikingnerf_t", "tensorf_ann") else TINY_D
    return create_model(name, **{**base, **kwargs}).eval()


def rays(model: nn.Module, views: int = VIEWS, image: int = IMAGE, seed: int = 0) -> dict[str, torch.Tensor]:
    """The zoo's synthetic rays for ``views`` views of ``image`` x ``image`` pixels."""
    return get_entry("spikingnerf_d").make_inputs(model, views, 1, seed, image_size=image)


@pytest.fixture(scope="session")
def tiny_rays() -> dict[str, torch.Tensor]:
    """Rays shared by the session (identical for every model family)."""
    return rays(nn.Linear(1, 1))
