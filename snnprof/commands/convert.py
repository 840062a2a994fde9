"""``snnprof convert SEED CHECKPOINT --out model.pt``: an upstream checkpoint as a zoo model's state dict.

Reads the checkpoint with ``torch.load(weights_only=True)`` (numpy arrays allowed), maps keys, shapes and
encodings with the seed's converter (:mod:`snnprof.convert`), builds the zoo model with the kwargs the
checkpoint implies (or ``--model`` / ``--kwargs``), loads the state strictly as a check, and writes the
state dict atomically (it loads with ``torch.load(weights_only=True)``, e.g. as ``[model] checkpoint``).
Prints the ``[model]`` section to use. Exit 2 on bad input (one ``error:`` line), nothing written.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from snnprof.cli_common import EXIT_BAD_INPUT, errors, fail, out_console
from snnprof.config import toml_inline

__all__ = ["convert", "register"]

logger = logging.getLogger(__name__)


def _parse_kwargs(text: str | None) -> dict[str, Any]:
    from snnprof.errors import ConfigError

    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError("--kwargs", "", f"expected a JSON object ({err.msg})") from None
    if not isinstance(value, dict):
        raise ConfigError("--kwargs", "", "expected a JSON object")
    return value


def convert(
    seed: Annotated[str, typer.Argument(help="Seed of the checkpoint: spikingnerf, nerf, stereospike, event_flow, "
                                             "ottt (or a zoo model name).")],
    checkpoint: Annotated[Path, typer.Argument(help="The upstream checkpoint file.")],
    *,
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the zoo state dict here (atomically).")],
    model: Annotated[str | None, typer.Option("--model", help="The zoo model it must be for (default: the "
                                                                 "checkpoint's).")] = None,
    kwargs: Annotated[str | None, typer.Option("--kwargs", help="Model kwargs as JSON; default: the ones the "
                                                                 "checkpoint implies.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
) -> None:
    """Convert an upstream checkpoint of a seed into a zoo model's state dict.

    Example: [bold]snnprof convert ottt runs/ottt/checkpoint_max.pth --out ottt_vgg11.pt[/bold]
    """
    import torch

    from snnprof.convert import CONVERTERS, MODEL_SEEDS, check_fit, convert_checkpoint
    from snnprof.errors import ConfigError
    from snnprof.io import atomic_write_bytes
    from snnprof.models import create_model

    with errors():
        if seed not in CONVERTERS and seed in MODEL_SEEDS:
            seed, model = MODEL_SEEDS[seed], model or seed
        converted = convert_checkpoint(seed, checkpoint, model)
        model_kwargs = {**converted.kwargs, **_parse_kwargs(kwargs)}
        try:
            net = create_model(converted.model, **model_kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError(str(checkpoint), "", f"expected kwargs {converted.model} accepts ({err})") from None
        check_fit(net, converted, checkpoint)
        net.load_state_dict(converted.state, strict=True)
        buffer = io.BytesIO()
        torch.save(converted.state, buffer)
    try:
        atomic_write_bytes(out, buffer.getvalue())
    except OSError as err:
        fail(OSError(f"cannot write {out}: {err.strerror or err}"), EXIT_BAD_INPUT)
    if not quiet:
        out_console.print(f"{checkpoint} ({seed}) -> {out}: {converted.model}, {len(converted.state)} tensors",
                          highlight=False)
        for note in converted.notes:
            out_console.print(f"  note: {note}", highlight=False, markup=False)
        out_console.print(f'[model]\nname = "{converted.model}"\nkwargs = {toml_inline(model_kwargs)}\n'
                          f'checkpoint = "{out.as_posix()}"', highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add ``snnprof convert`` to the app."""
    app.command(no_args_is_help=True)(convert)
