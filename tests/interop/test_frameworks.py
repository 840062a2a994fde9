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
