"""CLI command modules: each defines ``register(app: typer.Typer) -> None`` and is found automatically.

Keep heavy imports (torch models, jinja2, NVML) inside the command functions so ``snnprof --help``
stays fast.
"""
