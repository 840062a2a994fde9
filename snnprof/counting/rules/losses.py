"""Losses and distances: per-element estimates built from the elementwise table.

Each loss costs a fixed number of ops per element of its input (arithmetic 1, ``log``/``exp`` 4,
the reduction 1), derived term by term below; class-indexed losses add their per-target work:

===============================  ==  ===========================================================
``l1_loss``, ``mse_loss``         3  difference, abs/square, reduction
``smooth_l1_loss``, ``huber``     5  difference, abs, compare, branch arithmetic, reduction
``hinge_embedding_loss``          4  margin difference, max, select, reduction
``margin_ranking_loss``           5  difference, product, margin, max, reduction
``multi_margin_loss``             4  margin difference, max, (power), reduction
``multilabel_margin_loss``        4  as ``multi_margin_loss``
``kl_div``                        6  log, difference, product, reduction
``poisson_nll_loss``              7  exp, product, difference, reduction
``gaussian_nll_loss``             9  log, difference, square, divide, add, halve, reduction
``soft_margin_loss``             11  product, negate, exp, log1p, reduction
``binary_cross_entropy``         11  two logs, two complements, two products, add, negate, reduction
``binary_cross_entropy_with_...``13  exp, log1p (stable softplus), product, three arithmetic, reduction
``multilabel_soft_margin_loss``  13  two logsigmoids, two products, add, negate, reduction
``cosine_embedding_loss``         7  cosine similarity (6 per element), margin per pair
``triplet_margin_loss``           7  two pairwise distances (3 per element each), margin
``nll_loss``                      2  per target element: gather, negate (+ reduction)
``cross_entropy``                 3  log_softmax per logit, plus 2 per target element
``ctc_loss``                      6  per (time step, sample, extended-label) node of the recursion
===============================  ==  ===========================================================

Distances: ``cosine_similarity`` 6 per input element (three multiply-adds), ``pairwise_distance``
3 per input element (difference, power, sum), ``pdist`` 3 per (pair, feature).
``LinearCrossEntropyLoss`` / ``F.linear_cross_entropy`` is a linear map (synaptic MACs) and a
cross entropy over its logits.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.counting.costs import Cost
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import arg, prod
from snnprof.counting.rules.linear import linear_cost

__all__ = ["PER_ELEMENT"]

#: ops per input element of the elementwise losses (see the module docstring)
PER_ELEMENT: dict[str, int] = {
    "l1_loss": 3, "mse_loss": 3, "smooth_l1_loss": 5, "huber_loss": 5, "hinge_embedding_loss": 4,
    "margin_ranking_loss": 5, "multi_margin_loss": 4, "multilabel_margin_loss": 4, "kl_div": 6,
    "poisson_nll_loss": 7, "gaussian_nll_loss": 9, "soft_margin_loss": 11, "binary_cross_entropy": 11,
    "binary_cross_entropy_with_logits": 13, "multilabel_soft_margin_loss": 13, "cosine_embedding_loss": 7,
    "triplet_margin_loss": 7,
}
_LOSS = Convention("losses", "per input element: estimates from the elementwise table (see `rules/losses.py`)")
_CE = Convention("losses", "cross entropy: 3 per logit (log_softmax) + 2 per target; NLL: 2 per target")
_DISTANCE = Convention("losses", "distances per input element: cosine 6, pairwise 3; `pdist` 3 per pair and feature")


def _per_element(op: str) -> Any:
    per = PER_ELEMENT[op]

    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        return Cost(flops=per * arg(args, kwargs, 0, "input").numel())

    rule.__name__ = f"{op}_op"
    rule.__doc__ = f"``F.{op}``: {per} ops per input element (estimate)."
    return rule


for _op in PER_ELEMENT:
    register_rule(_op, convention=_LOSS)(_per_element(_op))


def cross_entropy_flops(logits: int, targets: int) -> int:
    """Cross entropy of ``logits`` logits and ``targets`` target elements: 3 per logit plus 2 per target."""
    return 3 * logits + 2 * targets


@register_rule("cross_entropy", convention=_CE)
def cross_entropy_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.cross_entropy``: 3 ops per logit plus 2 per target element."""
    logits, target = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "target")
    return Cost(flops=cross_entropy_flops(logits.numel(), target.numel()))


