"""OTTT (``pkuxmq/OTTT-SNN`` @ c15d5da) checkpoints -> ``ottt_vgg11_ws`` / ``ottt_vgg11f_ws`` / ``ottt_nfresnet34``.

Upstream layout (``train_cifar.py``/``train_imagenet.py`` save ``{"net": net.state_dict(), "optimizer",
"lr_scheduler", "epoch", "max_test_acc"}``, all ``weights_only``-safe; ``module.`` prefixes of DDP runs
are dropped). With ``grad_with_rate=True`` (every published run) each synaptic layer fed by spikes is
wrapped in ``WrapedSNNOp`` (``models/spiking_vgg.py``), which adds ``.op.`` to its keys:

* ``online_spiking_vgg11_ws``: ``features.0.{weight,bias,gain}`` (first conv, not wrapped),
  ``features.{3,7,10,14,17,21,24}.op.{weight,bias,gain}``, ``classifier.0.op.{weight,bias}``
  (``SequentialModule(Linear)``, ``fc_hw = 1``);
* ``online_spiking_vgg11f_ws``: ``conv1.*``, ``features.{2,6,9,13,16,20,23}.op.*``, ``fb_conv.op.{weight,bias}``,
  ``classifier.0.op.*``;
* ``online_spiking_nfresnet34`` (``models/spiking_resnet_imagenet.py``): ``conv1.*``,
  ``layer{1..4}.{b}.skipinit_gain``, ``layer{s}.{b}.conv{1,2}.op.*``, ``layer{s}.0.downsample.op.*``, ``fc.*``.

Zoo keys are the same without ``.op.`` and with ``classifier.`` for ``classifier.0.``. ``num_classes``,
``in_channels`` and ``width`` (first conv channels / 64) follow from the shapes; the non-light
classifier (``ScaledWSLinear`` 4096 heads) and ``fc_hw > 1`` are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snnprof.convert.base import (
    Converted,
    UpstreamCheckpointError,
    find_state_dict,
    register_converter,
    rename_keys,
    require,
    strip_prefix,
)

__all__ = ["convert_ottt"]

_MODELS = ("ottt_vgg11_ws", "ottt_vgg11f_ws", "ottt_nfresnet34")
_UPSTREAM = "pkuxmq/OTTT-SNN@c15d5da models/spiking_vgg.py, models/spiking_resnet_imagenet.py, train_cifar.py"


def _model_of(state: dict[str, Any]) -> str:
    if "fc.weight" in state:
        return "ottt_nfresnet34"
    return "ottt_vgg11f_ws" if "fb_conv.weight" in state else "ottt_vgg11_ws"


@register_converter("ottt", _MODELS, _UPSTREAM)
def convert_ottt(obj: Any, path: Path, target: str | None = None) -> Converted:
    """Convert an OTTT checkpoint (see the module docstring for the layout)."""
    del target
    raw, _ = find_state_dict(obj, path, ("net", "state_dict", "model"))
    state = rename_keys(strip_prefix(raw), [(r"\.op\.", "."), (r"^classifier\.0\.", "classifier.")])
    model = _model_of(state)
    if any(k.startswith("classifier.") and k.count(".") > 1 for k in state):
        raise UpstreamCheckpointError(str(path), next(k for k in state if k.startswith("classifier.")),
                                      "expected the light classifier (one Linear after average pooling)")
    first = require(state, "conv1.weight" if model != "ottt_vgg11_ws" else "features.0.weight", path,
                    "the first conv's weight")
    head = require(state, "fc.weight" if model == "ottt_nfresnet34" else "classifier.weight", path,
                   "the classifier's weight")
    kwargs: dict[str, Any] = {"num_classes": int(head.shape[0]), "in_channels": int(first.shape[1])}
    if model != "ottt_nfresnet34":
        if head.shape[1] * 64 != 512 * first.shape[0]:
            raise UpstreamCheckpointError(str(path), "classifier.weight", f"expected {8 * first.shape[0]} inputs "
                                          f"(fc_hw = 1), got {head.shape[1]}")
        kwargs["width"] = first.shape[0] / 64
        if kwargs["width"] == 1.0:
            del kwargs["width"]
    notes = ("dropped the WrapedSNNOp '.op.' level of every wrapped layer",)
    return Converted(state, model, kwargs, notes)
