"""``snnprof data``: synthetic data sets in each reader's real on-disk format.

``snnprof data synth NAME --out DIR`` writes the stand-in of reader ``NAME`` (seeded, seconds to
write) and prints the ``[input]`` lines that read it; ``snnprof data list`` shows the readers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from snnprof.cli_common import EXIT_BAD_INPUT, err_console, errors, fail, out_console, strict_json, write_outputs

__all__ = ["data_app", "register"]

data_app = typer.Typer(name="data", no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                       help="Synthetic data sets in the readers' real on-disk formats.")


@data_app.command("list")
def list_sets(
    *,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the list as JSON.")] = None,
) -> None:
    """List the readers that have a synthetic data set.

    Example: [bold]snnprof data list[/bold]
    """
    from snnprof.data.synth import SYNTHETIC_SETS

    rows = [{"reader": s.reader, "description": s.description} for s in SYNTHETIC_SETS.values()]
    with errors():
        if json_out is not None:
            write_outputs({json_out: strict_json(rows)})
    table = Table(title="Synthetic data sets (snnprof data synth READER --out DIR)", title_justify="left")
    table.add_column("reader", no_wrap=True)
    table.add_column("what is written", overflow="fold")
    for row in rows:
        table.add_row(row["reader"], row["description"])
    out_console.print(table)


@data_app.command("synth")
def synth(
    name: Annotated[str, typer.Argument(help="Reader whose data set to write (snnprof data list).")],
    *,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into (created).")],
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of every draw (same seed, same files).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
) -> None:
    """Write a reader's synthetic data set in its real on-disk format.

    Example: [bold]snnprof data synth cifar10dvs --out data/cifar10dvs[/bold], then
    [bold]snnprof count configs/sj_spiking_cnn_dataset.toml --dataset[/bold]
    """
    from snnprof.data.synth import SYNTHETIC_SETS, list_synthetic, write_synthetic

    if name not in SYNTHETIC_SETS:
        fail(ValueError(f"data synth: unknown reader {name!r}; expected one of: {', '.join(list_synthetic())}"),
             EXIT_BAD_INPUT)
    if out.exists() and not out.is_dir():
        fail(ValueError(f"--out: expected a folder, got the file {out}"), EXIT_BAD_INPUT)
    with errors():
        status = err_console.status(f"writing the synthetic {name} set ...") if not quiet else None
        if status is not None:
            status.start()
        try:
            path = write_synthetic(name, out, seed)
        except OSError as err:
            fail(ValueError(f"--out: cannot write into {out}: {err.strerror or err}"), EXIT_BAD_INPUT)
        finally:
            if status is not None:
                status.stop()
    if not quiet:
        out_console.print(f"wrote {SYNTHETIC_SETS[name].description}", highlight=False, soft_wrap=True)
        out_console.print(f'read it with: [input] source = "dataset", reader = "{name}", path = "{path}"',
                          highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``snnprof data list|synth`` to the CLI."""
    app.add_typer(data_app, name="data")
