"""Output directories: the one way genaug creates, resumes or replaces one, and what it may delete.

A :class:`Layout` names the files genaug writes into a kind of directory (a run, a synthetic set, a tuning);
:func:`claim_directory` holds a directory for one job, under an advisory lock, and replaces one only when
everything in it is genaug's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from genaug import storage
from genaug.errors import ArgumentError, GenaugError

STATE_DIR = ".genaug"  # genaug's own bookkeeping inside an output directory: locks, per-shard records
LOCKS = re.escape(STATE_DIR) + r"/lock(-\d+-of-\d+)?"  # see claim_directory's ``lock``


@dataclasses.dataclass(frozen=True)
class Layout:
    """What a kind of output directory may hold: genaug replaces a directory only if it holds nothing else.

    Attributes:
        what: the kind, for messages (``"run"``, ``"synthetic dataset"``).
        record: the file that describes the job it holds (compared to decide resume or replace).
        files: regular expressions of the relative paths (``/``-separated) of the files genaug writes;
            an atomic temporary of such a file (``.NAME.tmp-PID.EXT``) counts as one.
        dirs: regular expressions of the sub-directories it makes.
        proof: entries of which at least one shows genaug made the directory (its record alone might be
            a user's file of the same name).
    """

    what: str
    record: str
    files: tuple[str, ...]
    dirs: tuple[str, ...] = (re.escape(STATE_DIR),)
    proof: tuple[str, ...] = (STATE_DIR,)

    def foreign(self, path: Path, *, deep: bool = False) -> list[str]:
        """The entries of ``path`` genaug does not write into this kind of directory: names its patterns
        do not match and every symbolic link (never followed), at the top or, ``deep``, at any depth."""
        found = []
        pending = [(path, "")]
        while pending:
            folder, prefix = pending.pop()
            for entry in sorted(folder.iterdir(), key=lambda e: e.name):
                relative = prefix + entry.name
                if storage.is_symlink(entry):
                    found.append(relative)
                elif entry.is_dir():
                    if not _matches(self.dirs, relative):
                        found.append(relative + "/")
                    elif deep:
                        pending.append((entry, relative + "/"))
                elif not _matches(self.files, _written_name(relative)):
                    found.append(relative)
        return sorted(found)


def _matches(patterns: tuple[str, ...], relative: str) -> bool:
    return any(re.fullmatch(p, relative) for p in patterns)


def _written_name(relative: str) -> str:
    """The file an atomic temporary (:mod:`genaug.atomic`: ``.NAME.tmp-PID.EXT``) stands for; else itself."""
    folder, _, name = relative.rpartition("/")
    if temporary := re.fullmatch(r"\.(.+)\.tmp-\d+((?:\.[^.]*)?)", name):
        name = temporary[1] + temporary[2]
    return f"{folder}/{name}" if folder else name


def differing_keys(record: Path, wanted: dict) -> list[str]:
    """The keys in which the JSON object at ``record`` differs from ``wanted`` (for :func:`claim_directory`:
    an empty list means the directory holds the same job)."""
    previous = json.loads(record.read_text())
    return sorted(k for k in wanted.keys() | previous.keys() if previous.get(k) != wanted.get(k))


class DirectoryLock:
    """An advisory lock on a file (``fcntl.flock``): one writer at a time, released by the OS when the
    process dies, so a killed job never leaves a stale lock. Object storage has no such lock: there, one
    writer per output directory is the caller's contract and this lock is not taken."""

    def __init__(self, path: Path, what: str):
        self.path, self.what, self.file = path, what, None

    def __enter__(self) -> DirectoryLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        if storage.is_remote(self.path):
            return self
        self.file = open(self.path, "a+")  # noqa: SIM115 (held open for the lock's lifetime)
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise GenaugError(
                f"{self.path.parent.parent} is being written by {holder}; wait for it to finish or choose "
                f"another output {self.what} directory"
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"genaug process {os.getpid()}\n")
        self.file.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()  # closing releases the lock


def check_output(path: str | os.PathLike, layout: Layout) -> bool:
    """The checks :func:`claim_directory` makes before it takes the lock, writing nothing (the CLI makes
    them before TensorFlow starts); returns whether ``path`` holds anything.

    Raises:
        ArgumentError: naming ``out``: a file, a directory holding something genaug did not write (a
            symbolic link too: the lock must not be written through one), or no record of the ``layout``.
    """
    path = storage.path(path)
    shown = str(path).replace("{", "{{").replace("}", "}}")  # the messages below are templates
    if path.exists() and not path.is_dir():
        raise ArgumentError(f"{shown} is a file, not a directory; choose another {{}}", "out")
    existing = path.is_dir() and _holds_anything(path)
    if existing:
        foreign = layout.foreign(path)
        if foreign:
            raise ArgumentError(
                f"{shown} is not empty and holds {_braced(foreign[0])!r}, which genaug did not write; "
                "choose another {}",
                "out",
            )
        if not (path / layout.record).is_file() or not any((path / p).exists() for p in layout.proof):
            raise ArgumentError(f"{shown} is not empty and holds no genaug {layout.what}; choose another {{}}", "out")
    return existing


@contextlib.contextmanager
def claim_directory(
    path: Path,
    layout: Layout,
    *,
    differences: Callable[[Path], list[str]],
    overwrite: bool,
    lock: str = "lock",
) -> Iterator[bool]:
    """Holds ``path`` as the output of one job while the ``with`` block runs; yields ``True`` if it
    already holds the same job (resume: ``differences(record)`` is empty), ``False`` if it starts empty.

    genaug replaces only what it can prove it wrote: a directory holding ``layout.record`` and nothing
    outside ``layout``, and only when ``overwrite``. A non-empty directory with any other entry is never
    touched. One writer at a time: ``.genaug/<lock>`` is locked for the whole block (workers that share a
    directory by design pass their own ``lock`` name).

    Raises:
        ArgumentError: naming ``out`` or ``overwrite``.
        GenaugError: another process is writing ``path``, or it cannot be written.
    """
    shown = str(path).replace("{", "{{").replace("}", "}}")  # the messages below are templates
    existing = check_output(path, layout)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GenaugError(f"cannot write the {layout.what} directory {path}: {err.strerror}") from None
    with DirectoryLock(path / STATE_DIR / lock, layout.what):
        changed = differences(path / layout.record) if existing else []
        same = existing and not changed
        if existing and not same:
            if not overwrite:
                raise ArgumentError(
                    f"{shown} holds a different {layout.what} (differs in {', '.join(changed)}); "
                    "pass {} to replace it or choose another {}",
                    "overwrite",
                    "out",
                )
            foreign = layout.foreign(path, deep=True)  # what replacing would delete, at any depth
            if foreign:
                raise ArgumentError(
                    f"{shown} holds {_braced(foreign[0])!r}, which genaug did not write, so it will not replace "
                    "it; move that away or choose another {}",
                    "out",
                )
            _empty(path, layout, keep=path / STATE_DIR / lock)
        yield same


def _holds_anything(path: Path) -> bool:
    """Whether ``path`` holds more than genaug's lock files (left by a job that claimed it and stopped)."""
    state = path / STATE_DIR
    return any(e != state for e in path.iterdir()) or (
        state.is_dir() and any(not e.name.startswith("lock") for e in state.iterdir())
    )


def _braced(text: str) -> str:
    """``text`` safe inside an :class:`ArgumentError` template."""
    return text.replace("{", "{{").replace("}", "}}")


def _empty(path: Path, layout: Layout, keep: Path) -> None:
    """Deletes genaug's files in ``path`` (those ``layout`` names, which :meth:`Layout.foreign` has just
    found to be all there is) and then its empty sub-directories, but not the file ``keep`` (the held
    lock). Nothing is matched by a pattern alone or reached through a symbolic link."""
    folders, pending = [], [path]
    while pending:
        folder = pending.pop()
        for entry in folder.iterdir():
            if storage.is_symlink(entry):
                continue
            if entry.is_dir():
                folders.append(entry)
                pending.append(entry)
            elif entry != keep and _matches(layout.files, _written_name(entry.relative_to(path).as_posix())):
                entry.unlink()
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        if folder != keep.parent and not any(folder.iterdir()):
            folder.rmdir()
