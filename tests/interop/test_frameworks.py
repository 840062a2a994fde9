"""Framework matrix: one network written in SpikingJelly, snnTorch, Norse, Sinabs and NIR counts the same.

Dense MACs, MACs, SOPs, neuron updates and spikes must be equal integers across frameworks (flops
differ by each framework's neuron op table and are not compared). snnTorch, Norse and Sinabs come
with the ``frameworks`` extra (``make test`` installs it); a framework that does not import is
skipped with the reason.
"""

from __future__ import annotations

import importlib

import pytest
import torch

from snnprof import profile
from tests.interop import _nets

FIELDS = ("dense_macs", "macs", "sops", "neuron_updates", "spikes")


def _reference() -> dict[str, int]:
    result = profile(_nets.spikingjelly(_nets.weights()), _nets.spikes())
    return {f: getattr(result.totals, f) for f in FIELDS}


def test_reference_counts_are_the_closed_form() -> None:
    counts = _reference()
    conv_macs = _nets.T * _nets.B * 4 * _nets.H * _nets.H * _nets.C * 9
    fc_macs = _nets.T * _nets.B * 5 * 4 * (_nets.H // 2) ** 2
    assert counts["dense_macs"] == conv_macs + fc_macs
    assert counts["macs"] == fc_macs  # average-pooled spikes are graded: the fc input is dense
    assert counts["neuron_updates"] == _nets.T * _nets.B * (4 * _nets.H * _nets.H + 5)
    assert counts["spikes"] > 0 and counts["sops"] > 0


@pytest.mark.parametrize("framework", sorted(_nets.BUILDERS))
def test_same_network_same_counts(framework: str) -> None:
    package, build = _nets.BUILDERS[framework]
    if package is not None:
        try:
            importlib.import_module(package)
        except Exception as err:  # noqa: BLE001
            pytest.skip(f"{package} does not import here ({type(err).__name__}: {err}); "
                        "install the `frameworks` extra (make test does)")
    net = build(_nets.weights())
    with torch.no_grad():
        result = profile(net, _nets.spikes())
    assert {f: getattr(result.totals, f) for f in FIELDS} == _reference()
    assert result.unsupported == [] and result.uncalled == []


def test_spikes_match_step_by_step() -> None:
    sj = _nets.spikingjelly(_nets.weights())
    graph = _nets.nir_net(_nets.weights())
    x = _nets.spikes()
    with torch.no_grad():
        assert torch.equal(sj(x), graph(x))


# --------------------------------------------------------------------------- Sinabs layer variants

_B, _T, _N = 2, 4, 3


def _framework(module: str) -> object:
    """``module`` of an optional framework, or skip the test when it does not import here."""
    try:
        return importlib.import_module(module)
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"{module} does not import here ({type(err).__name__}: {err}); install the `frameworks` extra")


def _sinabs() -> object:
    return _framework("sinabs.layers")


def _spike_fn() -> object:
    return importlib.import_module("sinabs.activation").SingleSpike


def _profile_with_output(model: torch.nn.Module, x: torch.Tensor) -> tuple[object, torch.Tensor]:
    """The profile of one call and that call's output."""
    seen: list[torch.Tensor] = []
    handle = model.register_forward_hook(lambda m, a, out: seen.append(out.detach().clone()))
    try:
        with torch.no_grad():
            result = profile(model, x)
    finally:
        handle.remove()
    return result, seen[0]


@pytest.mark.parametrize("name", ["LIFRecurrent", "IAFRecurrent"])
def test_sinabs_recurrent_synapses_are_counted(name: str) -> None:
    """rec_connect runs once per step on that step's spikes: B*T*N*N dense MACs, N SOPs per spike."""
    sl = _sinabs()
    kwargs = {"tau_mem": 2.0} if name == "LIFRecurrent" else {}
    model = getattr(sl, name)(rec_connect=torch.nn.Linear(_N, _N, bias=False), spike_fn=_spike_fn(), **kwargs)
    x = torch.rand(_B, _T, _N, generator=torch.Generator().manual_seed(0)) * 3
    result, out = _profile_with_output(model, x)
    fired = out != 0
    assert result.unsupported == [] and result.uncalled == []
    rec = next(layer for layer in result.layers if layer.name == "rec_connect")
    assert (rec.dense_macs, rec.sops) == (_B * _T * _N * _N, _N * int(fired.sum()))
    neuron = next(layer for layer in result.layers if layer.name == "")
    assert neuron.neuron_updates == _B * _T * _N
    assert neuron.spikes == int(fired.sum()) > 0
    assert neuron.spikes_per_step == fired.sum(dim=(0, 2)).tolist()


