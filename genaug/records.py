"""The records genaug writes and reads, each with one typed reader and writer.

* :class:`RunDirectory`: what ``train`` writes and ``sample`` reads (``config.json``, ``run.json`` as a
  :class:`RunRecord`, ``generator.keras``, ``oracle.keras``, the labelled examples trained on).
* :class:`SyntheticDataset`: what ``sample`` writes and ``mix``/``evaluate`` read (TFDS shards, their
  metadata and ``manifest.json``).
* :func:`claim_directory`: the one way an output directory is created, resumed or replaced.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from genaug import atomic
from genaug.data import DatasetInfo, LabelledArrays, load_arrays
from genaug.errors import ArgumentError, GenaugError

# The synthetic dataset layout (TFDS naming: DATASET-SPLIT.FILEFORMAT-SHARD_X_OF_Y).
SYNTHETIC_NAME = "genaug_synthetic"
SYNTHETIC_SPLIT = "train"
SHARD_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
MANIFEST = "manifest.json"


def shard_name(index: int, num_shards: int) -> str:
    """The file name of shard ``index`` of ``num_shards``, from :data:`SHARD_TEMPLATE`."""
    return SHARD_TEMPLATE.format(
        DATASET=SYNTHETIC_NAME,
        SPLIT=SYNTHETIC_SPLIT,
        FILEFORMAT="tfrecord",
        SHARD_X_OF_Y=f"{index:05d}-of-{num_shards:05d}",
    )


def read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path``; a missing or corrupt file is a one-line error naming it."""
    if not path.is_file():
        raise GenaugError(f"{path.parent}: no {path.name} (not a finished genaug {what})")
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GenaugError(f"{path}: corrupt JSON ({err})") from None
    if not isinstance(value, dict):
        raise GenaugError(f"{path}: expected a JSON object")
    return value


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """``run.json``: how a run was made and what it trained on.

    ``train_indices`` are the positions, within the training split, of the labelled examples the
    generator was trained on when labels were scarce (``None``: the whole split).
    """

    genaug_version: str
    versions: dict
    seed: int
    model: str
    dataset: DatasetInfo
    dataset_fingerprint: str
    num_train_examples: int
    train_indices: list[int] | None
    precision: str
    jit_compile: bool
    strategy: str
    replicas: int
    epochs_completed: int
    rollbacks: int
    timings: dict
    final_metrics: dict

    @classmethod
    def from_dict(cls, raw: dict, where: Path) -> RunRecord:
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in raw]
        if missing:
            raise GenaugError(f"{where}: missing {', '.join(missing)}")
        try:
            dataset = DatasetInfo.from_dict(raw["dataset"])
        except (KeyError, TypeError) as err:
            raise GenaugError(f"{where}: malformed dataset record (no {err})") from None
        return cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls)} | {"dataset": dataset})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class RunDirectory:
    """A run directory: the files ``train`` writes and ``sample`` reads.

    Example:
        >>> run = RunDirectory.open("runs/cvae")
        >>> images, labels = run.generator.generate(10, seed=0)
    """

    CONFIG = "config.json"
    RECORD = "run.json"
    MODEL = "model.keras"
    GENERATOR = "generator.keras"
    ORACLE = "oracle.keras"
    CHECKPOINTS = "checkpoints"
    SAMPLES = "samples"
    LOGS = "logs"
    HISTORY = "history.csv"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDirectory:
        """A finished run directory; raises naming what is missing."""
        run = cls(path)
        if not run.path.is_dir():
            raise GenaugError(f"run directory not found: {run.path}")
        for name in (cls.CONFIG, cls.RECORD, cls.GENERATOR):
            if not (run.path / name).is_file():
                raise GenaugError(f"{run.path}: no {name} (not a finished genaug run)")
        return run

    # ---- the records ----------------------------------------------------------------------------

    def read_config(self) -> dict:
        """The resolved training config as written (``trainers.config`` gives it its type)."""
        return read_json(self.path / self.CONFIG, "run")

    def write_config(self, config: dict) -> None:
        atomic.write_json(self.path / self.CONFIG, config)

    @functools.cached_property
    def record(self) -> RunRecord:
        return RunRecord.from_dict(read_json(self.path / self.RECORD, "run"), self.path / self.RECORD)

    def write_record(self, record: RunRecord) -> None:
        atomic.write_json(self.path / self.RECORD, record.to_dict())
        self.__dict__.pop("record", None)

    # ---- the data it was trained on -------------------------------------------------------------

    def load_split(self, split: str) -> LabelledArrays:
        """A whole split of the run's data source, loaded as at training (same image size)."""
        data = self.read_config()["data"]
        size = tuple(data["image_size"]) if data.get("image_size") else None
        return load_arrays(data["data"], split, image_size=size)

    def labelled_examples(self) -> LabelledArrays:
        """The labelled examples the generator was trained on (the scarce-label subset, if any)."""
        full = self.load_split(self.read_config()["data"]["split"])
        indices = self.record.train_indices
        return full if indices is None else full.subset(indices)

    # ---- the models -----------------------------------------------------------------------------

    @functools.cached_property
    def generator(self):
        """The exported ``SyntheticGenerator``, checked against the run's dataset."""
        import models

        path = self.path / self.GENERATOR
        try:
            generator = models.load_model(path)
        except Exception as err:
            raise GenaugError(f"{path}: cannot load ({str(err).splitlines()[0]})") from None
        info = self.record.dataset
        if tuple(generator.image_shape) != info.image_shape:
            raise GenaugError(
                f"{self.path}: generator makes {generator.image_shape} images but the dataset has {info.image_shape}"
            )
        if generator.num_classes not in (None, info.num_classes):
            raise GenaugError(
                f"{self.path}: generator has {generator.num_classes} classes but the dataset has {info.num_classes}"
            )
        return generator

    def load_oracle(self):
        """The oracle classifier saved beside the generator, or ``None`` if none was trained yet."""
        import models

        path = self.path / self.ORACLE
        return models.load_model(path) if path.is_file() else None

    def save_oracle(self, model) -> None:
        atomic.save_model(model, self.path / self.ORACLE)


