"""Our fused GPU kernel: multi-step IF/LIF/PLIF forward and backward as two Triton kernels.

**Unverified**: written on a machine without a GPU; it has never been compiled or run. The bench's
correctness gate checks it against the eager reference on the GPU before timing it, and reports a
mismatch as FAILED instead of timing it.

Design: one program per block of neurons, a loop over time inside the program, float32 math.
Forward reads ``x`` and writes the spikes and, when gradients are needed, the charge ``H``; backward
walks time backwards reading ``grad_spike`` and ``H`` and writes ``grad_x`` (24 bytes per neuron
update for forward+backward in float32; 8 for an inference forward). Floating-point contraction is
disabled (``enable_fp_fusion=False``) and LIF's ``/ tau`` is a multiplication by ``1 / tau``, which is
what PyTorch's CUDA division by a scalar computes, so spikes can match the eager loop bit for bit.
"""

# Triton JIT code: kernels take every tensor and scalar positionally, constexpr branches must be
# if/else statements on plain comparisons (no sets, no ternaries over tensors).
# ruff: noqa: PLR0912, PLR0915, PLR0917, PLR1714, SIM108

from __future__ import annotations

import functools
import logging
from typing import Any

import torch

from snnprof.kernels.reference import NeuronOutput, NeuronSpec, run_flat

__all__ = ["fused_cuda_multistep", "unavailable_reason"]

logger = logging.getLogger(__name__)

try:  # Triton ships with CUDA builds of PyTorch; the CPU build has none.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = None
    tl = None

_BLOCK = 1024
#: (kind, decay_input) -> the kernel's charge-equation code.
_CHARGE = {
    ("if", True): 0, ("if", False): 0, ("lif", True): 1, ("lif", False): 2, ("plif", True): 3, ("plif", False): 4,
}  # fmt: skip
_SURROGATE = {"sigmoid": 0, "atan": 1}

