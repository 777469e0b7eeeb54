"""sha256 of files, and the process-wide memory of files already found to match theirs (a synthetic set is
read many times in one evaluation; its shards are hashed once per file version)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from genaug import storage

_VERIFIED: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime) -> sha256 found


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with storage.path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def matches_sha256(file: Path, sha256: str, *, rehash: bool = False) -> bool:
    """Whether ``file`` has the given sha256: hashed once per file version (path, size, modification time)
    in this process, unless ``rehash`` or the file system records no modification time (``ram://``)."""
    found = storage.stat(file)
    key = (str(file.resolve()), found.size, found.mtime_ns)
    if rehash or not found.mtime_ns or _VERIFIED.get(key) != sha256:
        if sha256_file(file) != sha256:
            return False
        _VERIFIED[key] = sha256
    return True
