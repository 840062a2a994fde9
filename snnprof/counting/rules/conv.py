"""Convolutions (1-3 d, transposed included): dense MACs and exact border-aware SOPs.

Dense MACs: ``N * C_out * prod(out_spatial) * C_in/groups * prod(kernel)`` (transposed:
``N * C_in * prod(in_spatial) * C_out/groups * prod(kernel)``, i.e. every input pixel scatters a
kernel). Bias adds one op per output element (counted in ``flops``).

Exact SOPs: each input event is charged once per (output position, output channel) it actually
reaches, honouring padding (and non-zero padding modes), stride, dilation, groups and output
cropping: ``C_out / groups`` times the events summed over input channels, weighted per input
position by its *coverage* (how many output positions it reaches: the gradient of an all-ones
convolution with the call's geometry, computed once per geometry and cached).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.counting import native
from snnprof.counting.costs import Cost, FanoutMap, FanoutPass, Synapse
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import arg, out_tensor, prod

__all__ = ["ConvSpec", "conv_cost"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@dataclass(frozen=True)
class ConvSpec:
    """Hyper-parameters of one convolution call (``weight_shape`` as stored by torch)."""

    dims: int
    weight_shape: tuple[int, ...]
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    transposed: bool = False
    output_padding: Any = 0
    padding_mode: str = "zeros"
    bias: bool = False

    @property
    def kernel(self) -> tuple[int, ...]:
        """Kernel extent per spatial dimension."""
        return tuple(self.weight_shape[2:])

    @property
    def channels(self) -> tuple[int, int]:
        """``(C_in, C_out)``."""
        if self.transposed:
            return self.weight_shape[0], self.weight_shape[1] * self.groups
        return self.weight_shape[1] * self.groups, self.weight_shape[0]


def _group_events(ev: torch.Tensor, spec: ConvSpec) -> torch.Tensor:
    """Sum events over the input channels of each group: ``[N, G, *spatial]``."""
    c_in = spec.channels[0]
    spatial = ev.shape[ev.dim() - spec.dims :]
    flat = ev.reshape(-1, spec.groups, c_in // spec.groups, *spatial)
    return flat.sum(2)


def _padded(grouped: torch.Tensor, spec: ConvSpec) -> tuple[torch.Tensor, Any]:
    """Apply non-zero padding modes explicitly (their pads are copies of real inputs)."""
    if spec.padding_mode == "zeros" or spec.padding == "valid":
        return grouped, 0 if spec.padding == "valid" else spec.padding
    if spec.padding == "same":  # as torch: total d*(k-1), the odd one on the right
        dil = spec.dilation if isinstance(spec.dilation, (tuple, list)) else (spec.dilation,) * spec.dims
        totals = [d * (k - 1) for d, k in zip(dil, spec.kernel, strict=True)]
        pairs = [(t // 2, t - t // 2) for t in totals]
    else:
        pads = spec.padding if isinstance(spec.padding, (tuple, list)) else (spec.padding,) * spec.dims
        pairs = [(p, p) for p in pads]
    torch_pads = [p for pair in reversed(pairs) for p in pair]
    return F.pad(grouped, torch_pads, mode=spec.padding_mode), 0


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _frozen(spec: ConvSpec) -> ConvSpec:
    """``spec`` with list hyper-parameters (functional calls) as tuples, so it can key a cache."""
    if not any(isinstance(v, list) for v in (spec.stride, spec.padding, spec.dilation, spec.output_padding)):
        return spec
    return replace(spec, stride=_hashable(spec.stride), padding=_hashable(spec.padding),
                   dilation=_hashable(spec.dilation), output_padding=_hashable(spec.output_padding))


def _ones_conv(x: torch.Tensor, spec: ConvSpec) -> torch.Tensor:
    """The convolution of ``x [1, 1, *spatial]`` with an all-ones kernel and the call's geometry."""
    ones = torch.ones((1, 1, *spec.kernel), dtype=x.dtype, device=x.device)
    if spec.transposed:
        return _CONV_T[spec.dims](x, ones, stride=spec.stride, padding=spec.padding,
                                  output_padding=spec.output_padding, dilation=spec.dilation)
    src, padding = _padded(x, spec)
    return _CONV[spec.dims](src, ones, stride=spec.stride, padding=padding, dilation=spec.dilation)