@dataclasses.dataclass(frozen=True)
class SyntheticDataset:
    """A synthetic dataset directory: TFDS shards plus ``manifest.json`` (how it was made).

    Example:
        >>> syn = SyntheticDataset.open("syn/")
        >>> syn.info.class_counts, syn.manifest["generator"]["sha256"]
    """

    path: Path
    manifest: dict
    info: DatasetInfo

    @classmethod
    def open(cls, path: str | os.PathLike) -> SyntheticDataset:
        path = Path(path)
        if not path.is_dir():
            raise GenaugError(f"synthetic dataset not found: {path}")
        manifest = read_json(path / MANIFEST, "synthetic dataset")
        try:
            source = manifest["source"]
            info = DatasetInfo(
                name=f"synthetic:{path}",
                image_shape=tuple(source["image_shape"]),
                class_names=tuple(source["class_names"]),
                split=SYNTHETIC_SPLIT,
                split_sizes={SYNTHETIC_SPLIT: manifest["num_examples"]},
                class_counts=tuple(manifest["counts_per_class"]),
            )
        except (KeyError, TypeError) as err:
            raise GenaugError(f"{path / MANIFEST}: malformed manifest (no {err})") from None
        return cls(path=path, manifest=manifest, info=info)

    @property
    def train_indices(self) -> list[int] | None:
        """The generator's labelled training examples, as positions in the real training split."""
        return self.manifest["source"]["train_indices"]

    def as_dataset(self):
        """``{"image": uint8[H,W,C], "label": int64[]}`` elements, in shard order, via
        ``tfds.builder_from_directory``."""
        import tensorflow_datasets as tfds

        try:
            builder = tfds.builder_from_directory(os.fspath(self.path))
            return builder.as_dataset(split=SYNTHETIC_SPLIT, shuffle_files=False)
        except Exception as err:
            raise GenaugError(f"{self.path}: TFDS metadata does not load ({str(err).splitlines()[0]})") from None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All images and labels in memory: ``(uint8[N,H,W,C], int64[N])``."""
        import tensorflow_datasets as tfds

        try:
            batches = list(tfds.as_numpy(self.as_dataset().batch(4096)))
        except GenaugError:
            raise
        except Exception as err:
            raise GenaugError(f"{self.path}: shards do not parse ({str(err).splitlines()[0]})") from None
        if not batches:
            shape = (0, *self.info.image_shape)
            return np.zeros(shape, np.uint8), np.zeros(0, np.int64)
        return np.concatenate([b["image"] for b in batches]), np.concatenate([b["label"] for b in batches])


def claim_directory(
    path: Path,
    marker: str,
    *,
    what: str,
    differences: Callable[[Path], list[str]],
    overwrite: bool,
) -> bool:
    """Makes ``path`` the output of one job; returns ``True`` if it already holds the same job (resume).

    A directory is ours when it holds ``marker`` (written by the caller after claiming). If it holds the
    same job (``differences(marker_path)`` is empty) the job resumes; a different job of ours is replaced
    only when ``overwrite``; a non-empty directory that is not ours is never deleted.

    Raises:
        ArgumentError: naming ``out`` or ``overwrite``.
    """
    marker_path = path / marker
    shown = str(path).replace("{", "{{").replace("}", "}}")  # the messages below are templates
    if marker_path.is_file():
        changed = differences(marker_path)
        if not changed:
            return True
        if not overwrite:
            raise ArgumentError(
                f"{shown} holds a different {what} (differs in {', '.join(changed)}); "
                "pass {} to replace it or choose another {}",
                "overwrite",
                "out",
            )
        shutil.rmtree(path)
    elif path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ArgumentError(f"{shown} is not empty and holds no genaug {what}; choose another {{}}", "out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GenaugError(f"cannot write the {what} directory {path}: {err.strerror}") from None
    return False
