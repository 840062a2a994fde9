"""event_flow's per-layer "activity" convention, as a view of snnprof's statistics and as a hook helper.

The seed (``FireNet.forward(log=True)``, plotted by ``vis_activity``) reports, for every forward
pass, ``x.ne(0).float().mean()`` of the network input, of each cell's output and of the flow
prediction: the fraction of nonzero entries over the whole batch tensor.

* :func:`activity_view` derives it from a :class:`~snnprof.counting.ProfileResult`: for every
  spiking layer, the fraction of neurons that spiked at each time step
  (``LayerRecord.firing_rate_per_step``) is that layer's activity at that pass, and the firing
  rate is its mean over the passes (every pass updates the same number of neurons). For the
  FireNet family a cell's output *is* its spikes, so the view equals the seed's numbers for
  ``1:head`` ... ``7:R2b``. Input and prediction activities are not neuron statistics; use
  :class:`ActivityRecorder` (or ``model(x, log=True)``) for those.
* :class:`ActivityRecorder` reproduces the seed's dict per pass with forward hooks on any model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from torch import nn
from torch.utils.hooks import RemovableHandle

from snnprof.counting import ProfileResult
from snnprof.counting.rules._util import first_tensor
from snnprof.models.event_flow_nets import FireNetFamily

__all__ = ["ACTIVITY_CONVENTION", "ActivityRecorder", "ActivityView", "activity_view", "default_layers"]

ACTIVITY_CONVENTION = "event_flow activity: x.ne(0).float().mean() of a layer's output, per forward pass"


@dataclass(frozen=True)
class ActivityView:
    """Per-layer activity of a profiled run.

    Attributes:
        per_pass: layer -> activity (fraction in [0, 1]) at each pass (time step).
        mean: layer -> mean activity over the passes.
        convention: the definition, for reports.
    """

    per_pass: dict[str, list[float]]
    mean: dict[str, float]
    convention: str = ACTIVITY_CONVENTION


def _cell_name(layer: str) -> str:
    """``"G1.neuron"`` -> ``"G1"`` (the seed names cells, our neuron records are their children)."""
    return layer[: -len(".neuron")] if layer.endswith(".neuron") else layer


def activity_view(result: ProfileResult) -> ActivityView:
    """event_flow's activity of every spiking layer, from the per-layer statistics of ``result``."""
    per_pass: dict[str, list[float]] = {}
    mean: dict[str, float] = {}
    for layer in result.layers:
        if not layer.is_neuron:
            continue
        name = _cell_name(layer.name)
        per_pass[name] = list(layer.firing_rate_per_step)
        mean[name] = float(layer.firing_rate or 0.0)
    return ActivityView(per_pass, mean)


def default_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The seed's logged layers of a FireNet-family model: every cell then ``pred`` (input is implicit)."""
    if not isinstance(model, FireNetFamily):
        raise TypeError(f"give the layers to record explicitly for {type(model).__name__}")
    return {**{n: getattr(model, n) for n in model.layer_names}, "pred": model.pred}


def _activity(value: Any) -> float:
    tensor = first_tensor(value)
    if tensor is None:
        raise TypeError("activity needs a tensor output")
    return tensor.detach().ne(0).float().mean().item()


class ActivityRecorder:
    """Records the seed's per-pass activity dict with forward hooks (removed on exit).

    Example:
        >>> with ActivityRecorder(model) as rec:  # doctest: +SKIP
        ...     for x in windows:
        ...         model(x)
        >>> rec.passes[0]["1:head"]  # doctest: +SKIP

    Args:
        model: the network; one call of ``model`` is one pass.
        layers: name -> module whose output is recorded, in order (default: :func:`default_layers`).

    Attributes:
        passes: one dict per pass, keys ``"0:input"``, ``"1:<layer>"`` ... as in the seed.
    """

    def __init__(self, model: nn.Module, layers: Mapping[str, nn.Module] | None = None) -> None:
        self.model = model
        self.layers = dict(layers) if layers is not None else default_layers(model)
        self.passes: list[dict[str, float]] = []
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> ActivityRecorder:
        self.passes = []
        self._handles.append(self.model.register_forward_pre_hook(self._on_input))
        for i, (name, module) in enumerate(self.layers.items(), start=1):
            self._handles.append(module.register_forward_hook(self._on_output(f"{i}:{name}")))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _on_input(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.passes.append({"0:input": _activity(args)})

    def _on_output(self, key: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if self.passes:
                self.passes[-1][key] = _activity(output)

        return hook

    def mean(self) -> dict[str, float]:
        """Mean activity over the recorded passes, per key."""
        keys = self.passes[0].keys() if self.passes else []
        return {k: sum(p[k] for p in self.passes) / len(self.passes) for k in keys}
