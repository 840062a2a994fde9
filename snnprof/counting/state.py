"""A profiler's aggregate (:class:`RunState`), and its conversion to plain data to checkpoint a run.

The state holds only CPU tensors, ints, floats, bools, strings, lists and dicts, so it loads with
``torch.load(..., weights_only=True)``. Modules and parameters are referred to by their names in
the model (object ids do not survive a restart). The per-call hooks, the op interceptor and the
call stack are not part of it: a state is taken between calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from snnprof.counting.accumulate import LayerAccumulator, _Device
from snnprof.counting.samples import SampleCollector

__all__ = ["STATE_FORMAT", "RunState"]

#: Version tag of the state layout.
STATE_FORMAT = "snnprof.profiler-state/1"

_DEVICE_FIELDS = ("macs", "sops", "sops_rate", "spikes", "kinds", "step_spikes", "channel_spikes", "fold", "valid")


def _acc_state(acc: LayerAccumulator) -> dict[str, Any]:
    out = {f.name: getattr(acc, f.name) for f in dataclasses.fields(acc) if f.name != "dev"}
    out["step_updates"] = list(acc.step_updates)
    out["host_kinds"] = list(acc.host_kinds)
    out["host_fold"] = list(acc.host_fold)
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
    acc.host_fold = [float(v) for v in acc.host_fold]
    acc.geometry = dict(acc.geometry)
    dev = state["dev"]
    if dev:
        acc.dev = _Device(**{k: dev[k].to(device) for k in _DEVICE_FIELDS if k in dev})
    return acc


@dataclass
class RunState:
    """Everything a profiler has counted so far (between model calls).

    Attributes:
        accs: per-layer accumulators by layer name, in first-call order.
        called: ids of the modules that ran.
        ruled_called: names of the modules with a rule that ran.
        unsupported: ``"name (Type)"`` of modules/ops that ran without a rule (an ordered set).
        warnings: rule warnings (an ordered set).
        root_calls: calls of the model itself.
        root_rows: dim-0 sizes of the model's first input, summed over its calls.
        input_shapes: shapes of the tensors of the model's first call.
        func_params: ids of the parameters seen per functional-op layer (counted once each).
        samples: per-sample statistics, when the profiler keeps them.
    """

    accs: dict[str, LayerAccumulator] = field(default_factory=dict)
    called: set[int] = field(default_factory=set)
    ruled_called: set[str] = field(default_factory=set)
    unsupported: dict[str, None] = field(default_factory=dict)
    warnings: dict[str, None] = field(default_factory=dict)
    root_calls: int = 0
    root_rows: int = 0
    input_shapes: list[list[int]] = field(default_factory=list)
    func_params: dict[str, set[int]] = field(default_factory=dict)
    samples: SampleCollector | None = None

    def state_dict(self, model: nn.Module) -> dict[str, Any]:
        """This aggregate as plain data (see :meth:`snnprof.counting.profiler.Profiler.state_dict`).

        Args:
            model: the profiled model (modules and parameters are stored by name).
        """
        names = {id(m): n for n, m in model.named_modules()}
        param_names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        return {
            "format": STATE_FORMAT,
            "layers": [_acc_state(acc) for acc in self.accs.values()],
            "called": [names[i] for i in self.called if i in names],
            "ruled_called": sorted(self.ruled_called),
            "unsupported": list(self.unsupported),
            "warnings": list(self.warnings),
            "root_calls": self.root_calls,
            "root_rows": self.root_rows,
            "input_shapes": [list(s) for s in self.input_shapes],
            "func_params": {k: sorted(param_names[i] for i in ids if i in param_names)
                            for k, ids in self.func_params.items()},
            "samples": self.samples.state_dict() if self.samples is not None else {},
        }

    def load_state_dict(self, state: Mapping[str, Any], model: nn.Module, device: torch.device | str | None) -> None:
        """Replace this aggregate with :meth:`state_dict` output.

        Args:
            state: a saved state of a profiler of the same model and settings.
            model: the profiled model (names are resolved in it).
            device: where the device-side sums live (default: CPU).

        Raises:
            ValueError: another format, or sample statistics that do not match the profiler's settings.
        """
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"not a profiler state of format {STATE_FORMAT!r} (got {state.get('format')!r})")
        if bool(state["samples"]) != (self.samples is not None):
            raise ValueError("the saved state and this profiler differ in sample_stats")
        where = device or "cpu"
        modules = {name: id(m) for name, m in model.named_modules()}
        params = {n: id(p) for n, p in model.named_parameters(remove_duplicate=False)}
        self.accs = {s["name"]: _acc_from_state(s, where) for s in state["layers"]}
        self.called = {modules[n] for n in state["called"] if n in modules}
        self.ruled_called = set(state["ruled_called"])
        self.unsupported = dict.fromkeys(state["unsupported"])
        self.warnings = dict.fromkeys(state["warnings"])
        self.root_calls, self.root_rows = int(state["root_calls"]), int(state["root_rows"])
        self.input_shapes = [list(s) for s in state["input_shapes"]]
        self.func_params = {k: {params[n] for n in names if n in params} for k, names in state["func_params"].items()}
        if self.samples is not None:
            self.samples.load_state_dict(state["samples"], where)
