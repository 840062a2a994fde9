"""event_flow checkpoints (``tudelft/event_flow`` @ e81f963, its fork ``LSquarzoni/SNN_Event-based_Optical_Flow``).

The fork is read at commit 64b4a15 (the seed's README).

Containers: the fork's ``train_flow.py`` saves ``{"model_state_dict", "optimizer_state_dict", "epoch",
"loss", "config"}`` (``weights_only``-safe); a bare ``model.state_dict()`` is read as well. tudelft's
``save_model`` is ``mlflow.pytorch.log_model``, a pickled whole model (``model/data/model.pth``): it is
refused with instructions (load it with the upstream code and save ``model.state_dict()``).

Upstream keys (``models/model.py``, ``models/spiking_submodules.py``, ``models/unet.py``,
``models/submodules.py``; fork: ``models/SNNtorch_spiking_submodules.py``), per FireNet cell
``X`` in ``head, G1, R1a, R1b, G2, R2a, R2b``:

* tudelft ``ConvLIF``/``ConvLIFRecurrent``: ``X.ff.weight``, ``X.rec.weight`` (G1, G2), ``X.leak``,
  ``X.thresh`` ``[C, 1, 1]``, buffer ``X.act_width`` (scalar); PLIF ``X.leak_v``, ``X.leak_pt``,
  ``X.add_pt``, ``X.thresh``; ALIF ``X.leak_v``, ``X.leak_t``, ``X.t0``, ``X.t1``; XLIF ``X.leak_v``,
  ``X.leak_pt``, ``X.t0``, ``X.t1``;
* fork ``SNNtorch_ConvLIF``: ``X.ff.weight``, ``X.rec.weight``, ``X.lif.beta``, ``X.lif.threshold``
  ``[C, 1, 1]`` and snnTorch buffers ``X.lif.graded_spikes_factor`` (must be 1) and
  ``X.lif.reset_mechanism_val`` (0 subtract, 1 zero); its ONNX ``custom_ConvLIF``: ``X.beta``, ``X.threshold``;
* ANN ``ConvLayer_`` / ``ConvGRU``: ``X.conv2d.*``, ``G.{reset,update,out}_gate.*``;
* ``pred.conv2d.{weight,bias}``; the U-Nets under ``multires_unetrec.`` / ``multires_unet.`` (``encoders.i.
  {conv,recurrent_block}``, ``resblocks.i.conv{1,2}``, ``decoders.i.conv2d``, ``preds.i.conv2d``).

Zoo keys: neuron parameters move under ``X.neuron.`` (``leak`` ... ``threshold``), the U-Net prefixes go,
the ANN EV-FlowNet decoders gain ``.conv.`` (``decoders.i.conv.conv2d``); ``act_width`` buffers are dropped
(the surrogate width is a constructor argument, returned in the kwargs). Quantised (Brevitas) checkpoints
are refused.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from snnprof.convert.base import (
    Converted,
    UpstreamCheckpointError,
    find_state_dict,
    register_converter,
    rename_keys,
    strip_prefix,
)

__all__ = ["convert_event_flow"]

_MODELS = ("lif_firenet", "lif_firenet_short", "lif_fireflownet", "plif_firenet", "alif_firenet", "xlif_firenet",
           "spiking_rec_evflownet", "firenet", "evflownet")
_UPSTREAM = ("tudelft/event_flow@e81f963 models/{model,spiking_submodules,submodules,unet}.py; "
             "LSquarzoni/SNN_Event-based_Optical_Flow@64b4a15 models/SNNtorch_spiking_submodules.py, train_flow.py")

#: Neuron parameter names -> neuron type (tudelft classes).
_NEURON_PARAMS: dict[frozenset[str], str] = {
    frozenset({"leak", "thresh"}): "lif",
    frozenset({"leak_v", "leak_pt", "add_pt", "thresh"}): "plif",
    frozenset({"leak_v", "leak_t", "t0", "t1"}): "alif",
    frozenset({"leak_v", "leak_pt", "t0", "t1"}): "xlif",
    frozenset({"beta", "threshold"}): "leaky",
}
_PARAMS = sorted({p for ps in _NEURON_PARAMS for p in ps}, key=len, reverse=True)
_CELL = r"^((?:encoders\.\d+\.(?:conv|recurrent_block))|(?:resblocks\.\d+\.conv[12])|(?:decoders\.\d+\.conv2d)|\w+)"


def _unwrap(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Drop the U-Net wrapper prefix; return the state and the architecture family."""
    for prefix, family in (("multires_unetrec.", "unet_rec"), ("multires_unet.", "unet")):
        if any(k.startswith(prefix) for k in state):
            return strip_prefix(state, prefix), family
    return state, "firenet"


