"""The ``snnprof`` command line (Typer + Rich).

Exit codes: 0 ok, 2 bad input (invalid config, unknown model/profile, bad profile file ...),
3 needed hardware missing. Errors print one ``error: ...`` line on stderr, never a traceback,
and no output file is written.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from snnprof.cli_common import (
    check_outputs,
    err_console,
    errors,
    handle_sigterm,
    out_console,
    strict_json,
    write_outputs,
)
from snnprof.quiet import NOISY_LOGGERS
from snnprof.units import printable

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
        from snnprof.version import __version__

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


_DATASET_ONLY = ("--max-batches", "--resume", "--checkpoint-every")


@app.command(no_args_is_help=True)
def count(
    config: Annotated[Path, typer.Argument(help="Run config (TOML), e.g. configs/sj_spiking_cnn.toml, or a NIR graph "
                                           "(.nir) with the input options below.")],
    *,
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", "-p", help="Hardware profile (name or .toml path); repeat; replaces the config's."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the profile JSON (snnprof.profile/1).")] = None,
    host_profile: Annotated[
        str | None,
        typer.Option("--host-profile", help="Per-event profile pricing what a neuromorphic profile cannot run "
                     "(dense MACs of an encoding layer, an ANN) as separate host_* terms; replaces the config's."),
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the per-layer table as CSV.")] = None,
    per_sample: Annotated[bool, typer.Option("--per-sample", help="Show per-sample numbers in the table.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
    dataset: Annotated[
        bool, typer.Option("--dataset", help="Stream the config's whole data set (source = 'dataset'), not one batch.")
    ] = False,
    max_batches: Annotated[
        int | None, typer.Option("--max-batches", min=1, help="With --dataset: profile at most N batches.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="With --dataset: continue from the checkpoint next to --json.")
    ] = False,
    checkpoint_every: Annotated[
        int | None,
        typer.Option("--checkpoint-every", min=1, help="With --dataset: checkpoint every K batches to JSON.ckpt."),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="With --dataset: cpu or cuda (cuda:LOCAL_RANK).")] = "cpu",
    shape: Annotated[
        str | None, typer.Option("--shape", help="NIR graph: input shape of one sample, e.g. 2,32,32 (default: the "
                                 "graph's input type).", rich_help_panel="NIR graph input")] = None,
    time_steps: Annotated[
        int, typer.Option("--time-steps", "-T", help="NIR graph: time steps T.", rich_help_panel="NIR graph input")
    ] = 8,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-B", help="NIR graph: samples B.", rich_help_panel="NIR graph input")
    ] = 1,
    kind: Annotated[
        str | None, typer.Option("--kind", help="NIR graph: spike | count | dense input (default spike).",
                                 rich_help_panel="NIR graph input")] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", help="NIR graph: spike probability or mean count (default 0.2).",
                                   rich_help_panel="NIR graph input")] = None,
    seed: Annotated[int, typer.Option("--seed", help="NIR graph: input seed.", rich_help_panel="NIR graph input")] = 0,
    dt: Annotated[
        float | None, typer.Option("--dt", help="NIR graph: time step in the graph's time unit (default: its "
                                   "metadata dt, else 1; snnTorch exports 1e-4, Norse 1e-3).",
                                   rich_help_panel="NIR graph input")] = None,
) -> None:
    """Count operations, spikes and energy of a model described by a config, or of a NIR graph.

    Example: [bold]snnprof count configs/ottt_vgg11_ws.toml -p loihi --json out.json --csv out.csv[/bold]

    A NIR graph, fed T = 8 steps of random spikes of its input shape:
    [bold]snnprof count graph.nir --time-steps 8 --batch-size 4 --rate 0.2 --dt 1e-4[/bold]

    A whole data set, with mean and spread across samples (the config has source = "dataset"):
    [bold]snnprof count CONFIG --dataset --json out.json --checkpoint-every 50[/bold]; on N processes:
    [bold]torchrun --nproc_per_node=N -m snnprof count CONFIG --dataset --json out.json[/bold]
    """
    options = {"--max-batches": max_batches, "--resume": resume, "--checkpoint-every": checkpoint_every}
    graph_input = {"shape": shape, "time_steps": time_steps, "batch_size": batch_size, "kind": kind, "rate": rate,
                   "seed": seed, "dt": dt}
    if config.suffix.lower() == ".nir":
        _count_nir(config, graph_input, profile, json_out, csv_out, per_sample=per_sample, quiet=quiet,
                   host_profile=host_profile, dataset=dataset)
        return
    _no_graph_options(config, graph_input)
    if dataset:
        _count_dataset(config, profile, json_out, csv_out, per_sample=per_sample, quiet=quiet, options=options,
                       device=device, host_profile=host_profile)
        return
    from snnprof.config import load_config
    from snnprof.dataset.distributed import world_from_env
    from snnprof.errors import ConfigError

    check_outputs(json_out, csv_out)
    with errors():
        given = [name for name in _DATASET_ONLY if options[name]]
        if given:
            raise ConfigError(config, "", f"{', '.join(given)} only apply with --dataset")
        if not world_from_env().is_main:  # under torchrun without --dataset, rank 0 alone counts
            return
        cfg = load_config(config)
    _count_once(cfg, profile, json_out, csv_out, per_sample=per_sample, quiet=quiet, host_profile=host_profile)


def _count_once(cfg: Any, profile: list[str] | None, json_out: Path | None, csv_out: Path | None, *,
                per_sample: bool, quiet: bool, host_profile: str | None, keys: dict[str, str] | None = None) -> None:
    """Profile one batch of a loaded config, write the outputs together, print the table.

    Args:
        cfg: the loaded config.
        profile: ``--profile`` values (``None``: the config's).
        json_out: ``--json`` file, if any.
        csv_out: ``--csv`` file, if any.
        per_sample: print per-sample numbers.
        quiet: print nothing on success.
        host_profile: ``--host-profile``, if any.
        keys: renames of config keys in error messages (a NIR graph's implicit config names CLI options).
    """
    from snnprof.errors import ConfigError
    from snnprof.pipeline import run_config
    from snnprof.render import layers_csv, render_result

    with errors():
        try:
            with _err.status(f"profiling {cfg.model.name} ...") if not quiet else nullcontext():
                result = run_config(cfg, profile, host_profile=host_profile)
        except ConfigError as err:
            if not keys:
                raise
            raise ConfigError(err.path, keys.get(err.key, err.key), err.expected) from None
        outputs = _rendered_outputs(result, json_out, csv_out, layers_csv)
        write_outputs(outputs)
    if not quiet:
        _out.print(render_result(result, per_sample=per_sample))
        for path in outputs:
            _out.print(f"wrote {path}", highlight=False)


_GRAPH_DEFAULTS = {"shape": None, "time_steps": 8, "batch_size": 1, "kind": None, "rate": None, "seed": 0, "dt": None}


def _no_graph_options(config: Path, given: dict[str, Any]) -> None:
    """The NIR input options apply to ``.nir`` arguments only (a config has its ``[input]``)."""
    extra = [f"--{k.replace('_', '-')}" for k, v in given.items() if v != _GRAPH_DEFAULTS[k]]
    if extra:
        with errors():
            from snnprof.errors import ConfigError

            raise ConfigError(config, "", f"{', '.join(extra)}: expected only with a NIR graph (.nir); a config "
                                          "sets its inputs in [input]")


def _graph_options(given: dict[str, Any], config: Path) -> dict[str, Any]:
    """The NIR options as config values (``--shape 2,32,32`` -> ``[2, 32, 32]``)."""
    from snnprof.errors import ConfigError

    out = dict(given)
    if given["shape"] is not None:
        try:
            out["shape"] = [int(part) for part in given["shape"].replace("x", ",").split(",") if part.strip()]
        except ValueError:
            raise ConfigError(config, "--shape", f"expected sizes separated by commas (e.g. 2,32,32), got "
                                                 f"{given['shape']!r}") from None
    return out


def _count_nir(graph: Path, given: dict[str, Any], profile: list[str] | None, json_out: Path | None,
               csv_out: Path | None, *, per_sample: bool, quiet: bool, host_profile: str | None,
               dataset: bool) -> None:
    """``snnprof count GRAPH.nir``: the implicit config of the graph and the input options, counted once."""
    from snnprof.config import NIR_OPTION_KEYS, nir_config
    from snnprof.errors import ConfigError

    check_outputs(json_out, csv_out)
    with errors():
        if dataset:
            raise ConfigError(graph, "--dataset", "a NIR graph has no data set: write a config with [model] nir "
                                                  "and source = 'dataset'")
        cfg = nir_config(graph, _graph_options(given, graph))
    _count_once(cfg, profile, json_out, csv_out, per_sample=per_sample, quiet=quiet, host_profile=host_profile,
                keys=dict(NIR_OPTION_KEYS))


def _rendered_outputs(run: Any, json_out: Path | None, csv_out: Path | None, layers_csv: Any) -> dict[Path, str]:
    """Every requested output file's text, rendered before anything is written."""
    outputs: dict[Path, str] = {}
    if json_out is not None:
        outputs[json_out] = run.to_json() + "\n"
    if csv_out is not None:
        outputs[csv_out] = layers_csv(run.result)
    return outputs


class _RankErrors:
    """Errors as one ``error:`` line on rank 0 (:func:`errors`); other ranks exit with the same code silently."""

    def __init__(self, is_main: bool) -> None:
        self.main = errors() if is_main else None

    def __enter__(self) -> None:
        if self.main is not None:
            self.main.__enter__()

    def __exit__(self, kind: Any, err: Any, tb: Any) -> bool | None:
        if self.main is not None:
            return self.main.__exit__(kind, err, tb)
        from snnprof.cli_common import EXIT_BAD_INPUT, EXIT_NO_HARDWARE, fail
        from snnprof.dataset.errors import DistributedRunError
        from snnprof.errors import HardwareMissingError, SnnprofError

        if isinstance(err, DistributedRunError) and err.every_rank:
            fail(err, EXIT_BAD_INPUT)
        if isinstance(err, SnnprofError):
            raise typer.Exit(EXIT_NO_HARDWARE if isinstance(err, HardwareMissingError) else EXIT_BAD_INPUT) from None
        return None


def _dataset_progress(quiet: bool, name: str) -> tuple[Any, Any, Any]:
    """A Rich progress bar on stderr and its ``on_start``/``on_batch`` callbacks (no-ops when quiet)."""
    if quiet:
        return nullcontext(), None, None
    from rich import progress as rp

    bar = rp.Progress(rp.TextColumn("{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn(),
                      rp.TextColumn("batches · {task.fields[samples]:,} samples"), rp.TimeElapsedColumn(),
                      rp.TimeRemainingColumn(), console=_err, transient=True)
    task = bar.add_task(f"profiling {name}", total=None, samples=0)

    def on_start(total: int, skipped: int) -> None:
        bar.update(task, total=total)
        if skipped:
            bar.update(task, description=f"profiling {name} (resumed after batch {skipped})")

    def on_batch(done: int, samples: int, _size: int) -> None:
        bar.update(task, completed=done, samples=samples)

    return bar, on_start, on_batch


def _count_dataset(config: Path, profile: list[str] | None, json_out: Path | None, csv_out: Path | None, *,
                   per_sample: bool, quiet: bool, options: dict[str, Any], device: str,
                   host_profile: str | None) -> None:
    """``snnprof count --dataset``: stream the data set (sharded under torchrun), write once from rank 0."""
    from snnprof.config import load_config
    from snnprof.dataset.checkpoint import checkpoint_path
    from snnprof.dataset.distributed import distributed, world_from_env
    from snnprof.errors import ConfigError
    from snnprof.pipeline import DatasetOptions, run_dataset
    from snnprof.render import layers_csv, render_result
    from snnprof.render.dataset import sample_stats_table

    with errors():
        is_main = world_from_env().is_main
    if is_main:
        check_outputs(json_out, csv_out)
    with _RankErrors(is_main):
        cfg = load_config(config)
        ckpt = _checkpoint_option(config, json_out, options, checkpoint_path)
        _check_device(device)
        with distributed(device) as ctx:
            if ctx.active and ckpt is not None:
                raise ConfigError(config, "", "--checkpoint-every/--resume work in single-process runs only")
            bar, on_start, on_batch = _dataset_progress(quiet or not ctx.is_main, cfg.model.name)
            opts = DatasetOptions(max_batches=options["--max-batches"], checkpoint_every=options["--checkpoint-every"],
                                  checkpoint=ckpt, resume=bool(options["--resume"]), device=device,
                                  on_start=on_start, on_batch=on_batch)
            with bar:
                result = run_dataset(cfg, profiles=profile, opts=opts, ctx=ctx, host_profile=host_profile)
        if result is None:  # not rank 0
            return
        outputs = _rendered_outputs(result, json_out, csv_out, layers_csv)
        write_outputs(outputs)
        if ckpt is not None and ckpt.exists():
            ckpt.unlink()
    if not quiet:
        _out.print(render_result(result, per_sample=per_sample))
        if result.result.sample_stats is not None:
            _out.print(sample_stats_table(result.result.sample_stats))
        for path in outputs:
            _out.print(f"wrote {path}", highlight=False)


def _checkpoint_option(config: Path, json_out: Path | None, options: dict[str, Any], where: Any) -> Path | None:
    """The checkpoint file (``JSON.ckpt``) when checkpoints are asked for, else ``None``."""
    from snnprof.errors import ConfigError

    if not (options["--checkpoint-every"] or options["--resume"]):
        return None
    if json_out is None:
        raise ConfigError(config, "", "--checkpoint-every/--resume need --json (the checkpoint is written next to it)")
    return where(json_out)


def _check_device(device: str) -> None:
    """``cpu`` or an available ``cuda``."""
    from snnprof.errors import HardwareMissingError, SnnprofError

    if device not in ("cpu", "cuda"):
        raise SnnprofError(f"--device: expected 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise HardwareMissingError("--device cuda: no CUDA device is available")


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
    check_outputs(json_out)
    with errors():
        rows = _profile_rows()
        if json_out is not None:
            write_outputs({json_out: strict_json(rows)})
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
    check_outputs(json_out)
    with errors():
        rows = _zoo_rows()
        if json_out is not None:
            write_outputs({json_out: strict_json(rows)})
    table = Table(title="Model zoo", title_justify="left")
    for header in ("name", "step mode", "description"):
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(printable(row["name"]), row["step_mode"], printable(row["description"]))
    _out.print(table)




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
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    handle_sigterm()
    app(prog_name="snnprof")


if __name__ == "__main__":
    main()
