"""TensorFlow's in-memory ``ram://`` file system as an ``etils.epath.Path``, so that tests run genaug's and
TFDS's object-storage code path in memory (epath itself knows ``gs://``, ``s3://``, ``az://``, ``hf://``)."""

from __future__ import annotations

import os
import pathlib

from etils import epath

RAM = "ram"


@epath.register_path_cls(f"{RAM}://")
class RamPath(epath.Path):
    """A ``ram://`` path (TensorFlow's in-memory file system, one per process) with the methods of epath's
    ``gs://`` paths and no more (no ``is_symlink``, for one), so the tests catch a call a bucket would fail.

    Held as ``/ram/...`` so that pathlib's joins and parents work; shown and opened as ``ram://...``.
    """

    def __new__(cls, *parts):
        first, *rest = [os.fspath(p) for p in parts] or ["."]
        if first.startswith(f"{RAM}://"):
            first = f"/{RAM}/" + first[len(RAM) + 3 :]
        return super().__new__(cls, first, *rest)

    def __fspath__(self) -> str:
        text = pathlib.PurePosixPath.__str__(self)
        return f"{RAM}://" + text[len(RAM) + 2 :] if text.startswith(f"/{RAM}/") else text

    __str__ = __fspath__

    def __repr__(self) -> str:
        return f"RamPath({str(self)!r})"

    def exists(self) -> bool:
        return _gfile().exists(str(self))

    def is_dir(self) -> bool:
        return _gfile().isdir(str(self))

    def iterdir(self):
        return (self / name.rstrip("/") for name in _gfile().listdir(str(self)))

    def glob(self, pattern: str):
        return (type(self)(found) for found in _gfile().glob(f"{self}/{pattern}"))

    def resolve(self, strict: bool = False) -> RamPath:
        return self

    def open(self, mode: str = "r", encoding=None, errors=None, **kwargs):
        return _gfile().GFile(str(self), mode)

    def stat(self):
        from etils.epath import stat_utils

        found = _gfile().stat(str(self))
        return stat_utils.StatResult(
            is_directory=found.is_directory, length=found.length, mtime=found.mtime_nsec // 10**9
        )

    def mkdir(self, mode=None, parents: bool = False, exist_ok: bool = False) -> None:
        if self.exists() and not exist_ok:
            raise FileExistsError(str(self))
        (_gfile().makedirs if parents else _gfile().mkdir)(str(self))

    def rmdir(self) -> None:
        _gfile().remove(str(self))

    def rmtree(self, missing_ok: bool = False) -> None:
        if self.exists() or not missing_ok:
            _gfile().rmtree(str(self))

    def unlink(self, missing_ok: bool = False) -> None:
        if self.exists() or not missing_ok:
            _gfile().remove(str(self))

    def rename(self, target) -> RamPath:
        _gfile().rename(str(self), os.fspath(target), overwrite=False)
        return type(self)(os.fspath(target))

    def replace(self, target) -> RamPath:
        _gfile().rename(str(self), os.fspath(target), overwrite=True)
        return type(self)(os.fspath(target))

    def copy(self, dst, overwrite: bool = False) -> RamPath:
        _gfile().copy(str(self), os.fspath(dst), overwrite=overwrite)
        return type(self)(os.fspath(dst))

    def walk(self, *, top_down: bool = True, on_error=None, follow_symlinks: bool = False):
        for root, dirs, files in _gfile().walk(str(self), topdown=top_down, onerror=on_error):
            yield type(self)(root), [d.rstrip("/") for d in dirs], files


def _gfile():
    import tensorflow as tf

    return tf.io.gfile
