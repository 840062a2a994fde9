"""NeRF re-implementation (``Enigmatisms/NeRF`` @ 6ff95e5) checkpoints -> the zoo's NeRF baselines.

Zoo models: ``nerf_mlp``, ``refnerf``, ``mipnerf360_proposal``.

Upstream layout: ``nerf/nerf_helper.py saveModel`` writes ``{"model": state_dict, "optimizer", "amp",
"train_cnt", "epoch"}`` (``train.py`` saves ``*_mip.pt(h)`` and ``*_prop.pt(h)``; ``ddp_train.py`` adds
``module.``). Every MLP is an ``nn.Sequential`` of ``makeMLP`` blocks ``[Linear, act]``:

* ``MipNeRF`` (``nerf/mip_model.py``): ``lin_block1.{0,2,4,6}``, ``lin_block2.{0,2,4}``, ``bottle_neck.0``,
  ``opacity_head.0``, ``rgb_layer.{0,2}`` (``.weight``/``.bias``);
* ``RefNeRF`` (``nerf/ref_model.py``): ``spa_block{1,2}.{0,2,4,6}``, ``rho_tau_head``,
  ``norm_col_tint_head``, ``bottle_neck``, ``spec_rgb_head.0``, ``dir_block{1,2}.{0,2,4,6}``;
* ``ProposalNetwork`` (``nerf/addtional.py``): ``layers.{0,2,4,6,8}``.

Zoo keys differ only for the MipNeRF's ``bottle_neck.0`` / ``opacity_head.0`` (plain ``Linear`` here). The
**encodings** differ: upstream ``positional_encoding`` (``nerf/nerf_helper.py``) orders
``[x, sin(2^0 x), cos(2^0 x), sin(2^1 x), cos(2^1 x), ...]`` (frequency-major, sin/cos interleaved, each
over xyz); the zoo's ``frequency_encoding`` orders ``[x, sin(x_0 2^0), sin(x_0 2^1), ..., cos(...)]``
(sines then cosines, coordinate-major, as DVGO's). The converter permutes the input columns of every
layer that reads an encoding: the position PE (63 = 3 + 6 x 10) of ``lin_block1.0``, ``lin_block2.0``,
``spa_block1.0``, ``spa_block2.0``, ``layers.0`` and the direction PE (27 = 3 + 6 x 4) of ``rgb_layer.0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from snnprof.convert.base import (
    Converted,
    UpstreamCheckpointError,
    find_state_dict,
    register_converter,
    rename_keys,
    require,
    strip_prefix,
)

__all__ = ["convert_nerf", "encoding_permutation"]

_UPSTREAM = "Enigmatisms/NeRF@6ff95e5 nerf/{mip_model,ref_model,addtional,nerf_helper}.py, train.py"
_POSITION_FLEVEL = 10
_DIRECTION_FLEVEL = 4


def encoding_permutation(levels: int) -> torch.Tensor:
    """Column ``j`` of the zoo's ``[x, PE(x)]`` is column ``perm[j]`` of the seed's (``3 + 6 levels`` columns)."""
    perm = list(range(3))
    for func in (0, 1):  # zoo: all sines, then all cosines
        for coord in range(3):  # grouped per coordinate
            perm.extend(3 + 6 * k + 3 * func + coord for k in range(levels))  # seed: per frequency [sin xyz, cos xyz]
    return torch.tensor(perm)


def _permute_columns(state: dict[str, torch.Tensor], key: str, start: int, levels: int, path: Path) -> None:
    """Reorder the ``3 + 6 levels`` encoding columns of ``state[key]`` that begin at column ``start``."""
    weight = require(state, key, path, "a Linear weight reading an encoding")
    width = 3 + 6 * levels
    if weight.shape[1] < start + width:
        raise UpstreamCheckpointError(str(path), key, f"expected at least {start + width} input columns "
                                                      f"(PE with {levels} frequencies), got {weight.shape[1]}")
    cols = weight[:, start:start + width][:, encoding_permutation(levels)]
    state[key] = torch.cat([weight[:, :start], cols, weight[:, start + width:]], 1)


def _model_of(state: dict[str, torch.Tensor], path: Path) -> str:
    if "lin_block1.0.weight" in state:
        return "nerf_mlp"
    if "spa_block1.0.weight" in state:
        return "refnerf"
    if "layers.0.weight" in state:
        return "mipnerf360_proposal"
    raise UpstreamCheckpointError(str(path), "", "expected a MipNeRF, RefNeRF or ProposalNetwork state dict")


def _check_position_pe(state: dict[str, torch.Tensor], key: str, path: Path) -> int:
    """The hidden width; the first layer must read ``3 + 6 * 10`` position features."""
    weight = require(state, key, path, "the first Linear's weight")
    if weight.shape[1] != 3 + 6 * _POSITION_FLEVEL:
        raise UpstreamCheckpointError(str(path), key, f"expected {3 + 6 * _POSITION_FLEVEL} inputs (position_flevel "
                                                      f"10, cat_origin), got {weight.shape[1]}")
    return int(weight.shape[0])


@register_converter("nerf", ("nerf_mlp", "refnerf", "mipnerf360_proposal"), _UPSTREAM)
def convert_nerf(obj: Any, path: Path, target: str | None = None) -> Converted:
    """Convert an Enigmatisms/NeRF checkpoint (see the module docstring for the layout and encodings)."""
    del target
    raw, _ = find_state_dict(obj, path, ("model", "state_dict"))
    state = strip_prefix(raw)
    model = _model_of(state, path)
    if model == "nerf_mlp":
        hidden = _check_position_pe(state, "lin_block1.0.weight", path)
        state = rename_keys(state, [(r"^(bottle_neck|opacity_head)\.0\.", r"\1.")])
        _permute_columns(state, "lin_block1.0.weight", 0, _POSITION_FLEVEL, path)
        _permute_columns(state, "lin_block2.0.weight", 0, _POSITION_FLEVEL, path)
        _permute_columns(state, "rgb_layer.0.weight", 256, _DIRECTION_FLEVEL, path)
        kwargs: dict[str, Any] = {"hidden": hidden}
    elif model == "refnerf":
        hidden = _check_position_pe(state, "spa_block1.0.weight", path)
        for key in ("spa_block1.0.weight", "spa_block2.0.weight"):
            _permute_columns(state, key, 0, _POSITION_FLEVEL, path)
        bottle = require(state, "bottle_neck.weight", path, "the bottleneck Linear")
        ide = require(state, "dir_block1.0.weight", path, "the first directional Linear").shape[1] - 1 - bottle.shape[0]
        level = next((lv for lv in range(1, 6) if ((1 << lv) - 1 + lv) << 1 == ide), None)
        if level is None:
            raise UpstreamCheckpointError(str(path), "dir_block1.0.weight", f"expected an IDE width of "
                                          f"((1 << L) - 1 + L) << 1, got {ide}")
        kwargs = {"hidden": hidden, "bottle_neck_dim": int(bottle.shape[0]), "ide_level": level}
        if state["spa_block2.6.weight"].shape[0] != hidden:
            raise UpstreamCheckpointError(str(path), "spa_block2.6.weight", "expected output_dim = hidden_unit")
    else:
        hidden = _check_position_pe(state, "layers.0.weight", path)
        _permute_columns(state, "layers.0.weight", 0, _POSITION_FLEVEL, path)
        kwargs = {"hidden": hidden}
    notes = ("positional-encoding columns reordered to the zoo's [sin..., cos...] per coordinate",)
    return Converted(state, model, kwargs, notes)
