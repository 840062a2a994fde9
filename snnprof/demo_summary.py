"""Plain five-line summary of a profile JSON (``snnprof.profile/1``), used by ``make demo``.

Usage::

    python -m snnprof.demo_summary reports/demo_ottt_vgg11_ws.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from snnprof.units import format_count, format_energy_pj, format_rate

__all__ = ["ANN_MAC_PJ", "main", "summarize"]

#: Energy of one 32-bit float MAC at 45 nm (Horowitz, ISSCC 2014): the dense-ANN baseline.
ANN_MAC_PJ = 4.6
_BASELINE_PROFILE = "cmos45nm_fp32"


_OPS = {"mac": "MACs", "ac": "SOPs", "neuron_update": "neuron updates", "spike": "spikes"}


def _priced(entry: Mapping[str, Any], batch: int) -> str:
    """`` (14.4 % of ops priced; unpriced per sample: 1.07 G MACs)`` when a profile leaves operations unpriced."""
    coverage = entry.get("coverage", 1.0)
    if coverage >= 1.0:
        return ""
    left = entry.get("unpriced", {})
    ops = ", ".join(f"{format_count(left[k] / max(batch, 1))} {w}" for k, w in _OPS.items() if left.get(k))
    return f" ({format_rate(coverage)} of ops priced; unpriced per sample: {ops})"


def _energy_line(energy: Mapping[str, Any], batch: int) -> str:
    """Energy per sample on every profile in the file, with what each leaves unpriced."""
    if not energy:
        return "energy per sample: none estimated"
    parts = [f"{name} {format_energy_pj(entry['per_sample_pj'])}{_priced(entry, batch)}"
             for name, entry in energy.items()]
    return "energy per sample: " + "; ".join(parts)


def _ratio_line(data: Mapping[str, Any]) -> str:
    """SNN energy on cmos45nm_fp32 relative to the same network run as a dense ANN."""
    dense_pj = ANN_MAC_PJ * data["per_sample"]["dense_macs"]
    entry = data.get("energy", {}).get(_BASELINE_PROFILE)
    if entry is None or dense_pj <= 0:
        return f"SNN vs dense ANN ({_BASELINE_PROFILE}): n/a"
    snn_pj = entry["per_sample_pj"]
    model = data.get("config", {}).get("model", {})
    untrained = "" if isinstance(model, Mapping) and model.get("checkpoint") else "; untrained weights"
    return (
        f"SNN vs dense ANN ({_BASELINE_PROFILE}, {ANN_MAC_PJ} pJ/MAC): {snn_pj / dense_pj:.3f}x"
        f" ({format_energy_pj(snn_pj)} vs {format_energy_pj(dense_pj)} per sample; the SNN's neuron updates"
        f" and spikes have no price on {_BASELINE_PROFILE}, as in the papers' E = 4.6 pJ MACs + 0.9 pJ SOPs"
        f"{untrained})"
    )


def summarize(data: Mapping[str, Any]) -> list[str]:
    """Summary lines of a profile JSON dict.

    Args:
        data: a parsed ``snnprof.profile/1`` document.

    Returns:
        Five lines: model and run shape, per-sample MACs and SOPs, mean firing rate, energy per
        sample per profile, and the SNN-vs-dense-ANN energy ratio on ``cmos45nm_fp32``
        (``energy / (4.6 pJ * dense_macs)``).
    """
    per = data["per_sample"]
    totals = data["totals"]
    rate = totals["firing_rate"] if totals.get("neuron_updates") else None
    return [
        f"model: {data['model']} (batch {data['batch_size']}, T = {data['time_steps']},"
        f" SOPs {data.get('sop_convention', 'exact')})",
        f"per sample: MACs {format_count(per['macs'])}, SOPs {format_count(per['sops'])},"
        f" dense MACs {format_count(per['dense_macs'])}",
        f"mean firing rate: {format_rate(rate)}",
        _energy_line(data.get("energy", {}), int(data.get("batch_size", 1))),
        _ratio_line(data),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the summary of the JSON file named in ``argv``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m snnprof.demo_summary FILE.json", file=sys.stderr)
        return 2
    try:
        data = json.loads(Path(args[0]).read_text(encoding="utf-8"))
        lines = summarize(data)
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"error: cannot summarise {args[0]}: {err!r}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
