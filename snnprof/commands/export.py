"""``snnprof export CONFIG --onnx FILE`` (LIF-FireNet family to ONNX) and ``--nir FILE`` (any NIR-expressible model).

``--nir`` writes the config's model (zoo or your own) as a NIR graph when every layer has a NIR
node (see :mod:`snnprof.interop.nir_export`); ``snnprof count FILE.nir`` then counts the graph.

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

from snnprof.cli_common import EXIT_BAD_INPUT, check_outputs, err_console, errors, fail, out_console

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
    config: Annotated[Path, typer.Argument(help="Run config (TOML) of the model to export.")],
    *,
    onnx: Annotated[
        Path | None, typer.Option("--onnx", help="Write the ONNX graph of a LIF-FireNet-family model (atomically).")
    ] = None,
    nir_out: Annotated[
        Path | None, typer.Option("--nir", help="Write the model as a NIR graph (.nir, HDF5; atomically).")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Compare onnxruntime with PyTorch on the config's inputs.")
    ] = False,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.")] = 18,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
) -> None:
    """Export a model: one time step of a spiking FireNet to ONNX, or any NIR-expressible model to NIR.

    Example: [bold]snnprof export configs/lif_firenet.toml --onnx lif_firenet.onnx --verify[/bold]

    NIR: [bold]snnprof export configs/sj_nir_cnn.toml --nir sj_nir_cnn.nir[/bold], then
    [bold]snnprof count sj_nir_cnn.nir[/bold] counts the graph.
    """
    if (onnx is None) == (nir_out is None):
        fail(ValueError("export: expected exactly one of --onnx FILE or --nir FILE"), EXIT_BAD_INPUT)
    if nir_out is not None:
        _export_nir(config, nir_out, quiet=quiet)
        return
    assert onnx is not None
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


def _export_nir(config: Path, out: Path, *, quiet: bool) -> None:
    """``--nir``: trace the config's model into a NIR graph and write it."""
    import torch

    from snnprof.config import load_config
    from snnprof.errors import ConfigError
    from snnprof.interop.nir_export import NIRExportError, to_nir, write_nir
    from snnprof.workload import entry_of, make_inputs, prepare_model

    check_outputs(out)
    with errors():
        cfg = load_config(config)
        model = prepare_model(cfg)
        inputs = make_inputs(cfg, model)
        step_mode = entry_of(cfg).step_mode
        if not isinstance(inputs, torch.Tensor):
            raise ConfigError(cfg.path, "input", "expected one input tensor: NIR graphs take a single input")
        shape = tuple(inputs.shape[2:] if step_mode == "multi" else inputs.shape[1:])
        try:
            graph = to_nir(model, shape, step_mode)
            write_nir(graph, out)
        except NIRExportError as err:
            raise ConfigError(cfg.path, "model.name", f"cannot export {cfg.model.name} to NIR: {err}") from None
    if not quiet:
        table = Table(title=f"{out} (NIR graph of {cfg.model.name}, input {list(shape)})", title_justify="left")
        table.add_column("node")
        table.add_column("NIR type")
        for name, node in graph.nodes.items():
            table.add_row(name, type(node).__name__)
        out_console.print(table)
        out_console.print(f"wrote {out}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``snnprof export`` to the app."""
    app.command(no_args_is_help=True)(export)
