"""``snnprof report``: one self-contained HTML energy report of one config, or a comparison of several."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from snnprof.cli_common import EXIT_BAD_INPUT, check_outputs, err_console, errors, fail, out_console, write_outputs

if TYPE_CHECKING:
    from snnprof.config import RunConfig
    from snnprof.energy.measured import MeasuredEnergy

__all__ = ["default_out", "match_measured", "register", "report"]

#: Default folder of generated reports.
REPORTS_DIR = Path("reports")


def default_out(configs: Sequence[Path]) -> Path:
    """``reports/<stem>.html`` for one config, ``reports/<stem1>_vs_<stem2>....html`` for several."""
    return REPORTS_DIR / ("_vs_".join(c.stem for c in configs[:4]) + ".html")


def _same_file(recorded: str, cfg_path: Path, measured_path: Path) -> bool:
    """Whether a config path recorded in a measurement names ``cfg_path`` (cwd- or file-relative)."""
    candidates = [Path(recorded), measured_path.parent / recorded]
    return any(c.is_file() and c.resolve() == cfg_path.resolve() for c in candidates)


def _config_index(raw: Mapping[str, Any], cfgs: Sequence[RunConfig], path: Path, position: int | None) -> int:
    """Which config a measurement belongs to: its ``config`` path, its ``model`` name, else its position.

    Raises:
        ConfigError: when it names a config not given, or it cannot be told apart.
    """
    from snnprof.errors import ConfigError

    recorded = raw.get("config")
    if isinstance(recorded, Mapping):
        recorded = recorded.get("path")
    if isinstance(recorded, str) and recorded:
        hits = [i for i, c in enumerate(cfgs) if _same_file(recorded, c.path, path)]
        hits = hits or [i for i, c in enumerate(cfgs) if Path(recorded).name == c.path.name]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            given = ", ".join(str(c.path) for c in cfgs)
            raise ConfigError(path, "config", f"measures {recorded}, which is none of the configs given ({given})")
    model = raw.get("model")
    by_model = [i for i, c in enumerate(cfgs) if isinstance(model, str) and c.model.name == model]
    if len(by_model) == 1:
        return by_model[0]
    if position is not None:
        return position
    raise ConfigError(path, "", "cannot tell which config this measurement belongs to: give one --measured "
                      "per config, in the same order")


def match_measured(files: Sequence[Path], cfgs: Sequence[RunConfig]) -> list[MeasuredEnergy | None]:
    """Load measured-energy files and assign each to its config.

    A file is matched by the config path it records (``config``), else by a model name (``model``)
    only one config uses, else by position when there is one file per config.

    Raises:
        ConfigError: unreadable or invalid file, unmatched file, or two files for one config.
    """
    from snnprof.energy.measured import load_measured
    from snnprof.errors import ConfigError

    matched: list[MeasuredEnergy | None] = [None] * len(cfgs)
    positional = len(files) == len(cfgs)
    for k, path in enumerate(files):
        measured, raw = load_measured(path)
        index = _config_index(raw, cfgs, path, k if positional else None)
        if matched[index] is not None:
            raise ConfigError(path, "", f"a second measurement for {cfgs[index].path}")
        matched[index] = measured
    return matched


def _command(configs: Sequence[Path], out: Path, options: Sequence[tuple[str, Sequence[Any] | None]]) -> str:
    """The command line as it was given (shell-quoted), for the reproducibility block."""
    argv = ["snnprof", "report", *map(str, configs), "--out", str(out)]
    for flag, values in options:
        for value in values or ():
            argv += [flag, str(value)]
    return shlex.join(argv)


def _labels(given: Sequence[str] | None, configs: Sequence[Path]) -> list[str]:
    """One label per config: given, or the config file stems."""
    if not given:
        return [c.stem for c in configs]
    if len(given) != len(configs):
        fail(ValueError(f"--label: expected one per config ({len(configs)}), got {len(given)}"), EXIT_BAD_INPUT)
    return list(given)


def report(
    configs: Annotated[
        list[Path],
        typer.Argument(help="Run config(s) (TOML). Two or more give a comparison, with ratios against the first."),
    ],
    *,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="HTML file to write (default: reports/CONFIG-STEM.html)."),
    ] = None,
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", "-p", help="Hardware profile (name or .toml path); repeat; replaces the configs'."),
    ] = None,
    host_profile: Annotated[
        str | None,
        typer.Option("--host-profile", help="Per-event profile pricing what a neuromorphic profile cannot run "
                     "(dense MACs of an encoding layer, an ANN) as separate host_* terms; replaces the config's."),
    ] = None,
    measured: Annotated[
        list[Path] | None,
        typer.Option("--measured", "-m", help="JSON of `snnprof measure --json`; repeat; matched to configs by "
                     "the config/model it records, else by order."),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="Name of each config in the report, one per config (default: the file stems)."),
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title of the report.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
) -> None:
    """Write one self-contained HTML energy report (offline, printable) of one config or a comparison.

    Example: [bold]snnprof report configs/ottt_vgg11_ws.toml --out reports/ottt.html -p loihi[/bold]

    Comparison: [bold]snnprof report configs/snn.toml configs/ann.toml --out reports/snn_vs_ann.html[/bold]
    """
    from snnprof.config import load_config
    from snnprof.pipeline import run_config
    from snnprof.pipeline.compare import comparison_profiles
    from snnprof.reports import build_html

    target = out if out is not None else default_out(configs)
    labels = _labels(label, configs)
    check_outputs(target)
    with errors():
        cfgs = [load_config(c) for c in configs]
        meas = match_measured(measured or [], cfgs)
        chosen = comparison_profiles(cfgs, profile)
        runs = []
        for cfg, name in zip(cfgs, labels, strict=True):
            with err_console.status(f"profiling {cfg.model.name} ({cfg.path}) ...") if not quiet else nullcontext():
                runs.append(run_config(cfg, chosen, label=name, host_profile=host_profile))
        command = _command(configs, target, (("--profile", profile), ("--host-profile", [host_profile] if host_profile
                                                                         else None),
                                             ("--measured", measured), ("--label", label),
                                             ("--title", [title] if title else None)))
        html = build_html(runs, measured=meas, title=title, command=command)
        write_outputs({target: html})
    if not quiet:
        size_kb = len(html.encode("utf-8")) / 1024
        out_console.print(f"wrote {target} ({size_kb:.0f} kB)", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``snnprof report`` to the CLI."""
    app.command(name="report", no_args_is_help=True)(report)
