"""The fused CPU kernel: autograd in a training step, shapes and blocks, threads, errors, build plumbing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from snnprof.kernels import fused_cpu
from snnprof.kernels.fused_cpu import KernelBuildError, cache_dir, fused_multistep
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


def test_no_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(fused_cpu.shutil, "which", lambda name: None)
    with pytest.raises(KernelBuildError, match="no C\\+\\+ compiler"):
        fused_cpu._find_compiler()


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    assert cache_dir() == tmp_path / "ext" / "snnprof"
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "snnprof"


def test_compile_error_is_reported(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(fused_cpu, "_OPTIONAL_FLAGS", ())
    monkeypatch.setattr(fused_cpu, "_BASE_FLAGS", ("-O0", "-shared", "-fPIC", "-DSNN_BROKEN", "-std=c++17", "-x", "c"))
    with pytest.raises(KernelBuildError, match="failed"):
        fused_cpu.build_library(force=True)
    assert not list(tmp_path.rglob("*.so"))  # nothing half-written


def test_library_is_cached(fused_lib):
    first = fused_cpu.build_library()
    assert first.exists() and first.parent == cache_dir()
    assert fused_cpu.build_library() == first
    assert fused_cpu.is_available() and fused_cpu.unavailable_reason() is None
    assert fused_cpu.unavailable_reason("cuda") is not None


def test_unwritable_cache_is_a_clear_error(monkeypatch, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(blocker))
    with pytest.raises(KernelBuildError, match="TORCH_EXTENSIONS_DIR"):
        fused_cpu.build_library()
