"""The ``snnprof`` command line (Typer + Rich).

Exit codes: 0 ok, 2 bad input (invalid config, unknown model/profile, bad profile file ...),
3 needed hardware missing. Errors print one ``error: ...`` line on stderr, never a traceback,
and no output file is written.
"""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from snnprof.cli_common import (
    err_console,
    errors,
    out_console,
    write_outputs,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="snnprof",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

_out = out_console
_err = err_console
def _version(value: bool) -> None:
    """Eager ``--version`` callback."""
    if value:
        from snnprof import __version__

        _out.print(f"snnprof {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Per-layer operations, spikes and energy of spiking and conventional PyTorch networks.

    Example: [bold]snnprof count configs/sj_spiking_cnn.toml --json out.json[/bold]
    """


@app.command(no_args_is_help=True)
def count(
    config: Annotated[Path, typer.Argument(help="Run config (TOML), e.g. configs/sj_spiking_cnn.toml.")],
    *,
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", "-p", help="Hardware profile (name or .toml path); repeat; replaces the config's."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the profile JSON (snnprof.profile/1).")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the per-layer table as CSV.")] = None,
    per_sample: Annotated[bool, typer.Option("--per-sample", help="Show per-sample numbers in the table.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
) -> None:
    """Count operations, spikes and energy of a zoo model described by a config.

    Example: [bold]snnprof count configs/ottt_vgg11_ws.toml -p loihi --json out.json --csv out.csv[/bold]
    """
    from snnprof.config import load_config
    from snnprof.render import layers_csv, render_result
    from snnprof.runner import run_count

    with errors():
        cfg = load_config(config)
        with _err.status(f"profiling {cfg.model.name} ...") if not quiet else nullcontext():
            result = run_count(cfg, profiles=profile, per_sample=per_sample)
        outputs: dict[Path, str] = {}
        if json_out is not None:
            outputs[json_out] = result.to_json() + "\n"
        if csv_out is not None:
            outputs[csv_out] = layers_csv(result)
        write_outputs(outputs)
    if not quiet:
        _out.print(render_result(result, per_sample=per_sample))
        for path in outputs:
            _out.print(f"wrote {path}", highlight=False)


def _profile_rows() -> list[dict[str, Any]]:
    """One dict per shipped hardware profile: name, description and provenance."""
    from snnprof.energy import list_profiles, load_profile

    rows = []
    for name in list_profiles():
        prof = load_profile(name)
        rows.append({"name": prof.name, "description": prof.description, **dict(prof.provenance)})
    return rows


_SOURCE_CHARS = 60


def _shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters with an ellipsis (full text is in ``--json``)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _profiles_table(rows: list[dict[str, Any]]) -> Table:
    """Rich table of hardware profiles."""
    table = Table(title="Hardware profiles", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("technology", no_wrap=True)
    table.add_column("precision", ratio=1)
    table.add_column("fidelity", no_wrap=True)
    table.add_column("source", ratio=2)
    for row in rows:
        tech = row.get("technology_nm")
        table.add_row(
            row["name"],
            f"{tech} nm" if tech else "—",
            str(row.get("precision", "—")),
            str(row.get("fidelity", "—")),
            _shorten(str(row.get("source", "—")), _SOURCE_CHARS),
        )
    return table


@app.command()
def profiles(
    *,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the list as JSON.")] = None,
) -> None:
    """List the shipped hardware profiles with their provenance.

    Example: [bold]snnprof profiles --json profiles.json[/bold]
    """
    with errors():
        rows = _profile_rows()
        if json_out is not None:
            write_outputs({json_out: json.dumps(rows, indent=2) + "\n"})
    _out.print(_profiles_table(rows))


def _zoo_rows() -> list[dict[str, Any]]:
    """One dict per registered zoo model."""
    from snnprof.models import get_entry, list_models

    rows = []
    for name in list_models():
        entry = get_entry(name)
        rows.append(
            {
                "name": name,
                "step_mode": entry.step_mode,
                "description": entry.description,
                "paper": entry.paper,
            }
        )
    return rows


@app.command()
def zoo(
    *,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the list as JSON.")] = None,
) -> None:
    """List the registered zoo models.

    Example: [bold]snnprof zoo[/bold]
    """
    with errors():
        rows = _zoo_rows()
        if json_out is not None:
            write_outputs({json_out: json.dumps(rows, indent=2) + "\n"})
    table = Table(title="Model zoo", title_justify="left")
    for header in ("name", "step mode", "description"):
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["step_mode"], row["description"])
    _out.print(table)


#: Loggers whose environment notes would clutter the CLI's stderr (e.g. torch without Triton).
_QUIET_LOGGERS: tuple[str, ...] = ("torch._library.triton",)


def _register_commands() -> None:
    """Add every command module of :mod:`snnprof.commands` (each defines ``register(app)``)."""
    import importlib
    import pkgutil

    from snnprof import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point (``snnprof``)."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    app(prog_name="snnprof")


if __name__ == "__main__":
    main()
