"""A tiny reader and tiny zoo models whose per-sample counts are known in closed form.

* reader ``tiny_spikes``: a ``.pt`` file ``{"x": float [N, T, D], "y": int64 [N]}``; items
  ``(x[i] [T, D], y[i])``. ``claim_extra`` makes ``len()`` lie (the data set ends early),
  ``fail_at`` raises ``OSError`` when that index is read (only while the file ``fail_flag`` exists,
  when given), ``offset`` is added to the values (0.25 turns spikes into dense values).
* ``tiny_if`` (multi-step ``[T, B, D]``) and ``tiny_if_online`` (single-step loop):
  ``fc1`` Linear(D, OUT, all weights 1) -> IF (threshold 1) -> ``fc2`` Linear(OUT, K). With 0/1 inputs,
  neuron ``o`` of sample ``s`` fires at step ``t`` iff ``x[s, t].sum() >= 1``; so per sample
  ``SOPs = OUT * events + K * spikes`` and ``spikes = OUT * #{t : x[s, t] has an event}``.
* ``tiny_ann``: Linear(D, OUT) on dense inputs: ``MACs = T * D * OUT`` per sample.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn
from torch.utils.data import Dataset

from snnprof.models.registry import ModelEntry

T, D, OUT, K = 3, 6, 4, 2
READER = "tiny_spikes"
MODELS = ("tiny_if", "tiny_if_online", "tiny_ann")


def spike_data(n: int, seed: int = 0, p: float = 0.3) -> torch.Tensor:
    """``[n, T, D]`` 0/1 spikes; sample 1 is silent and sample 2 fires everywhere (min/max coverage)."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, T, D, generator=gen) < p).float()
    if n > 2:
        x[1] = 0.0
        x[2] = 1.0
    return x


def write_data(path: Path, x: torch.Tensor) -> Path:
    torch.save({"x": x, "y": torch.arange(x.shape[0]) % 3}, path)
    return path


def expected_per_sample(x: torch.Tensor, model: str = "tiny_if") -> np.ndarray:
    """``[n, 3]`` per-sample ``(macs, sops, spikes)`` by the closed form of the module docstring."""
    xs = x.numpy()
    if model == "tiny_ann":
        return np.array([[T * D * OUT, 0, 0]] * xs.shape[0], dtype=np.float64)
    events = xs.sum(axis=(1, 2))
    spikes = OUT * (xs.sum(axis=2) >= 1).sum(axis=1)
    return np.stack([np.zeros_like(events), OUT * events + K * spikes, spikes], axis=1).astype(np.float64)


class TinySpikes(Dataset):
    def __init__(self, path: Path, claim_extra: int = 0, fail_at: int = -1, fail_flag: str = "", *,
                 offset: float = 0.0, hang_at: int = -1) -> None:
        data = torch.load(path, weights_only=True)
        self.x, self.y = data["x"] + offset, data["y"]
        self.claim_extra, self.fail_at, self.fail_flag, self.hang_at = claim_extra, fail_at, fail_flag, hang_at

    def __len__(self) -> int:
        return self.x.shape[0] + self.claim_extra

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if index == self.fail_at and (not self.fail_flag or Path(self.fail_flag).exists()):
            raise OSError(f"corrupt record {index}")
        if index == self.hang_at:  # a rank that hangs (as under SIGSTOP): the others must not wait forever
            os.kill(os.getpid(), signal.SIGSTOP)
        return self.x[index], int(self.y[index])


def read_tiny(path: Path, **kwargs: Any) -> TinySpikes:
    return TinySpikes(path, **kwargs)


def _net(step_mode: str) -> nn.Module:
    net = nn.Sequential(layer.Linear(D, OUT, bias=False), neuron.IFNode(v_threshold=1.0),
                        layer.Linear(OUT, K, bias=False))
    functional.set_step_mode(net, step_mode)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[2].weight.fill_(0.5)
    return net


def _make(model: nn.Module, batch_size: int, time_steps: int, seed: int, **_: Any) -> torch.Tensor:
    return spike_data(batch_size, seed).transpose(0, 1).contiguous()


def _run_multi(model: nn.Module, inputs: torch.Tensor, time_steps: int) -> torch.Tensor:
    functional.reset_net(model)
    return model(inputs).mean(0)


def _run_online(model: nn.Module, inputs: torch.Tensor, time_steps: int) -> torch.Tensor:
    functional.reset_net(model)
    return sum(model(inputs[t]) for t in range(time_steps))


def _run_ann(model: nn.Module, inputs: torch.Tensor, time_steps: int) -> torch.Tensor:
    return model(inputs)


def entries() -> dict[str, ModelEntry]:
    defaults = {"batch_size": 4, "time_steps": T}
    return {
        "tiny_if": ModelEntry("tiny_if", lambda: _net("m"), _make, _run_multi, "multi", "test", "", defaults),
        "tiny_if_online": ModelEntry("tiny_if_online", lambda: _net("s"), _make, _run_online, "single", "test", "",
                                     defaults, from_batch=lambda b: b.transpose(0, 1)),
        "tiny_ann": ModelEntry("tiny_ann", lambda: nn.Linear(D, OUT), _make, _run_ann, "ann", "test", "", defaults,
                               from_batch=lambda b: b),
    }


def register_all() -> None:
    """Register the reader and the models for good (a separate process, e.g. under torchrun)."""
    from snnprof import data
    from snnprof.models import registry

    data.list_readers()
    registry.get_entry("sj_spiking_cnn")  # load the zoo first
    data._READERS[READER] = read_tiny
    registry._REGISTRY.update(entries())


def config_text(data: Path, model: str = "tiny_if", batch_size: int = 4, source: str = "dataset",
                kwargs: str = "{}") -> str:
    dataset = f'path = "{data}"\nreader = "{READER}"\n' if source == "dataset" else ""
    return (f'[model]\nname = "{model}"\n[input]\nsource = "{source}"\n{dataset}batch_size = {batch_size}\n'
            f'time_steps = {T}\nkwargs = {kwargs}\n[energy]\nprofiles = ["cmos45nm_fp32", "loihi"]\n')
