"""Coverage by namespace (timm-style): a new class or functional op without a rule fails here.

* every class of ``spikingjelly.activation_based.layer`` and ``.neuron`` is built and profiled with
  ``strict=True`` (nothing unsupported, nothing uncalled);
* every ``torch.nn`` module class either has a rule or is a composition listed in ``COMPOSITES``,
  which is built and profiled strictly too (its children and ops are counted);
* every public ``torch.nn.functional`` op has an op rule or a name rule.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional as sjf
from spikingjelly.activation_based import layer, neuron
from torch import nn

from snnprof.counting import profile
from snnprof.counting.registry import find_module_rule, find_name_rule, find_op_rule
from snnprof.counting.rules.elementwise import op_name
from tests.counting._builds import SJ_LAYER, SJ_NEURON, B, Build, _r, _spk


def _classes(namespace: object) -> dict[str, type]:
    return {n: c for n, c in sorted(vars(namespace).items())
            if inspect.isclass(c) and issubclass(c, nn.Module) and not n.startswith("_")}


def _strict(build: Build) -> object:
    model = build.module()
    sjf.reset_net(model)
    with torch.no_grad():
        return profile(model, build.inputs(), strict=True)


@pytest.mark.parametrize("name", list(_classes(layer)))
def test_every_spikingjelly_layer_is_counted(name: str) -> None:
    build = SJ_LAYER.get(name)
    if build is None:
        pytest.fail(f"spikingjelly layer.{name} has no entry in SJ_LAYER: add a constructor (and a rule if needed)")
    _strict(build)


@pytest.mark.parametrize("name", list(_classes(neuron)))
def test_every_spikingjelly_neuron_is_counted(name: str) -> None:
    build = SJ_NEURON.get(name)
    if build is None:
        pytest.fail(f"spikingjelly neuron.{name} has no entry in SJ_NEURON: add a constructor (and a rule if needed)")
    result = _strict(build)
    spiking = not name.startswith(("NonSpiking", "NoisyNonSpiking"))
    assert (result.totals.neuron_updates > 0) == spiking
    assert result.totals.flops > 0


def test_tables_have_no_stale_entries() -> None:
    assert set(SJ_LAYER) == set(_classes(layer))
    assert set(SJ_NEURON) == set(_classes(neuron))


# ------------------------------------------------------------------------------------------------ torch.nn


def _cls(n: int = B, c: int = 4) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    return lambda: (_r(n, c)(), torch.arange(n) % c)


def _pm1(*shape: int) -> Callable[[], torch.Tensor]:
    return lambda: torch.where(_spk(*shape)() > 0, 1.0, -1.0)


def _ctc() -> tuple[torch.Tensor, ...]:
    log_probs = _r(5, B, 4)().log_softmax(2)
    return log_probs, torch.ones(B, 2, dtype=torch.long), torch.full((B,), 5), torch.full((B,), 2)


def _transformer_layers() -> dict[str, Build]:
    def enc_layer() -> nn.Module:
        return nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0)

    def dec_layer() -> nn.Module:
        return nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0)

    seq = _r(5, B, 8)
    return {
        "Transformer": Build(lambda: nn.Transformer(8, 2, 1, 1, 16, dropout=0.0), lambda: (seq(), _r(4, B, 8)())),
        "TransformerEncoder": Build(lambda: nn.TransformerEncoder(enc_layer(), 1, enable_nested_tensor=False), seq),
        "TransformerEncoderLayer": Build(enc_layer, seq),
        "TransformerDecoder": Build(lambda: nn.TransformerDecoder(dec_layer(), 1), lambda: (seq(), _r(4, B, 8)())),
        "TransformerDecoderLayer": Build(dec_layer, lambda: (seq(), _r(4, B, 8)())),
    }


#: torch.nn modules without a rule of their own: compositions whose children and ops are counted
COMPOSITES: dict[str, Build] = {
    "AdaptiveLogSoftmaxWithLoss": Build(lambda: nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4]),
                                        lambda: (_r(4, 8)(), torch.tensor([0, 5, 2, 9]))),
    "BCELoss": Build(nn.BCELoss, lambda: (_r(B, 3)() / 2, _spk(B, 3)())),
    "BCEWithLogitsLoss": Build(nn.BCEWithLogitsLoss, lambda: (_r(B, 3)(), _spk(B, 3)())),
    "CTCLoss": Build(nn.CTCLoss, _ctc),
    "CosineEmbeddingLoss": Build(nn.CosineEmbeddingLoss, lambda: (_r(B, 3)(), _r(B, 3)(), _pm1(B)())),
    "CrossEntropyLoss": Build(nn.CrossEntropyLoss, _cls()),
    "DataParallel": Build(lambda: nn.DataParallel(nn.Linear(4, 3)), _r(B, 4)),
    "Fold": Build(lambda: nn.Fold((3, 3), 2), _r(1, 4, 4)),
    "GaussianNLLLoss": Build(nn.GaussianNLLLoss, lambda: (_r(B, 3)(), _r(B, 3)(), _r(B, 3)() + 0.1)),
    "HingeEmbeddingLoss": Build(nn.HingeEmbeddingLoss, lambda: (_r(B, 3)(), _pm1(B, 3)())),
    "HuberLoss": Build(nn.HuberLoss, lambda: (_r(B, 3)(), _r(B, 3)())),
    "KLDivLoss": Build(lambda: nn.KLDivLoss(reduction="batchmean"), lambda: (_r(B, 3)().log_softmax(1),
                                                                              _r(B, 3)().softmax(1))),
    "L1Loss": Build(nn.L1Loss, lambda: (_r(B, 3)(), _r(B, 3)())),
    "MSELoss": Build(nn.MSELoss, lambda: (_r(B, 3)(), _r(B, 3)())),
    "MarginRankingLoss": Build(nn.MarginRankingLoss, lambda: (_r(B)(), _r(B)(), _pm1(B)())),
    "MultiLabelMarginLoss": Build(nn.MultiLabelMarginLoss, lambda: (_r(B, 4)(), torch.tensor([[0, 2, -1, 1]] * B))),
    "MultiLabelSoftMarginLoss": Build(nn.MultiLabelSoftMarginLoss, lambda: (_r(B, 4)(), _spk(B, 4)())),
    "MultiMarginLoss": Build(nn.MultiMarginLoss, _cls()),
    "NLLLoss": Build(nn.NLLLoss, _cls()),
    "NLLLoss2d": Build(nn.NLLLoss2d, lambda: (_r(B, 4, 3, 3)(), torch.zeros(B, 3, 3, dtype=torch.long))),
    "PoissonNLLLoss": Build(nn.PoissonNLLLoss, lambda: (_r(B, 3)(), _r(B, 3)())),
    "Sequential": Build(lambda: nn.Sequential(nn.Linear(4, 3), nn.ReLU()), _r(B, 4)),
    "SmoothL1Loss": Build(nn.SmoothL1Loss, lambda: (_r(B, 3)(), _r(B, 3)())),
    "SoftMarginLoss": Build(nn.SoftMarginLoss, lambda: (_r(B, 3)(), _pm1(B, 3)())),
    "TripletMarginLoss": Build(nn.TripletMarginLoss, lambda: (_r(B, 3)(), _r(B, 3)(), _r(B, 3)())),
    "TripletMarginWithDistanceLoss": Build(nn.TripletMarginWithDistanceLoss,
                                           lambda: (_r(B, 3)(), _r(B, 3)(), _r(B, 3)())),
    "Unfold": Build(lambda: nn.Unfold(2), _r(1, 2, 4, 4)),
    **_transformer_layers(),
}


def _abstract(klass: type) -> bool:
    """Classes that cannot be called (no forward of their own: Module, containers of parameters, bases)."""
    return klass.forward is nn.Module.forward


TORCH_NN = _classes(nn)


@pytest.mark.filterwarnings("ignore:`NLLLoss2d` has been deprecated", "ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("name", list(TORCH_NN))
def test_every_torch_nn_module_has_a_rule_or_is_a_counted_composition(name: str) -> None:
    klass = TORCH_NN[name]
    if _abstract(klass):
        assert name not in COMPOSITES
        return
    if find_module_rule(klass) is not None:  # counted by its rule (tested per rule in test_registry.py)
        assert name not in COMPOSITES, f"{name} has a rule: remove it from COMPOSITES"
        return
    build = COMPOSITES.get(name)
    if build is None:
        pytest.fail(f"torch.nn.{name} has no rule and no entry in COMPOSITES: add a rule, or a constructor proving "
                    "that its children and ops are counted")
    result = _strict(build)
    assert (result.totals.flops > 0) == (name not in DATA_MOVEMENT)


#: compositions that only move data
DATA_MOVEMENT = {"Unfold"}


def test_composites_table_has_no_stale_entries() -> None:
    assert set(COMPOSITES) <= set(TORCH_NN)


# ------------------------------------------------------------------------------------------------ functional

_NOT_OPS = {"Callable", "DType", "Optional", "ScalingType", "SwizzleType", "Tensor", "assert_int_or_pair",
            "boolean_dispatch", "handle_torch_function", "has_torch_function", "has_torch_function_unary",
            "has_torch_function_variadic"}
FUNCTIONAL = sorted(n for n in dir(F) if not n.startswith("_") and callable(getattr(F, n)) and n not in _NOT_OPS)


@pytest.mark.parametrize("name", FUNCTIONAL)
def test_every_functional_op_has_a_rule(name: str) -> None:
    fn = getattr(F, name)
    assert find_op_rule(fn) is not None or find_name_rule(op_name(fn)) is not None, (
        f"F.{name} has no op rule and no name rule ({op_name(fn)!r})"
    )
