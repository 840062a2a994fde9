"""SpikingNeRF (``Ikarosy/SpikingNeRF-of-CASIA`` @ 432393c) checkpoints -> the zoo's SpikingNeRF models.

Zoo models: ``spikingnerf_d``, ``dvgo_ann``, ``spikingnerf_t``, ``tensorf_ann``.

**SpikingNeRF-D / DVGO** (``SpikingNeRF-D/run.py`` saves ``fine_last.tar``: ``{"global_step", "model_kwargs",
"model_state_dict", "optimizer_state_dict"}``; ``model_kwargs`` holds numpy ``xyz_min``/``xyz_max``, read with
numpy's array reconstruction allowlisted). ``lib/spiking_dvgo.py`` / ``lib/dvgo.py`` / ``lib/grid.py`` keys:
``xyz_min``, ``xyz_max``, ``act_shift``, ``viewfreq`` (the PE frequencies), ``density.{grid,xyz_min,xyz_max}``,
``k0.{grid,xyz_min,xyz_max}``, ``mask_cache.{mask,xyz2ijk_scale,xyz2ijk_shift}`` and the colour MLP:

* ``RGBnet`` (spiking): ``rgbnet.layer1.0.weight`` (Linear 39 -> 128), ``rgbnet.layer1.1.w`` (PLIF only),
  ``rgbnet.layer2.{i}.0.weight``, ``rgbnet.layer2.{i}.1.w``, ``rgbnet.layer3.weight`` -> zoo
  ``rgbnet.layer1.weight``, ``rgbnet.lif1.w``, ``rgbnet.hidden.{i}.0.weight``, ``rgbnet.hidden.{i}.1.w``,
  ``rgbnet.layer3.weight``;
* DVGO's ReLU ``rgbnet.{0,2.i.0,3}.{weight,bias}``: unchanged.

``viewfreq`` is dropped (checked against ``2^i``), the cache's ``xyz2ijk_scale/shift`` become its box
(``xyz_min = -shift / scale``). ``model_kwargs`` give ``num_voxels``, ``num_voxels_base``, the box,
``alpha_init``, the thresholds, the MLP sizes and ``condensing`` (``layout``), ``tempo_flip``, ``lif_type``;
``ray_tempo_unmatch``, ``rgbnet_direct = False`` and non-dense grids have no zoo counterpart and are refused.

**SpikingNeRF-T / TensoRF** (``SpikingNeRF-T/models/tensorBase.py save``: ``{"kwargs", "state_dict",
"alphaMask.shape", "alphaMask.mask" (numpy packbits), "alphaMask.aabb"}``): ``density_plane.{i}``,
``density_line.{i}``, ``app_plane.{i}``, ``app_line.{i}``, ``basis_mat.weight`` and ``renderModule.
layer{1,2,3}.0.weight`` (``MLPRender_Fea_Spiking``) or ``renderModule.mlp.{0,2,4}.weight`` (``MLPRender_Fea``)
-> ``density_field.plane_{i}`` ..., ``render_module.{layer1, hidden.0.0, layer3}.weight`` /
``render_module.{0, 2.0, 3}.weight``. The alpha volume (stored ``[1, 1, Z, Y, X]``, TensoRF's
``grid_sample`` order) is unpacked and transposed to the zoo's ``[1, 1, X, Y, Z]``; its box becomes
``alpha_mask.xyz_min/max`` and the model box comes from ``kwargs["aabb"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
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

__all__ = ["convert_spikingnerf"]

_MODELS = ("spikingnerf_d", "dvgo_ann", "spikingnerf_t", "tensorf_ann")
_UPSTREAM = ("Ikarosy/SpikingNeRF-of-CASIA@432393c SpikingNeRF-D/{run.py, lib/spiking_dvgo.py, lib/grid.py}, "
             "SpikingNeRF-T/models/tensorBase.py; DVGO lib/dvgo.py")
_SNN_MLP = [(r"^rgbnet\.layer1\.0\.", "rgbnet.layer1."), (r"^rgbnet\.layer1\.1\.", "rgbnet.lif1."),
            (r"^rgbnet\.layer2\.(\d+)\.", r"rgbnet.hidden.\1.")]
_T_MLP = [(r"^renderModule\.layer1\.0\.", "render_module.layer1."), (r"^renderModule\.layer2\.0\.",
          "render_module.hidden.0.0."), (r"^renderModule\.layer3\.0\.", "render_module.layer3."),
          (r"^renderModule\.mlp\.0\.", "render_module.0."), (r"^renderModule\.mlp\.2\.", "render_module.2.0."),
          (r"^renderModule\.mlp\.4\.", "render_module.3."),
          (r"^(density|app)_(plane|line)\.(\d)$", r"\1_field.\2_\3")]


def _listed(value: Any) -> Any:
    """Numpy arrays / tensors -> nested Python lists of floats (for the kwargs)."""
    if isinstance(value, np.ndarray | torch.Tensor):
        return [float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1)]
    return value


# --------------------------------------------------------------------------- D


def _d_kwargs(kw: Mapping[str, Any], path: Path, spiking: bool) -> dict[str, Any]:
    """Zoo kwargs of DVGO's ``model_kwargs``; refuses what the zoo cannot build."""
    refused = {"ray_tempo_unmatch": True, "rgbnet_full_implicit": True, "rgbnet_direct": False}
    for key, bad in refused.items():
        if kw.get(key, not bad) == bad:
            raise UpstreamCheckpointError(str(path), f"model_kwargs.{key}", f"expected {not bad} (the zoo's DVGO)")
    for key in ("density_type", "k0_type"):
        if kw.get(key, "DenseGrid") != "DenseGrid":
            raise UpstreamCheckpointError(str(path), f"model_kwargs.{key}", "expected 'DenseGrid'")
    out: dict[str, Any] = {"init": "dvgo"}
    for ours, theirs in (("num_voxels", "num_voxels"), ("num_voxels_base", "num_voxels_base"),
                         ("alpha_init", "alpha_init"), ("fast_color_thres", "fast_color_thres"),
                         ("mask_cache_thres", "mask_cache_thres"), ("rgbnet_dim", "rgbnet_dim"),
                         ("rgbnet_depth", "rgbnet_depth"), ("rgbnet_width", "rgbnet_width"),
                         ("viewbase_pe", "viewbase_pe")):  # fmt: skip
        if theirs in kw:
            value = kw[theirs]
            out[ours] = int(value) if isinstance(value, int | np.integer) else float(value)
    if "xyz_min" in kw and "xyz_max" in kw:
        out["bbox"] = [_listed(kw["xyz_min"]), _listed(kw["xyz_max"])]
    if spiking:
        out["layout"] = "tcp" if kw.get("condensing", False) else "tp"
        out["tempo_flip"] = bool(kw.get("tempo_flip", False))
        out["lif_type"] = str(kw.get("lif_type", "lif"))
    return out


