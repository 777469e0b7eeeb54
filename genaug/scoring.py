"""One classifier fit, as ``evaluate`` and ``tune`` both score it: a :class:`Fit` names the classifier recipe
(the CNN of :mod:`genaug.classifier`, or scikit-learn's ``SVC(C=10, gamma="scale")`` on flat pixels), the real
and synthetic training arrays, how they mix (a synthetic share, classic augmentation, or a
:class:`genaug.policy.Policy`) and the seed; :func:`test_predictions` trains it and labels the test images.
Plain values, so a worker process can run it.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from genaug import storage
from genaug.data import LabelledArrays, labelled_subset
from genaug.errors import ArgumentError, GenaugError
from genaug.manifest import MANIFEST
from genaug.policy import Policy, class_balancing_weights
from genaug.synthetic import SyntheticDataset

SVC_MAX_PIXELS = 1024  # the SVC recipe runs on images of at most this many values
SVC_MAX_TRAIN = 5000  # kernel SVMs scale quadratically; larger training sets are subsampled to this
BATCH_SIZE = 64  # the CNN recipe's batch


@dataclasses.dataclass(frozen=True)
class Fit:
    """One classifier to train and test.

    Attributes:
        kind: ``"cnn"`` or ``"svc"``.
        real: the real training images and labels.
        synthetic: the synthetic images and labels it may mix in.
        fraction: the synthetic share of the training examples (``None``: as ``policy`` says).
        seed: the classifier's seed (weights, order, augmentation).
        test: whose images it labels.
        steps: the CNN's gradient steps.
        augment: classic augmentation of the real images.
        policy: how to use the synthetic data instead of ``fraction`` and ``augment``.
    """

    kind: str
    real: tuple[np.ndarray, np.ndarray]
    synthetic: tuple[np.ndarray, np.ndarray]
    fraction: float | None
    seed: int
    test: LabelledArrays
    steps: int
    augment: bool = False
    policy: Policy | None = None


def test_predictions(fit: Fit) -> np.ndarray:
    """The labels of ``fit.test``'s images as predicted by the classifier ``fit`` describes."""
    if fit.kind == "svc":
        return _svc_predictions(fit)
    return _cnn_predictions(_trainer(fit.test.x.shape[1:], fit.test.info.num_classes, fit.steps), fit)


@functools.lru_cache(maxsize=4)
def _trainer(image_shape: tuple[int, ...], num_classes: int, steps: int):
    """One compiled CNN per shape and budget in this process (see ClassifierTrainer)."""
    from genaug.classifier import ClassifierTrainer

    return ClassifierTrainer(image_shape, num_classes, steps=steps)


def _cnn_predictions(trainer, fit: Fit) -> np.ndarray:
    import tensorflow as tf

    from genaug.augment import augment_batches
    from genaug.classifier import predict_proba
    from genaug.mixing import as_supervised, mix
    from genaug.startup import set_random_seed

    # tf.data's seeded ops also read the global seed: set it first, so that this result depends on ``seed``
    # alone and not on which fit ran before (a resumed tune would otherwise score a policy differently).
    set_random_seed(fit.seed)
    real_ds = tf.data.Dataset.from_tensor_slices({"image": fit.real[0], "label": fit.real[1]})
    syn_ds = tf.data.Dataset.from_tensor_slices({"image": fit.synthetic[0], "label": fit.synthetic[1]})
    if fit.policy is not None:
        policy = dataclasses.replace(fit.policy, min_confidence=None)  # ``synthetic`` was read with its threshold
        mixed = mix(real_ds, syn_ds, policy=policy, seed=fit.seed)
        batches = as_supervised(mixed, BATCH_SIZE, seed=fit.seed, policy=policy, num_classes=trainer.num_classes)
    else:
        mixed = mix(real_ds, syn_ds, synthetic_fraction=fit.fraction, seed=fit.seed)
        batches = as_supervised(mixed, BATCH_SIZE, seed=fit.seed)
        if fit.augment:
            batches = augment_batches(batches, fit.seed)
    return predict_proba(trainer.fit(batches, seed=fit.seed), fit.test.x).argmax(axis=1)


