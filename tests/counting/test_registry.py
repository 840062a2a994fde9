"""Registry: duplicate refusal, MRO lookup, and a smoke test for every registered module type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import layer, neuron
from torch import nn

from snnprof.counting import Cost, list_rules, register_rule
from snnprof.counting.registry import find_module_rule, find_op_rule, is_transparent, module_rule_types
from snnprof.counting.rules._util import out_tensor
from snnprof.counting.rules.conv import conv_module
from snnprof.counting.rules.linear import linear_module
from tests.counting._builds import SJ_NEURON, Build
from tests.counting._helpers import run


def test_register_rule_refuses_duplicates() -> None:
    class Throwaway(nn.Module):
        pass

    def rule(module: nn.Module, args: tuple, kwargs: dict, output: object) -> Cost:
        return Cost()

    register_rule(Throwaway)(rule)
    with pytest.raises(ValueError, match="already registered"):
        register_rule(Throwaway)(rule)
    with pytest.raises(ValueError):
        register_rule()


def test_register_rule_refuses_builtin_duplicates() -> None:
    with pytest.raises(ValueError, match="Conv2d"):
        register_rule(nn.Conv2d)(conv_module)
    with pytest.raises(ValueError):
        register_rule(torch.matmul)(lambda args, kwargs, out: Cost())


def test_lookup_follows_mro() -> None:
    class MyConv(nn.Conv2d):
        pass

    class MyLinear(nn.Linear):
        pass

    assert find_module_rule(nn.Conv2d) is conv_module
    assert find_module_rule(MyConv) is conv_module
    assert find_module_rule(layer.Conv2d) is conv_module
    assert find_module_rule(MyLinear) is linear_module
    assert find_module_rule(nn.modules.linear.NonDynamicallyQuantizableLinear) is linear_module
    assert find_module_rule(nn.Sequential) is None
    assert find_op_rule(torch.matmul) is not None
    assert find_op_rule(torch.fft.fft) is None


def test_subclass_is_counted_by_parent_rule() -> None:
    class MyConv(nn.Conv2d):
        pass

    res = run(MyConv(1, 2, 3, bias=False), torch.rand(1, 1, 5, 5))
    assert res.layers[0].type == "MyConv"
    assert res.totals.dense_macs == 1 * 2 * 3 * 3 * 1 * 9


def test_list_rules_names_the_main_targets() -> None:
    rules = list_rules()
    assert rules
    targets = {r.target for r in rules}
    for expected in (
        "torch.nn.modules.conv.Conv2d",
        "torch.nn.modules.linear.Linear",
        "torch.nn.modules.activation.MultiheadAttention",
        "spikingjelly.activation_based.neuron.lif.LIFNode",
        "spikingjelly.activation_based.neuron.integrate_and_fire.IFNode",
    ):
        assert expected in targets
    kinds = {r.kind for r in rules}
    assert kinds == {"module", "op", "name"}
    assert all(r.rule for r in rules)


# ---------------------------------------------------------------------------------------------- smoke table


@dataclass
class Case:
    """How to build one module, what to feed it and what the rule table says it costs."""

    build: Callable[[], nn.Module]
    inputs: Callable[[], object]
    dense_macs: int
    flops: int


def _r(*shape: int) -> Callable[[], torch.Tensor]:
    return lambda: torch.rand(*shape, generator=torch.Generator().manual_seed(1)) * 2


def _idx(*shape: int) -> Callable[[], torch.Tensor]:
    return lambda: torch.randint(0, 10, shape, generator=torch.Generator().manual_seed(1))


def _pw(cls: Callable[[], nn.Module]) -> Case:
    """Piecewise-linear activation on a 2x3 input: 1 op per element."""
    return Case(cls, _r(2, 3), 0, 6)


def _tr(cls: Callable[[], nn.Module]) -> Case:
    """Transcendental activation on a 2x3 input: 4 ops per element."""
    return Case(cls, _r(2, 3), 0, 4 * 6)


def _zero(cls: Callable[[], nn.Module], inputs: Callable[[], object]) -> Case:
    return Case(cls, inputs, 0, 0)


def _rnn_macs(rows: int, g: int, h: int, i: int) -> int:
    return rows * g * h * (i + h)


def _rnn_flops(rows: int, g: int, h: int, i: int, ew: int) -> int:
    return 2 * _rnn_macs(rows, g, h, i) + rows * h * ew + 2 * rows * g * h


# MHA(E=4, heads=2), self-attention on (L=3, N=2, E=4): projections 3*N*L*E*E, scores+values 2*N*L*S*E,
# out projection N*L*E*E; flops: in-proj bias N*L*E + 2*N*S*E, out bias N*L*E, softmax 4/score, averaging 1/score.
_MHA_N, _MHA_L, _MHA_E, _MHA_H = 2, 3, 4, 2
_MHA_MACS = 3 * _MHA_N * _MHA_L * _MHA_E**2 + 2 * _MHA_N * _MHA_L**2 * _MHA_E + _MHA_N * _MHA_L * _MHA_E**2
_MHA_SCORES = _MHA_N * _MHA_H * _MHA_L**2
_MHA_FLOPS = 2 * _MHA_MACS + 3 * _MHA_N * _MHA_L * _MHA_E + _MHA_N * _MHA_L * _MHA_E + 5 * _MHA_SCORES


def _mha_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = _r(_MHA_L, _MHA_N, _MHA_E)()
    return (x, x, x)


FACTORIES: dict[type, Case] = {
    # synaptic
    nn.Linear: Case(lambda: nn.Linear(4, 3), _r(2, 4), 2 * 4 * 3, 2 * 24 + 2 * 3),
    nn.Bilinear: Case(lambda: nn.Bilinear(3, 4, 2), lambda: (_r(2, 3)(), _r(2, 4)()), 2 * 2 * (3 * 4 + 3),
                      2 * 60 + 2 * 2),
    nn.MultiheadAttention: Case(lambda: nn.MultiheadAttention(_MHA_E, _MHA_H), _mha_inputs, _MHA_MACS, _MHA_FLOPS),
    nn.Conv1d: Case(lambda: nn.Conv1d(2, 4, 3, padding=1), _r(1, 2, 5), 4 * 5 * 2 * 3, 2 * 120 + 4 * 5),
    nn.Conv2d: Case(lambda: nn.Conv2d(2, 3, 3), _r(1, 2, 5, 5), 3 * 9 * 2 * 9, 2 * 486 + 3 * 9),
    nn.Conv3d: Case(lambda: nn.Conv3d(1, 2, 2), _r(1, 1, 3, 3, 3), 2 * 8 * 1 * 8, 2 * 128 + 2 * 8),
    nn.ConvTranspose1d: Case(lambda: nn.ConvTranspose1d(2, 3, 3), _r(1, 2, 4), 2 * 4 * 3 * 3, 2 * 72 + 3 * 6),
    nn.ConvTranspose2d: Case(lambda: nn.ConvTranspose2d(2, 3, 2, stride=2), _r(1, 2, 3, 3), 2 * 9 * 3 * 4,
                             2 * 216 + 3 * 36),
    nn.ConvTranspose3d: Case(lambda: nn.ConvTranspose3d(1, 2, 2), _r(1, 1, 2, 2, 2), 1 * 8 * 2 * 8, 2 * 128 + 2 * 27),
    # normalisation (BN eval 2/elem; LN/GN/IN/RMS 5 with affine, 3 without)
    nn.modules.batchnorm._BatchNorm: Case(lambda: nn.BatchNorm2d(3).eval(), _r(2, 3, 4, 4), 0, 2 * 96),
    nn.LayerNorm: Case(lambda: nn.LayerNorm(4), _r(2, 3, 4), 0, 5 * 24),
    nn.GroupNorm: Case(lambda: nn.GroupNorm(2, 4), _r(2, 4, 3), 0, 5 * 24),
    nn.modules.instancenorm._InstanceNorm: Case(lambda: nn.InstanceNorm1d(3), _r(2, 3, 5), 0, 3 * 30),
    nn.RMSNorm: Case(lambda: nn.RMSNorm(4), _r(2, 4), 0, 5 * 8),
    nn.LocalResponseNorm: Case(lambda: nn.LocalResponseNorm(2), _r(1, 3, 4, 4), 0, 3 * 48),
    # pooling: avg k per output, max k-1 per output, adaptive 1 per input
    nn.AvgPool1d: Case(lambda: nn.AvgPool1d(2), _r(1, 2, 6), 0, 2 * 6),
    nn.AvgPool2d: Case(lambda: nn.AvgPool2d(2), _r(1, 2, 4, 4), 0, 4 * 8),
    nn.AvgPool3d: Case(lambda: nn.AvgPool3d(2), _r(1, 1, 4, 4, 4), 0, 8 * 8),
    nn.LPPool1d: Case(lambda: nn.LPPool1d(2, 2), _r(1, 2, 6), 0, 2 * 6),
    nn.LPPool2d: Case(lambda: nn.LPPool2d(2, 2), _r(1, 2, 4, 4), 0, 4 * 8),
    nn.LPPool3d: Case(lambda: nn.LPPool3d(2, 2), _r(1, 1, 4, 4, 4), 0, 8 * 8),
    nn.MaxPool1d: Case(lambda: nn.MaxPool1d(2), _r(1, 2, 6), 0, 1 * 6),
    nn.MaxPool2d: Case(lambda: nn.MaxPool2d(2), _r(1, 2, 4, 4), 0, 3 * 8),
    nn.MaxPool3d: Case(lambda: nn.MaxPool3d(2), _r(1, 1, 4, 4, 4), 0, 7 * 8),
    nn.AdaptiveAvgPool1d: Case(lambda: nn.AdaptiveAvgPool1d(1), _r(1, 2, 6), 0, 12),
    nn.AdaptiveAvgPool2d: Case(lambda: nn.AdaptiveAvgPool2d(1), _r(1, 2, 4, 4), 0, 32),
    nn.AdaptiveAvgPool3d: Case(lambda: nn.AdaptiveAvgPool3d(1), _r(1, 1, 2, 2, 2), 0, 8),
    nn.AdaptiveMaxPool1d: Case(lambda: nn.AdaptiveMaxPool1d(2), _r(1, 2, 6), 0, 12),
    nn.AdaptiveMaxPool2d: Case(lambda: nn.AdaptiveMaxPool2d(2), _r(1, 2, 4, 4), 0, 32),
    nn.AdaptiveMaxPool3d: Case(lambda: nn.AdaptiveMaxPool3d(1), _r(1, 1, 2, 2, 2), 0, 8),
    nn.CrossMapLRN2d: Case(lambda: nn.CrossMapLRN2d(2), _r(1, 3, 4, 4), 0, 3 * 48),
    nn.FractionalMaxPool2d: Case(lambda: nn.FractionalMaxPool2d(2, output_size=2), _r(1, 2, 5, 5), 0, 3 * 8),
    nn.FractionalMaxPool3d: Case(lambda: nn.FractionalMaxPool3d(2, output_size=2), _r(1, 1, 5, 5, 5), 0, 7 * 8),
    nn.Upsample: Case(lambda: nn.Upsample(scale_factor=2, mode="bilinear"), _r(1, 1, 2, 2), 0, 7 * 16),
    # activations
    nn.ReLU: _pw(nn.ReLU),
    nn.ReLU6: _pw(nn.ReLU6),
    nn.LeakyReLU: _pw(nn.LeakyReLU),
    nn.PReLU: _pw(nn.PReLU),
    nn.Hardtanh: _pw(nn.Hardtanh),
    nn.Hardsigmoid: _pw(nn.Hardsigmoid),
    nn.Hardswish: _pw(nn.Hardswish),
    nn.Threshold: _pw(lambda: nn.Threshold(0.5, 0.0)),
    nn.Hardshrink: _pw(nn.Hardshrink),
    nn.Softshrink: _pw(nn.Softshrink),
    nn.Tanhshrink: _pw(nn.Tanhshrink),
    nn.RReLU: _pw(nn.RReLU),
    nn.Softsign: _pw(nn.Softsign),
    nn.Sigmoid: _tr(nn.Sigmoid),
    nn.Tanh: _tr(nn.Tanh),
    nn.GELU: _tr(nn.GELU),
    nn.SiLU: _tr(nn.SiLU),
    nn.ELU: _tr(nn.ELU),
    nn.SELU: _tr(nn.SELU),
    nn.CELU: _tr(nn.CELU),
    nn.Softplus: _tr(nn.Softplus),
    nn.Mish: _tr(nn.Mish),
    nn.LogSigmoid: _tr(nn.LogSigmoid),
    nn.GLU: Case(nn.GLU, _r(2, 4), 0, 4 * 4),  # output is half the input
    nn.Softmax: Case(lambda: nn.Softmax(dim=-1), _r(2, 3), 0, 3 * 6),
    nn.LogSoftmax: Case(lambda: nn.LogSoftmax(dim=-1), _r(2, 3), 0, 3 * 6),
    nn.Softmin: Case(lambda: nn.Softmin(dim=-1), _r(2, 3), 0, 3 * 6),
    nn.Softmax2d: Case(nn.Softmax2d, _r(1, 2, 3, 3), 0, 3 * 18),
    # zero-cost data movement
    nn.Flatten: _zero(nn.Flatten, _r(2, 3, 2)),
    nn.Unflatten: _zero(lambda: nn.Unflatten(1, (2, 3)), _r(2, 6)),
    nn.Identity: _zero(nn.Identity, _r(2, 3)),
    nn.modules.dropout._DropoutNd: _zero(lambda: nn.Dropout(0.5), _r(2, 3)),
    nn.modules.padding._ConstantPadNd: _zero(lambda: nn.ConstantPad1d(1, 0.0), _r(1, 2, 4)),
    nn.modules.padding._ReflectionPadNd: _zero(lambda: nn.ReflectionPad1d(1), _r(1, 2, 4)),
    nn.modules.padding._ReplicationPadNd: _zero(lambda: nn.ReplicationPad1d(1), _r(1, 2, 4)),
    nn.modules.padding.CircularPad1d: _zero(lambda: nn.CircularPad1d(1), _r(1, 2, 4)),
    nn.modules.padding.CircularPad2d: _zero(lambda: nn.CircularPad2d(1), _r(1, 1, 3, 3)),
    nn.modules.padding.CircularPad3d: _zero(lambda: nn.CircularPad3d(1), _r(1, 1, 2, 2, 2)),
    nn.PixelShuffle: _zero(lambda: nn.PixelShuffle(2), _r(1, 4, 2, 2)),
    nn.PixelUnshuffle: _zero(lambda: nn.PixelUnshuffle(2), _r(1, 1, 4, 4)),
    nn.ChannelShuffle: _zero(lambda: nn.ChannelShuffle(2), _r(1, 4, 2, 2)),
    nn.Embedding: _zero(lambda: nn.Embedding(10, 3), _idx(2, 3)),
    nn.modules.pooling._MaxUnpoolNd: _zero(lambda: nn.MaxUnpool2d(2), lambda: F.max_pool2d(_r(1, 2, 4, 4)(), 2,
                                                                                            return_indices=True)),
    layer.Dropout: _zero(lambda: layer.Dropout(0.5).eval(), _r(2, 3)),
    layer.PrintShapeModule: _zero(layer.PrintShapeModule, _r(2, 3)),
    nn.EmbeddingBag: Case(lambda: nn.EmbeddingBag(10, 3), _idx(2, 4), 0, 8 * 3),
    # distances: cosine 6, pairwise 3 per input element; linear cross entropy: linear map + bias + 3/logit + 2/target
    nn.CosineSimilarity: Case(nn.CosineSimilarity, lambda: (_r(2, 3)(), _r(2, 3)()), 0, 6 * 6),
    nn.PairwiseDistance: Case(nn.PairwiseDistance, lambda: (_r(2, 3)(), _r(2, 3)()), 0, 3 * 6),
    nn.LinearCrossEntropyLoss: Case(lambda: nn.LinearCrossEntropyLoss(4, 5, bias=True),
                                    lambda: (_r(3, 4)(), torch.tensor([0, 4, 2])), 3 * 4 * 5,
                                    2 * 60 + 3 * 5 + 3 * 15 + 2 * 3),
    # spiking neurons: IF 3, LIF/PLIF 5, any other SpikingJelly node 4 ops per update
    neuron.IFNode: Case(neuron.IFNode, _r(2, 3), 0, 3 * 6),
    neuron.LIFNode: Case(neuron.LIFNode, _r(2, 3), 0, 5 * 6),
    neuron.ParametricLIFNode: Case(neuron.ParametricLIFNode, _r(2, 3), 0, 5 * 6),
    neuron.BaseNode: Case(neuron.QIFNode, _r(2, 3), 0, 4 * 6),
    neuron.STBIFNode: Case(lambda: neuron.STBIFNode(1.0, 4), _r(2, 3), 0, 4 * 6),
    # recurrent (RNN: ew 4, LSTM 23, GRU 17 per hidden unit; bias 2 per gate unit)
    nn.RNNCell: Case(lambda: nn.RNNCell(3, 4), _r(2, 3), _rnn_macs(2, 1, 4, 3), _rnn_flops(2, 1, 4, 3, 4)),
    nn.LSTMCell: Case(lambda: nn.LSTMCell(3, 4), _r(2, 3), _rnn_macs(2, 4, 4, 3), _rnn_flops(2, 4, 4, 3, 23)),
    nn.GRUCell: Case(lambda: nn.GRUCell(3, 4), _r(2, 3), _rnn_macs(2, 3, 4, 3), _rnn_flops(2, 3, 4, 3, 17)),
    nn.RNN: Case(lambda: nn.RNN(3, 4), _r(5, 2, 3), _rnn_macs(10, 1, 4, 3), _rnn_flops(10, 1, 4, 3, 4)),
    nn.LSTM: Case(lambda: nn.LSTM(3, 4), _r(5, 2, 3), _rnn_macs(10, 4, 4, 3), _rnn_flops(10, 4, 4, 3, 23)),
    nn.GRU: Case(lambda: nn.GRU(3, 4), _r(5, 2, 3), _rnn_macs(10, 3, 4, 3), _rnn_flops(10, 3, 4, 3, 17)),
}


try:  # optional extras register their own neuron rules when importable
    import snntorch
except ImportError:  # pragma: no cover - depends on the environment
    snntorch = None
try:
    import norse.torch as norse
except ImportError:  # pragma: no cover - depends on the environment
    norse = None
if norse is not None:  # norse LIF (multi-step [T, B, ...]) and LIFCell: 7 ops per update
    FACTORIES[norse.LIF] = Case(norse.LIF, _r(4, 2, 3), 0, 7 * 24)
    FACTORIES[norse.LIFCell] = Case(norse.LIFCell, _r(2, 3), 0, 7 * 6)
if snntorch is not None:
    FACTORIES[snntorch.Leaky] = Case(lambda: snntorch.Leaky(beta=0.9), _r(2, 3), 0, 5 * 6)
    FACTORIES[snntorch.Synaptic] = Case(lambda: snntorch.Synaptic(alpha=0.8, beta=0.9), _r(2, 3), 0, 7 * 6)
if norse is not None:  # norse cells (single step): LIFBoxCell 5, IAFCell 3 per update; LIBoxCell 4 per element
    FACTORIES[norse.LIFBoxCell] = Case(norse.LIFBoxCell, _r(2, 3), 0, 5 * 6)
    FACTORIES[norse.IAFCell] = Case(norse.IAFCell, _r(2, 3), 0, 3 * 6)
    FACTORIES[norse.LIBoxCell] = Case(norse.LIBoxCell, _r(2, 3), 0, 4 * 6)
try:
    import sinabs.layers as sinabs
except ImportError:  # pragma: no cover - depends on the environment
    sinabs = None
#: Observed (transparent) neurons of other frameworks, beside SpikingJelly's (keyed by class name).
OBSERVED: dict[str, Build] = dict(SJ_NEURON)
if sinabs is not None:  # [B, T, N] layers: LIF 5, IAF 3 per update; ExpLeak 2 per element; recurrent ones observed
    FACTORIES[sinabs.LIF] = Case(lambda: sinabs.LIF(tau_mem=2.0), _r(2, 4, 3), 0, 5 * 24)
    FACTORIES[sinabs.IAF] = Case(sinabs.IAF, _r(2, 4, 3), 0, 3 * 24)
    FACTORIES[sinabs.ExpLeak] = Case(lambda: sinabs.ExpLeak(tau_mem=2.0), _r(2, 4, 3), 0, 2 * 24)
    for _name, _kwargs in (("LIFRecurrent", {"tau_mem": 2.0}), ("IAFRecurrent", {})):
        OBSERVED[_name] = Build(lambda n=_name, k=_kwargs: getattr(sinabs, n)(rec_connect=nn.Linear(3, 3), **k),
                                _r(2, 4, 3))
if snntorch is not None:  # single step, with a recurrent Linear (RLeaky) or Linear + synaptic current (RSynaptic)
    OBSERVED["RLeaky"] = Build(lambda: snntorch.RLeaky(beta=0.9, linear_features=3), _r(2, 3))
    OBSERVED["RSynaptic"] = Build(lambda: snntorch.RSynaptic(alpha=0.8, beta=0.9, linear_features=3), _r(2, 3))


def _type_id(klass: type) -> str:
    return f"{klass.__module__.split('.')[0]}.{klass.__qualname__}"


def _engine_rule_types() -> list[type]:
    """Module types whose rule ships with the engine (zoo modules may register and test their own)."""
    return [k for k in module_rule_types() if find_module_rule(k).__module__.startswith("snnprof.counting")]


@pytest.mark.parametrize("klass", [k for k in _engine_rule_types() if not is_transparent(find_module_rule(k))],
                         ids=_type_id)
def test_every_registered_module_type_is_counted(klass: type) -> None:
    case = FACTORIES.get(klass)
    if case is None:
        pytest.fail(f"{_type_id(klass)} has a rule but no entry in FACTORIES: add a constructor, input and formula")
    model = case.build()
    assert isinstance(model, klass)
    assert find_module_rule(type(model)) is find_module_rule(klass)
    inputs = case.inputs()
    res = run(model, inputs)
    assert res.uncalled == []
    assert [rec.name for rec in res.layers] == [""]
    assert res.layers[0].type == type(model).__name__
    assert res.totals.dense_macs == case.dense_macs
    assert res.totals.flops == case.flops
    # every input in the table is real-valued, so all synaptic work is MACs and nothing is an SOP
    assert res.totals.macs == case.dense_macs
    assert res.totals.sops == 0
    assert all(isinstance(getattr(res.totals, f), int) for f in ("macs", "dense_macs", "flops", "sops"))


@pytest.mark.parametrize("klass", [k for k in _engine_rule_types() if is_transparent(find_module_rule(k))],
                         ids=_type_id)
def test_every_observed_neuron_type_is_counted(klass: type) -> None:
    """Transparent rules: spikes and updates from the output, no ops of their own; the ops inside are counted."""
    build = OBSERVED[klass.__name__]
    model, inputs = build.module(), build.inputs()
    assert isinstance(model, klass)
    seen: list[torch.Tensor] = []
    handle = model.register_forward_hook(lambda m, a, out: seen.append(out_tensor(out).detach().clone()))
    try:
        res = run(model, inputs)
    finally:
        handle.remove()
    rec = res.layer("")
    assert (rec.neuron_updates, rec.spikes) == (seen[0].numel(), int(seen[0].count_nonzero()))
    assert (rec.flops, rec.dense_macs, rec.params) == (0, 0, 0)
    others = [r for r in res.layers if r.name != ""]  # the ops (and child modules) inside the neuron
    assert others and sum(r.flops for r in others) == res.totals.flops > 0


def test_factory_table_has_no_stale_entries() -> None:
    registered = set(_engine_rule_types())
    stale = [_type_id(k) for k in FACTORIES if k not in registered]
    assert stale == []
