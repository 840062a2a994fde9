"""``snnprof train CONFIG``: train a zoo model with its reference loop, then count the trained model.

The work is done by :func:`snnprof.reference_impls.harness.run_training`; this module adds the
Rich progress bar (on stderr) and the closing summary (on stdout). Bad input (an unknown model or
one without a reference loop, bad ``[train]`` keys, a missing dataset, a checkpoint of another model
on ``--resume``, a folder that already holds a run) prints one ``error:`` line and exits with 2
before anything is written; ``--device cuda`` without CUDA exits with 3.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from snnprof.cli_common import err_console, errors, out_console

if TYPE_CHECKING:
    from snnprof.reference_impls.harness import TrainResult

__all__ = ["RichProgress", "register", "render_summary", "train"]

#: Exit code after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _metrics_text(metrics: Mapping[str, Any], keys: int = 3) -> str:
    return " ".join(f"{k} {_fmt(v)}" for k, v in list(metrics.items())[:keys])


class RichProgress:
    """A Rich progress bar over global steps, with one line per evaluated epoch (all on stderr).

    Args:
        quiet: show nothing.
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=quiet,
        )
        self._task: Any = None
        self._spe = 1

    def start(self, total: int, completed: int, steps_per_epoch: int) -> None:
        """Open the bar at ``completed`` of ``total`` steps."""
        self._spe = max(1, steps_per_epoch)
        self._progress.start()
        self._task = self._progress.add_task("train", total=total, completed=completed, metrics="")

    def step(self, global_step: int, epoch: int, metrics: Mapping[str, float]) -> None:
        """Advance to ``global_step`` and show the step's first metrics."""
        self._progress.update(
            self._task, completed=global_step, description=f"epoch {epoch}", metrics=_metrics_text(metrics)
        )

    def epoch(self, line: Mapping[str, Any]) -> None:
        """Print the epoch's evaluation above the bar."""
        if self.quiet:
            return
        tag = "partial epoch" if line.get("partial") else "epoch"
        self._progress.console.print(
            f"{tag} {line['epoch']} · step {line['global_step']} · train {_metrics_text(line['train'])} · "
            f"eval {_metrics_text(line['eval'], keys=4)}",
            highlight=False,
        )

    def finish(self) -> None:
        """Close the bar."""
        self._progress.stop()


def _count_rows(result: TrainResult) -> list[tuple[str, str]]:
    from snnprof.units import format_count, format_energy_pj, format_rate

    if result.count is None:
        return []
    per = result.count.result.per_sample
    rows = [
        ("count (per sample)", f"dense MACs {format_count(per['dense_macs'])} · MACs {format_count(per['macs'])} · "
         f"SOPs {format_count(per['sops'])} · firing rate {format_rate(result.count.result.totals.firing_rate)}"),
    ]  # fmt: skip
    for name, energy in result.count.energy.items():
        rows.append((f"energy {name}", f"{format_energy_pj(energy.per_sample_pj)} per sample"))
    return rows


def render_summary(result: TrainResult) -> RenderableType:
    """The closing summary: schedule, last metrics, the trained model's count and the files written."""
    table = Table(title=f"trained {result.model}", title_justify="left", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value")
    done = result.global_step / result.steps_per_epoch
    table.add_row("schedule", f"{done:.3g} of {result.epochs} epochs · step {result.global_step} "
                              f"({result.steps_run} this run, {result.seconds:.1f} s)")  # fmt: skip
    if result.last is not None:
        table.add_row("train (last epoch)", _metrics_text(result.last["train"], keys=6))
        table.add_row("eval", _metrics_text(result.last["eval"], keys=6))
    for what, value in _count_rows(result):
        table.add_row(what, value)
    files = "\n".join(f"wrote {p}" for p in result.files)
    return Group(table, files)


def train(
    config: Annotated[Path, typer.Argument(help="Run config (TOML) with a [train] table.")],
    *,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default runs/<config name>).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Total epochs (overrides [train] epochs).")] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Stop when the global step count reaches N (counted from 0).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoint.pt.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start afresh in a folder holding a run.")] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (overrides [input] seed).")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    threads: Annotated[int | None, typer.Option("--threads", help="Torch CPU threads (default: torch's).")] = None,
    no_count: Annotated[bool, typer.Option("--no-count", help="Skip the final count of the trained model.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
) -> None:
    """Train a zoo model with its reference loop; checkpoints, JSON-lines metrics and a final count.

    Writes OUT/checkpoint.pt, OUT/model.pt (usable as `[model] checkpoint`), OUT/metrics.jsonl and
    OUT/count.json (snnprof.profile/1).

    Example: [bold]snnprof train configs/train_ottt_vgg11_small.toml --out runs/ottt --max-steps 20[/bold]
    """
    from snnprof.reference_impls.harness import TrainOptions, run_training

    options = TrainOptions(
        out=out, epochs=epochs, max_steps=max_steps, resume=resume, overwrite=overwrite, seed=seed,
        device=device, threads=threads, count=not no_count,
    )  # fmt: skip
    progress = RichProgress(quiet=quiet)
    try:
        with errors():
            result = run_training(config, options, progress)
    except KeyboardInterrupt:
        progress.finish()
        err_console.print("interrupted; the last checkpoint is kept (continue with --resume)", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        progress.finish()
    if not quiet:
        out_console.print(render_summary(result))


def register(app: typer.Typer) -> None:
    """Add ``snnprof train`` to the CLI."""
    app.command(no_args_is_help=True)(train)
