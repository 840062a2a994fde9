"""The fused CPU kernel: autograd in a training step, shapes and blocks, streaming stores, threads, errors."""

from __future__ import annotations

import pytest
import torch

from snnprof.kernels import fused_cpu
from snnprof.kernels.fused_cpu import fused_multistep
from snnprof.kernels.reference import NeuronSpec, eager_multistep, init_w


def _train_step(neuron, seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Linear -> multi-step neuron -> readout; loss and parameter gradients of one step."""
    torch.manual_seed(seed)
    fc, readout = torch.nn.Linear(20, 64), torch.nn.Linear(64, 3)
    w = torch.nn.Parameter(torch.tensor(init_w(2.0)))
    x = torch.rand(8, 5, 20) * 2  # [T, B, features]
    spikes = neuron(fc(x), NeuronSpec("plif"), w).spikes  # [T, B, 64]
    loss = readout(spikes.mean(0)).pow(2).sum()
    params = [*fc.parameters(), *readout.parameters(), w]
    return loss, list(torch.autograd.grad(loss, params))


def test_training_step_gradients_match_eager(fused_lib):
    loss_ref, grads_ref = _train_step(eager_multistep)
    loss, grads = _train_step(fused_multistep)
    assert torch.equal(loss, loss_ref)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-6)


def test_autograd_graph_uses_the_kernel(fused_lib):
    x = torch.rand(4, 3, 7, requires_grad=True)  # trailing shape kept
    out = fused_multistep(x, NeuronSpec("lif"), store_v_seq=True)
    assert out.spikes.shape == (4, 3, 7) and out.v.shape == (4, 3, 7)
    fused_node = out.spikes.grad_fn.next_functions[0][0]  # behind the reshape back to [T, B, F]
    assert "FusedNeuron" in type(fused_node).__name__
    out.spikes.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize(("steps", "neurons"), [(1, 1), (3, 2047), (3, 2049), (40, 4099), (300, 70)])
def test_block_edges_and_long_sequences(fused_lib, steps: int, neurons: int):
    x = (torch.randn(steps, neurons) + 0.5).requires_grad_(True)
    spec = NeuronSpec("lif", v_reset=None)
    ref = eager_multistep(x, spec)
    got = fused_multistep(x, spec)
    assert torch.equal(ref.spikes, got.spikes) and torch.equal(ref.v, got.v)
    g_ref = torch.autograd.grad(ref.spikes.sum() + ref.v.sum(), x)[0]
    g_got = torch.autograd.grad(got.spikes.sum() + got.v.sum(), x)[0]
    torch.testing.assert_close(g_got, g_ref, rtol=1e-5, atol=1e-6)


def test_non_contiguous_input(fused_lib):
    base = torch.randn(10, 6) + 0.8
    x = base.t()  # [6, 10], non-contiguous
    assert torch.equal(fused_multistep(x, NeuronSpec("if")).spikes, eager_multistep(x, NeuronSpec("if")).spikes)


def test_one_and_two_threads_agree(fused_lib):
    x = torch.randn(4, (1 << 16) + 3) + 0.6  # above the parallel threshold
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fused_multistep(x, NeuronSpec("lif"))
        torch.set_num_threads(2)
        two = fused_multistep(x, NeuronSpec("lif"))
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one.spikes, two.spikes) and torch.equal(one.v, two.v)


def test_bad_inputs_have_clear_errors(fused_lib):
    with pytest.raises(TypeError, match="float32 and float64"):
        fused_multistep(torch.zeros(2, 3, dtype=torch.float16), NeuronSpec("lif"))
    with pytest.raises(ValueError, match="CPU tensors"):
        fused_multistep(torch.zeros(2, 3, device="meta"), NeuronSpec("lif"))
    with pytest.raises(ValueError, match="v_init"):
        fused_multistep(torch.zeros(2, 3), NeuronSpec("lif"), v_init=torch.zeros(4))
    with pytest.raises(ValueError, match="PLIF"):
        fused_multistep(torch.zeros(2, 3), NeuronSpec("plif"))


SPECS = [
    NeuronSpec(kind, v_reset=reset, detach_reset=detach, surrogate=surrogate, decay_input=decay)
    for kind in ("if", "lif", "plif")
    for reset in (0.0, None)
    for detach, surrogate, decay in ((False, "sigmoid", True), (True, "atan", False))
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.label())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_streaming_stores_are_exact_on_misaligned_rows(fused_lib, monkeypatch, spec: NeuronSpec, dtype):
    """Non-temporal stores (forced on for a small problem): rows of odd length start at every alignment."""
    monkeypatch.setattr(fused_cpu, "uses_streaming_stores", lambda nbytes: True)
    x = (torch.randn(5, 3, 1031, dtype=dtype) + 0.7).requires_grad_(True)  # row length 3093: odd
    w = torch.tensor(init_w(1.7), dtype=dtype, requires_grad=True) if spec.kind == "plif" else None
    ref = eager_multistep(x, spec, w, store_v_seq=True)
    got = fused_multistep(x, spec, w, store_v_seq=True)
    assert torch.equal(ref.spikes, got.spikes) and torch.equal(ref.v, got.v)
    g = torch.randn(ref.spikes.shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
    wrt = [x] if w is None else [x, w]
    g_ref = torch.autograd.grad([ref.spikes, ref.v], wrt, [g, g])
    g_got = torch.autograd.grad([got.spikes, got.v], wrt, [g, g])
    for a, b in zip(g_got, g_ref, strict=True):  # the gate's tolerance: max |diff| <= 1e-4 max |ref|
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4 * float(b.abs().max()))


def test_streaming_follows_the_last_level_cache(monkeypatch):
    monkeypatch.setattr(fused_cpu, "llc_bytes", lambda: 1 << 20)
    assert not fused_cpu.uses_streaming_stores(1 << 20)
    assert fused_cpu.uses_streaming_stores((1 << 20) + 1)


def test_large_outputs_come_from_the_pool(fused_lib):
    from snnprof.kernels import buffer_pool

    if buffer_pool.unavailable_reason() is not None:
        pytest.skip(buffer_pool.unavailable_reason())
    x = torch.randn(4, 1 << 20) + 0.6  # 16 MiB outputs
    first = fused_multistep(x, NeuronSpec("lif")).spikes
    ptr = first.data_ptr()
    del first
    before = buffer_pool.stats()
    again = fused_multistep(x, NeuronSpec("lif"))
    after = buffer_pool.stats()
    assert again.spikes.data_ptr() == ptr  # the dead output's block, reused
    assert after.hits >= before.hits + 1
    assert torch.equal(again.spikes, eager_multistep(x, NeuronSpec("lif")).spikes)


def test_no_compiler_is_a_clear_error_and_the_bench_says_so(monkeypatch):
    from snnprof import native_build

    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(native_build.shutil, "which", lambda name: None)
    monkeypatch.setattr(native_build, "prebuilt_library", lambda source, directory=None: None)
    fused_cpu.load_library.cache_clear()
    try:
        reason = fused_cpu.unavailable_reason()
    finally:
        fused_cpu.load_library.cache_clear()
    assert reason is not None and reason.startswith("no C++ compiler found") and "\n" not in reason


@pytest.mark.parametrize("tau", [2.0, 4.0, 1.5, 3.0, 2.0**0.5])
@pytest.mark.parametrize("decay", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lif_exact_for_every_tau(fused_lib, tau: float, decay: bool, dtype):
    """Powers of two multiply by the exact reciprocal, other tau divide: both bit-identical to the eager loop."""
    spec = NeuronSpec("lif", tau=tau, decay_input=decay)
    x = torch.randn(7, 1000, dtype=dtype, generator=torch.Generator().manual_seed(3)) + 0.8
    ref, got = eager_multistep(x, spec, store_v_seq=True), fused_multistep(x, spec, store_v_seq=True)
    assert torch.equal(ref.spikes, got.spikes) and torch.equal(ref.v, got.v)
