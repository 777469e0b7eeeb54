"""The records genaug writes and reads, each with one typed reader and writer.

* :class:`RunDirectory`: what ``train`` writes and ``sample`` reads (``config.json``, ``run.json`` as a
  :class:`RunRecord`, ``generator.keras``, ``oracle.keras``, the labelled examples trained on).
* :class:`SyntheticDataset`: what ``sample`` writes and ``mix``/``evaluate`` read (TFDS shards, their
  metadata and ``manifest.json``).
* :func:`claim_directory`: the one way an output directory is created, resumed or replaced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from genaug import atomic
from genaug.data import DatasetInfo, LabelledArrays, UnlabeledImages, load_arrays, load_unlabeled
from genaug.errors import ArgumentError, GenaugError
from genaug.teacher import with_confident

# The synthetic dataset layout (TFDS naming: DATASET-SPLIT.FILEFORMAT-SHARD_X_OF_Y).
SYNTHETIC_NAME = "genaug_synthetic"
SYNTHETIC_SPLIT = "train"
SHARD_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
MANIFEST = "manifest.json"
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


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def differing_keys(record: Path, wanted: dict) -> list[str]:
    """The keys in which the JSON object at ``record`` differs from ``wanted`` (for :func:`claim_directory`:
    an empty list means the directory holds the same job)."""
    previous = json.loads(record.read_text())
    return sorted(k for k in wanted.keys() | previous.keys() if previous.get(k) != wanted.get(k))


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
    generator was trained on when labels were scarce or some were held out (``None``: the whole split);
    ``holdout_indices`` those of the labelled examples it was kept from (``data.holdout``).
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
    data_source: str | None = None  # the data spec with its path made absolute (runs from before lack it)
    unlabeled_indices: list[int] | None = None  # positions in the split of the images used without labels
    unlabeled: dict | None = None  # their source, fingerprint, count and how many were pseudo-labelled
    holdout_indices: list[int] | None = None  # positions of the labelled examples the generator never saw
    checkpoint_interval: int | None = None  # epochs between checkpoints as resolved (runs from before lack it)

    @classmethod
    def from_dict(cls, raw: dict, where: Path) -> RunRecord:
        required = [f for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
        missing = [f.name for f in required if f.name not in raw]
        if missing:
            raise GenaugError(f"{where}: missing {', '.join(missing)}")
        try:
            dataset = DatasetInfo.from_dict(raw["dataset"])
        except (KeyError, TypeError) as err:
            raise GenaugError(f"{where}: malformed dataset record (no {err})") from None
        fields = {f.name: raw[f.name] for f in dataclasses.fields(cls) if f.name in raw}
        return cls(**fields | {"dataset": dataset})

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
    PSEUDO_LABELS = "pseudo_labels.npz"
    TEACHER = "teacher.keras"  # the FixMatch teacher, when it labelled the unlabelled images
    CHECKPOINTS = "checkpoints"
    SAMPLES = "samples"
    LOGS = "logs"
    HISTORY = "history.csv"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

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
        self.__dict__.pop("_training_images", None)

    # ---- the data it was trained on -------------------------------------------------------------

    def _image_size(self) -> tuple[int, int] | None:
        """The size images were resized to at training (``None``: as stored)."""
        size = self.read_config()["data"].get("image_size")
        return tuple(size) if size else None

    def load_split(self, split: str) -> LabelledArrays:
        """A whole split of the run's data source, loaded as at training (same image size)."""
        source = self.record.data_source or self.read_config()["data"]["data"]
        return load_arrays(source, split, image_size=self._image_size())

    @functools.cached_property
    def _training_split(self) -> LabelledArrays:
        """The whole split the run trained on, loaded once for the labelled and the unlabelled images."""
        return self.load_split(self.read_config()["data"]["split"])

    def labelled_examples(self) -> LabelledArrays:
        """The labelled examples the generator was trained on (the scarce-label subset, if any)."""
        full = self._training_split
        indices = self.record.train_indices
        examples = full if indices is None else full.subset(indices)
        if examples.fingerprint() != self.record.dataset_fingerprint:
            raise GenaugError(
                f"{self.path}: the data at {self.record.data_source or full.info.name} is not what this run "
                "was trained on (its fingerprint differs); restore that data to sample with filters"
            )
        return examples

    def write_pseudo_labels(self, labels: np.ndarray, confidence: np.ndarray, teacher: dict | None = None) -> None:
        """The teacher's label and confidence for each unlabelled image, in the order of ``unlabeled``, and
        the teacher's account (what run.json records), so that a resumed run need not teach again."""
        with atomic.atomic_path(self.path / self.PSEUDO_LABELS) as tmp, open(tmp, "wb") as f:
            np.savez(f, labels=labels, confidence=confidence, teacher=np.asarray(json.dumps(teacher or {})))
        self.__dict__.pop("_training_images", None)

    def read_pseudo_labels(self) -> tuple[np.ndarray, np.ndarray, dict]:
        """``(labels, confidence, teacher's account)`` as :meth:`write_pseudo_labels` wrote them (runs of
        genaug 0.3 and before have no account: ``{}``)."""
        path = self.path / self.PSEUDO_LABELS
        try:
            with np.load(path, allow_pickle=False) as pseudo:
                teacher = json.loads(str(pseudo["teacher"])) if "teacher" in pseudo.files else {}
                return pseudo["labels"], pseudo["confidence"], teacher
        except (OSError, ValueError, KeyError) as err:
            raise GenaugError(f"{path}: not readable pseudo-labels ({err})") from None

    def training_images(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image the generator trained on with its label: the labelled examples, then the
        unlabelled images the teacher labelled confidently enough (a semi-supervised run). Read and
        checked once per instance (the sampler's oracle, guard and attention latents all need them)."""
        return self._training_images

    @functools.cached_property
    def _training_images(self) -> tuple[np.ndarray, np.ndarray]:
        labelled = self.labelled_examples()
        if self.record.unlabeled is None:
            return labelled.x, labelled.y
        source, threshold = self.record.unlabeled["source"], self.read_config()["data"]["pseudo_label_confidence"]
        if source == "auto":
            x = self._training_split.x[np.asarray(self.record.unlabeled_indices, np.int64)]
        else:
            x = load_unlabeled(source, labelled, image_size=self._image_size()).x
        if UnlabeledImages(x, source, None).fingerprint() != self.record.unlabeled["fingerprint"]:
            raise GenaugError(f"{self.path}: the unlabelled images at {source} changed since training")
        labels, confidence, _ = self.read_pseudo_labels()
        return with_confident(labelled, x, labels, confidence, threshold)

    # ---- the models -----------------------------------------------------------------------------

    def _load(self, name: str):
        """The ``.keras`` file ``name`` of this run; one that cannot be loaded is a one-line error."""
        import models

        path = self.path / name
        try:
            return models.load_model(path)
        except Exception as err:
            raise GenaugError(f"{path}: cannot load ({str(err).splitlines()[0]})") from None

    def load_trained_model(self):
        """The whole trained model (``model.keras``: a VAE's encoder too, a GAN's discriminator)."""
        return self._load(self.MODEL)

    @functools.cached_property
    def generator(self):
        """The exported ``SyntheticGenerator``, checked against the run's dataset."""
        generator = self._load(self.GENERATOR)
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


_VERIFIED: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime) -> sha256 found


def metadata_files(path: Path) -> list[str]:
    """The TFDS metadata of a synthetic dataset, which decides what TFDS hands out (shapes, class count,
    class names): ``dataset_info.json``, ``features.json`` and every ``*.labels.txt``."""
    return ["dataset_info.json", "features.json", *sorted(p.name for p in path.glob("*.labels.txt"))]


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

    def check_files(self, *, rehash: bool = False) -> None:
        """Checks that the shards TFDS will read are exactly the manifest's, inside this directory, with
        the recorded sha256 (hashed once per file version in this process, unless ``rehash``).

        Raises:
            GenaugError: naming the first shard that is listed wrongly, missing or corrupt.
        """
        self.check_metadata()
        listed = self.manifest.get("shards")
        if not isinstance(listed, list) or not listed:
            raise GenaugError(f"{self.path / MANIFEST}: lists no shards")
        expected = [shard_name(k, len(listed)) for k in range(len(listed))]
        names = [entry.get("file") if isinstance(entry, dict) else None for entry in listed]
        if names != expected:
            wrong = next(n for n, e in zip(names, expected, strict=True) if n != e)
            raise GenaugError(f"{self.path / MANIFEST}: shard {wrong!r} is not a shard name of this dataset")
        split = self._builder.info.splits[SYNTHETIC_SPLIT]
        read = [Path(p).name for p in split.filepaths]
        if read != names or list(split.shard_lengths) != [entry["examples"] for entry in listed]:
            raise GenaugError(f"{self.path}: dataset_info.json and {MANIFEST} disagree on the shards")
        for entry in listed:
            file = self.path / entry["file"]
            if file.is_symlink() or not file.is_file():
                raise GenaugError(f"{self.path}: shard {entry['file']} is missing")
            stat = file.stat()
            key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
            if rehash or _VERIFIED.get(key) != entry["sha256"]:
                if sha256_file(file) != entry["sha256"]:
                    raise GenaugError(f"{self.path}: shard {entry['file']} is corrupt (sha256 mismatch)")
                _VERIFIED[key] = entry["sha256"]

    def check_metadata(self) -> bool:
        """Checks TFDS's metadata files against the sha256 the manifest records (a changed class count,
        image shape or class names file would make TFDS read the same shards as something else).

        Returns:
            ``False`` for a set written before the manifest recorded them (nothing to check against).

        Raises:
            GenaugError: naming the first metadata file that is missing, extra or changed.
        """
        recorded = self.manifest.get("metadata")
        if recorded is None:
            return False
        if not isinstance(recorded, dict):
            raise GenaugError(f"{self.path / MANIFEST}: malformed manifest (metadata)")
        for name in sorted(set(recorded) | set(metadata_files(self.path))):
            file = self.path / name
            if name not in recorded:
                raise GenaugError(f"{self.path}: {name} is not in {MANIFEST}'s metadata")
            if file.is_symlink() or not file.is_file():
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
        return self.manifest["source"]["train_indices"]

    @property
    def holdout_indices(self) -> list[int] | None:
        """The labelled examples the generator never saw (``genaug train --holdout``), as positions in the
        real training split; ``None`` if it saw them all (and in sets from before holdouts)."""
        return self.manifest["source"].get("holdout_indices")

    @property
    def has_confidence(self) -> bool:
        """Whether each example stores the oracle's confidence in its label (``confidence``: sets whose
        sampler ran the oracle, written by genaug 0.2.0 or later)."""
        return "confidence" in self.manifest.get("features", ())

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

        files = [os.fspath(self.path / entry["file"]) for entry in self.manifest["shards"]]
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


STATE_DIR = ".genaug"  # genaug's own bookkeeping inside an output directory: locks, per-shard records


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
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                relative = prefix + entry.name
                if entry.is_symlink():
                    found.append(relative)
                elif entry.is_dir():
                    if not _matches(self.dirs, relative):
                        found.append(relative + "/")
                    elif deep:
                        pending.append((Path(entry.path), relative + "/"))
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


_LOCKS = re.escape(STATE_DIR) + r"/lock(-\d+-of-\d+)?"  # see claim_directory's ``lock``
RUN_LAYOUT = Layout(
    "run",
    RunDirectory.CONFIG,
    files=(
        "|".join(
            re.escape(name)
            for name in (
                RunDirectory.CONFIG,
                RunDirectory.RECORD,
                RunDirectory.MODEL,
                RunDirectory.GENERATOR,
                RunDirectory.ORACLE,
                RunDirectory.PSEUDO_LABELS,
                RunDirectory.TEACHER,
                RunDirectory.HISTORY,
            )
        ),
        rf"{RunDirectory.CHECKPOINTS}/(last\.keras|state\.json)",
        rf"{RunDirectory.SAMPLES}/epoch_\d{{4,}}\.png",
        rf"{RunDirectory.LOGS}/(train|validation|samples)/events\.out\.tfevents\.[^/]+",
        _LOCKS,
    ),
    dirs=(
        re.escape(STATE_DIR),
        RunDirectory.CHECKPOINTS,
        RunDirectory.SAMPLES,
        RunDirectory.LOGS,
        rf"{RunDirectory.LOGS}/(train|validation|samples)",
    ),
    proof=(STATE_DIR, RunDirectory.CHECKPOINTS),  # runs from before .genaug/ have checkpoints/
)
SYNTHETIC_LAYOUT = Layout(
    "synthetic dataset",
    f"{STATE_DIR}/settings.json",
    files=(
        rf"{re.escape(MANIFEST)}|dataset_info\.json|features\.json|label\.labels\.txt",
        rf"{re.escape(SYNTHETIC_NAME)}-{SYNTHETIC_SPLIT}\.tfrecord-\d{{5}}-of-\d{{5}}",
        rf"{re.escape(STATE_DIR)}/(settings\.json|shard-\d{{5}}\.json|beam\.log)",
        _LOCKS,
    ),
)
TUNING_LAYOUT = Layout(
    "tuning",
    f"{STATE_DIR}/search.json",
    files=(
        r"policy\.json|trials\.csv|objective\.png|report\.json|report\.md",
        rf"{re.escape(STATE_DIR)}/(search\.json|trials\.journal|trials\.journal\.lock)",
        _LOCKS,
    ),
)


class DirectoryLock:
    """An advisory lock on a file (``fcntl.flock``): one writer at a time, released by the OS when the
    process dies, so a killed job never leaves a stale lock."""

    def __init__(self, path: Path, what: str):
        self.path, self.what, self.file = path, what, None

    def __enter__(self) -> DirectoryLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
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
        self.file.close()  # closing releases the lock


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
    if path.exists() and not path.is_dir():
        raise ArgumentError(f"{shown} is a file, not a directory; choose another {{}}", "out")
    existing = path.is_dir() and _holds_anything(path)
    if existing:
        foreign = layout.foreign(path)  # symbolic links too: the lock below must not be written through one
        if foreign:
            raise ArgumentError(
                f"{shown} is not empty and holds {_braced(foreign[0])!r}, which genaug did not write; "
                "choose another {}",
                "out",
            )
        if not (path / layout.record).is_file() or not any((path / p).exists() for p in layout.proof):
            raise ArgumentError(f"{shown} is not empty and holds no genaug {layout.what}; choose another {{}}", "out")
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
    folders = []
    for root, dirs, files in os.walk(path, topdown=True, followlinks=False):
        relative = Path(root).relative_to(path).as_posix()
        prefix = "" if relative == "." else relative + "/"
        folders += [Path(root, d) for d in dirs]
        for name in files:
            file = Path(root, name)
            if file != keep and not file.is_symlink() and _matches(layout.files, _written_name(prefix + name)):
                file.unlink()
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        if folder != keep.parent and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()
