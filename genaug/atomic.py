"""Atomic writes: write to a temporary name beside the target, then rename over it.

A reader never sees a half-written file, and a crash leaves either the old file or the new one. On object
storage (a URI, :mod:`genaug.storage`) the rename is a copy and a delete, but an object appears whole or not
at all, so the promise to readers holds there too.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from genaug import storage


def _temporary(path, tag: str):
    return path.with_name(f".{path.stem}.tmp-{tag}{path.suffix}")


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Deletes temporaries of ``path`` left by a killed writer (call only where no writer is live)."""
    path = storage.path(path)
    for stale in path.parent.glob(_temporary(path, "*").name):
        stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path (same folder and suffix) that is renamed to ``path`` on success.

    An OSError while writing (a full disk, a permission) names ``path``, not the temporary or nothing.
    """
    path = storage.path(path)
    tmp = _temporary(path, str(os.getpid()))
    try:
        with storage.file_errors_as_os_errors():
            yield tmp
            tmp.replace(path)
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), os.fspath(path)) from err
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        f.write(data)
        f.flush()
        if isinstance(tmp, Path):  # a local file: on disk before the rename
            os.fsync(f.fileno())


def save_model(model, path: str | os.PathLike) -> None:
    """``model.save(path)`` for a ``.keras`` file, atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def write_json(path: str | os.PathLike, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n").encode())


def _jsonable(value):
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
