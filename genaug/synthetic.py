"""A synthetic dataset directory: what ``sample`` writes and ``mix``/``evaluate`` read (TFDS shards, their
metadata and ``manifest.json``), checked against its manifest on every read."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from pathlib import Path

import numpy as np

from genaug import storage
from genaug.checksums import matches_sha256, sha256_file
from genaug.data import DatasetInfo
from genaug.errors import GenaugError
from genaug.manifest import MANIFEST, Manifest
from genaug.outputs import LOCKS, STATE_DIR, Layout

# The synthetic dataset layout (TFDS naming: DATASET-SPLIT.FILEFORMAT-SHARD_X_OF_Y).
SYNTHETIC_NAME = "genaug_synthetic"
SYNTHETIC_SPLIT = "train"
SHARD_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
DECODE_BATCH = 1024  # records parsed per tf.io.parse_example call when reading shards
READ_BUFFER_BYTES = 8 << 20


def shard_name(index: int, num_shards: int) -> str:
    """The file name of shard ``index`` of ``num_shards``, from :data:`SHARD_TEMPLATE`."""
    return SHARD_TEMPLATE.format(
        DATASET=SYNTHETIC_NAME,
        SPLIT=SYNTHETIC_SPLIT,
        FILEFORMAT="tfrecord",
        SHARD_X_OF_Y=f"{index:05d}-of-{num_shards:05d}",
    )


def metadata_files(path: Path) -> list[str]:
    """The TFDS metadata of a synthetic dataset, which decides what TFDS hands out (shapes, class count,
    class names): ``dataset_info.json``, ``features.json`` and every ``*.labels.txt``."""
    return ["dataset_info.json", "features.json", *sorted(p.name for p in path.glob("*.labels.txt"))]


@dataclasses.dataclass(frozen=True)
class SyntheticDataset:
    """A synthetic dataset directory: TFDS shards plus ``manifest.json`` (how it was made).

    Example:
        >>> syn = SyntheticDataset.open("syn/")
        >>> syn.info.class_counts, syn.manifest.generator.sha256
    """

    path: Path
    manifest: Manifest
    info: DatasetInfo

    @classmethod
    def open(cls, path: str | os.PathLike) -> SyntheticDataset:
        path = storage.path(path)
        if not path.is_dir():
            raise GenaugError(f"synthetic dataset not found: {path}")
        manifest = Manifest.read(path)
        info = DatasetInfo(
            name=f"synthetic:{path}",
            image_shape=manifest.source.image_shape,
            class_names=manifest.source.class_names,
            split=SYNTHETIC_SPLIT,
            split_sizes={SYNTHETIC_SPLIT: manifest.num_examples},
            class_counts=tuple(manifest.counts_per_class),
        )
        return cls(path=path, manifest=manifest, info=info)

    def check_files(self, *, rehash: bool = False) -> None:
        """Checks that the shards TFDS will read are exactly the manifest's, inside this directory, with
        the recorded sha256 (hashed once per file version in this process, unless ``rehash``).

        Raises:
            GenaugError: naming the first shard that is listed wrongly, missing or corrupt.
        """
        self.check_metadata()
        listed = self.manifest.shards
        if not listed:
            raise GenaugError(f"{self.path / MANIFEST}: lists no shards")
        expected = [shard_name(k, len(listed)) for k in range(len(listed))]
        names = [entry.file for entry in listed]
        if names != expected:
            wrong = next(n for n, e in zip(names, expected, strict=True) if n != e)
            raise GenaugError(f"{self.path / MANIFEST}: shard {wrong!r} is not a shard name of this dataset")
        split = self._builder.info.splits[SYNTHETIC_SPLIT]
        read = [Path(p).name for p in split.filepaths]
        if read != names or list(split.shard_lengths) != [entry.examples for entry in listed]:
            raise GenaugError(f"{self.path}: dataset_info.json and {MANIFEST} disagree on the shards")
        for entry in listed:
            file = self.path / entry.file
            if storage.is_symlink(file) or not file.is_file():
                raise GenaugError(f"{self.path}: shard {entry.file} is missing")
            if not matches_sha256(file, entry.sha256, rehash=rehash):
                raise GenaugError(f"{self.path}: shard {entry.file} is corrupt (sha256 mismatch)")

    def check_metadata(self) -> bool:
        """Checks TFDS's metadata files against the sha256 the manifest records (a changed class count,
        image shape or class names file would make TFDS read the same shards as something else).

        Returns:
            ``False`` for a set written before the manifest recorded them (nothing to check against).

        Raises:
            GenaugError: naming the first metadata file that is missing, extra or changed.
        """
        recorded = self.manifest.metadata
        if recorded is None:
            for name in metadata_files(self.path)[:2]:  # TFDS's own message blames an old TFDS version
                if not (self.path / name).is_file():
                    raise GenaugError(f"{self.path}: {name} is missing")
            return False
        for name in sorted(set(recorded) | set(metadata_files(self.path))):
            file = self.path / name
            if name not in recorded:
                raise GenaugError(f"{self.path}: {name} is not in {MANIFEST}'s metadata")
            if storage.is_symlink(file) or not file.is_file():
                raise GenaugError(f"{self.path}: {name} is missing")
            if sha256_file(file) != recorded[name]:
                raise GenaugError(f"{self.path}: {name} was changed after sampling (sha256 mismatch)")
        return True

    @functools.cached_property
    def _builder(self):
        """The TFDS builder of this directory, read once (check_files and as_dataset both need it)."""
        import tensorflow_datasets as tfds

        try:
            return tfds.builder_from_directory(os.fspath(self.path))
        except Exception as err:
            raise GenaugError(f"{self.path}: TFDS metadata does not load ({str(err).splitlines()[0]})") from None

    @property
    def train_indices(self) -> list[int] | None:
        """The generator's labelled training examples, as positions in the real training split."""
        return self.manifest.source.train_indices

    @property
    def holdout_indices(self) -> list[int] | None:
        """The labelled examples the generator never saw (``genaug train --holdout``), as positions in the
        real training split; ``None`` if it saw them all (and in sets from before holdouts)."""
        return self.manifest.source.holdout_indices

    @property
    def has_confidence(self) -> bool:
        """Whether each example stores the oracle's confidence in its label (``confidence``: sets whose
        sampler ran the oracle, written by genaug 0.2.0 or later)."""
        return "confidence" in self.manifest.features

    def as_dataset(self, min_confidence: float | None = None):
        """``{"image": uint8[H,W,C], "label": int64[]}`` elements (and ``"confidence": float32[]`` where
        stored), in shard order, after :meth:`check_files`; with ``min_confidence``, only the examples
        the oracle gave at least that probability (a read-time filter: no re-sampling).

        The shards are TFDS files (``tfds.builder_from_directory`` reads them too); genaug parses them in
        batches of :data:`DECODE_BATCH` records, which serves elements ~2x faster than TFDS's
        per-example decoding. The dataset knows its cardinality, so :func:`genaug.mix` need not count it.
        """
        import tensorflow as tf

        self.check_files()
        size = self.info.split_sizes[SYNTHETIC_SPLIT]
        dataset = self._parsed(("image", "label", "confidence") if self.has_confidence else ("image", "label"))
        if min_confidence is not None:
            threshold = self._threshold(min_confidence)
            size = int((self._confidences >= threshold).sum())
            dataset = dataset.filter(lambda e: e["confidence"] >= threshold)
        return dataset.apply(tf.data.experimental.assert_cardinality(size))

    def _threshold(self, min_confidence: float) -> float:
        if not self.has_confidence:
            raise GenaugError(
                f"{self.path} stores no oracle confidence, so min_confidence cannot filter it (sample it with "
                "--min-confidence, 0 to keep every image, to store one)"
            )
        if not 0.0 <= min_confidence <= 1.0:  # NaN fails too
            raise GenaugError(f"min_confidence must be in [0, 1], got {min_confidence}")
        return float(min_confidence)

    @functools.cached_property
    def _confidences(self) -> np.ndarray:
        """Every example's stored confidence, read once (to count what a threshold keeps)."""
        batches = self._parsed(("confidence",)).batch(65536).as_numpy_iterator()
        return np.concatenate([b["confidence"] for b in batches])

    def _parsed(self, keys: tuple[str, ...]):
        import tensorflow as tf

        files = [os.fspath(self.path / entry.file) for entry in self.manifest.shards]
        shape = self.info.image_shape
        spec = {
            "image": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "confidence": tf.io.FixedLenFeature([], tf.float32),
        }
        spec = {key: spec[key] for key in keys}

        def decode(records):
            parsed = tf.io.parse_example(records, spec)
            if "image" in parsed:
                parsed["image"] = tf.reshape(tf.io.decode_raw(parsed["image"], tf.uint8), (-1, *shape))
            return parsed

        records = tf.data.TFRecordDataset(files, buffer_size=READ_BUFFER_BYTES)
        return records.batch(DECODE_BATCH).map(decode, num_parallel_calls=tf.data.AUTOTUNE).unbatch()

    def arrays(self, min_confidence: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """All images and labels in memory: ``(uint8[N,H,W,C], int64[N])``, optionally only those with a
        stored confidence of at least ``min_confidence``."""
        import tensorflow_datasets as tfds

        try:
            batches = list(tfds.as_numpy(self.as_dataset(min_confidence).batch(4096)))
        except GenaugError:
            raise
        except Exception as err:
            raise GenaugError(f"{self.path}: shards do not parse ({str(err).splitlines()[0]})") from None
        if not batches:
            shape = (0, *self.info.image_shape)
            return np.zeros(shape, np.uint8), np.zeros(0, np.int64)
        return np.concatenate([b["image"] for b in batches]), np.concatenate([b["label"] for b in batches])


SYNTHETIC_LAYOUT = Layout(
    "synthetic dataset",
    f"{STATE_DIR}/settings.json",
    files=(
        rf"{re.escape(MANIFEST)}|dataset_info\.json|features\.json|label\.labels\.txt",
        rf"{re.escape(SYNTHETIC_NAME)}-{SYNTHETIC_SPLIT}\.tfrecord-\d{{5}}-of-\d{{5}}",
        rf"{re.escape(STATE_DIR)}/(settings\.json|shard-\d{{5}}\.json|beam\.log)",
        LOCKS,
    ),
)
