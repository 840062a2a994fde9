"""Atomic file output: every file snnprof writes appears whole or not at all, and one command's files together.

A file is written to a temporary sibling named ``.<name>.snnprof-<pid>.tmp``, flushed, synced and
renamed over the target. :func:`write_all` writes several files as one step: every path is checked
first, every temporary file is written, and only then are they renamed. A temporary file left by a
killed process (SIGKILL, power loss) is removed by the next write into the same folder once its
process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "check_output_paths", "remove_stale_temps", "write_all"]

_TEMP = re.compile(r"^\.(?P<name>.+)\.snnprof-(?P<pid>\d+)\.tmp$")


def _current_umask() -> int:
    """Return the process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    """Whether a process with this id exists."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def temp_path(dest: Path) -> Path:
    """The temporary sibling this process writes ``dest`` through."""
    return dest.with_name(f".{dest.name}.snnprof-{os.getpid()}.tmp")


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove temporary files of processes that no longer run; returns what was removed."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            match = _TEMP.match(entry.name)
            if match and not _alive(int(match["pid"])):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed


def check_output_paths(paths: list[Path]) -> list[Path]:
    """Check a command's output paths before anything is computed or written.

    Returns:
        The paths, resolved.

    Raises:
        OSError: two outputs name the same file, a path is a folder, or its folder cannot be created
            or written (the message names the path).
    """
    resolved = [Path(p).expanduser().resolve() for p in paths]
    for i, path in enumerate(resolved):
        if path in resolved[:i]:
            raise OSError(f"{paths[i]} is given twice: expected a different file for each output")
        if path.is_dir():
            raise OSError(f"{paths[i]} is a folder: expected a file path")
        parent = path.parent
        existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
        if existing is None or not existing.is_dir():
            raise OSError(f"cannot create the folder of {paths[i]}: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OSError(f"cannot write {paths[i]}: {existing} is not writable")
    return resolved


def _write_temp(dest: Path, data: bytes) -> Path:
    """Write ``data`` to ``dest``'s temporary sibling (flushed and synced) and return its path."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest.parent)
    tmp = temp_path(dest)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def write_all(files: Mapping[str | os.PathLike[str], bytes]) -> list[Path]:
    """Write several files as one step: all appear, or (on any failure before the renames) none.

    Args:
        files: destination path -> complete contents.

    Returns:
        The destination paths.

    Raises:
        OSError: a path check or a write failed; no destination was touched.
    """
    dests = [Path(p) for p in files]
    check_output_paths(dests)
    temps: list[tuple[Path, Path]] = []
    try:
        for dest, data in zip(dests, files.values(), strict=True):
            temps.append((_write_temp(dest, data), dest))
        for tmp, dest in temps:
            os.replace(tmp, dest)
    finally:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                if tmp.exists():
                    tmp.unlink()
    return dests


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically.

    The bytes go to a temporary file in the same directory, which is flushed, synced and then
    renamed over ``path`` with :func:`os.replace`; readers never see a partial file and a failure
    leaves any previous file untouched. Missing parent directories are created.

    Args:
        path: destination file.
        data: the file's complete contents.

    Returns:
        The destination path.
    """
    dest = Path(path)
    tmp = _write_temp(dest, data)
    try:
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return dest


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`).

    Args:
        path: destination file.
        text: the file's complete contents.
        encoding: text encoding.

    Returns:
        The destination path.

    Example:
        >>> atomic_write_text("reports/run.json", "{}")  # doctest: +SKIP
    """
    return atomic_write_bytes(path, text.encode(encoding))
