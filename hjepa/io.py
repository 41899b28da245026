"""Atomic file writes: write to a temporary name beside the target, then rename.

A reader therefore sees either the old file or the complete new one, never half of it, even
when the writer is killed (SIGKILL, power loss after the fsync) in the middle. Temporary names
carry the host and process id, so that a later write to the same target removes what a killed
writer left behind. A failed write (disk full, no permission) raises :class:`StorageError`
naming the target, and leaves no partial file.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from hjepa.errors import StorageError


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.{socket.gethostname()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temps(target: Path) -> None:
    """Delete temporaries of ``target`` left by killed writers on this host."""
    prefix = _temp_prefix(target)
    if not target.parent.is_dir():
        return
    for entry in target.parent.iterdir():
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
            continue
        pid = entry.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def storage_error(target: Path, exc: OSError) -> StorageError:
    """A :class:`StorageError` for a failed write of ``target``."""
    reason = exc.strerror or str(exc)
    hint = " Free some space or write elsewhere (--out)." if exc.errno == 28 else ""
    return StorageError(
        f"Could not write '{target}': {reason} (errno {exc.errno}). Nothing was written there; "
        f"an earlier version, if any, is intact.{hint}"
    )


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    Works for files and for folders (a folder target is replaced as a whole). An ``OSError``
    raised while writing or renaming becomes :class:`StorageError`; the temporary is removed.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_temp_prefix(target)}{os.getpid()}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise storage_error(target, exc) from exc
    inner = tmp / target.name
    try:
        yield inner
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(inner, target)
        fsync_dir(target.parent)
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise storage_error(target, exc) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes_with(path: str | os.PathLike[str], write: Callable[[Any], None]) -> None:
    """Atomically create ``path`` by calling ``write(f)`` on a binary file (fsync'd before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (fsync'd before the rename)."""
    write_bytes_with(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_yaml(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, yaml.safe_dump(obj, sort_keys=False))

