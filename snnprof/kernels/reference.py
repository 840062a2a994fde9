r"""The eager reference: multi-step IF, LIF and ParametricLIF neurons as a per-time-step PyTorch loop.

Every other implementation in :mod:`snnprof.kernels` is checked against this one before it is timed.
Forward and backward run through autograd; the Heaviside spike has a surrogate derivative.

Dynamics over a time-major input ``x_seq`` of shape ``[T, N]`` (SpikingJelly's conventions; the
charge equation uses :math:`V_{reset} = 0` for soft reset):

.. math::
    \text{IF:}\quad H_t = V_{t-1} + X_t \\
    \text{LIF, decay\_input:}\quad H_t = V_{t-1} + (X_t - (V_{t-1} - V_{reset})) / \tau \\
    \text{LIF, no decay\_input:}\quad H_t = V_{t-1} - (V_{t-1} - V_{reset}) / \tau + X_t \\
    \text{PLIF:}\quad \text{as LIF with } 1/\tau = q = \mathrm{sigmoid}(w) \text{ (a learnable scalar)} \\
    S_t = \Theta(H_t - V_{th}) \\
    \text{hard reset:}\quad V_t = (1 - S_t) H_t + S_t V_{reset} \qquad
    \text{soft reset:}\quad V_t = H_t - S_t V_{th}

``detach_reset`` cuts the gradient through :math:`S_t` in the reset. Surrogates of
:math:`\partial S/\partial H` at :math:`x = H - V_{th}`: sigmoid
:math:`\alpha\,\sigma(\alpha x)(1-\sigma(\alpha x))` (default :math:`\alpha = 4`) and ATan
:math:`\frac{\alpha/2}{1 + (\frac{\pi}{2}\alpha x)^2}` (default :math:`\alpha = 2`). Membranes start at
:math:`V_{reset}` (0 for soft reset) unless ``v_init`` is given. Voltages are in the same arbitrary
units as the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

__all__ = [
    "DEFAULT_ALPHA",
    "NeuronOutput",
    "NeuronSpec",
    "eager_multistep",
    "init_w",
    "surrogate_grad",
]

NeuronKind = Literal["if", "lif", "plif"]
SurrogateName = Literal["sigmoid", "atan"]

#: Default surrogate sharpness per surrogate (SpikingJelly's defaults).
DEFAULT_ALPHA: dict[str, float] = {"sigmoid": 4.0, "atan": 2.0}


@dataclass(frozen=True)
class NeuronSpec:
    """A multi-step neuron configuration shared by every implementation.

    Attributes:
        kind: ``"if"``, ``"lif"`` or ``"plif"`` (ParametricLIF).
        tau: membrane time constant in time steps (LIF); PLIF's initial tau (``w = -log(tau - 1)``).
        decay_input: LIF/PLIF: whether the input is divided by tau too.
        v_threshold: firing threshold (voltage units).
        v_reset: hard-reset voltage; ``None`` selects soft reset (subtract the threshold).
        detach_reset: cut the gradient through the spike in the reset.
        surrogate: ``"sigmoid"`` or ``"atan"``.
        alpha: surrogate sharpness; ``None`` uses :data:`DEFAULT_ALPHA`.
    """

    kind: NeuronKind = "lif"
    tau: float = 2.0
    decay_input: bool = True
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    detach_reset: bool = False
    surrogate: SurrogateName = "sigmoid"
    alpha: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("if", "lif", "plif"):
            raise ValueError(f"kind must be 'if', 'lif' or 'plif', got {self.kind!r}")
        if self.surrogate not in DEFAULT_ALPHA:
            raise ValueError(f"surrogate must be one of {sorted(DEFAULT_ALPHA)}, got {self.surrogate!r}")
        if self.kind != "if" and not self.tau > 1.0:
            raise ValueError(f"tau must be > 1, got {self.tau}")

    @property
    def surrogate_alpha(self) -> float:
        """The surrogate sharpness actually used."""
        return DEFAULT_ALPHA[self.surrogate] if self.alpha is None else float(self.alpha)

    @property
    def hard_reset(self) -> bool:
        """True for hard reset (``v_reset`` set), False for soft reset."""
        return self.v_reset is not None

    @property
    def reset_value(self) -> float:
        """``v_reset`` in the charge equation and the initial membrane (0 for soft reset)."""
        return 0.0 if self.v_reset is None else float(self.v_reset)

    def label(self) -> str:
        """Short human-readable description, e.g. ``lif tau=2 hard detach sigmoid(4)``."""
        parts = [self.kind]
        if self.kind != "if":
            parts.append(f"tau={self.tau:g}" + ("" if self.decay_input else " no-decay-input"))
        parts.append("hard" if self.hard_reset else "soft")
        if self.detach_reset:
            parts.append("detach")
        parts.append(f"{self.surrogate}({self.surrogate_alpha:g})")
        return " ".join(parts)


@dataclass(frozen=True)
class NeuronOutput:
    """What a multi-step neuron call returns.

    Attributes:
        spikes: ``[T, N]`` spikes in {0, 1}, dtype of the input.
        v: membrane after reset, ``[T, N]`` when the sequence was requested, else the final ``[N]``.
    """

    spikes: torch.Tensor
    v: torch.Tensor


def init_w(tau: float) -> float:
    """PLIF's parameter ``w`` for an initial time constant: ``sigmoid(w) = 1 / tau``."""
    return -math.log(tau - 1.0)


