"""Every implementation against the eager reference: spikes identical, membranes and gradients close.

Parametrized over the implementation registry (those that run here), neuron kinds, both resets,
``detach_reset``, both surrogates and ``decay_input``. GPU implementations skip without CUDA;
``torch.compile`` (tens of seconds per configuration) runs one configuration, marked slow.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys

import pytest
import torch

from snnprof.kernels import NEURON_IMPLS, NeuronSpec, get_impl, impls_for, init_w
from snnprof.kernels.reference import eager_multistep

SPECS = [
    NeuronSpec(kind, tau=3.0 if kind == "lif" else 2.0, decay_input=decay, v_reset=reset, detach_reset=detach,
               surrogate=surrogate)  # fmt: skip
    for kind, decay, reset, detach, surrogate in itertools.product(
        ("if", "lif", "plif"), (True, False), (0.0, None), (False, True), ("sigmoid", "atan")
    )
    if kind != "if" or decay  # decay_input does not apply to IF
]
CPU_FAST = [i.name for i in impls_for("cpu") if i.name not in ("eager", "compiled")]
GPU = [i.name for i in NEURON_IMPLS if "cpu" not in i.device_types or i.name.startswith("sj_")]
T, N = 6, 2053  # odd N: partial blocks and vector tails


def _run(impl, spec: NeuronSpec, x: torch.Tensor, v0: torch.Tensor, w0: float, *, store: bool):
    """Outputs and gradients w.r.t. x, v_init and (PLIF) w under fixed random upstream gradients."""
    x = x.clone().requires_grad_(True)
    v0 = v0.clone().requires_grad_(True)
    w = torch.tensor(w0, dtype=torch.float32, device=x.device, requires_grad=True) if spec.kind == "plif" else None
    out = impl(x, spec, w, v0, store)
    gen = torch.Generator().manual_seed(1)
    g_s = torch.randn(out.spikes.shape, generator=gen).to(x)
    g_v = torch.randn(out.v.shape, generator=gen).to(x)
    wrt = [x, v0] + ([w] if w is not None else [])
    grads = torch.autograd.grad([out.spikes, out.v], wrt, [g_s, g_v])
    return out.spikes.detach(), out.v.detach(), grads


def _inputs(device: str = "cpu", dtype: torch.dtype = torch.float32):
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(T, N, generator=gen) + 0.7).to(device, dtype)
    v0 = (torch.rand(N, generator=gen) * 0.5).to(device, dtype)
    return x, v0


def _assert_matches(spec: NeuronSpec, impl, device: str = "cpu", dtype: torch.dtype = torch.float32, store=True):
    x, v0 = _inputs(device, dtype)
    w0 = init_w(1.7)
    ref = _run(eager_multistep, spec, x, v0, w0, store=store)
    got = _run(impl, spec, x, v0, w0, store=store)
    assert torch.equal(ref[0], got[0]), f"{int((ref[0] != got[0]).sum())} spikes differ"
    torch.testing.assert_close(got[1], ref[1], rtol=1e-6, atol=1e-6)
    for name, g_ref, g_got in zip(("x", "v_init", "w")[: len(ref[2])], ref[2], got[2], strict=True):
        scale = g_ref.abs().max().item()
        assert (g_got - g_ref).abs().max().item() <= 1e-4 * scale + 1e-7, f"grad {name}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label().replace(" ", "-"))
@pytest.mark.parametrize("name", CPU_FAST)
def test_cpu_impl_matches_reference(fused_lib, name: str, spec: NeuronSpec):
    _assert_matches(spec, get_impl(name))


@pytest.mark.parametrize("name", CPU_FAST)
@pytest.mark.parametrize("kind", ["if", "lif", "plif"])
def test_final_membrane_only(fused_lib, name: str, kind: str):
    _assert_matches(NeuronSpec(kind), get_impl(name), store=False)


@pytest.mark.parametrize("kind", ["lif", "plif"])
def test_fused_cpu_float64(fused_lib, kind: str):
    _assert_matches(NeuronSpec(kind, v_reset=None, surrogate="atan"), get_impl("fused_cpu"), dtype=torch.float64)


@pytest.mark.slow
@pytest.mark.parametrize("spec", [NeuronSpec("lif", tau=3.0), NeuronSpec("plif", v_reset=None, detach_reset=True)])
def test_compiled_matches_reference(spec: NeuronSpec):
    _assert_matches(spec, get_impl("compiled"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("spec", SPECS[::5], ids=lambda s: s.label().replace(" ", "-"))
@pytest.mark.parametrize("name", GPU)
def test_gpu_impl_matches_reference(name: str, spec: NeuronSpec):  # pragma: no cover - no GPU here
    impl = get_impl(name)
    reason = impl.unavailable_reason("cuda")
    if reason is not None:
        pytest.skip(reason)
    _assert_matches(spec, impl, device="cuda")


def test_registry_names_and_devices():
    assert [i.name for i in impls_for("cpu")] == ["eager", "sj_torch", "compiled", "fused_cpu"]
    assert "fused_cuda" in [i.name for i in impls_for("cuda")]
    assert get_impl("fused_cuda").unavailable_reason("cpu") is not None
    assert not get_impl("fused_cuda").verified
    with pytest.raises(KeyError, match="known"):
        get_impl("nope")


_INTERPRETER_SCRIPT = """
import itertools, torch
from snnprof.kernels import fused_cuda
from snnprof.kernels.reference import NeuronSpec, eager_multistep, init_w
gen = torch.Generator().manual_seed(0)
x0, v00 = torch.randn(5, 700, generator=gen) + 0.8, torch.rand(700, generator=gen) * 0.5
for kind, hard, detach, surrogate, store in itertools.product(
        ("if", "lif", "plif"), (True, False), (False, True), ("sigmoid", "atan"), (False, True)):
    spec = NeuronSpec(kind, v_reset=0.0 if hard else None, detach_reset=detach, surrogate=surrogate)
    results = []
    for fused in (False, True):
        x, v0 = x0.clone().requires_grad_(True), v00.clone().requires_grad_(True)
        w = torch.tensor(init_w(1.7), requires_grad=True) if kind == "plif" else None
        if fused:  # CPU tensors: the interpreter runs the Triton kernels with numpy
            q = torch.sigmoid(w) if w is not None else None
            s, v = fused_cuda._FusedCudaNeuron.apply(x, v0, q, spec, store)
        else:
            out = eager_multistep(x, spec, w, v0, store)
            s, v = out.spikes, out.v
        g = torch.Generator().manual_seed(1)
        gs, gv = torch.randn(s.shape, generator=g), torch.randn(v.shape, generator=g)
        wrt = [x, v0] + ([w] if w is not None else [])
        results.append((s.detach(), v.detach(), torch.autograd.grad([s, v], wrt, [gs, gv])))
    (s1, v1, g1), (s2, v2, g2) = results
    assert torch.equal(s1, s2), spec.label()
    assert (v1 - v2).abs().max() < 1e-5, spec.label()
    for a, b in zip(g1, g2):
        assert (a - b).abs().max() <= 1e-4 * a.abs().max() + 1e-7, spec.label()
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton (its interpreter runs on CPU)")
def test_fused_cuda_kernels_in_triton_interpreter():
    """The Triton kernels' logic against the reference on CPU tensors, via TRITON_INTERPRET=1 (no GPU needed)."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run([sys.executable, "-c", _INTERPRETER_SCRIPT], env=env, capture_output=True, text=True,
                            timeout=600, check=False)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
