"""The IDX files of the MNIST family (MNIST, Fashion-MNIST, KMNIST, EMNIST): ``idx:DIR``.

A directory holds ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (the train split) and
``t10k-*`` (the test split; EMNIST's ``test-*``), each optionally gzipped and optionally with a prefix
(EMNIST's ``emnist-balanced-train-images-idx3-ubyte.gz``). The format (LeCun et al.): two zero bytes, a type byte
(``0x08``: unsigned bytes), the number of dimensions, one big-endian uint32 per dimension, then the data.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from genaug.errors import GenaugError

SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}
UNSIGNED_BYTE = 0x08
FASHION_MNIST = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# Known datasets by the sha256 of their decompressed test labels (the same for raw and gzipped files),
# else by the directory's name; other directories get the label values as names.
KNOWN_TEST_LABELS = {"0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34": FASHION_MNIST}
KNOWN_DIRECTORY_NAMES = {"fashionmnist": FASHION_MNIST}
CLASS_NAMES_FILE = "class_names.txt"  # one name per line, overriding the above


class _Missing(GenaugError):
    """A split's file is not in the directory."""


def load_idx(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(x uint8 NxHxWx1, y int64 N, class names)`` of ``split`` in an IDX ``directory``.

    Raises:
        GenaugError: naming the file, for a missing or ambiguous file, a wrong magic number, a file
            truncated or too long, or labels that do not match the images.
    """
    images_path = _find(directory, split, "images-idx3-ubyte")
    labels_path = _find(directory, split, "labels-idx1-ubyte")
    x = _read(images_path, ndim=3)
    labels_bytes = _payload(labels_path)
    y = _read(labels_path, ndim=1, raw=labels_bytes).astype(np.int64)
    if len(x) != len(y):
        raise GenaugError(f"{labels_path}: {len(y)} labels for the {len(x)} images of {images_path.name}")
    if not len(y):
        raise GenaugError(f"{images_path}: holds no images")
    return x[..., None], y, _class_names(directory, y)


def label_count(directory: Path, split: str) -> int | None:
    """The number of examples of ``split``, from its labels file; ``None`` when the directory has no such file
    (a directory of the train split alone trains; what needs the test split then names the missing file)."""
    try:
        path = _find(directory, split, "labels-idx1-ubyte")
    except _Missing:
        return None
    return len(_read(path, ndim=1))


def _find(directory: Path, split: str, kind: str) -> Path:
    stems = [f"{prefix}-{kind}" for prefix in SPLIT_PREFIXES[split]]
    endings = tuple(stems + [f"{stem}.gz" for stem in stems])
    found = sorted(p for p in directory.iterdir() if p.name.endswith(endings) and p.is_file())
    if not found:
        raise _Missing(f"{directory}: no {stems[0]}[.gz] file (the {split} split of an idx: directory)")
    if len(found) > 1:
        raise GenaugError(f"{directory}: several {kind} files ({', '.join(p.name for p in found)}); keep one")
    return found[0]


def _payload(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as err:
        raise GenaugError(f"{path}: not a readable {'gzip' if path.suffix == '.gz' else 'IDX'} file ({err})") from None


def _read(path: Path, *, ndim: int, raw: bytes | None = None) -> np.ndarray:
    raw = _payload(path) if raw is None else raw
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:2] != b"\0\0" or raw[3] != ndim:
        magic = raw[:4].hex() if len(raw) >= 4 else "missing"
        raise GenaugError(f"{path}: not an IDX file of {ndim} dimension(s) (magic number {magic})")
    if raw[2] != UNSIGNED_BYTE:
        raise GenaugError(f"{path}: IDX data type 0x{raw[2]:02x}; only unsigned bytes (0x08) are supported")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    size = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != size:
        state = "truncated" if len(raw) - header < size else "longer than its header says"
        raise GenaugError(f"{path}: {state} ({len(raw) - header} bytes of data for shape {shape})")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _class_names(directory: Path, y: np.ndarray) -> list[str]:
    count = int(y.max()) + 1
    names_file = directory / CLASS_NAMES_FILE
    if names_file.is_file():
        names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    else:
        names = list(_known_names(directory) or range(count))
    if len(names) < count:
        raise GenaugError(f"{directory}: label {count - 1} has no class name ({len(names)} names)")
    return [str(name) for name in names]


def _known_names(directory: Path) -> tuple[str, ...] | None:
    try:
        digest = hashlib.sha256(_payload(_find(directory, "test", "labels-idx1-ubyte"))).hexdigest()
    except GenaugError:
        digest = None
    key = "".join(c for c in directory.resolve().name.lower() if c.isalnum())
    return KNOWN_TEST_LABELS.get(digest) or KNOWN_DIRECTORY_NAMES.get(key)