def surrogate_grad(x: torch.Tensor, name: str, alpha: float) -> torch.Tensor:
    """Surrogate derivative of the Heaviside step at ``x = H - V_th`` (dimensionless)."""
    if name == "sigmoid":
        s = torch.sigmoid(alpha * x)
        return alpha * s * (1.0 - s)
    z = (math.pi / 2.0 * alpha) * x
    return (alpha / 2.0) / (1.0 + z * z)


class _SpikeFn(torch.autograd.Function):
    """Heaviside forward (``x >= 0``), surrogate derivative backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, name: str, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.name, ctx.alpha = name, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad * surrogate_grad(x, ctx.name, ctx.alpha), None, None


def _charge(spec: NeuronSpec, v: torch.Tensor, x: torch.Tensor, q: torch.Tensor | None) -> torch.Tensor:
    """One charge step ``H = f(V, X)`` in SpikingJelly's operation order."""
    vr = spec.reset_value
    if spec.kind == "if":
        return v + x
    if spec.kind == "lif":
        return v + (x - (v - vr)) / spec.tau if spec.decay_input else v - (v - vr) / spec.tau + x
    assert q is not None
    return v + (x - (v - vr)) * q if spec.decay_input else v - (v - vr) * q + x


def _reset(spec: NeuronSpec, h: torch.Tensor, spike: torch.Tensor) -> torch.Tensor:
    """The reset after firing (hard: to ``v_reset``; soft: subtract the threshold)."""
    s = spike.detach() if spec.detach_reset else spike
    if spec.v_reset is None:
        return h - s * spec.v_threshold
    return (1.0 - s) * h + s * spec.v_reset


def eager_multistep(
    x_seq: torch.Tensor,
    spec: NeuronSpec,
    w: torch.Tensor | None = None,
    v_init: torch.Tensor | None = None,
    store_v_seq: bool = False,
) -> NeuronOutput:
    """Run a multi-step neuron with one PyTorch step per time step (autograd does the backward).

    Args:
        x_seq: input current, ``[T, *]`` (any trailing shape), float.
        spec: the neuron configuration.
        w: PLIF's learnable scalar (0-dim tensor); required for ``kind="plif"``, ignored otherwise.
        v_init: initial membrane ``x_seq.shape[1:]``; default ``v_reset`` (0 for soft reset).
        store_v_seq: return the membrane of every step (``[T, *]``) instead of only the last.

    Returns:
        Spikes ``[T, *]`` and the membrane.
    """
    if spec.kind == "plif" and w is None:
        raise ValueError("a PLIF neuron needs its parameter w (a 0-dim tensor)")
    q = torch.sigmoid(w) if spec.kind == "plif" and w is not None else None
    v = v_init if v_init is not None else torch.full_like(x_seq[0], spec.reset_value)
    spikes, voltages = [], []
    for x in x_seq:
        h = _charge(spec, v, x, q)
        spike = _SpikeFn.apply(h - spec.v_threshold, spec.surrogate, spec.surrogate_alpha)
        v = _reset(spec, h, spike)
        spikes.append(spike)
        if store_v_seq:
            voltages.append(v)
    return NeuronOutput(torch.stack(spikes), torch.stack(voltages) if store_v_seq else v)


def run_flat(
    apply: Any,
    x_seq: torch.Tensor,
    v_init: torch.Tensor | None,
    w: torch.Tensor | None,
    *,
    spec: NeuronSpec,
    store_v_seq: bool,
    q_dtype: torch.dtype,
) -> NeuronOutput:
    """Run a fused ``[T, N]`` autograd function on ``[T, *]`` inputs and restore the shapes.

    Args:
        apply: ``Function.apply(x2d, v0, q, spec, store_v_seq) -> (spikes, v)``.
        x_seq: inputs ``[T, *]``.
        v_init: initial membrane ``[*]`` or ``None``.
        w: PLIF parameter (0-dim), required for ``spec.kind == "plif"``.
        spec: the neuron.
        store_v_seq: return the membrane of every step.
        q_dtype: dtype of the PLIF decay ``sigmoid(w)`` the kernel expects.
    """
    if spec.kind == "plif" and w is None:
        raise ValueError("a PLIF neuron needs its parameter w (a 0-dim tensor)")
    shape = x_seq.shape
    x2d = x_seq.contiguous().reshape(shape[0], -1)
    v0 = None if v_init is None else v_init.contiguous().reshape(-1)
    q = torch.sigmoid(w).to(q_dtype) if spec.kind == "plif" and w is not None else None
    spikes, v = apply(x2d, v0, q, spec, store_v_seq)
    return NeuronOutput(spikes.reshape(shape), v.reshape(shape if store_v_seq else shape[1:]))