@functools.lru_cache(maxsize=512)
def _coverage(spec: ConvSpec, spatial: tuple[int, ...]) -> torch.Tensor:
    """Outputs each input position reaches per output channel (float64 CPU ``[prod(spatial)]``).

    The gradient of the summed all-ones convolution with respect to its input: it honours padding
    (and copies made by non-zero padding modes), stride, dilation, transposition and cropping.
    Depends on shapes only, so it is computed once per geometry.
    """
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.zeros((1, 1, *spatial), dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(_ones_conv(x, spec).sum(), x)
    return grad.reshape(-1).detach()


@functools.lru_cache(maxsize=512)
def _coverage_on(spec: ConvSpec, spatial: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """:func:`_coverage` on ``device`` (cached there too: no host-to-device copy per call)."""
    return _coverage(spec, spatial).to(device)


class _ExactFanout:
    """``events -> accumulates`` of one convolution (see the module docstring), also per frame.

    Every input event of channel group ``g`` at position ``p`` reaches ``coverage[p]`` output
    positions in each of the group's ``C_out / groups`` output channels, so the accumulates of a
    frame are ``(C_out / groups) * sum_p (events summed over input channels)[p] * coverage[p]``.
    """

    def __init__(self, spec: ConvSpec) -> None:
        self.spec = spec

    def _layout(self, x: torch.Tensor) -> tuple[torch.Size, torch.Tensor]:
        """The operand's leading (frame) dims and its coverage map ``[prod(spatial)]`` on its device."""
        spec = self.spec
        spatial = tuple(int(v) for v in x.shape[x.dim() - spec.dims :])
        return x.shape[: x.dim() - spec.dims - 1], _coverage_on(_frozen(spec), spatial, x.device)

    def evaluate(self, ev: torch.Tensor, rows: bool, bound: float | None = None) -> FanoutPass:
        """Events total, accumulates and (with ``rows``) accumulates per frame; one pass over ``ev``."""
        spec = self.spec
        lead, cover = self._layout(ev)
        grouped = _group_events(ev, spec)  # [N, G, *spatial], exact small integers
        flat = grouped.reshape(grouped.shape[0], -1).to(torch.float64)
        total = flat.sum()
        per_frame = (flat.reshape(flat.shape[0], spec.groups, -1) @ cover).sum(1) * (spec.channels[1] // spec.groups)
        return FanoutPass(total, per_frame.sum(), per_frame.reshape(lead) if rows else None)

    def native_pass(self, x: torch.Tensor, rows: bool) -> native.NativeStats | None:
        """Kind and, for spikes, :meth:`evaluate` of ``x`` in one native pass (events never formed).

        Returns the kind, peak, events total, accumulates and (with ``rows``) accumulates per frame
        (the last three meaningful for spikes only), or ``None`` when the native path does not apply.
        """
        spec = self.spec
        lead, cover = self._layout(x)
        got = native.classify_conv(x, prod(lead), spec.groups, cover, spec.channels[1] // spec.groups)
        if got is None:
            return None
        per_frame = got.per_frame.reshape(lead) if rows and got.per_frame is not None else None
        return got._replace(per_frame=per_frame)

    def fanout_map(self, shape: tuple[int, ...]) -> FanoutMap:
        """Outputs each input position reaches: ``coverage * C_out / groups``, the same for every channel.

        One period is one channel plane (``prod(spatial)`` positions), see :class:`FanoutMap`.
        """
        spec = _frozen(self.spec)
        spatial = tuple(int(v) for v in shape[len(shape) - spec.dims :])
        return FanoutMap(("conv", spec, spatial), _coverage(spec, spatial) * (spec.channels[1] // spec.groups))

    def __call__(self, ev: torch.Tensor, _total: torch.Tensor) -> torch.Tensor:
        return self.evaluate(ev, False).accumulates

    def rows(self, ev: torch.Tensor) -> torch.Tensor:
        """Accumulates per frame, shaped like the operand's leading (batch-like) dims."""
        per_frame = self.evaluate(ev, True).per_row
        assert per_frame is not None
        return per_frame


def conv_cost(x: torch.Tensor, out: torch.Tensor, spec: ConvSpec) -> Cost:
    """Cost of one convolution call.

    Args:
        x: input ``[*batch, C_in, *spatial]`` (leading dims are flattened into frames).
        out: output ``[*batch, C_out, *out_spatial]``.
        spec: the convolution's hyper-parameters.
    """
    c_in, c_out = spec.channels
    k = prod(spec.kernel)
    if spec.transposed:
        frames = x.numel() // (c_in * prod(x.shape[x.dim() - spec.dims :]))
        positions = prod(x.shape[x.dim() - spec.dims :])
        dense = frames * positions * c_in * (c_out // spec.groups) * k
    else:
        positions = prod(out.shape[out.dim() - spec.dims :])
        frames = out.numel() // (c_out * positions)
        dense = frames * positions * c_out * (c_in // spec.groups) * k
    out_positions = prod(out.shape[out.dim() - spec.dims :])
    geometry = {
        "in_channels": c_in // spec.groups,
        "out_channels": c_out,
        "kernel_elems": k,
        "out_positions": out_positions,
        "frames": frames,
    }
    synapse = Synapse(dense_macs=dense, operand=x, fanout=_ExactFanout(spec))
    return Cost(flops=out.numel() if spec.bias else 0, synapses=(synapse,), geometry=geometry)


def _module_spec(module: nn.modules.conv._ConvNd) -> ConvSpec:
    return ConvSpec(
        dims=len(module.kernel_size), weight_shape=tuple(module.weight.shape), stride=module.stride,
        padding=module.padding, dilation=module.dilation, groups=module.groups,
        transposed=module.transposed, output_padding=module.output_padding,
        padding_mode=module.padding_mode, bias=module.bias is not None,
    )


_CONVENTION = Convention(
    "synaptic", "conv: MACs `N·C_out·∏out·(C_in/groups)·∏kernel` (transposed: per input position); exact "
    "border-aware SOPs; bias 1 per output element",
)


@register_rule(nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
               convention=_CONVENTION)
def conv_module(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Conv/ConvTranspose 1-3d modules (any leading batch dims, e.g. SpikingJelly ``[T, B, ...]``)."""
    x = arg(args, kwargs, 0, "input")
    out, spec = out_tensor(output), _module_spec(module)
    if spec.transposed:  # forward(x, output_size=...) picks the output padding at call time
        spec = replace(spec, output_padding=_output_padding(spec, x, out))
    return conv_cost(x, out, spec)


def _output_padding(spec: ConvSpec, x: torch.Tensor, out: torch.Tensor) -> tuple[int, ...]:
    """The output padding a transposed convolution actually used, from its input and output sizes."""
    d = spec.dims
    return tuple(
        o - ((i - 1) * s - 2 * p + dil * (k - 1) + 1)
        for o, i, s, p, dil, k in zip(out.shape[-d:], x.shape[-d:], spec.stride, spec.padding, spec.dilation,
                                      spec.kernel, strict=True)
    )


def _functional_spec(dims: int, transposed: bool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ConvSpec:
    weight = arg(args, kwargs, 1, "weight")
    bias = arg(args, kwargs, 2, "bias")
    if transposed:
        stride, padding = arg(args, kwargs, 3, "stride", 1), arg(args, kwargs, 4, "padding", 0)
        out_pad, groups = arg(args, kwargs, 5, "output_padding", 0), arg(args, kwargs, 6, "groups", 1)
        dilation = arg(args, kwargs, 7, "dilation", 1)
    else:
        stride, padding = arg(args, kwargs, 3, "stride", 1), arg(args, kwargs, 4, "padding", 0)
        dilation, groups, out_pad = arg(args, kwargs, 5, "dilation", 1), arg(args, kwargs, 6, "groups", 1), 0
    return ConvSpec(
        dims=dims, weight_shape=tuple(weight.shape), stride=stride, padding=padding, dilation=dilation,
        groups=groups, transposed=transposed, output_padding=out_pad, bias=bias is not None,
    )


def _make_functional(dims: int, transposed: bool) -> Any:
    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        spec = _functional_spec(dims, transposed, args, kwargs)
        return conv_cost(arg(args, kwargs, 0, "input"), out_tensor(output), spec)

    rule.__name__ = f"conv{'_transpose' if transposed else ''}{dims}d_op"
    rule.__doc__ = f"Functional {'transposed ' if transposed else ''}{dims}-d convolution."
    return rule


for _dims in (1, 2, 3):
    register_rule(_CONV[_dims], convention=_CONVENTION)(_make_functional(_dims, False))
    register_rule(_CONV_T[_dims], convention=_CONVENTION)(_make_functional(_dims, True))


@register_rule(torch.conv_tbc, name="conv_tbc", convention=_CONVENTION)
def conv_tbc_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.conv_tbc(x [T, B, C_in], w [k, C_in, C_out], b, pad)``: a 1-d convolution over T."""
    x, weight = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "weight")
    k, c_in, c_out = weight.shape
    spec = ConvSpec(dims=1, weight_shape=(c_out, c_in, k), padding=int(arg(args, kwargs, 3, "pad", 0)), bias=True)
    return conv_cost(x.permute(1, 2, 0), out_tensor(output).permute(1, 2, 0), spec)
