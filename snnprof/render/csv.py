"""CSV view of a profiling result: one row per layer, scalar columns only."""

from __future__ import annotations

from snnprof.counting.results import ProfileResult

__all__ = ["layers_csv"]


def layers_csv(result: ProfileResult) -> str:
    """Per-layer CSV text (``result.to_dataframe()`` without the index).

    Example:
        >>> text = layers_csv(result)  # doctest: +SKIP
        >>> text.splitlines()[0].startswith("name,type,input_kind")  # doctest: +SKIP
        True
    """
    return str(result.to_dataframe().to_csv(index=False))