@register_rule("nll_loss", convention=_CE)
def nll_loss_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.nll_loss``: 2 ops per target element."""
    return Cost(flops=2 * arg(args, kwargs, 1, "target").numel())


@register_rule("ctc_loss", convention=Convention("losses", "CTC: 6 per (time step, sample, extended label)"))
def ctc_loss_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.ctc_loss``: 6 ops per node of the forward recursion (``T x N x (2 S + 1)``)."""
    log_probs, targets = arg(args, kwargs, 0, "log_probs"), arg(args, kwargs, 1, "targets")
    steps, batch = log_probs.shape[0], log_probs.shape[1] if log_probs.dim() == 3 else 1
    labels = targets.shape[-1] if targets.dim() == 2 else -(-targets.numel() // batch)
    return Cost(flops=6 * steps * batch * (2 * labels + 1))


def distance_cost(per_element: int, x1: torch.Tensor, x2: torch.Tensor) -> Cost:
    """``per_element`` ops per element of the broadcast inputs (cosine 6, pairwise 3)."""
    return Cost(flops=per_element * prod(torch.broadcast_shapes(x1.shape, x2.shape)))


@register_rule("cosine_similarity", convention=_DISTANCE)
def cosine_similarity_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.cosine_similarity``: 6 ops per (broadcast) input element."""
    return distance_cost(6, arg(args, kwargs, 0, "x1"), arg(args, kwargs, 1, "x2"))


@register_rule(nn.CosineSimilarity, convention=_DISTANCE)
def cosine_similarity_module(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``nn.CosineSimilarity``: as ``F.cosine_similarity``."""
    return distance_cost(6, arg(args, kwargs, 0, "x1"), arg(args, kwargs, 1, "x2"))


@register_rule("pairwise_distance", convention=_DISTANCE)
def pairwise_distance_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.pairwise_distance``: 3 ops per (broadcast) input element."""
    return distance_cost(3, arg(args, kwargs, 0, "x1"), arg(args, kwargs, 1, "x2"))


@register_rule(nn.PairwiseDistance, convention=_DISTANCE)
def pairwise_distance_module(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``nn.PairwiseDistance``: as ``F.pairwise_distance``."""
    return distance_cost(3, arg(args, kwargs, 0, "x1"), arg(args, kwargs, 1, "x2"))


@register_rule("triplet_margin_with_distance_loss", convention=_LOSS)
def triplet_with_distance_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.triplet_margin_with_distance_loss``: as ``triplet_margin_loss`` (7 per anchor element).

    A distance function that is a module is counted by its own rule (its hook runs): then only the
    margin, max and reduction remain (1 per anchor element). Another callable is estimated as two
    pairwise distances.
    """
    anchor = arg(args, kwargs, 0, "anchor")
    own = isinstance(kwargs.get("distance_function"), nn.Module)
    return Cost(flops=(1 if own else PER_ELEMENT["triplet_margin_loss"]) * anchor.numel())


@register_rule("pdist", convention=_DISTANCE)
def pdist_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.pdist``: 3 ops per (pair of rows, feature)."""
    x = arg(args, kwargs, 0, "input")
    rows = x.shape[0]
    return Cost(flops=3 * rows * (rows - 1) // 2 * x.shape[1])


def _linear_cross_entropy(x: torch.Tensor, weight_shape: tuple[int, ...], has_bias: bool,
                          target: torch.Tensor) -> Cost:
    """A linear map to ``prod(weight_shape[:-1])`` logits per row, then a cross entropy over them."""
    logits = prod(weight_shape[:-1])
    proj = linear_cost(x, (logits, weight_shape[-1]), has_bias, x.new_empty(0))
    rows = x.numel() // weight_shape[-1]
    flops = cross_entropy_flops(rows * logits, target.numel()) + (rows * logits if has_bias else 0)
    return Cost(flops=flops, synapses=proj.synapses)


_LINEAR_CE = Convention("losses", "linear map (synaptic MACs, bias 1 per logit), then cross entropy")


@register_rule(nn.LinearCrossEntropyLoss, convention=_LINEAR_CE)
def linear_cross_entropy_module(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                                output: Any) -> Cost:
    """``nn.LinearCrossEntropyLoss``: its linear map and the cross entropy of the logits."""
    shape = (module.num_classes, *module.out_features, module.linear.in_features)
    return _linear_cross_entropy(arg(args, kwargs, 0, "input"), shape, module.linear.bias is not None,
                                 arg(args, kwargs, 1, "target"))


@register_rule(F.linear_cross_entropy, name="linear_cross_entropy", convention=_LINEAR_CE)
def linear_cross_entropy_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.linear_cross_entropy``: as the module."""
    weight = arg(args, kwargs, 1, "linear_weight")
    return _linear_cross_entropy(arg(args, kwargs, 0, "input"), tuple(weight.shape),
                                 kwargs.get("linear_bias") is not None, arg(args, kwargs, 2, "target"))