@pytest.mark.parametrize(("name", "ops", "kwargs"), [
    ("LIFSqueeze", 5, {"batch_size": _B, "tau_mem": 2.0}),
    ("IAFSqueeze", 3, {"num_timesteps": _T}),
])
def test_sinabs_squeezed_layout_is_unflattened(name: str, ops: int, kwargs: dict[str, object]) -> None:
    """``[B*T, N]`` in and out: per-step counts come from the ``[B, T, N]`` view."""
    sl = _sinabs()
    model = getattr(sl, name)(spike_fn=_spike_fn(), **kwargs)
    x = torch.rand(_B * _T, _N, generator=torch.Generator().manual_seed(1)) * 3
    result, out = _profile_with_output(model, x)
    (layer,) = result.layers
    fired = (out != 0).reshape(_B, _T, _N)
    assert layer.flops == ops * _B * _T * _N
    assert layer.updates_per_step == [_B * _N] * _T
    assert layer.spikes_per_step == fired.sum(dim=(0, 2)).tolist()
    assert layer.spikes == int(fired.sum()) > 0


@pytest.mark.parametrize("name", ["ExpLeak", "ExpLeakSqueeze"])
def test_sinabs_expleak_is_a_leaky_integrator_not_a_neuron(name: str) -> None:
    """ExpLeak (a subclass of LIF) emits its membrane, not spikes: 2 ops per element, no neuron updates."""
    sl = _sinabs()
    model = getattr(sl, name)(tau_mem=2.0, **({"batch_size": _B} if name.endswith("Squeeze") else {}))
    x = torch.rand(_B, _T, _N, generator=torch.Generator().manual_seed(2))
    x = x.reshape(_B * _T, _N) if name.endswith("Squeeze") else x
    result, _ = _profile_with_output(model, x)
    (layer,) = result.layers
    assert (layer.flops, layer.neuron_updates, layer.spikes) == (2 * _B * _T * _N, 0, 0)


class _Steps(torch.nn.Module):
    """Run a single-step snnTorch neuron over ``[T, B, N]``, returning the spikes ``[T, B, N]``."""

    def __init__(self, neuron: torch.nn.Module) -> None:
        super().__init__()
        self.neuron = neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.neuron(step)[0] for step in x])


@pytest.mark.parametrize("name", ["RLeaky", "RSynaptic"])
def test_snntorch_recurrent_neurons_record_updates_spikes_and_synapses(name: str) -> None:
    """The recurrent Linear runs every step on the previous step's spikes (zeros at the first):
    T*B*N*N dense MACs and N SOPs per spike of steps 0..T-2; updates T*B*N; spikes from the output."""
    snntorch = _framework("snntorch")
    kwargs = {"alpha": 0.8} if name == "RSynaptic" else {}
    torch.manual_seed(0)
    model = _Steps(getattr(snntorch, name)(beta=0.9, linear_features=_N, **kwargs))
    x = torch.rand(_T, _B, _N, generator=torch.Generator().manual_seed(2)) * 3
    result, out = _profile_with_output(model, x)
    fired = out != 0
    neuron = next(layer for layer in result.layers if layer.name == "neuron")
    assert neuron.neuron_updates == _T * _B * _N
    assert neuron.spikes == int(fired.sum()) > 0
    rec = next(layer for layer in result.layers if layer.name == "neuron.recurrent")
    assert rec.dense_macs == _T * _B * _N * _N
    assert rec.sops == _N * int(fired[:-1].sum())
