"""Where genaug's outputs live: a local path or any ``tf.io.gfile`` URI (``gs://``, ``s3://``, ``ram://``).

:func:`path` is the one way genaug turns a user's path into an object to read and write through: a
``pathlib.Path`` for a local path, an ``etils.epath.Path`` for a URI (the path type TFDS itself takes, so
``tfds.builder_from_directory`` reads the same objects). epath knows the cloud schemes; TensorFlow's
in-memory ``ram://`` file system, which the tests use to run the object-storage code path, is registered
with epath by :mod:`genaug.ram_path`.

What object storage does not give (see README, "Scaling out"): no atomic rename (a rename is a copy and a
delete, though every object appears whole or not at all) and no advisory lock, so one writer per output
directory is the contract there; ``genaug verify`` rehashes every shard against the manifest, as anywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import pathlib
import re
import sys
from collections.abc import Iterator

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://")


def is_remote(location: str | os.PathLike) -> bool:
    """Whether ``location`` is a URI (``scheme://...``) rather than a local path."""
    return _SCHEME.match(os.fspath(location)) is not None


def path(location: str | os.PathLike) -> pathlib.Path:
    """``location`` as a path object: ``pathlib.Path`` if local, ``etils.epath.Path`` (a ``PurePath`` with
    pathlib's I/O methods) if a URI."""
    if not is_remote(location):
        return location if isinstance(location, pathlib.Path) else pathlib.Path(location)
    if isinstance(location, pathlib.PurePath):
        return location  # already an epath.Path
    from etils import epath

    from genaug import ram_path  # noqa: F401 (registers ram:// with epath)

    return epath.Path(location)


def is_symlink(location: pathlib.Path) -> bool:
    """Whether ``location`` is a symbolic link (never, on object storage: epath's paths have no such test)."""
    return isinstance(location, pathlib.Path) and location.is_symlink()


@dataclasses.dataclass(frozen=True)
class Stat:
    size: int
    mtime_ns: int  # 0 where the file system records none (``ram://``)


def stat(location: str | os.PathLike) -> Stat:
    """Size and modification time of a file, local or remote (``os.stat`` and epath's differ)."""
    if is_remote(location):
        found = _gfile().stat(os.fspath(location))
        return Stat(size=found.length, mtime_ns=found.mtime_nsec)
    found = os.stat(location)
    return Stat(size=found.st_size, mtime_ns=found.st_mtime_ns)


@contextlib.contextmanager
def file_errors_as_os_errors() -> Iterator[None]:
    """TensorFlow's file errors (``tf.io.gfile``, ``TFRecordWriter``: a full disk is a ResourceExhaustedError, a
    bucket's refusal a PermissionDeniedError) as OSError, which :func:`genaug.atomic.atomic_path` and the CLI
    report as one line naming the file."""
    try:
        yield
    except Exception as err:
        tf = sys.modules.get("tensorflow")
        if tf is None or not isinstance(err, tf.errors.OpError):
            raise
        message = str(err.message).splitlines()[0] if err.message else type(err).__name__
        if "space" in message.lower():
            code = errno.ENOSPC
        else:
            code = {tf.errors.NotFoundError: errno.ENOENT, tf.errors.PermissionDeniedError: errno.EACCES}.get(
                type(err), errno.EIO
            )
        raise OSError(code, message) from err


def _gfile():
    import tensorflow as tf

    return tf.io.gfile