def _svc_predictions(fit: Fit) -> np.ndarray:
    """The SVC on the mix (up to four augmented copies of each real image when augmenting); a policy gives
    its synthetic share, their weight, its augmentation strength and its class balancing, of the loss and of the
    real images (mixup, cutmix and pixel noise are for networks trained by batches, so the SVC leaves them out)."""
    from sklearn.svm import SVC

    from genaug.augment import augmented_copies

    real, syn, fraction, augment = fit.real, fit.synthetic, fit.fraction, fit.augment
    strength, weight = 1.0, 1.0
    if fit.policy is not None:
        fraction, augment = fit.policy.synthetic_fraction, fit.policy.augmentation > 0
        strength, weight = fit.policy.augmentation, fit.policy.synthetic_weight
    rng = np.random.default_rng(fit.seed)
    if fit.policy is not None and fit.policy.real_balanced:  # random oversampling, as mix draws the real stream
        real = oversampled(*real, rng)
    if augment:
        copies = max(1, min(4, SVC_MAX_TRAIN // len(real[1]) - 1))
        more = augmented_copies(real[0], copies, fit.seed, strength=strength)
        real = (np.concatenate([real[0], more]), np.tile(real[1], copies + 1))
    if fraction == 1.0:
        keep = rng.choice(len(syn[1]), min(len(syn[1]), SVC_MAX_TRAIN), replace=False)
        x, y = syn[0][keep], syn[1][keep]
    else:
        extra = min(len(syn[1]), round(len(real[1]) * fraction / (1.0 - fraction)))
        keep = rng.choice(len(syn[1]), extra, replace=False)
        x, y = np.concatenate([real[0], syn[0][keep]]), np.concatenate([real[1], syn[1][keep]])
    weights = None if weight == 1.0 else np.where(np.arange(len(y)) < len(y) - len(keep), 1.0, weight)
    if fit.policy is not None and fit.policy.class_balanced:
        by_class = class_balancing_weights(np.bincount(y))[y]
        weights = by_class if weights is None else weights * by_class
    flat = x.reshape(len(x), -1) / 255.0
    classifier = SVC(C=10, gamma="scale").fit(flat, y, sample_weight=weights)
    return classifier.predict(fit.test.x.reshape(len(fit.test.x), -1) / 255.0)


def oversampled(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Every class drawn with replacement up to the largest (random oversampling of arrays)."""
    largest = np.bincount(y).max()
    picks = np.concatenate([rng.choice(np.flatnonzero(y == c), largest) for c in np.unique(y)])
    return x[picks], y[picks]


def real_train(full: LabelledArrays, synthetic: SyntheticDataset, labels_per_class, label_fraction) -> LabelledArrays:
    """The real labelled training set: the generator's own subset when it had scarce labels, with the
    labelled examples it was kept from (every label the user has)."""
    indices = synthetic.train_indices
    if indices is not None:
        indices = np.union1d(indices, synthetic.holdout_indices or []).astype(np.int64)
        if labels_per_class is not None and len(indices) != labels_per_class * full.info.num_classes:
            raise ArgumentError(
                f"{{}} {labels_per_class} disagrees with the generator's training subset "
                f"({len(indices)} examples); omit it to use that subset",
                "labels_per_class",
            )
    elif labels_per_class is not None or label_fraction is not None:
        indices = labelled_subset(full.y, labels_per_class=labels_per_class, label_fraction=label_fraction)
    return full if indices is None else full.at_recorded(indices, f"{synthetic.path / MANIFEST}: source.train_indices")


def pseudo_labelled(synthetic: SyntheticDataset) -> tuple[np.ndarray, np.ndarray] | None:
    """The unlabelled images the teacher of ``synthetic``'s generator labelled confidently enough to train
    the generator on, with those labels (a policy's ``pseudo_labels``), read from the generator's run;
    ``None`` when the generator learnt from labels alone."""
    from genaug.runs import RunDirectory

    if synthetic.manifest.source.unlabeled is None:
        return None
    run = synthetic.manifest.generator.run
    if not (storage.path(run) / RunDirectory.RECORD).is_file():
        raise GenaugError(f"{synthetic.path}: its generator's run {run} is gone, and with it the teacher's labels")
    return RunDirectory.open(run).pseudo_labelled()


def teacher_file(synthetic: SyntheticDataset) -> Path | None:
    """The ``teacher.keras`` of ``synthetic``'s generator's run (a FixMatch teacher labelled the images it learnt
    from without labels), or ``None``: no such teacher, or the run is not where it was."""
    from genaug.runs import RunDirectory

    path = storage.path(synthetic.manifest.generator.run) / RunDirectory.TEACHER
    return path if path.is_file() else None


def with_pseudo_labels(
    real: tuple[np.ndarray, np.ndarray], pseudo: tuple[np.ndarray, np.ndarray] | None, policy: Policy | None
) -> tuple[np.ndarray, np.ndarray]:
    """The real examples a ``policy`` trains on: ``real``, plus ``pseudo`` when it asks for the teacher's labels."""
    if policy is None or not policy.pseudo_labels:
        return real
    if pseudo is None:
        raise GenaugError("policy pseudo_labels: the synthetic set's generator learnt from labels alone")
    return np.concatenate([real[0], pseudo[0]]), np.concatenate([real[1], pseudo[1]])


def synthetic_arrays(
    synthetic: SyntheticDataset, real: LabelledArrays, data: str, min_confidence: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic set's images and labels (those with a stored confidence of at least
    ``min_confidence``), after checking they match the real data ``data``."""
    x, y = synthetic.arrays(min_confidence)
    if synthetic.info.class_names != real.info.class_names or x.shape[1:] != real.x.shape[1:]:
        raise GenaugError(
            f"{synthetic.path} ({x.shape[1:]}, classes {list(synthetic.info.class_names)}) does not match {data} "
            f"({real.x.shape[1:]}, classes {list(real.info.class_names)})"
        )
    return x, y
