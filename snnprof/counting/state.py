"""A profiler's aggregate as plain data, to checkpoint a long run and continue it later.

The state holds only CPU tensors, ints, floats, bools, strings, lists and dicts, so it loads with
``torch.load(..., weights_only=True)``. Modules and parameters are referred to by their names in
the model (object ids do not survive a restart). The per-call hooks, the op interceptor and the
call stack are not part of it: a state is taken between calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from snnprof.counting.accumulate import LayerAccumulator, _Device

if TYPE_CHECKING:
    from snnprof.counting.profiler import Profiler

__all__ = ["STATE_FORMAT", "load_profiler_state", "profiler_state"]

#: Version tag of the state layout.
STATE_FORMAT = "snnprof.profiler-state/1"

_DEVICE_FIELDS = ("macs", "sops", "sops_rate", "spikes", "kinds", "step_spikes", "channel_spikes")


def _acc_state(acc: LayerAccumulator) -> dict[str, Any]:
    out = {f.name: getattr(acc, f.name) for f in dataclasses.fields(acc) if f.name != "dev"}
    out["step_updates"] = list(acc.step_updates)
    out["host_kinds"] = list(acc.host_kinds)
    out["geometry"] = dict(acc.geometry)
    dev = acc.dev
    out["dev"] = {} if dev is None else {
        k: getattr(dev, k).detach().cpu().clone() for k in _DEVICE_FIELDS if getattr(dev, k) is not None
    }
    return out


def _acc_from_state(state: Mapping[str, Any], device: torch.device | str) -> LayerAccumulator:
    values = {k: v for k, v in state.items() if k != "dev"}
    acc = LayerAccumulator(**values)
    acc.step_updates, acc.host_kinds = list(acc.step_updates), list(acc.host_kinds)
    acc.geometry = dict(acc.geometry)
    dev = state["dev"]
    if dev:
        acc.dev = _Device(**{k: dev[k].to(device) for k in _DEVICE_FIELDS if k in dev})
    return acc


def profiler_state(prof: Profiler) -> dict[str, Any]:
    """The aggregate of ``prof`` so far (see :meth:`Profiler.state_dict`)."""
    param_names = {id(p): n for n, p in prof.model.named_parameters(remove_duplicate=False)}
    return {
        "format": STATE_FORMAT,
        "layers": [_acc_state(acc) for acc in prof._accs.values()],
        "called": [prof._names[i] for i in prof._called if i in prof._names],
        "ruled_called": sorted(prof._ruled_called),
        "unsupported": list(prof._unsupported),
        "warnings": list(prof._warnings),
        "root_calls": prof._root_calls,
        "root_rows": prof._root_rows,
        "input_shapes": [list(s) for s in prof._input_shapes],
        "func_params": {k: sorted(param_names[i] for i in ids if i in param_names)
                        for k, ids in prof._func_params.items()},
        "samples": prof._samples.state_dict() if prof._samples is not None else {},
    }


def load_profiler_state(prof: Profiler, state: Mapping[str, Any], device: torch.device | str | None) -> None:
    """Restore :func:`profiler_state` output into ``prof`` (see :meth:`Profiler.load_state_dict`).

    Raises:
        ValueError: another format, or sample statistics that do not match the profiler's settings.
    """
    if state.get("format") != STATE_FORMAT:
        raise ValueError(f"not a profiler state of format {STATE_FORMAT!r} (got {state.get('format')!r})")
    if bool(state["samples"]) != (prof._samples is not None):
        raise ValueError("the saved state and this profiler differ in sample_stats")
    where = device or "cpu"
    modules = {name: id(m) for name, m in prof.model.named_modules()}
    params = {n: id(p) for n, p in prof.model.named_parameters(remove_duplicate=False)}
    prof._accs = {s["name"]: _acc_from_state(s, where) for s in state["layers"]}
    prof._called = {modules[n] for n in state["called"] if n in modules}
    prof._ruled_called = set(state["ruled_called"])
    prof._unsupported = dict.fromkeys(state["unsupported"])
    prof._warnings = dict.fromkeys(state["warnings"])
    prof._root_calls, prof._root_rows = int(state["root_calls"]), int(state["root_rows"])
    prof._input_shapes = [list(s) for s in state["input_shapes"]]
    prof._func_params = {k: {params[n] for n in names if n in params} for k, names in state["func_params"].items()}
    if prof._samples is not None:
        prof._samples.load_state_dict(state["samples"], where)