if triton is not None:

    @triton.jit
    def _charge(v, x, k, vr, CHARGE: tl.constexpr):  # noqa: N803 - Triton constexpr convention
        # k = 1/tau (LIF) or q = sigmoid(w) (PLIF): both multiply.
        if CHARGE == 0:
            h = v + x
        elif CHARGE == 1 or CHARGE == 3:
            h = v + (x - (v - vr)) * k
        else:
            h = v - (v - vr) * k + x
        return h

    @triton.jit
    def _reset(h, vth, vr, HARD: tl.constexpr):  # noqa: N803
        if HARD:
            v = tl.where(h >= vth, vr, h)
        else:
            v = tl.where(h >= vth, h - vth, h)
        return v

    @triton.jit
    def _forward_kernel(
        x_ptr, v0_ptr, s_ptr, h_ptr, vseq_ptr, vlast_ptr, steps, n, k, vth, vr,
        CHARGE: tl.constexpr, HARD: tl.constexpr, HAS_V0: tl.constexpr, STORE_H: tl.constexpr,  # noqa: N803
        STORE_VSEQ: tl.constexpr, BLOCK: tl.constexpr,  # noqa: N803
    ):  # fmt: skip
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        v = tl.zeros([BLOCK], dtype=tl.float32)
        if HAS_V0:
            v += tl.load(v0_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        elif HARD:
            v += vr
        for t in range(steps):
            idx = tl.cast(t, tl.int64) * n + offs  # 64-bit: T * N may exceed 2^31
            x = tl.load(x_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            h = _charge(v, x, k, vr, CHARGE)
            tl.store(s_ptr + idx, (h >= vth).to(s_ptr.dtype.element_ty), mask=mask)
            if STORE_H:
                tl.store(h_ptr + idx, h, mask=mask)
            v = _reset(h, vth, vr, HARD)
            if STORE_VSEQ:
                tl.store(vseq_ptr + idx, v.to(vseq_ptr.dtype.element_ty), mask=mask)
        tl.store(vlast_ptr + offs, v.to(vlast_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _backward_kernel(
        h_ptr, x_ptr, v0_ptr, gs_ptr, gvseq_ptr, gvlast_ptr, gx_ptr, gv0_ptr, gk_ptr, steps, n, k, vth, vr, alpha,
        CHARGE: tl.constexpr, HARD: tl.constexpr, DETACH: tl.constexpr, SURROGATE: tl.constexpr,  # noqa: N803
        HAS_V0: tl.constexpr, HAS_GVSEQ: tl.constexpr, HAS_GVLAST: tl.constexpr, NEED_GV0: tl.constexpr,  # noqa: N803
        BLOCK: tl.constexpr,  # noqa: N803
    ):  # fmt: skip
        pid = tl.program_id(0)
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        carry = tl.zeros([BLOCK], dtype=tl.float32)
        if HAS_GVLAST:
            carry += tl.load(gvlast_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        v_init = tl.zeros([BLOCK], dtype=tl.float32)
        if HAS_V0:
            v_init += tl.load(v0_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        elif HARD:
            v_init += vr
        gk = tl.zeros([BLOCK], dtype=tl.float32)
        for i in range(steps):
            t = steps - 1 - i
            idx = tl.cast(t, tl.int64) * n + offs  # 64-bit: T * N may exceed 2^31
            h = tl.load(h_ptr + idx, mask=mask, other=0.0)
            z = h - vth
            if SURROGATE == 0:
                sig = tl.sigmoid(alpha * z)
                sg = alpha * sig * (1.0 - sig)
            else:
                u = z * (1.5707963267948966 * alpha)
                sg = (alpha * 0.5) / (1.0 + u * u)
            if HARD:
                rg = tl.where(h >= vth, 0.0, 1.0)
                if not DETACH:
                    rg += (vr - h) * sg
            else:
                rg = tl.zeros([BLOCK], dtype=tl.float32) + 1.0
                if not DETACH:
                    rg -= vth * sg
            gv = carry
            if HAS_GVSEQ:
                gv += tl.load(gvseq_ptr + idx, mask=mask, other=0.0).to(tl.float32)
            gh = tl.load(gs_ptr + idx, mask=mask, other=0.0).to(tl.float32) * sg + gv * rg
            if CHARGE == 0 or CHARGE == 2 or CHARGE == 4:
                gx = gh
            else:
                gx = gh * k
            if CHARGE == 0:
                carry = gh
            else:
                carry = gh - gh * k
            tl.store(gx_ptr + idx, gx.to(gx_ptr.dtype.element_ty), mask=mask)
            if CHARGE >= 3:  # PLIF: dH/dq = X - (V_prev - V_reset) (decay_input) or -(V_prev - V_reset)
                h_prev = tl.load(h_ptr + tl.maximum(idx - n, offs), mask=mask, other=0.0)  # t = 0: unused
                v_prev = tl.where(t > 0, _reset(h_prev, vth, vr, HARD), v_init)
                if CHARGE == 3:
                    factor = tl.load(x_ptr + idx, mask=mask, other=0.0).to(tl.float32) - (v_prev - vr)
                else:
                    factor = -(v_prev - vr)
                gk += gh * factor
        if NEED_GV0:
            tl.store(gv0_ptr + offs, carry.to(gv0_ptr.dtype.element_ty), mask=mask)
        if CHARGE >= 3:
            tl.store(gk_ptr + pid, tl.sum(tl.where(mask, gk, 0.0), axis=0))


def _k_value(spec: NeuronSpec, q: torch.Tensor | None) -> float:
    """1/tau as float32 (LIF), q (PLIF) or unused (IF)."""
    if spec.kind == "plif":
        assert q is not None
        return float(q.item())
    return float(torch.tensor(1.0) / torch.tensor(float(spec.tau)))


class _FusedCudaNeuron(torch.autograd.Function):
    """Autograd wrapper around the two Triton kernels."""

    @staticmethod
    def forward(  # noqa: PLR0917 - autograd passes apply()'s arguments positionally
        ctx: Any, x: torch.Tensor, v0: torch.Tensor | None, q: torch.Tensor | None, spec: NeuronSpec, store: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps, n = x.shape
        needs_grad = any(ctx.needs_input_grad[:3])
        spikes = torch.empty_like(x)
        h = torch.empty(steps, n, device=x.device, dtype=torch.float32) if needs_grad else spikes
        v_seq = torch.empty_like(x) if store else spikes
        v_last = x.new_empty(n)
        grid = (triton.cdiv(n, _BLOCK),)
        _forward_kernel[grid](
            x, v0 if v0 is not None else x, spikes, h, v_seq, v_last, steps, n, _k_value(spec, q),
            spec.v_threshold, spec.reset_value, CHARGE=_CHARGE[(spec.kind, spec.decay_input)],
            HARD=spec.hard_reset, HAS_V0=v0 is not None, STORE_H=needs_grad, STORE_VSEQ=store, BLOCK=_BLOCK,
            enable_fp_fusion=False,
        )  # fmt: skip
        ctx.save_for_backward(h if needs_grad else None, x, v0, q)
        ctx.spec, ctx.store = spec, store
        return spikes, v_seq if store else v_last

    @staticmethod
    def backward(ctx: Any, g_spikes: torch.Tensor | None, g_v: torch.Tensor | None) -> tuple[Any, ...]:
        h, x, v0, q = ctx.saved_tensors
        spec: NeuronSpec = ctx.spec
        steps, n = x.shape
        gs = torch.zeros_like(x) if g_spikes is None else g_spikes.contiguous()
        g_v = None if g_v is None else g_v.contiguous()
        gx = torch.empty_like(x)
        need_gv0 = v0 is not None and ctx.needs_input_grad[1]
        gv0 = x.new_empty(n) if need_gv0 else gx
        grid = (triton.cdiv(n, _BLOCK),)
        gk = torch.zeros(grid[0], device=x.device, dtype=torch.float32)
        _backward_kernel[grid](
            h, x, v0 if v0 is not None else x, gs, g_v if g_v is not None else gs, g_v if g_v is not None else gs,
            gx, gv0, gk, steps, n, _k_value(spec, q), spec.v_threshold, spec.reset_value, spec.surrogate_alpha,
            CHARGE=_CHARGE[(spec.kind, spec.decay_input)], HARD=spec.hard_reset, DETACH=spec.detach_reset,
            SURROGATE=_SURROGATE[spec.surrogate], HAS_V0=v0 is not None,
            HAS_GVSEQ=g_v is not None and ctx.store, HAS_GVLAST=g_v is not None and not ctx.store,
            NEED_GV0=need_gv0, BLOCK=_BLOCK,
        )  # fmt: skip
        gq = gk.sum().to(q.dtype).reshape(q.shape) if q is not None else None
        return gx, gv0 if need_gv0 else None, gq, None, None


def fused_cuda_multistep(
    x_seq: torch.Tensor,
    spec: NeuronSpec,
    w: torch.Tensor | None = None,
    v_init: torch.Tensor | None = None,
    store_v_seq: bool = False,
) -> NeuronOutput:
    """Multi-step neuron with the fused Triton kernels (unverified); contract of ``eager_multistep``."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    return run_flat(_FusedCudaNeuron.apply, x_seq, v_init, w, spec=spec, store_v_seq=store_v_seq, q_dtype=torch.float32)


@functools.cache
def unavailable_reason(device_type: str = "cuda") -> str | None:
    """``None`` when Triton and a CUDA device are present, else why not (one sentence)."""
    if device_type != "cuda":
        return f"the fused Triton kernel does not run on {device_type}"
    if triton is None:
        return "Triton is not installed (the CPU build of PyTorch has none)"
    if not torch.cuda.is_available():
        return "no CUDA device"
    return None
