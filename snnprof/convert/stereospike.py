"""StereoSpike (``urancon/StereoSpike`` @ 6254fec) checkpoints -> ``stereospike`` / ``stereospike_ann``.

Upstream layout: ``train.py`` saves ``torch.save(net.state_dict(), "./results/checkpoints/stereospike.pth")``
(a bare state dict; ``module.`` prefixes of ``nn.DataParallel`` runs are dropped). Module names and
``nn.Sequential`` indices (``network/SNN_models.py``, ``network/ANN_models.py``, ``network/blocks.py``):

* ``StereoSpike``: ``bottom.0.weight`` ``[32, 4, 5, 5]``, ``conv{1..4}.0.weight``,
  ``bottleneck.{0,1}.conv{1,2}.0.weight``, ``deconv{4..1}.0.up.1.weight`` (``NNConvUpsampling``),
  ``predict_depth{4..1}.0.up.1.{weight,bias}``; IF neurons and ``MultiplyBy(1.0)`` hold no state.
* the monocular class (``fromZero_feedforward_multiscale_tempo_monocular_SpikeFlowNetLike``): the same
  with ``bottom.0.weight`` ``[32, 2, 5, 5]`` and the PLIF SEW neurons' ``bottleneck.{b}.sn{1,2}.w``;
  with ``use_plif`` also ``{bottom,conv1..4,deconv1..4}.2.w``.
* ``StereoSpike_equivalentANN``: conv biases, ``*.2.{weight,bias,running_mean,running_var,
  num_batches_tracked}`` BatchNorm, ``bottleneck.{b}.conv{c}.{0,2}.*``; decoder convs without bias.

The zoo keeps these names, so the conversion checks the layout and derives ``monocular`` /
``monocular_neuron``; a learnable ``MultiplyBy`` (``*.1.scale_value``) has no zoo counterpart and is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snnprof.convert.base import (
    Converted,
    UpstreamCheckpointError,
    find_state_dict,
    register_converter,
    require,
    strip_prefix,
)

__all__ = ["convert_stereospike"]

_UPSTREAM = "urancon/StereoSpike@6254fec network/SNN_models.py, network/ANN_models.py, network/blocks.py, train.py"


@register_converter("stereospike", ("stereospike", "stereospike_ann"), _UPSTREAM)
def convert_stereospike(obj: Any, path: Path, target: str | None = None) -> Converted:
    """Convert a StereoSpike checkpoint (see the module docstring for the layout)."""
    del target
    raw, _ = find_state_dict(obj, path, ("state_dict", "model", "net"))
    state = strip_prefix(raw)
    scaled = [k for k in state if k.endswith("scale_value")]
    if scaled:
        raise UpstreamCheckpointError(str(path), scaled[0], "expected MultiplyBy without a learnable factor")
    bottom = require(state, "bottom.0.weight", path, "the bottom conv's weight [32, C, 5, 5]")
    channels = int(bottom.shape[1])
    if channels not in (2, 4):
        raise UpstreamCheckpointError(str(path), "bottom.0.weight", f"expected 4 (binocular) or 2 (monocular) "
                                                                    f"input channels, got {channels}")
    kwargs: dict[str, Any] = {"monocular": True} if channels == 2 else {}
    if any(k.endswith("running_mean") for k in state):
        return Converted(state, "stereospike_ann", kwargs, ("StereoSpike_equivalentANN layout",))
    sew_plif = "bottleneck.0.sn1.w" in state
    layer_plif = "bottom.2.w" in state
    if channels == 4 and (sew_plif or layer_plif):
        raise UpstreamCheckpointError(str(path), "bottleneck.0.sn1.w", "expected IF neurons (no PLIF 'w') in the "
                                                                       "binocular StereoSpike")
    if channels == 2:
        kwargs["monocular_neuron"] = "plif" if layer_plif else "lif" if sew_plif else "if"
    return Converted(state, "stereospike", kwargs, ("module names unchanged (the zoo keeps the seed's)",))
