"""``torch.einsum``: the pairwise contractions torch executes, for any equation.

torch contracts the operands two at a time, left to right (or along ``opt_einsum``'s path when
that package is installed and ``torch.backends.opt_einsum.enabled``; the rule asks for the same
path). Before each contraction it takes the diagonal of repeated indices (free) and sums away
the indices that only one of the two operands carries and nothing later needs (a reduction: one
op per element of that operand, in ``flops``). The contraction itself is one ``bmm`` (or a
``mul`` when no index is summed) over the remaining indices:

* dense MACs of one contraction = the product of the sizes of every index either operand still
  carries (broadcast sizes; indices of size 1 cost nothing);
* an event of an operand reaches every output of that contraction indexed by the other operand's
  remaining indices: SOPs = events x their product; when both operands carry events only the
  product terms with two nonzero factors accumulate;
* a single operand costs one reduction per element when it sums an index away (transposes and
  diagonals cost nothing).

Ellipses broadcast like numpy's. Intermediate results of three or more operands are dense.
Products without a summed index (``"ij,ij->ij"``, outer products) count one MAC per product like a
matmul with an inner size of one, although torch runs them as ``mul`` (which
``torch.utils.flop_counter`` does not count).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from snnprof.counting.costs import Cost, PerEvent, Synapse
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import activity, prod

__all__ = ["EinsumPlan", "EinsumStep", "einsum_plan"]

_LETTERS = string.ascii_uppercase + string.ascii_lowercase


class EinsumStep(NamedTuple):
    """One pairwise contraction.

    Attributes:
        left: index of the original operand on the left, or ``None`` for an intermediate result.
        right: the same for the right operand.
        left_labels: the left operand's indices after its reduction (size > 1 only).
        right_labels: the same for the right operand.
        summed: indices summed by the contraction (none: torch runs a ``mul``, else a ``bmm``).
        macs: dense MACs of the contraction.
        reduce_ops: ops of the reductions taken before it (one per element of a reduced operand).
    """

    left: int | None
    right: int | None
    left_labels: frozenset[str]
    right_labels: frozenset[str]
    summed: frozenset[str]
    macs: int
    reduce_ops: int


@dataclass(frozen=True)
class EinsumPlan:
    """What torch executes for one einsum call.

    Attributes:
        spelled: each operand's indices with ellipses spelled out as letters.
        specs: the same after taking diagonals (each index once).
        sizes: the broadcast size of every index.
        steps: the pairwise contractions in execution order.
        reduce_ops: ops of a single operand's reduction (``"ij->i"``); 0 with two or more operands.
    """

    spelled: tuple[str, ...]
    specs: tuple[str, ...]
    sizes: dict[str, int]
    steps: tuple[EinsumStep, ...]
    reduce_ops: int = 0

    def size_of(self, labels: frozenset[str]) -> int:
        """Product of the sizes of ``labels``."""
        return prod(self.sizes[c] for c in labels)


def _split(equation: str, n_ops: int) -> tuple[list[str], str | None]:
    eq = equation.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != n_ops:
        raise ValueError(f"einsum '{equation}' names {len(inputs)} operands, got {n_ops}")
    return inputs, (rhs if "->" in eq else None)


def _spell_ellipses(inputs: list[str], rhs: str | None, dims: list[int]) -> tuple[list[str], str]:
    """Replace ``...`` by fresh letters (right-aligned, as numpy broadcasts); derive an implicit output."""
    used = set("".join(inputs) + (rhs or ""))
    widths = [d - (len(s) - 3) if "..." in s else 0 for s, d in zip(inputs, dims, strict=True)]
    fresh = [c for c in _LETTERS if c not in used][: max(widths, default=0)]
    if len(fresh) < max(widths, default=0):
        raise ValueError("einsum: too many ellipsis dimensions to spell out")
    spelled = [s.replace("...", "".join(fresh[len(fresh) - w :])) for s, w in zip(inputs, widths, strict=True)]
    if rhs is None:  # implicit output: the ellipsis, then the indices seen once, in torch's order
        counts = {c: "".join(inputs).count(c) for c in set("".join(inputs)) - {"."}}
        return spelled, "".join(fresh) + "".join(sorted(c for c, n in counts.items() if n == 1))
    return spelled, rhs.replace("...", "".join(fresh))


def _dedupe(spec: str) -> str:
    """``spec`` with repeated indices kept once, at their first position (torch's diagonal)."""
    return "".join(dict.fromkeys(spec))


def diagonal(t: torch.Tensor, spec: str) -> torch.Tensor:
    """``t`` with the diagonal taken for every repeated index, dims in :func:`_dedupe` order."""
    labels = list(spec)
    i = 0
    while i < len(labels):
        later = labels.index(labels[i], i + 1) if labels[i] in labels[i + 1 :] else -1
        if later < 0:
            i += 1
            continue
        t = t.diagonal(0, i, later).movedim(-1, i)
        del labels[later]
    return t


def _sizes(specs: list[str], shapes: list[tuple[int, ...]]) -> tuple[dict[str, int], list[frozenset[str]]]:
    """Broadcast index sizes, and each operand's indices of size > 1."""
    sizes: dict[str, int] = {}
    present = []
    for spec, shape in zip(specs, shapes, strict=True):
        dims = dict(zip(spec, shape, strict=True))  # a repeated index keeps one (equal) size
        for c, n in dims.items():
            sizes[c] = max(sizes.get(c, 1), int(n))
        present.append(frozenset(c for c, n in dims.items() if n != 1))
    return sizes, present


def _contract(a: frozenset[str], b: frozenset[str], counts: dict[str, int]) -> tuple[frozenset[str], ...]:
    """Torch's bookkeeping for one contraction: ``(a reduced, b reduced, summed)``; updates ``counts``."""
    summed, a_only, b_only = set(), set(), set()
    for c in list(counts):  # contraction indices still alive
        if c in a and c in b:
            counts[c] -= 1
            if counts[c] == 1:
                summed.add(c)
                del counts[c]
        elif counts[c] == 1 and (c in a or c in b):
            (a_only if c in a else b_only).add(c)
            del counts[c]
    return a - a_only, b - b_only, frozenset(summed)


def einsum_plan(equation: str, shapes: list[tuple[int, ...]], path: list[tuple[int, int]] | None = None) -> EinsumPlan:
    """The contractions torch runs for ``torch.einsum(equation, *operands of these shapes)``.

    Args:
        equation: the einsum equation (explicit or implicit output, ellipses allowed).
        shapes: the operands' shapes.
        path: opt_einsum's contraction path (pairs of positions in the list of remaining operands,
            results appended at the end); ``None``: left to right (results first), torch's default.
    """
    inputs, rhs = _split(equation, len(shapes))
    spelled, out = _spell_ellipses(inputs, rhs, [len(s) for s in shapes])
    specs = [_dedupe(s) for s in spelled]
    deduped = [tuple(shape[s.index(c)] for c in d) for s, d, shape in zip(spelled, specs, shapes, strict=True)]
    sizes, present = _sizes(specs, deduped)
    counts: dict[str, int] = {}
    for labels in present:
        for c in labels - set(out):
            counts[c] = counts.get(c, 0) + 1
    if len(shapes) == 1:
        reduce = prod(deduped[0]) if counts else 0
        return EinsumPlan(tuple(spelled), tuple(specs), sizes, (), reduce)
    ops: list[tuple[int | None, frozenset[str]]] = list(enumerate(present))
    pairs = iter(path or [])
    steps = []
    while len(ops) > 1:
        i, j = sorted(next(pairs)) if path is not None else (0, 1)
        (left, a), (right, b) = ops[i], ops[j]
        del ops[j], ops[i]
        a2, b2, summed = _contract(a, b, counts)
        reduce = (prod(sizes[c] for c in a) if a2 != a else 0) + (prod(sizes[c] for c in b) if b2 != b else 0)
        steps.append(EinsumStep(left, right, a2, b2, summed, prod(sizes[c] for c in a2 | b2), reduce))
        result = (None, (a2 | b2) - summed)
        ops.insert(len(ops) if path is not None else 0, result)
    return EinsumPlan(tuple(spelled), tuple(specs), sizes, tuple(steps))


def _operands(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, list[torch.Tensor]]:
    eq = args[0] if args else kwargs["equation"]
    rest = args[1:]
    ops = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else list(rest)
    return eq, ops


def torch_path(equation: str, ops: list[torch.Tensor], backend: Any = None) -> list[tuple[int, int]] | None:
    """The contraction path torch uses: opt_einsum's when installed and enabled (3+ operands), else ``None``.

    The same call as ``torch.einsum`` makes (``torch/functional.py``), so the counted path is the run one.

    Args:
        equation: the einsum equation.
        ops: the operands.
        backend: ``torch.backends.opt_einsum`` (default) or a stand-in with the same attributes.
    """
    backend = torch.backends.opt_einsum if backend is None else backend
    if len(ops) <= 2 or not backend.enabled or not backend.is_available():
        return None
    found = backend.get_opt_einsum().contract_path(equation, *ops, optimize=backend.strategy)[0]
    return [(int(p[0]), int(p[1])) for p in found]


class _EinsumPair:
    """Both operands carry events: every product term with two nonzero factors is one accumulate."""

    def __init__(self, spec_a: str, spec_b: str, lead: str) -> None:
        self.spec_a, self.spec_b, self.lead = spec_a, spec_b, lead

    def __call__(self, ev_a: torch.Tensor, ev_b: torch.Tensor) -> torch.Tensor:
        return torch.einsum(f"{self.spec_a},{self.spec_b}->", ev_a.to(torch.float64), ev_b.to(torch.float64))

    def rows(self, ev_a: torch.Tensor, ev_b: torch.Tensor) -> torch.Tensor:
        """Accumulates per index of ``A``'s first dim when ``B`` shares it at the same size (else the 0-d total)."""
        return torch.einsum(f"{self.spec_a},{self.spec_b}->{self.lead}", ev_a.to(torch.float64), ev_b.to(torch.float64))


def _event_operand(plan: EinsumPlan, index: int | None, ops: list[torch.Tensor]) -> torch.Tensor | None:
    """Original operand ``index`` with its diagonals taken (what torch multiplies), or ``None``.

    Intermediate results (``index`` ``None``) and parameters never carry events.
    """
    if index is None or activity(ops[index]) is None:
        return None
    return diagonal(ops[index], plan.spelled[index])


def _fanout(plan: EinsumPlan, t: torch.Tensor | None, reached: frozenset[str]) -> PerEvent | None:
    """Every event reaches the outputs indexed by ``reached`` (per leading index: rows of ``t``'s first dim)."""
    return None if t is None else PerEvent(plan.size_of(reached), trailing=max(t.dim() - 1, 0))


def _pair(plan: EinsumPlan, step: EinsumStep, a: torch.Tensor, b: torch.Tensor) -> _EinsumPair:
    assert step.left is not None and step.right is not None
    spec_a, spec_b = plan.specs[step.left], plan.specs[step.right]
    first = spec_a[:1]
    shared = bool(first) and first in spec_b and a.shape[0] == b.shape[spec_b.index(first)]
    return _EinsumPair(spec_a, spec_b, first if shared else "")


def _synapse(plan: EinsumPlan, step: EinsumStep, ops: list[torch.Tensor]) -> Synapse:
    """One contraction as a synaptic product: events of either original operand reach the other's indices."""
    a, b = _event_operand(plan, step.left, ops), _event_operand(plan, step.right, ops)
    fan_a = _fanout(plan, a, step.right_labels - step.left_labels)
    fan_b = _fanout(plan, b, step.left_labels - step.right_labels)
    pair = _pair(plan, step, a, b) if a is not None and b is not None else None
    return Synapse(dense_macs=step.macs, operand=a, fanout=fan_a, operand_b=b, fanout_b=fan_b, pair=pair)


@register_rule(torch.einsum, name="einsum", convention=Convention(
    "synaptic", "einsum: the contractions torch runs (its path), MACs `∏` of the indices each still carries; "
    "SOPs per contraction; reductions 1 per element"))
def einsum_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``torch.einsum``: the pairwise contractions torch executes (its path), reductions in ``flops``."""
    equation, ops = _operands(args, kwargs)
    plan = einsum_plan(equation, [tuple(t.shape) for t in ops], torch_path(equation, ops))
    reduce = plan.reduce_ops + sum(step.reduce_ops for step in plan.steps)
    return Cost(flops=reduce, synapses=tuple(_synapse(plan, step, ops) for step in plan.steps))
