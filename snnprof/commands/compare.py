"""``snnprof compare CONFIG_A CONFIG_B [...]``: run configs on the same inputs and compare them side by side.

Shows T and B of the SNN tensor per chunk, padding fraction, valid points, MACs, SOPs, spikes, firing
rates per layer, energy per hardware profile (every profile the configs name by default), PSNR/SSIM
when a checkpoint and ground truth are available, and wall time, with ratios against the first config
and the first config's energy reduction against each other one. Exit 2 on bad input (one line).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from snnprof.cli_common import check_outputs, err_console, errors, out_console, strict_json, write_outputs

__all__ = ["compare", "register"]

logger = logging.getLogger(__name__)


def compare(
    configs: Annotated[
        list[Path], typer.Argument(help="Two or more run configs (TOML); the first is the reference.")
    ],
    *,
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", "-p", help="Hardware profile (name or .toml path); repeat. "
                                             "Default: every profile the configs name."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write results and ratios as JSON (snnprof.compare/1).")
    ] = None,
    host_profile: Annotated[
        str | None,
        typer.Option("--host-profile", help="Per-event profile pricing what a neuromorphic profile cannot run "
                     "(dense MACs of an encoding layer, an ANN) as separate host_* terms; replaces the config's."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
) -> None:
    """Compare configs side by side (e.g. SpikingNeRF TCP vs TP, or SNN vs ANN).

    Example: [bold]snnprof compare configs/spikingnerf_d_tcp.toml configs/spikingnerf_d_tp.toml --json cmp.json[/bold]

    An energy ratio is stated only where both sides are priced like for like; otherwise the line says
    "not comparable" and why. Mixed systems: [bold]snnprof compare configs/stereospike.toml
    configs/stereospike_ann.toml -p loihi --host-profile cmos45nm_fp32[/bold]
    """
    from snnprof.config import load_config
    from snnprof.errors import ConfigError
    from snnprof.pipeline import compare_configs
    from snnprof.render.compare import render_comparison

    check_outputs(json_out)
    with errors():
        if len(configs) < 2:
            raise ConfigError(configs[0] if configs else "<command line>", "",
                              "compare needs at least two configs")
        loaded = [load_config(path) for path in configs]
        if quiet:
            cmp = compare_configs(loaded, profile, host_profile)
        else:
            with err_console.status(f"comparing {len(loaded)} configs ..."):
                cmp = compare_configs(loaded, profile, host_profile)
        if json_out is not None:
            write_outputs({json_out: strict_json(cmp.to_dict())})
    if not quiet:
        out_console.print(render_comparison(cmp))
        if json_out is not None:
            out_console.print(f"wrote {json_out}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``compare`` to the ``snnprof`` app."""
    app.command(no_args_is_help=True)(compare)