def _cache_box(state: dict[str, torch.Tensor], path: Path) -> None:
    """``mask_cache.xyz2ijk_scale/shift`` -> ``mask_cache.xyz_min/xyz_max`` (DVGO's ``MaskGrid``)."""
    mask = require(state, "mask_cache.mask", path, "the occupancy cache")
    scale = state.pop("mask_cache.xyz2ijk_scale", None)
    shift = state.pop("mask_cache.xyz2ijk_shift", None)
    if scale is None or shift is None:
        state["mask_cache.xyz_min"], state["mask_cache.xyz_max"] = state["xyz_min"].clone(), state["xyz_max"].clone()
        return
    lo = -shift / scale
    state["mask_cache.xyz_min"] = lo.float()
    state["mask_cache.xyz_max"] = (lo + (torch.tensor(mask.shape, dtype=scale.dtype) - 1) / scale).float()


def _convert_d(obj: Any, path: Path) -> Converted:
    raw, _ = find_state_dict(obj, path, ("model_state_dict", "state_dict"))
    state = strip_prefix(raw)
    if not any(k.startswith("rgbnet.") for k in state):
        raise UpstreamCheckpointError(str(path), "rgbnet", "expected a fine-stage checkpoint (a colour MLP "
                                                           "'rgbnet'); the coarse stage has none")
    spiking = "rgbnet.layer1.0.weight" in state
    freq = state.pop("viewfreq", None)
    if freq is not None and not torch.equal(freq.float(), 2.0 ** torch.arange(freq.numel(), dtype=torch.float32)):
        raise UpstreamCheckpointError(str(path), "viewfreq", "expected the frequencies 2^i")
    if spiking:
        state = rename_keys(state, _SNN_MLP)
    _cache_box(state, path)
    kw = obj.get("model_kwargs") if isinstance(obj, Mapping) else None
    kwargs = _d_kwargs(kw if isinstance(kw, Mapping) else {}, path, spiking)
    if freq is not None:
        kwargs["viewbase_pe"] = int(freq.numel())
    notes = ["dropped viewfreq and the cache's xyz2ijk_scale/shift (recomputed from the box)"]
    if not isinstance(kw, Mapping):
        notes.append("no model_kwargs: set num_voxels, num_voxels_base and bbox to the training run's")
    notes.append("stepsize is a render setting of the seed's config (fine_model_and_render.stepsize, 0.5)")
    return Converted(state, "spikingnerf_d" if spiking else "dvgo_ann", kwargs, tuple(notes), ("mask_cache.mask",))


# --------------------------------------------------------------------------- T


