"""``manifest.json``: how a synthetic dataset was made, as one typed record that every reader and writer uses.

Versions: 1 (genaug 0.1, no version field), 2 (0.2: ``features``; the oracle's confidence in each label),
3 (the sha256 of TFDS's metadata files). Every version still loads.
"""

from __future__ import annotations

import dataclasses
import os

from genaug import atomic, storage
from genaug.errors import GenaugError
from genaug.json_records import from_json, read_json, to_json

MANIFEST = "manifest.json"
MANIFEST_VERSION = 3


@dataclasses.dataclass(frozen=True)
class ShardEntry:
    """One shard: its file name, number of examples and sha256."""

    file: str
    examples: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class GeneratorRef:
    """The run whose generator sampled the set."""

    run: str
    sha256: str
    model: str
    run_seed: int


@dataclasses.dataclass(frozen=True)
class SourceRef:
    """The real data the generator learnt from.

    ``train_indices``/``holdout_indices``: positions in the real training split of the labelled examples
    the generator trained on / never saw (``None``: all of them / none held out).
    """

    dataset: str
    split: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    train_indices: list[int] | None
    dataset_fingerprint: str
    holdout_indices: list[int] | None = None
    unlabeled: dict | None = None  # the images it learnt from without labels: source, fingerprint, counts


@dataclasses.dataclass(frozen=True)
class Filters:
    """Per class: images drawn, accepted, and rejected by each filter of the sampler."""

    drawn: list[int]
    accepted: list[int]
    rejected_low_confidence: list[int]
    rejected_too_close: list[int]
    acceptance_rate: list[float | None]


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A synthetic dataset's record.

    Attributes:
        settings: everything that determined the shards' bytes (``shard_writer.SampleSettings`` as JSON).
        features: the shards' features (``image``, ``label`` and, where the oracle ran, ``confidence``).
        metadata: TFDS metadata file name -> sha256 (``None`` in sets before version 3).

    Example:
        >>> manifest = Manifest.read("syn/")
        >>> manifest.num_examples, manifest.generator.sha256
    """

    genaug_version: str
    generator: GeneratorRef
    source: SourceRef
    seed: int
    settings: dict
    num_examples: int
    counts_per_class: list[int]
    filters: Filters
    shards: list[ShardEntry]
    manifest_version: int = 1
    features: list[str] = dataclasses.field(default_factory=lambda: ["image", "label"])
    metadata: dict[str, str] | None = None

    @classmethod
    def read(cls, directory: str | os.PathLike) -> Manifest:
        """The manifest of the synthetic dataset in ``directory``; a missing, corrupt or mistyped one is a
        one-line error naming the file and the field."""
        path = storage.path(directory) / MANIFEST
        manifest = from_json(cls, read_json(path, "synthetic dataset"), path)
        if len(manifest.counts_per_class) != len(manifest.source.class_names):
            raise GenaugError(f"{path}: counts_per_class has {len(manifest.counts_per_class)} classes, class_names "
                              f"{len(manifest.source.class_names)}")  # fmt: skip
        if sum(manifest.counts_per_class) != manifest.num_examples:
            raise GenaugError(f"{path}: num_examples {manifest.num_examples} is not the sum of counts_per_class")
        return manifest

    def write(self, directory: str | os.PathLike) -> None:
        atomic.write_json(storage.path(directory) / MANIFEST, self.to_json())

    def to_json(self) -> dict:
        return to_json(self)
