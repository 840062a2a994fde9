"""Shared helpers of the counting tests: brute-force reference counts written independently of the engine."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from snnprof.counting import ProfileResult, profile

HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
)


class Fn(nn.Module):
    """A module without a rule applying ``fn`` to its inputs (its functional ops are counted under ``(root)/<op>``)."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args)


class Wrap(nn.Module):
    """Puts :class:`Fn` at ``blk`` so layer names are ``blk/<op>.<k>``."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.blk = Fn(fn)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.blk(*args)


def run(model: nn.Module, inputs: object, **kwargs: object) -> ProfileResult:
    """Profile one call and assert that nothing was left uncounted."""
    result = profile(model, inputs, **kwargs)
    assert result.unsupported == [], result.unsupported
    return result


def binary(shape: Sequence[int], p: float = 0.5, seed: int = 0) -> torch.Tensor:
    """A seeded {0, 1} float tensor with at least one 0 and one 1."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(*shape, generator=gen) < p).float()
    flat = x.view(-1)
    flat[0], flat[-1] = 1.0, 0.0
    return x


def _tup(value: int | Sequence[int], dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * dims


def _source_index(i: int, size: int, mode: str) -> int | None:
    """Input index that padded coordinate ``i`` reads (``None`` = a zero pad)."""
    if 0 <= i < size:
        return i
    if mode == "zeros":
        return None
    if mode == "reflect":
        return -i if i < 0 else 2 * (size - 1) - i
    if mode == "circular":
        return i % size
    if mode == "replicate":
        return min(max(i, 0), size - 1)
    raise ValueError(mode)


def conv_sops_bruteforce(
    ev: torch.Tensor,
    c_out: int,
    kernel: int | Sequence[int],
    out_spatial: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> int:
    """Exact accumulates of a (non-transposed) convolution, by looping over every output and kernel tap.

    ``ev`` is ``[N, C_in, *spatial]`` (event weights: 1 per spike, or the graded value).
    """
    dims = ev.dim() - 2
    k, s, p, d = (_tup(v, dims) for v in (kernel, stride, padding, dilation))
    n_batch, c_in = ev.shape[:2]
    size = ev.shape[2:]
    cin_g, cout_g = c_in // groups, c_out // groups
    vals = ev.tolist()
    total = 0
    for n, co in itertools.product(range(n_batch), range(c_out)):
        g = co // cout_g
        for o in itertools.product(*(range(x) for x in out_spatial)):
            for tap in itertools.product(*(range(x) for x in k)):
                idx = [_source_index(o[a] * s[a] - p[a] + tap[a] * d[a], size[a], padding_mode) for a in range(dims)]
                if any(i is None for i in idx):
                    continue
                for ci in range(g * cin_g, (g + 1) * cin_g):
                    v = vals[n][ci]
                    for i in idx:
                        v = v[i]
                    total += v
    return int(total)


def conv_t_sops_bruteforce(
    ev: torch.Tensor,
    c_out: int,
    kernel: int | Sequence[int],
    out_spatial: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> int:
    """Exact accumulates of a transposed convolution.

    Each input event scatters one accumulate per output channel of its group and per kernel tap that
    lands inside the output.
    """
    dims = ev.dim() - 2
    k, s, p, d = (_tup(v, dims) for v in (kernel, stride, padding, dilation))
    n_batch, c_in = ev.shape[:2]
    cout_g = c_out // groups
    total = 0
    for n, ci in itertools.product(range(n_batch), range(c_in)):
        for pos in itertools.product(*(range(x) for x in ev.shape[2:])):
            e = float(ev[(n, ci, *pos)])
            if e == 0:
                continue
            reach = 0
            for tap in itertools.product(*(range(x) for x in k)):
                o = [pos[a] * s[a] - p[a] + tap[a] * d[a] for a in range(dims)]
                reach += all(0 <= o[a] < out_spatial[a] for a in range(dims))
            total += e * reach * cout_g
    return int(total)


def hooks_left(model: nn.Module) -> list[str]:
    """Names of modules that still carry forward (pre-)hooks."""
    return [name for name, m in model.named_modules() for attr in HOOK_DICTS if getattr(m, attr, None)]