def _snntorch_buffers(state: dict[str, torch.Tensor], path: Path) -> tuple[dict[str, torch.Tensor], bool | None]:
    """Check and drop snnTorch's buffers; returns ``hard_reset`` (None if absent)."""
    hard: bool | None = None
    out = {}
    for key, value in state.items():
        if key.endswith(".lif.graded_spikes_factor"):
            if not torch.allclose(value.float(), torch.ones_like(value, dtype=torch.float32)):
                raise UpstreamCheckpointError(str(path), key, "expected graded_spikes_factor 1")
        elif key.endswith(".lif.reset_mechanism_val"):
            mech = int(value.reshape(-1)[0])
            if mech not in (0, 1):
                raise UpstreamCheckpointError(str(path), key, "expected reset 'subtract' (0) or 'zero' (1)")
            hard = mech == 1 if hard is None else hard
        else:
            out[key] = value
    return out, hard


def _neurons_to_zoo(state: dict[str, torch.Tensor], path: Path) -> tuple[dict[str, torch.Tensor], str | None,
                                                                         float | None]:
    """``X.<param>`` / ``X.lif.<param>`` -> ``X.neuron.<param>``; returns (state, neuron type, act_width)."""
    out: dict[str, torch.Tensor] = {}
    names: set[str] = set()
    widths: set[float] = set()
    pattern = re.compile(_CELL + r"\.(?:lif\.)?(" + "|".join(_PARAMS) + r"|act_width)$")
    for key, value in state.items():
        found = pattern.match(key)
        if found is None:
            out[key] = value
        elif found.group(2) == "act_width":
            widths.add(round(float(value), 6))
        else:
            out[f"{found.group(1)}.neuron.{found.group(2)}"] = value
            names.add(found.group(2))
    if not names:
        return out, None, None
    kind = _NEURON_PARAMS.get(frozenset(names))
    if kind is None:
        raise UpstreamCheckpointError(str(path), "", f"expected the parameters of one neuron type, got {sorted(names)}")
    if len(widths) > 1:
        raise UpstreamCheckpointError(str(path), "act_width", f"expected one surrogate width, got {sorted(widths)}")
    return out, kind, widths.pop() if widths else None


def _firenet_model(state: dict[str, torch.Tensor], kind: str | None, path: Path) -> tuple[str, dict[str, Any]]:
    """The FireNet-family zoo model and its architecture kwargs."""
    if "head.conv2d.weight" in state:
        head = state["head.conv2d.weight"]
        return "firenet", {"base_channels": int(head.shape[0]), "kernel_size": int(head.shape[-1]),
                           "num_bins": int(head.shape[1])}
    if "head.ff.weight" not in state:
        raise UpstreamCheckpointError(str(path), "head.ff.weight", "expected a FireNet-family or U-Net checkpoint")
    head = state["head.ff.weight"]
    short, recurrent = "R1b.ff.weight" not in state, "G1.rec.weight" in state
    names = {"lif": "lif_firenet", "leaky": "lif_firenet", "plif": "plif_firenet", "alif": "alif_firenet",
             "xlif": "xlif_firenet"}
    model = names.get(kind or "", "lif_firenet")
    if not recurrent:
        if kind not in ("lif", "leaky"):
            raise UpstreamCheckpointError(str(path), "G1.rec.weight", "expected recurrent G1/G2 for this neuron")
        model = "lif_fireflownet"
    elif short:
        if model != "lif_firenet":
            raise UpstreamCheckpointError(str(path), "R1b.ff.weight", "expected R1b/R2b for this neuron")
        model = "lif_firenet_short"
    kwargs: dict[str, Any] = {"base_channels": int(head.shape[0]), "kernel_size": int(head.shape[-1]),
                              "num_bins": int(head.shape[1])}
    if model == "lif_fireflownet" and short:
        kwargs["short"] = True
    return model, kwargs


