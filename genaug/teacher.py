"""The teacher of a semi-supervised run (and of the baselines without genaug): pseudo-labels for unlabelled images.

Two teachers, chosen by their accuracy on the labelled examples held out from the run (never the test split):

* ``spreading``: label spreading (Zhou et al. 2004, scikit-learn's ``LabelSpreading``) over a k-nearest-
  neighbour graph of the raw pixels. Seconds, and right where pixel distance is meaningful (8x8 digits:
  95 %), wrong where it is not (Fashion-MNIST: 63-65 %).
* ``fixmatch``: :class:`models.fixmatch.FixMatch`, a small CNN trained for consistency under strong
  augmentation on the labelled and unlabelled images together; its weights' moving average labels. With
  ``members`` above 1, that many from other initialisations, their probabilities averaged
  (:class:`models.fixmatch.TeacherEnsemble`). With ``pretrain_steps``, its network starts from a
  :class:`models.simclr.SimCLR` encoder trained that many steps on all the images, labels unused.

Only the labels of the labelled images enter; the result is a label and a confidence per unlabelled image.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from genaug.data import LabelledArrays, UnlabeledImages

NEIGHBOURS = 7
TEACHERS = ("auto", "fixmatch", "spreading")
FIXMATCH_STEPS = 2500
PRETRAIN_BATCH = 256  # SimCLR compares each view with the batch's others: it wants a large batch
LABELLED_BATCH = 32
UNLABELED_RATIO = 4  # unlabelled images per labelled one in a batch (FixMatch's mu)
PREDICT_BATCH = 1024

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Teaching:
    """What a teacher made of the unlabelled images.

    Attributes:
        teacher: the teacher that labelled them, ``"fixmatch"`` or ``"spreading"``.
        labels: int64[N], one per unlabelled image.
        confidence: float32[N], the teacher's probability of that label.
        heldout_accuracy: each teacher tried -> its accuracy on the held-out labelled examples (``None``
            without held-out examples).
        model: the trained FixMatch model (a TeacherEnsemble of several) when it labelled, else ``None``.
        seconds: how long teaching took.
        precision: the dtype policy the teacher trained in.
        members: FixMatch teachers averaged.
        pretrain_steps: SimCLR steps the FixMatch network started from (0: none).
    """

    teacher: str
    labels: np.ndarray
    confidence: np.ndarray
    heldout_accuracy: dict[str, float | None]
    model: object | None
    seconds: float
    precision: str = "float32"
    members: int = 1
    pretrain_steps: int = 0

    @classmethod
    def from_record(cls, labels: np.ndarray, confidence: np.ndarray, record: dict) -> Teaching:
        """The teaching a run wrote (its model stays in the run's ``teacher.keras``)."""
        return cls(
            record.get("name", "spreading"),
            labels,
            confidence,
            record.get("heldout_accuracy", {}),
            None,
            record.get("seconds", 0.0),
            record.get("precision", "float32"),
            record.get("members", 1),
            record.get("pretrain_steps", 0),
        )

    def record(self) -> dict:
        """The account run.json keeps."""
        return {
            "name": self.teacher,
            "heldout_accuracy": self.heldout_accuracy,
            "seconds": round(self.seconds, 1),
            **(
                {"neighbours": NEIGHBOURS}
                if self.teacher == "spreading"
                else {"precision": self.precision, "members": self.members, "pretrain_steps": self.pretrain_steps}
            ),
        }


def teach(
    labelled: LabelledArrays,
    unlabeled: UnlabeledImages,
    *,
    teacher: str = "auto",
    heldout: LabelledArrays | None = None,
    steps: int = FIXMATCH_STEPS,
    flip: bool = False,
    precision: str = "float32",
    seed: int = 0,
    members: int = 1,
    pretrain_steps: int = 0,
) -> Teaching:
    """Pseudo-labels ``unlabeled`` with the teacher asked for.

    Args:
        labelled: the labelled examples the teacher learns from.
        unlabeled: the images to label.
        teacher: ``"spreading"``, ``"fixmatch"``, or ``"auto"``: both, keeping the one more accurate on
            ``heldout`` (FixMatch when there is no held-out example or the two tie).
        heldout: labelled examples the teacher never learns from, to score it.
        steps: FixMatch's optimizer steps.
        flip: FixMatch also mirrors images left-right (for data whose classes look the same mirrored).
        precision: the Keras dtype policy FixMatch trains in (``float32``, ``mixed_bfloat16``, ...).
        seed: seeds FixMatch's initialisation, augmentations and batches.
        members: FixMatch teachers to train (seeds ``seed``, ``seed + 1000``, ...) and average.
        pretrain_steps: SimCLR steps on the labelled and unlabelled images (labels unused) whose encoder
            every FixMatch member starts from; 0 starts from random weights.

    Raises:
        ValueError: an unknown ``teacher``, fewer than one member or negative ``pretrain_steps``.

    Example:
        >>> teaching = teach(labelled, unlabeled, heldout=heldout)
        >>> keep = teaching.confidence >= 0.9
    """
    if teacher not in TEACHERS:
        raise ValueError(f"unknown teacher {teacher!r}: expected one of {', '.join(TEACHERS)}")
    if members < 1:
        raise ValueError(f"a teacher needs at least one member, got {members}")
    if pretrain_steps < 0:
        raise ValueError(f"pretrain_steps must be at least 0, got {pretrain_steps}")
    started = time.time()
    tried = {}
    for name in ("spreading", "fixmatch") if teacher == "auto" else (teacher,):
        log.info("teacher %s: labelling %d images from %d labels", name, len(unlabeled.x), len(labelled.y))
        options = {
            "steps": steps, "flip": flip, "precision": precision, "seed": seed, "members": members,
            "pretrain_steps": pretrain_steps,
        }  # fmt: skip
        tried[name] = _TEACHERS[name](labelled, unlabeled, heldout, **options)
    scores = {name: _accuracy(result[2], heldout) for name, result in tried.items()}
    chosen = max(tried, key=lambda name: (scores[name] or 0.0, name == "fixmatch"))
    labels, confidence, _, model = tried[chosen]
    if heldout is not None:
        log.info(
            "teacher: %s (held-out accuracy %s)",
            chosen,
            ", ".join(f"{name} {score:.3f}" for name, score in scores.items()),
        )
    fixmatch = chosen == "fixmatch"
    precision = precision if fixmatch else "float32"
    seconds = time.time() - started
    pretrained = pretrain_steps if fixmatch else 0
    return Teaching(
        chosen, labels, confidence, scores, model, seconds, precision, members if fixmatch else 1, pretrained
    )


def _accuracy(predicted: np.ndarray | None, heldout: LabelledArrays | None) -> float | None:
    return None if heldout is None or not len(heldout.y) else float(np.mean(predicted == heldout.y))


def _spreading(labelled, unlabeled, heldout, **_):
    """Label spreading over the labelled, unlabelled and held-out images (the held-out ones unlabelled)."""
    extra = heldout.x if heldout is not None else unlabeled.x[:0]
    labels, confidence = pseudo_labels(labelled, UnlabeledImages(np.concatenate([unlabeled.x, extra]), "", None))
    n = len(unlabeled.x)
    return labels[:n], confidence[:n], labels[n:], None


def _fixmatch(labelled, unlabeled, heldout, *, steps, flip, precision, seed, members, pretrain_steps):
    from models.fixmatch import TeacherEnsemble

    encoder = None
    if pretrain_steps:
        images = np.concatenate([labelled.x, unlabeled.x])
        encoder = pretrain_encoder(images, steps=pretrain_steps, flip=flip, precision=precision, seed=seed)
    trained = []
    for member in range(members):  # the same labels and schedule, another initialisation each
        if members > 1:
            log.info("teacher fixmatch: member %d of %d", member + 1, members)
        options = {
            "steps": steps,
            "flip": flip,
            "precision": precision,
            "seed": seed + 1000 * member,
            "encoder": encoder,
        }
        trained.append(train_fixmatch(labelled, unlabeled.x, **options))
    model = trained[0] if members == 1 else TeacherEnsemble([teacher.ema_network for teacher in trained])
    probabilities = teacher_probabilities(model, unlabeled.x)
    predicted = None if heldout is None else teacher_probabilities(model, heldout.x).argmax(axis=1)
    return probabilities.argmax(axis=1).astype(np.int64), probabilities.max(axis=1), predicted, model


_TEACHERS = {"spreading": _spreading, "fixmatch": _fixmatch}


def train_fixmatch(
    labelled: LabelledArrays,
    unlabeled: np.ndarray,
    *,
    steps: int = FIXMATCH_STEPS,
    flip: bool = False,
    precision: str = "float32",
    seed: int = 0,
    encoder=None,
):
    """A :class:`models.fixmatch.FixMatch` trained ``steps`` steps on the labelled examples and the
    ``unlabeled`` uint8 images in the dtype policy ``precision``; batches of LABELLED_BATCH labelled and
    UNLABELED_RATIO times as many unlabelled images, drawn in an order that follows from ``seed``. With
    ``encoder`` (:func:`pretrain_encoder`'s), the network starts from its weights."""
    import keras
    import tensorflow as tf

    from models.fixmatch import FixMatch

    keras.utils.set_random_seed(seed)  # initial weights; tf.data's seeded shuffles also read it
    info = labelled.info
    batches = tf.data.Dataset.zip(
        _endless(labelled.x, labelled.y, batch=LABELLED_BATCH, seed=seed),
        _endless(unlabeled, batch=UNLABELED_RATIO * LABELLED_BATCH, seed=seed + 1),
    )
    model = FixMatch(info.image_shape, info.num_classes, flip=flip, seed=seed, dtype=precision)
    if encoder is not None:
        model.start_from(encoder)
    log.info("teacher fixmatch: %d steps", steps)
    return _fit_steps(model, batches, steps, "fixmatch", "confident_share", "confident share %.2f")


def pretrain_encoder(images: np.ndarray, *, steps: int, flip: bool = False, precision: str = "float32", seed: int = 0):
    """The encoder of a :class:`models.simclr.SimCLR` trained ``steps`` steps on the uint8 ``images``
    (batches of PRETRAIN_BATCH, or all of them when fewer, in an order that follows from ``seed``)."""
    import keras

    from models.simclr import SimCLR

    keras.utils.set_random_seed(seed)
    batches = _endless(images, batch=min(PRETRAIN_BATCH, len(images)), seed=seed + 2)
    model = SimCLR(images.shape[1:], flip=flip, seed=seed, dtype=precision)
    log.info("teacher fixmatch: pretraining its network, %d SimCLR steps on %d images", steps, len(images))
    _fit_steps(model, batches, steps, "simclr", "contrastive_loss", "contrastive loss %.3f")
    return model.encoder


def _endless(images: np.ndarray, labels: np.ndarray | None = None, *, batch: int, seed: int):
    """Batches of the uint8 ``images`` in the model's range (with their ``labels``), reshuffled by ``seed``
    on every pass, without end."""
    import tensorflow as tf

    from models.scaling import to_model_range

    parts = images if labels is None else (images, labels)
    ds = tf.data.Dataset.from_tensor_slices(parts).repeat().shuffle(len(images), seed=seed)
    ds = ds.batch(batch, drop_remainder=True)
    return ds.map(to_model_range) if labels is None else ds.map(lambda x, y: (to_model_range(x), y))


def _fit_steps(model, batches, steps: int, name: str, metric: str, shown: str):
    """``model`` compiled and trained ``steps`` steps on ``batches`` (shuffled already), its progress logged."""
    import tensorflow as tf

    model.compile(steps_per_execution=min(steps, 50))
    progress = _progress(name, steps, metric, shown)
    batches = batches.take(steps).prefetch(tf.data.AUTOTUNE)
    model.fit(batches, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0, callbacks=[progress])
    return model


def _progress(name: str, steps: int, metric: str, shown: str):
    """A callback that logs the step, one metric (``shown`` formats it) and the time every tenth of a run
    (minutes on a CPU that were silent otherwise). Keras is imported here, as everywhere in this module,
    only when used."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.every, self.started = max(1, steps // 10), time.time()
            self.next = self.every

        def on_train_batch_end(self, batch, logs=None):
            if self.next <= batch + 1 < steps:  # with 50 steps per execution, called every 50th step
                self.next += self.every
                value = float((logs or {}).get(metric, float("nan")))
                log.info(
                    f"teacher {name}: step %d/%d, {shown} [%.0f s]", batch + 1, steps, value, time.time() - self.started
                )

    return Progress()


def teacher_probabilities(model, images: np.ndarray) -> np.ndarray:
    """The FixMatch model's class probabilities (float32 N x classes) for uint8 images."""
    import keras

    from models.scaling import to_model_range

    parts = [
        keras.ops.convert_to_numpy(keras.ops.softmax(model(to_model_range(images[i : i + PREDICT_BATCH]))))
        for i in range(0, len(images), PREDICT_BATCH)
    ]
    return np.concatenate(parts).astype(np.float32)


def pseudo_labels(labelled: LabelledArrays, unlabeled: UnlabeledImages) -> tuple[np.ndarray, np.ndarray]:
    """Label spreading's ``(labels int64[N], confidence float32[N])`` for the ``N`` unlabelled images.

    Example:
        >>> labels, confidence = pseudo_labels(labelled, unlabeled)
        >>> keep = confidence >= 0.9
    """
    from sklearn.semi_supervised import LabelSpreading

    x = np.concatenate([labelled.x, unlabeled.x]).reshape(len(labelled.x) + len(unlabeled.x), -1)
    y = np.concatenate([labelled.y, np.full(len(unlabeled.x), -1)])  # -1: unlabelled, for scikit-learn
    spreading = LabelSpreading(kernel="knn", n_neighbors=NEIGHBOURS).fit(x.astype(np.float32) / 255.0, y)
    distribution = spreading.label_distributions_[len(labelled.x) :]
    classes = spreading.classes_  # the labels present, in order
    return classes[distribution.argmax(axis=1)].astype(np.int64), distribution.max(axis=1).astype(np.float32)


def with_confident(
    labelled: LabelledArrays, images: np.ndarray, labels: np.ndarray, confidence: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """What a semi-supervised generator trains on: the labelled examples, then the unlabelled ``images``
    whose pseudo-label ``confidence`` is at least ``threshold``, with those ``labels``."""
    keep = confidence >= threshold
    return np.concatenate([labelled.x, images[keep]]), np.concatenate([labelled.y, labels[keep]])
