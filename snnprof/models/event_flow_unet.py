"""Multi-resolution U-Nets of event_flow: the ANN EV-FlowNet and the spiking recurrent EV-FlowNet.

Re-implementation of ``tudelft/event_flow`` ``MultiResUNet`` / ``SpikingMultiResUNetRecurrent``
(``docs/seed_models.md`` section 4.1) for profiling. With ``C = base_channels`` and ``n`` encoders:

* encoders ``i = 0..n-1``: stride-2 conv ``C_in -> C * 2**(i+1)`` (``C_in = num_bins`` for ``i = 0``);
  the spiking net follows each by a recurrent spiking cell (``C_out -> C_out`` ff + rec convs);
* two residual blocks of two 3x3 convs at ``C * 2**n`` channels;
* decoders ``i``: ``cat([x, skip_i] (+ previous prediction))``, bilinear x2, conv to
  ``C * 2**(n-1-i)``; each decoder feeds a ``ConvLayer(k1, tanh)`` flow prediction;
* predictions are upsampled (nearest) to the input resolution; the last one is full resolution.

Inputs whose sides are not multiples of ``2**n`` are zero-padded (centred) and the flows cropped
back, like the seed's ``CropParameters``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.models.event_flow_cells import (
    ConvLayer,
    NeuronFactory,
    ResidualBlock,
    SpikingRecurrentConvLayer,
    SpikingResidualBlock,
    SpikingUpsampleConvLayer,
    UpsampleConvLayer,
)
from snnprof.models.event_flow_nets import RecurrentFlowNet

__all__ = ["EVFlowNet", "SpikingRecEVFlowNet", "unet_channels"]


def unet_channels(base_channels: int, num_encoders: int) -> tuple[list[int], list[int]]:
    """Encoder input and output channels ``([C * 2**i], [C * 2**(i+1)])`` for ``i < num_encoders``."""
    ins = [base_channels * 2**i for i in range(num_encoders)]
    return ins, [c * 2 for c in ins]


def _pad_amounts(size: int, multiple: int) -> tuple[int, int]:
    """Centred zero padding ``(before, after)`` bringing ``size`` to a multiple of ``multiple``."""
    extra = -size % multiple
    return (extra + 1) // 2, extra // 2


class _MultiResBase(RecurrentFlowNet):
    """Shared input padding, decoder loop and flow upsampling of the two U-Nets."""

    def __init__(self, num_bins: int, encoding: str, num_states: int, num_encoders: int) -> None:
        super().__init__(num_bins, encoding, num_states)
        self.num_encoders = int(num_encoders)
        self.flow_upsample = nn.ModuleList(
            nn.Upsample(scale_factor=2 ** (num_encoders - 1 - i), mode="nearest") for i in range(num_encoders - 1)
        )

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """Zero-pad ``x`` to multiples of ``2**num_encoders``; returns the padded tensor and the crop box."""
        h, w = x.shape[-2:]
        top, bottom = _pad_amounts(h, 2**self.num_encoders)
        left, right = _pad_amounts(w, 2**self.num_encoders)
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return x, (top, top + h, left, left + w)

    def _full_resolution(self, predictions: list[torch.Tensor], box: tuple[int, int, int, int]) -> list[torch.Tensor]:
        """Upsample every prediction to the (padded) input resolution and crop to the input."""
        flows = [up(p) for up, p in zip(self.flow_upsample, predictions[:-1], strict=True)] + [predictions[-1]]
        y0, y1, x0, x1 = box
        return [f[..., y0:y1, x0:x1] for f in flows]


class EVFlowNet(_MultiResBase):
    """ANN EV-FlowNet (Zhu et al., RSS 2018) as in event_flow: 4 encoders, concat skips, multi-res flow.

    Args:
        base_channels: C.
        kernel_size: kernel of encoders/decoders, pixels.
        num_bins: input channels.
        encoding: ``"cnt"`` or ``"voxel"``.
        num_encoders: encoder (and decoder) count.
        num_residual_blocks: residual blocks at the bottleneck.
    """

    def __init__(
        self,
        base_channels: int = 32,
        kernel_size: int = 3,
        *,
        num_bins: int = 2,
        encoding: str = "cnt",
        num_encoders: int = 4,
        num_residual_blocks: int = 2,
    ) -> None:
        super().__init__(num_bins, encoding, 0, num_encoders)
        ins, outs = unet_channels(base_channels, num_encoders)
        self.encoders = nn.ModuleList(
            ConvLayer(num_bins if i == 0 else cin, cout, kernel_size, stride=2, activation="relu")
            for i, (cin, cout) in enumerate(zip(ins, outs, strict=True))
        )
        self.resblocks = nn.ModuleList(ResidualBlock(outs[-1]) for _ in range(num_residual_blocks))
        self.decoders = nn.ModuleList(
            UpsampleConvLayer(2 * cin + (0 if i == 0 else 2), cout, kernel_size)
            for i, (cin, cout) in enumerate(zip(reversed(outs), reversed(ins), strict=True))
        )
        self.preds = nn.ModuleList(ConvLayer(c, 2, 1, activation="tanh") for c in reversed(ins))

    def forward(self, x: torch.Tensor, log: bool = False) -> dict[str, Any]:
        """One forward pass: ``{"flow": [4 flows, coarse to fine, each [B, 2, H, W]], "activity": None}``."""
        del log
        x, box = self._pad(x)
        blocks = []
        for encoder in self.encoders:
            x = encoder(x)
            blocks.append(x)
        for block in self.resblocks:
            x = block(x)
        predictions: list[torch.Tensor] = []
        for i, (decoder, pred) in enumerate(zip(self.decoders, self.preds, strict=True)):
            x = torch.cat([x, blocks[-1 - i]], dim=1)
            if predictions:
                x = torch.cat([predictions[-1], x], dim=1)
            x = decoder(x)
            predictions.append(pred(x))
        return {"flow": self._full_resolution(predictions, box), "activity": None}


class SpikingRecEVFlowNet(_MultiResBase):
    """Spiking recurrent EV-FlowNet (event_flow ``SpikingRecEVFlowNet``): every block is spiking.

    States: ``n`` encoder states (conv, recurrent), then the residual blocks', then the decoders'.

    Args:
        neuron: neuron factory (the seed uses LIF everywhere).
        base_channels: C.
        kernel_size: kernel of encoders/decoders, pixels.
        num_bins: input channels.
        encoding: ``"cnt"`` or ``"voxel"``.
        num_encoders: encoder (and decoder) count.
        num_residual_blocks: residual blocks at the bottleneck.
        pred_w_scale: ``U(-s, s)`` init of the prediction convs.
    """

    def __init__(
        self,
        neuron: NeuronFactory,
        base_channels: int = 32,
        kernel_size: int = 3,
        *,
        num_bins: int = 2,
        encoding: str = "cnt",
        num_encoders: int = 4,
        num_residual_blocks: int = 2,
        pred_w_scale: float | None = 0.01,
    ) -> None:
        super().__init__(num_bins, encoding, 2 * num_encoders + num_residual_blocks, num_encoders)
        ins, outs = unet_channels(base_channels, num_encoders)
        self.encoders = nn.ModuleList(
            SpikingRecurrentConvLayer(num_bins if i == 0 else cin, cout, kernel_size, neuron)
            for i, (cin, cout) in enumerate(zip(ins, outs, strict=True))
        )
        self.resblocks = nn.ModuleList(SpikingResidualBlock(outs[-1], neuron) for _ in range(num_residual_blocks))
        self.decoders = nn.ModuleList(
            SpikingUpsampleConvLayer(2 * cin + (0 if i == 0 else 2), cout, kernel_size, neuron)
            for i, (cin, cout) in enumerate(zip(reversed(outs), reversed(ins), strict=True))
        )
        self.preds = nn.ModuleList(
            ConvLayer(c, 2, 1, activation="tanh", w_scale=pred_w_scale) for c in reversed(ins)
        )

    def forward(self, x: torch.Tensor, log: bool = False) -> dict[str, Any]:
        """One forward pass (one time step); same outputs as :class:`EVFlowNet`."""
        del log
        x, box = self._pad(x)
        n, n_res = self.num_encoders, len(self.resblocks)
        blocks = []
        for i, encoder in enumerate(self.encoders):
            x, self._states[i] = encoder(x, self._states[i])
            blocks.append(x)
        for i, block in enumerate(self.resblocks):
            x, self._states[n + i] = block(x, self._states[n + i])
        predictions: list[torch.Tensor] = []
        for i, (decoder, pred) in enumerate(zip(self.decoders, self.preds, strict=True)):
            x = torch.cat([x, blocks[-1 - i]], dim=1)
            if predictions:
                x = torch.cat([predictions[-1], x], dim=1)
            x, self._states[n + n_res + i] = decoder(x, self._states[n + n_res + i])
            predictions.append(pred(x))
        return {"flow": self._full_resolution(predictions, box), "activity": None}
