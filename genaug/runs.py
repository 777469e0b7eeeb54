"""A run directory: what ``train`` writes and ``sample`` reads (``config.json``, ``run.json`` as a typed
:class:`RunRecord`, ``generator.keras``, ``oracle.keras``, the labelled examples trained on)."""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import re
from pathlib import Path

import numpy as np

from genaug import atomic, storage
from genaug.data import DatasetInfo, LabelledArrays, UnlabeledImages, load_arrays, load_unlabeled
from genaug.errors import GenaugError
from genaug.json_records import from_json, read_json, to_json
from genaug.outputs import LOCKS, STATE_DIR, Layout
from genaug.teacher import with_confident


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
        """The record from ``run.json``'s object; a missing or mistyped field is a one-line error naming it."""
        return from_json(cls, raw, where)

    def to_dict(self) -> dict:
        return to_json(self)


def load_saved_model(path: Path):
    """A ``.keras`` file genaug saved, loaded with ``safe_mode`` on; one that cannot be loaded (damaged, or
    holding a Lambda layer safe mode refuses) is a one-line error naming it."""
    import models

    try:
        return models.load_model(path)
    except Exception as err:
        raise GenaugError(f"{path}: cannot load ({str(err).splitlines()[0]})") from None


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
        self.path = storage.path(path)

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
        _ = run.record  # read and type-checked now: a damaged run.json fails before any output is claimed
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
        examples = full if indices is None else full.at_recorded(indices, f"{self / self.RECORD}: train_indices")
        if examples.fingerprint() != self.record.dataset_fingerprint:
            raise GenaugError(
                f"{self.path}: the data at {self.record.data_source or full.info.name} is not what this run "
                "was trained on (its fingerprint differs); restore that data to sample with filters"
            )
        return examples

    def write_pseudo_labels(self, labels: np.ndarray, confidence: np.ndarray, teacher: dict | None = None) -> None:
        """The teacher's label and confidence for each unlabelled image, in the order of ``unlabeled``, and
        the teacher's account (what run.json records), so that a resumed run need not teach again."""
        buffer = io.BytesIO()  # np.savez asks the file where it is, which an object on a bucket cannot say
        np.savez(buffer, labels=labels, confidence=confidence, teacher=np.asarray(json.dumps(teacher or {})))
        atomic.write_bytes(self.path / self.PSEUDO_LABELS, buffer.getvalue())
        self.__dict__.pop("_training_images", None)

    def read_pseudo_labels(self) -> tuple[np.ndarray, np.ndarray, dict]:
        """``(labels, confidence, teacher's account)`` as :meth:`write_pseudo_labels` wrote them (runs of
        genaug 0.3 and before have no account: ``{}``)."""
        path = self.path / self.PSEUDO_LABELS
        try:
            with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as pseudo:
                teacher = json.loads(str(pseudo["teacher"])) if "teacher" in pseudo.files else {}
                return pseudo["labels"], pseudo["confidence"], teacher
        except (OSError, ValueError, KeyError) as err:
            raise GenaugError(f"{path}: not readable pseudo-labels ({err})") from None

    def training_images(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image the generator trained on with its label: the labelled examples, then the
        unlabelled images the teacher labelled confidently enough (a semi-supervised run). Read and
        checked once per instance (the sampler's oracle, guard and attention latents all need them)."""
        return self._training_images

    def pseudo_labelled(self) -> tuple[np.ndarray, np.ndarray]:
        """The unlabelled images the teacher labelled confidently enough for the generator to train on, with
        those labels (none for a run that learnt from labels alone)."""
        x, y = self.training_images()
        labelled = len(self.labelled_examples().y)
        return x[labelled:], y[labelled:]

    @functools.cached_property
    def _training_images(self) -> tuple[np.ndarray, np.ndarray]:
        labelled = self.labelled_examples()
        if self.record.unlabeled is None:
            return labelled.x, labelled.y
        source, threshold = self.record.unlabeled["source"], self.read_config()["data"]["pseudo_label_confidence"]
        if source == "auto":
            where = f"{self / self.RECORD}: unlabeled_indices"
            x = self._training_split.at_recorded(self.record.unlabeled_indices or [], where).x
        else:
            x = load_unlabeled(source, labelled, image_size=self._image_size()).x
        if UnlabeledImages(x, source, None).fingerprint() != self.record.unlabeled["fingerprint"]:
            raise GenaugError(f"{self.path}: the unlabelled images at {source} changed since training")
        labels, confidence, _ = self.read_pseudo_labels()
        return with_confident(labelled, x, labels, confidence, threshold)

    # ---- the models -----------------------------------------------------------------------------

    def _load(self, name: str):
        """The ``.keras`` file ``name`` of this run; one that cannot be loaded is a one-line error."""
        return load_saved_model(self.path / name)

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
        path = self.path / self.ORACLE
        return load_saved_model(path) if path.is_file() else None

    def save_oracle(self, model) -> None:
        atomic.save_model(model, self.path / self.ORACLE)


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
        LOCKS,
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
