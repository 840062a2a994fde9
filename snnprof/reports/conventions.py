"""The counting conventions printed in every report (README.md's "Counting conventions").

The field table and the input-kinds note are kept here; the rules table is generated from the rule
registry (:mod:`snnprof.counting.conventions`), like the README's. The texts keep the README's
inline Markdown (`` `code` `` and ``**bold**``); the HTML renderer turns those two forms into
``<code>``/``<strong>`` with :func:`markdown_spans` after escaping every piece.
``tests/reports/test_render.py`` fails when the README and these drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from snnprof.counting.conventions import TITLE, convention_rows

__all__ = [
    "COUNTING_CONVENTIONS",
    "ELEMENTWISE_OPS",
    "ELEMENTWISE_TITLE",
    "INPUT_KINDS_NOTE",
    "Span",
    "markdown_spans",
]

#: ``(field, meaning)`` rows of the README's counting-conventions table.
COUNTING_CONVENTIONS: tuple[tuple[str, str], ...] = (
    (
        "`macs`",
        "multiply-accumulates of synaptic layers (conv, linear, matmul, attention products) whose input was "
        "**dense** (real-valued), per call",
    ),
    (
        "`dense_macs`",
        'MACs of all synaptic layers as if every input were dense — the ANN view, equal to fvcore/thop "FLOPs"',
    ),
    ("`flops`", "`2 * dense_macs` plus the elementwise ops of the table below"),
    (
        "`sops`",
        "synaptic operations: one accumulate per (nonzero input event, connected output) pair — **exact and "
        "border-aware** (padding, stride, dilation, groups, transposed convs, non-zero padding modes). A graded "
        'input of value n counts n (`count_weighting = "nonzero"` counts 1)',
    ),
    (
        "`sops_rate`",
        "the papers' estimate `dense_macs × input event rate` (syops-counter / Spikformer convention), kept for "
        "comparison",
    ),
    ("`neurons`, `neuron_updates`", "spiking neurons per sample and step; state updates = neurons × T × B"),
    (
        "`spikes`, `firing_rate`",
        "nonzero neuron outputs; `spikes / neuron_updates`, also per time step and per channel",
    ),
    (
        "`valid_updates`, `firing_rate_valid`",
        "for models that mark their padded `[T, B]` slots (`snnprof.valid_slots(mask)`, e.g. SpikingNeRF's TCP/TP "
        "packing): neuron updates and spikes in valid slots, `valid_spikes / valid_updates`; padding = "
        "`1 − valid_updates / neuron_updates`",
    ),
    (
        "`fold_pooling`",
        "off by default. On: a synaptic layer fed by average or sum pooling of spikes (directly or through "
        "reshapes) counts **exact SOPs on the pre-pool spikes** — one accumulate per (spike, output connected to a "
        "pooled position whose window holds it), border-aware — and no MACs; its kind reads `spike (folded)`. "
        "`macs_folded`/`sops_folded` and `macs_unfolded`/`sops_unfolded` hold both views either way",
    ),
    ("`params`", "parameters (model total counts shared parameters once)"),
    (
        "memory traffic (bytes)",
        "`weight_read` (all weights once per call), `input_read`, `output_write`, `state_read` / `state_write` "
        "(one membrane element per update, ≥ 4 bytes)",
    ),
)

#: The README's paragraph on input kinds, one string.
INPUT_KINDS_NOTE: str = (
    "The input kind of every synaptic call is detected on the device (no host sync): `spike` (values in {0, c}, "
    "c > 0, incl. scaled spikes such as OTTT's ×2.74; all-zero inputs are silent spikes), `count` (non-negative "
    "integers: graded spikes, event counts; an all-ones tensor counts 1 each), `ternary` ({−1, 0, 1}) and "
    "`dense` (anything else, e.g. a constant 0.5). **A graded input whose nonzeros all share one value** (all 2s, "
    "a sum pool of sparse spikes) is {0, c} and so reads as scaled spikes: 1 per event; override the layer's kind "
    "with `count` to weigh each nonzero by its value. Non-dense inputs give SOPs, dense inputs give MACs; per layer "
    "the kind is reported (`mixed:a+b` when calls differ) and can be overridden per layer (an override also turns "
    "pool folding off for that layer). Multi-step `[T, B, …]` runs and single-step online loops give the same "
    "totals for the same computation; `per_sample` divides by the batch."
)

#: Heading of the rules' conventions table (generated from the rule registry).
ELEMENTWISE_TITLE: str = TITLE

#: ``(op, ops)`` rows of the README's rules table, generated from the rule registry.
ELEMENTWISE_OPS: tuple[tuple[str, str], ...] = convention_rows()

_SPAN = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*")


@dataclass(frozen=True)
class Span:
    """A run of text in one style.

    Attributes:
        text: the raw text (escaped by the renderer).
        style: ``""`` (plain), ``"code"`` or ``"strong"``.
    """

    text: str
    style: str = ""


def markdown_spans(text: str) -> list[Span]:
    """Split text with `` `code` `` and ``**bold**`` spans into styled runs.

    Example:
        >>> [(s.text, s.style) for s in markdown_spans("a `b` **c**")]
        [('a ', ''), ('b', 'code'), (' ', ''), ('c', 'strong')]
    """
    spans: list[Span] = []
    pos = 0
    for match in _SPAN.finditer(text):
        if match.start() > pos:
            spans.append(Span(text[pos : match.start()]))
        code, strong = match.groups()
        spans.append(Span(code, "code") if code is not None else Span(strong, "strong"))
        pos = match.end()
    if pos < len(text):
        spans.append(Span(text[pos:]))
    return spans
