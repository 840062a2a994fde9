"""The reproducibility block of a report: command line, package versions, device, platform and date."""

from __future__ import annotations

import platform
import shlex
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from snnprof.reports.build import Reproducibility

__all__ = ["collect_reproducibility", "cpu_name", "default_device", "package_versions"]

#: Distributions whose versions every report records.
PACKAGES: tuple[str, ...] = ("snnprof", "torch", "spikingjelly", "numpy", "jinja2")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` plus Python (``not installed`` when absent)."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU model name (from ``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def default_device() -> str:
    """Where ``snnprof`` runs models by default: the CPU, with torch's thread count."""
    import torch

    return f"CPU: {cpu_name()} ({torch.get_num_threads()} torch threads)"


def collect_reproducibility(command: str | None = None, device: str | None = None,
                            date: datetime | None = None) -> Reproducibility:
    """Record how a report is made.

    Args:
        command: the exact command line (default: this process's ``sys.argv``).
        device: where the models ran (default: :func:`default_device`).
        date: generation time (default: now, UTC).

    Returns:
        The reproducibility record.
    """
    when = (date or datetime.now(UTC)).astimezone(UTC)
    return Reproducibility(
        command=command if command is not None else shlex.join(sys.argv),
        date=when.strftime("%Y-%m-%d %H:%M:%S UTC"),
        versions=package_versions(),
        device=device or default_device(),
        platform=platform.platform(),
    )