def _same(values: Any, key: str, path: Path) -> int:
    items = [int(v) for v in (values if isinstance(values, list | tuple) else [values])]
    if len(set(items)) != 1:
        raise UpstreamCheckpointError(str(path), f"kwargs.{key}",
                                      f"expected one count for all three modes, got {items}")
    return items[0]


def _t_kwargs(kw: Mapping[str, Any], path: Path) -> tuple[str, dict[str, Any]]:
    shading = kw.get("shadingMode")
    models = {"MLP_Fea_Spiking": "spikingnerf_t", "MLP_Fea": "tensorf_ann"}
    if shading not in models:
        raise UpstreamCheckpointError(str(path), "kwargs.shadingMode", f"expected one of {', '.join(models)}, "
                                                                       f"got {shading!r}")
    if kw.get("fea2denseAct", "softplus") != "softplus":
        raise UpstreamCheckpointError(str(path), "kwargs.fea2denseAct", "expected 'softplus'")
    aabb = kw["aabb"]
    out: dict[str, Any] = {"init": "tensorf", "grid_size": [int(v) for v in kw["gridSize"]],
                           "bbox": [_listed(aabb[0]), _listed(aabb[1])]}
    scalars = (("app_dim", "app_dim", int), ("view_pe", "view_pe", int), ("fea_pe", "fea_pe", int),
               ("feature_c", "featureC", int), ("density_shift", "density_shift", float),
               ("distance_scale", "distance_scale", float), ("step_ratio", "step_ratio", float),
               ("ray_march_weight_thres", "rayMarch_weight_thres", float),
               ("alpha_mask_thres", "alphaMask_thres", float))  # fmt: skip
    out |= {ours: kind(kw[theirs]) for ours, theirs, kind in scalars if theirs in kw}
    out["density_n_comp"] = _same(kw.get("density_n_comp", 16), "density_n_comp", path)
    out["app_n_comp"] = _same(kw.get("appearance_n_comp", 48), "appearance_n_comp", path)
    if "near_far" in kw:
        out["near"], out["far"] = (float(v) for v in kw["near_far"])
    return models[str(shading)], out


def _alpha_mask(obj: Mapping[str, Any], state: dict[str, torch.Tensor], kwargs: dict[str, Any]) -> None:
    """Unpack TensoRF's alpha volume ``[1, 1, Z, Y, X]`` into ``alpha_mask.*`` (``[1, 1, X, Y, Z]``)."""
    lo, hi = (torch.tensor(v, dtype=torch.float32) for v in kwargs["bbox"])
    if "alphaMask.mask" not in obj:
        state["alpha_mask.alpha"] = torch.ones(1, 1, *kwargs["grid_size"])
        state["alpha_mask.xyz_min"], state["alpha_mask.xyz_max"] = lo, hi
        return
    shape = tuple(int(s) for s in obj["alphaMask.shape"])
    bits = np.unpackbits(np.asarray(obj["alphaMask.mask"], dtype=np.uint8))[: int(np.prod(shape))]
    volume = torch.from_numpy(bits.reshape(shape).astype(np.float32)).reshape(1, 1, *shape[-3:])
    state["alpha_mask.alpha"] = volume.permute(0, 1, 4, 3, 2).contiguous()
    box = obj["alphaMask.aabb"].float()
    state["alpha_mask.xyz_min"], state["alpha_mask.xyz_max"] = box[0].clone(), box[1].clone()
    kwargs["alpha_mask_size"] = [int(s) for s in shape[-3:][::-1]]


def _convert_t(obj: Mapping[str, Any], path: Path) -> Converted:
    raw, _ = find_state_dict(obj, path, ("state_dict",))
    kw = obj.get("kwargs")
    if not isinstance(kw, Mapping):
        raise UpstreamCheckpointError(str(path), "kwargs", "expected TensoRF's kwargs next to the state dict")
    model, kwargs = _t_kwargs(kw, path)
    state = rename_keys(strip_prefix(raw), _T_MLP)
    lo, hi = (torch.tensor(v, dtype=torch.float32) for v in kwargs["bbox"])
    state["xyz_min"], state["xyz_max"] = lo, hi
    _alpha_mask(obj, state, kwargs)
    notes = ("TensoRF's aabb and alpha volume (unpacked, transposed to [X, Y, Z]) became buffers",)
    return Converted(state, model, kwargs, notes)


@register_converter("spikingnerf", _MODELS, _UPSTREAM)
def convert_spikingnerf(obj: Any, path: Path, target: str | None = None) -> Converted:
    """Convert a SpikingNeRF-D (DVGO ``.tar``) or SpikingNeRF-T (TensoRF) checkpoint (see the module docstring)."""
    del target
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping) and "kwargs" in obj:
        return _convert_t(obj, path)
    return _convert_d(obj, path)