def _neuron_kwargs(kind: str | None, hard: bool | None, width: float | None) -> dict[str, Any]:
    """``neuron`` / ``neuron_kwargs`` the checkpoint's neurons need."""
    kwargs: dict[str, Any] = {}
    if kind == "lif":
        kwargs["neuron"] = "tudelft"
    elif kind == "leaky":
        kwargs["neuron"] = "snntorch"
    extra: dict[str, Any] = {}
    if hard is False:
        extra["hard_reset"] = False
    if width is not None and kind != "leaky" and not math.isclose(width, 10.0):
        extra["act_width"] = width
    if extra:
        kwargs["neuron_kwargs"] = extra
    return kwargs


@register_converter("event_flow", _MODELS, _UPSTREAM)
def convert_event_flow(obj: Any, path: Path, target: str | None = None) -> Converted:
    """Convert an event_flow checkpoint (see the module docstring for the layouts)."""
    del target
    raw, _ = find_state_dict(obj, path, ("model_state_dict", "state_dict", "model"))
    if any("quant" in k or k.endswith("scaling_impl.value") for k in raw):
        raise UpstreamCheckpointError(str(path), next(k for k in raw if "quant" in k or "scaling" in k),
                                      "expected a float checkpoint (quantised Brevitas layers are not supported)")
    state, family = _unwrap(strip_prefix(raw))
    state, hard = _snntorch_buffers(state, path)
    state, kind, width = _neurons_to_zoo(state, path)
    if family == "unet":
        state = rename_keys(state, [(r"^decoders\.(\d+)\.conv2d\.", r"decoders.\1.conv.conv2d.")])
        head = state["encoders.0.conv2d.weight"]
        model, kwargs = "evflownet", {"base_channels": int(head.shape[0]) // 2, "num_bins": int(head.shape[1]),
                                      "kernel_size": int(head.shape[-1])}
    elif family == "unet_rec":
        head = state["encoders.0.conv.ff.weight"]
        model = "spiking_rec_evflownet"
        kwargs = {"base_channels": int(head.shape[0]) // 2, "num_bins": int(head.shape[1]),
                  "kernel_size": int(head.shape[-1])}
        if kind not in (None, "lif"):
            kwargs["neuron"] = kind
    else:
        model, kwargs = _firenet_model(state, kind, path)
    if model not in ("spiking_rec_evflownet", "firenet", "evflownet"):
        kwargs |= _neuron_kwargs(kind, hard, width)
    elif model == "spiking_rec_evflownet" and width is not None and not math.isclose(width, 10.0):
        kwargs["neuron_kwargs"] = {"act_width": width}
    encoding = _config_encoding(obj)
    if encoding == "voxel":
        kwargs["encoding"] = "voxel"
    notes = ("neuron parameters moved under '<cell>.neuron.'; act_width buffers dropped (a constructor argument)",)
    return Converted(state, model, kwargs, notes)


def _config_encoding(obj: Any) -> str | None:
    """``config.model.encoding`` of the fork's checkpoint (``cnt`` and ``voxel`` both have ``num_bins`` inputs)."""
    config = obj.get("config") if isinstance(obj, dict) else None
    model = config.get("model") if isinstance(config, dict) else None
    encoding = model.get("encoding") if isinstance(model, dict) else None
    return encoding if isinstance(encoding, str) else None
