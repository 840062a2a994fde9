"""``snnprof export CONFIG --onnx FILE``: ONNX graph of one time step of a LIF-FireNet-family zoo model.

The model (and its checkpoint) and the input shape ``[B, C, H, W]`` come from the config, as for
``snnprof count``. The graph takes the events and every layer's state and returns the flow and the
next states (see :mod:`snnprof.export.onnx_lif`). ``--verify`` then runs the config's inputs
through PyTorch and ONNX Runtime step by step, feeding the states back, and compares spikes
(exactly) and membranes. Heavy imports stay inside the command.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from snnprof.cli_common import err_console, errors, out_console

if TYPE_CHECKING:
    from snnprof.export.onnx_lif import OnnxExport, VerifyReport

__all__ = ["MEMBRANE_TOLERANCE", "export", "register", "render_export", "render_verify"]

#: Largest membrane difference (absolute) that ``--verify`` accepts.
MEMBRANE_TOLERANCE = 1e-5


def render_export(info: OnnxExport) -> Table:
    """Table of the exported graph's inputs, outputs and operators."""
    table = Table(title=f"{info.path} (opset {info.opset})", title_justify="left")
    table.add_column("graph input")
    table.add_column("shape", justify="right")
    for name, shape in info.input_shapes.items():
        table.add_row(name, "x".join(str(s) for s in shape))
    table.caption = "outputs: " + ", ".join(info.output_names) + "\noperators: " + ", ".join(
        f"{op} {n}" for op, n in info.op_types.items()
    )
    table.caption_justify = "left"
    return table


def render_verify(report: VerifyReport) -> str:
    """One line: spikes compared, mismatches and the largest differences."""
    return (
        f"onnxruntime vs PyTorch over {report.steps} steps: {report.spike_mismatches} of {report.spikes} spikes "
        f"differ, max |membrane diff| {report.max_membrane_diff:.3g}, max |flow diff| {report.max_flow_diff:.3g}"
    )


def export(
    config: Annotated[Path, typer.Argument(help="Run config (TOML) of a LIF-FireNet-family model.")],
    *,
    onnx: Annotated[Path, typer.Option("--onnx", help="Write the ONNX graph here (atomically).")],
    verify: Annotated[
        bool, typer.Option("--verify", help="Compare onnxruntime with PyTorch on the config's inputs.")
    ] = False,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.")] = 18,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
) -> None:
    """Export one time step of a spiking FireNet to ONNX, states as graph inputs and outputs.

    Example: [bold]snnprof export configs/lif_firenet.toml --onnx lif_firenet.onnx --verify[/bold]
    """
    from snnprof.config import load_config
    from snnprof.export.onnx_lif import check_exportable, export_onnx, verify_onnx
    from snnprof.workload import make_inputs, prepare_model

    with errors():
        cfg = load_config(config)
        model = prepare_model(cfg)
        check_exportable(model)
        inputs = make_inputs(cfg, model)
        _, batch, _, height, width = inputs.shape
        with err_console.status(f"exporting {cfg.model.name} ...") if not quiet else nullcontext():
            info = export_onnx(model, onnx, batch_size=batch, height=height, width=width, opset=opset)
        report = verify_onnx(model, onnx, inputs) if verify else None
    if not quiet:
        out_console.print(render_export(info))
        if report is not None:
            out_console.print(render_verify(report), highlight=False)
        out_console.print(f"wrote {info.path}", highlight=False)
    if report is not None and (report.spike_mismatches or report.max_membrane_diff > MEMBRANE_TOLERANCE):
        err_console.print("error: ONNX Runtime disagrees with PyTorch (see above)", style="red")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``snnprof export`` to the app."""
    app.command(no_args_is_help=True)(export)
