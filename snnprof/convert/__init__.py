"""Upstream checkpoints of the five seeds -> state dicts of the zoo models (``snnprof convert``, ``load_upstream``).

==============  ==========================================================  ====================================
seed            zoo models                                                  upstream layout read
==============  ==========================================================  ====================================
``spikingnerf``  ``spikingnerf_d``, ``dvgo_ann``, ``spikingnerf_t``,         DVGO ``.tar`` / TensoRF ``.th``
                ``tensorf_ann``
``nerf``        ``nerf_mlp``, ``refnerf``, ``mipnerf360_proposal``          Enigmatisms/NeRF ``saveModel``
``stereospike``  ``stereospike``, ``stereospike_ann``                        ``torch.save(net.state_dict())``
``event_flow``  the nine event_flow models                                  fork ``model.pth`` / state dicts
``ottt``        ``ottt_vgg11_ws``, ``ottt_vgg11f_ws``, ``ottt_nfresnet34``  ``checkpoint_*.pth`` (``net``)
==============  ==========================================================  ====================================

Each seed module documents the upstream keys it reads, with the upstream file they come from.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from snnprof.convert import event_flow, nerf, ottt, spikingnerf, stereospike  # noqa: F401  (registration)
from snnprof.convert.base import (
    CONVERTERS,
    MODEL_SEEDS,
    Converted,
    SeedConverter,
    UpstreamCheckpointError,
    read_checkpoint,
)

__all__ = [
    "CONVERTERS",
    "MODEL_SEEDS",
    "Converted",
    "SeedConverter",
    "UpstreamCheckpointError",
    "check_fit",
    "convert_checkpoint",
    "load_upstream",
]

logger = logging.getLogger(__name__)

_MAX_LISTED = 5


def convert_checkpoint(seed: str, path: str | Path, model_name: str | None = None) -> Converted:
    """Read an upstream checkpoint of ``seed`` and convert it (no model is built).

    Args:
        seed: a key of :data:`CONVERTERS` (``spikingnerf``, ``nerf``, ``stereospike``, ``event_flow``, ``ottt``).
        path: the upstream checkpoint file.
        model_name: the zoo model it must be for (``None``: the one the checkpoint implies).

    Raises:
        UpstreamCheckpointError: unknown seed, unreadable file, a layout the converter does not know, or a
            checkpoint of another model than ``model_name``.
    """
    path = Path(path)
    if seed not in CONVERTERS:
        raise UpstreamCheckpointError(str(path), "", f"expected a seed with a converter ({', '.join(CONVERTERS)}), "
                                                     f"got {seed!r}")
    converted = CONVERTERS[seed].convert(read_checkpoint(path), path, model_name)
    if model_name is not None and converted.model != model_name:
        raise UpstreamCheckpointError(str(path), "", f"expected a {model_name} checkpoint; its layout is "
                                                     f"{converted.model}'s")
    return converted


def _listing(items: list[str]) -> str:
    more = len(items) - _MAX_LISTED
    return ", ".join(items[:_MAX_LISTED]) + (f", ... ({more} more)" if more > 0 else "")


def check_fit(model: torch.nn.Module, converted: Converted, path: str | Path) -> None:
    """Raise unless ``converted.state`` has exactly the model's keys and shapes.

    ``converted.free_shapes`` may differ (DVGO's occupancy cache: the model takes the saved resolution).

    Raises:
        UpstreamCheckpointError: naming the first offending key, the shapes and the kwargs the checkpoint implies.
    """
    own, state = model.state_dict(), converted.state
    resizable = set(converted.free_shapes)
    hint = f" (the checkpoint implies [model] kwargs {converted.kwargs})" if converted.kwargs else ""
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        key = (missing or unexpected)[0]
        what = f"missing: {_listing(missing)}" if missing else f"unexpected: {_listing(unexpected)}"
        raise UpstreamCheckpointError(str(path), key, f"expected the keys of {converted.model}; {what}{hint}")
    for key in sorted(set(own) - resizable):
        if own[key].shape != state[key].shape:
            raise UpstreamCheckpointError(str(path), key, f"expected shape {list(own[key].shape)} for the model "
                                                          f"as configured, got {list(state[key].shape)}{hint}")


def load_upstream(model_name: str, path: Path, model_kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict of zoo model ``model_name`` (built with ``model_kwargs``) from an upstream checkpoint.

    What ``[model] checkpoint_format = "upstream"`` does: read ``path`` with ``weights_only=True`` (numpy
    arrays allowed), convert it with the model's seed converter, and check keys and shapes against the
    model built with ``model_kwargs``; the result loads with ``model.load_state_dict(state, strict=True)``.

    Raises:
        UpstreamCheckpointError: (a :class:`~snnprof.errors.ConfigError`) ``FILE: KEY: expected ...`` for a
            model without a converter, an unreadable or unsafe file, an unknown layout, or a checkpoint that
            does not fit the configured model (the message lists the kwargs the checkpoint implies).
    """
    from snnprof.models import create_model

    if model_name not in MODEL_SEEDS:
        raise UpstreamCheckpointError(str(path), "", f"expected a zoo model with an upstream converter "
                                                     f"({', '.join(sorted(MODEL_SEEDS))}), got {model_name!r}")
    converted = convert_checkpoint(MODEL_SEEDS[model_name], path, model_name)
    try:
        model = create_model(model_name, **model_kwargs)
    except (TypeError, ValueError) as err:
        raise UpstreamCheckpointError(str(path), "", f"expected [model] kwargs {model_name} accepts ({err})") from None
    check_fit(model, converted, path)
    return converted.state
