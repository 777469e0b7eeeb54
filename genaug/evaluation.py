"""``evaluate``: did the synthetic data help? Downstream accuracy, fidelity and memorisation.

Downstream utility: the fixed classifier recipes (the CNN of :mod:`genaug.classifier`, and scikit-learn's
``SVC(C=10, gamma="scale")`` on flat pixels for images of at most 1,024 values) trained on
(a) real only, (b) real + synthetic at each asked fraction, (c) synthetic only (CAS / TSTR), each over
K seeds, always tested on the real test split. The CNN gets the same step budget in every condition.
Beside them, the routes without genaug: real + classic augmentation, and for runs that learnt from the
split's unlabelled rest, label spreading's pseudo-labels for that rest.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

from genaug import metrics
from genaug.data import LabelledArrays, labelled_subset, load_arrays
from genaug.errors import ArgumentError, GenaugError
from genaug.manifest import MANIFEST
from genaug.policy import Policy
from genaug.report import condition_name, gain_key, write_report
from genaug.synthetic import SyntheticDataset
from genaug.version import __version__
from genaug.workers import Workers

log = logging.getLogger(__name__)

SVC_MAX_PIXELS = 1024
SVC_MAX_TRAIN = 5000  # kernel SVMs scale quadratically; larger training sets are subsampled to this
MAX_FIDELITY_SAMPLES = 2000


def _real_train(full: LabelledArrays, synthetic: SyntheticDataset, labels_per_class, label_fraction) -> LabelledArrays:
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


def _synthetic_arrays(
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


def _learnt_from_the_rest(syn_set: SyntheticDataset) -> bool:
    """Whether the generator learnt from its split's unlabelled rest (``unlabeled: auto``, scarce labels)."""
    recorded = syn_set.manifest.source.unlabeled
    return recorded is not None and recorded["source"] == "auto" and syn_set.train_indices is not None


def _unlabeled_images(
    spec: str | None, syn_set: SyntheticDataset, full: LabelledArrays, real: LabelledArrays, image_size
):
    """The images the label-spreading baseline learns from without labels, as ``spec`` says (``None``:
    the rest of the split when the generator learnt from it, else none), or ``None`` for no baseline."""
    from genaug.data import load_unlabeled, unlabeled_rest

    if spec is None:
        spec = "auto" if _learnt_from_the_rest(syn_set) else "none"
    if spec == "none":
        return None
    if spec == "auto":
        return unlabeled_rest(full, real)  # None when every training example is labelled
    return load_unlabeled(spec, real, image_size=image_size)  # checks the spec


def _label_spreading_set(real: LabelledArrays, unlabeled) -> tuple[np.ndarray, np.ndarray]:
    """The labelled examples plus ``unlabeled`` images with the teacher's labels (their own labels, if
    any, are never read)."""
    from genaug.teacher import pseudo_labels, with_confident

    labels, confidence = pseudo_labels(real, unlabeled)
    return with_confident(real, unlabeled.x, labels, confidence, threshold=0.0)  # every pseudo-label


def _cnn_predictions(trainer, real, syn, fraction, seed, test, augment, policy: Policy | None = None):
    """The labels of ``test.x`` as predicted by the CNN recipe trained on the mix of ``real`` and ``syn``
    (with classic augmentation of every batch when ``augment``), or as ``policy`` says instead."""
    import keras
    import tensorflow as tf

    from genaug.augment import augment_batches
    from genaug.classifier import predict_proba
    from genaug.mixing import as_supervised, mix

    # tf.data's seeded ops also read the global seed: set it first, so that this result depends on ``seed``
    # alone and not on which fit ran before (a resumed tune would otherwise score a policy differently).
    keras.utils.set_random_seed(seed)
    real_ds = tf.data.Dataset.from_tensor_slices({"image": real[0], "label": real[1]})
    syn_ds = tf.data.Dataset.from_tensor_slices({"image": syn[0], "label": syn[1]})
    if policy is not None:
        policy = dataclasses.replace(policy, min_confidence=None)  # ``syn`` was read with its threshold
        mixed = mix(real_ds, syn_ds, policy=policy, seed=seed)
        batches = as_supervised(mixed, 64, seed=seed, policy=policy, num_classes=trainer.num_classes)
    else:
        batches = as_supervised(mix(real_ds, syn_ds, synthetic_fraction=fraction, seed=seed), 64, seed=seed)
        if augment:
            batches = augment_batches(batches, seed)
    return predict_proba(trainer.fit(batches, seed=seed), test.x).argmax(axis=1)


def _svc_predictions(real, syn, fraction, seed, test, augment, policy: Policy | None = None):
    """The labels of ``test.x`` as predicted by the SVC recipe trained on the mix of ``real`` and ``syn``
    (with up to four augmented copies of each real image when ``augment``), or as ``policy`` says
    (its share of synthetic examples, their weight and its augmentation strength; mixup, cutmix and
    pixel noise are for networks trained by batches, so the SVC leaves them out)."""
    from sklearn.svm import SVC

    from genaug.augment import augmented_copies

    strength, weight = 1.0, 1.0
    if policy is not None:
        fraction, augment = policy.synthetic_fraction, policy.augmentation > 0
        strength, weight = policy.augmentation, policy.synthetic_weight
    rng = np.random.default_rng(seed)
    if augment:
        copies = max(1, min(4, SVC_MAX_TRAIN // len(real[1]) - 1))
        more = augmented_copies(real[0], copies, seed, strength=strength)
        real = (np.concatenate([real[0], more]), np.tile(real[1], copies + 1))
    if fraction == 1.0:
        keep = rng.choice(len(syn[1]), min(len(syn[1]), SVC_MAX_TRAIN), replace=False)
        x, y = syn[0][keep], syn[1][keep]
    else:
        extra = min(len(syn[1]), round(len(real[1]) * fraction / (1.0 - fraction)))
        keep = rng.choice(len(syn[1]), extra, replace=False)
        x, y = np.concatenate([real[0], syn[0][keep]]), np.concatenate([real[1], syn[1][keep]])
    weights = None if weight == 1.0 else np.where(np.arange(len(y)) < len(y) - len(keep), 1.0, weight)
    flat = x.reshape(len(x), -1) / 255.0
    classifier = SVC(C=10, gamma="scale").fit(flat, y, sample_weight=weights)
    return classifier.predict(test.x.reshape(len(test.x), -1) / 255.0)


@dataclasses.dataclass(frozen=True)
class Fit:
    """One classifier that evaluate trains and tests: plain values, so a worker process can run it."""

    kind: str  # "cnn" or "svc"
    real: tuple[np.ndarray, np.ndarray]
    synthetic: tuple[np.ndarray, np.ndarray]
    fraction: float | None  # synthetic share (None: the policy's)
    seed: int
    test: LabelledArrays  # predicted on its images
    steps: int  # CNN gradient steps
    augment: bool = False
    policy: Policy | None = None


def test_predictions(fit: Fit) -> np.ndarray:
    """The labels of ``fit.test``'s images as predicted by the classifier ``fit`` describes."""
    args = (fit.real, fit.synthetic, fit.fraction, fit.seed, fit.test, fit.augment, fit.policy)
    if fit.kind == "svc":
        return _svc_predictions(*args)
    return _cnn_predictions(_trainer(fit.test.x.shape[1:], fit.test.info.num_classes, fit.steps), *args)


@functools.lru_cache(maxsize=4)
def _trainer(image_shape: tuple[int, ...], num_classes: int, steps: int):
    """One compiled CNN per shape and budget in this process (see ClassifierTrainer)."""
    from genaug.classifier import ClassifierTrainer

    return ClassifierTrainer(image_shape, num_classes, steps=steps)


def check_evaluate(
    out: str | os.PathLike,
    *,
    seeds: int = 3,
    fractions: tuple[float, ...] = (0.25, 0.5, 0.75),
    steps: int = 600,
    policy: Policy | None = None,
    metric: str = "accuracy",
) -> None:
    """Checks :func:`evaluate`'s arguments, writing nothing and without TensorFlow (the CLI calls it before
    TensorFlow starts).

    Raises:
        GenaugError: naming the first bad argument.
    """
    if seeds < 1:
        raise ArgumentError(f"{{}} must be at least 1, got {seeds}", "seeds")
    if steps < 1:
        raise ArgumentError(f"{{}} must be at least 1, got {steps}", "steps")
    if Path(out).exists() and not Path(out).is_dir():
        raise ArgumentError(f"{{}} {out} is a file, not a directory", "out")
    if any(not 0.0 < f < 1.0 for f in fractions):  # NaN fails too
        raise GenaugError(f"fractions must be in (0, 1), got {list(fractions)}")
    if policy is not None:
        policy.check_sets(1)
    if metric not in metrics.METRICS:
        raise ArgumentError(f"{{}} {metric!r}: expected one of {', '.join(metrics.METRICS)}", "metric")


def evaluate(
    data: str,
    synthetic: str | Path,
    out: str | Path,
    *,
    seeds: int = 3,
    fractions: tuple[float, ...] = (0.25, 0.5, 0.75),
    labels_per_class: int | None = None,
    label_fraction: float | None = None,
    image_size: tuple[int, int] | None = None,
    steps: int = 600,
    policy: Policy | None = None,
    unlabeled: str | None = None,
    metric: str = "accuracy",
    workers: Workers | None = None,
    progress: bool = True,
) -> dict:
    """Measures a synthetic dataset against the real one and writes ``report.json``, ``report.md``
    and plots into ``out``.

    Args:
        data: the real data spec the generator was trained on.
        synthetic: a synthetic dataset directory written by :func:`genaug.sample`.
        out: the report directory.
        seeds: classifier seeds per condition (mean, std and 95 % interval are reported).
        fractions: synthetic fractions for the real + synthetic condition.
        labels_per_class: scarce labels; by default the generator's own training subset (from the
            manifest) is used, never the full train split when that subset exists.
        label_fraction: scarce labels as a fraction instead.
        image_size: resize real images (as at training).
        steps: CNN gradient steps in every condition.
        policy: also train each classifier as this :class:`genaug.policy.Policy` says (e.g. from
            ``genaug tune``), on ``synthetic``, and report it beside the conditions.
        unlabeled: images for the label-spreading baseline (the route without genaug) to learn from
            without labels: ``"auto"`` (the rest of the train split), ``"none"`` (no such baseline),
            ``"images:PATH"`` or ``"npz:PATH"``; by default ``auto`` when the generator learnt from the
            rest of the split, else none.
        metric: what every row scores: ``accuracy`` or ``balanced_accuracy`` (mean recall over the classes;
            for imbalanced data). On an imbalanced training split an accuracy report adds balanced accuracy.
        workers: train the classifiers side by side in these processes (:class:`genaug.workers.Workers`);
            by default one after another in this process. The figures do not depend on how many there are.
        progress: log a line per stage (logger ``genaug.evaluation``, INFO; the CLI shows it).

    Returns:
        The report (also written as ``report.json``).

    Example:
        >>> report = evaluate("digits", "syn/", "report/", seeds=5)
        >>> report["utility"]["cnn"]["gain"]["0.5"]["mean"]
    """
    started = time.time()
    say = log.info if progress else (lambda *_: None)
    check_evaluate(out, seeds=seeds, fractions=fractions, steps=steps, policy=policy, metric=metric)
    syn_set = SyntheticDataset.open(synthetic)
    full_train = load_arrays(data, "train", image_size=image_size)
    test = load_arrays(data, "test", image_size=image_size)
    syn_x, syn_y = _synthetic_arrays(syn_set, full_train, data)
    policy_syn = (syn_x, syn_y)
    if policy is not None and policy.min_confidence is not None:
        policy_syn = _synthetic_arrays(syn_set, full_train, data, policy.min_confidence)
    real = _real_train(full_train, syn_set, labels_per_class, label_fraction)
    num_classes = real.info.num_classes
    say(f"evaluate: {len(real.y)} real train, {len(syn_y)} synthetic, {len(test.y)} real test examples")
    conditions = {condition_name(f): f for f in (0.0, *fractions, 1.0)}
    kinds = ["cnn"] + (["svc"] if int(np.prod(real.x.shape[1:])) <= SVC_MAX_PIXELS else [])
    # The route without genaug where there are unlabelled images: the same teacher pseudo-labels them and
    # the same classifiers train on them with the labelled ones.
    baselines = {"classic_augmentation": ((real.x, real.y), True)}
    unlabeled_images = _unlabeled_images(unlabeled, syn_set, full_train, real, image_size)
    if unlabeled_images is not None:
        baselines["label_spreading"] = (_label_spreading_set(real, unlabeled_images), False)

    # Every classifier the report needs, keyed by (classifier, condition, seed) and queued at once, so that
    # with ``workers`` they train side by side; results are collected by key, never by position.
    plan: dict[tuple[str, str, int], Fit] = {}
    for kind, seed in itertools.product(kinds, range(seeds)):
        for name, fraction in conditions.items():
            plan[kind, name, seed] = Fit(kind, (real.x, real.y), (syn_x, syn_y), fraction, seed, test, steps)
        for name, (train_set, augment) in baselines.items():
            plan[kind, name, seed] = Fit(kind, train_set, (syn_x, syn_y), 0.0, seed, test, steps, augment)
        if policy is not None:
            plan[kind, "policy", seed] = Fit(kind, (real.x, real.y), policy_syn, None, seed, test, steps, False, policy)
    running = workers.imap(test_predictions, plan.values()) if workers else map(test_predictions, plan.values())

    # Measured here while the workers (if any) train the classifiers.
    say(f"  fidelity (features of a CNN trained on the {len(real.y)} labelled examples) ...")
    fidelity = _fidelity(real, full_train, syn_x, syn_y, test, num_classes)
    teacher = _teacher_accuracy(syn_set, test)
    if teacher is not None:
        say(f"  teacher alone (the run's {teacher['name']}) accuracy {teacher['mean']:.4f}")
    say("  memorisation ...")
    # Memorisation is measured against the images the generator saw: with `unlabeled: auto`, the whole split.
    train_seen = real if syn_set.train_indices is not None and not _learnt_from_the_rest(syn_set) else full_train
    train_seen = train_seen.without(syn_set.holdout_indices or [])
    sample = np.random.default_rng(0).choice(len(syn_y), min(len(syn_y), MAX_FIDELITY_SAMPLES), replace=False)
    memo = metrics.memorisation(
        syn_x[sample], train_seen.x, test.x, copy_threshold=metrics.default_min_distance(train_seen.x, test.x)
    )

    predicted = dict(zip(plan, running, strict=True))

    def accuracies(kind: str, name: str, score: str = metric) -> np.ndarray:
        return np.array([metrics.score(score, predicted[kind, name, seed], test.y) for seed in range(seeds)])

    imbalanced = metrics.is_imbalanced(real.y)

    def scored(kind: str, name: str, real_values: np.ndarray) -> dict:
        """Accuracy over the seeds, with its gain over real only (``real_values``) paired by seed."""
        values = accuracies(kind, name)
        gain = metrics.mean_interval((values - real_values).tolist())
        return {**metrics.mean_interval(values.tolist()), "gain": gain}

    utility = {}
    for kind in kinds:
        results = {}
        for name in conditions:
            per_class = [
                metrics.recall_per_class(predicted[kind, name, seed], test.y, range(num_classes))
                for seed in range(seeds)
            ]
            results[name] = {
                **metrics.mean_interval(accuracies(kind, name).tolist()),
                "per_class": np.mean(per_class, axis=0).tolist(),
            }
            if imbalanced and metric != "balanced_accuracy":
                results[name]["balanced_accuracy"] = metrics.mean_interval(
                    accuracies(kind, name, "balanced_accuracy").tolist()
                )
            say(f"  {kind:<4} {name:<12} {metric} {results[name]['mean']:.4f} +- {results[name]['std']:.4f}")
        real_values = accuracies(kind, "real")
        gains = {
            gain_key(fraction): metrics.mean_interval((accuracies(kind, name) - real_values).tolist())
            for name, fraction in conditions.items()
            if 0.0 < fraction < 1.0
        }
        utility[kind] = {"conditions": results, "gain": gains}
        for name in baselines:
            utility[kind].setdefault("baselines", {})[name] = scored(kind, name, real_values)
            say(f"  {kind:<4} {name:<12} {metric} {utility[kind]['baselines'][name]['mean']:.4f} (no synthetic data)")
        if teacher is not None and kind == "cnn":  # a CNN itself, trained on the labelled + unlabelled images
            gain = metrics.mean_interval((teacher["mean"] - real_values).tolist())
            utility[kind].setdefault("baselines", {})["teacher"] = {**teacher, "gain": gain}
        if policy is not None:
            utility[kind]["policy"] = {**scored(kind, "policy", real_values), "policy": policy.to_dict()}
            say(f"  {kind:<4} {'policy':<12} accuracy {utility[kind]['policy']['mean']:.4f}")
    report = {
        "genaug_version": __version__,
        "versions": {
            "python": platform.python_version(),
            "tensorflow": _version("tensorflow"),
            "keras": _version("keras"),
        },
        "data": data,
        "synthetic": str(synthetic),
        "generator": dataclasses.asdict(syn_set.manifest.generator),
        "settings": {
            "seeds": seeds,
            "fractions": list(fractions),
            "cnn_steps": steps,
            "batch_size": 64,
            "labels_per_class": labels_per_class,
            "label_fraction": label_fraction,
            "real_train_examples": len(real.y),
            "real_train_imbalanced": imbalanced,
            "metric": metric,
            "synthetic_examples": len(syn_y),
            "test_examples": len(test.y),
            "class_names": list(real.info.class_names),
        },
        "utility": utility,
        "fidelity": fidelity,
        "memorisation": memo,
        "seconds": time.time() - started,
    }
    write_report(Path(out), report, real=(real.x, real.y), synthetic=(syn_x, syn_y))
    say(f"  wrote {Path(out) / 'report.md'} in {report['seconds']:.0f} s")
    return report


def _version(module: str) -> str:
    import importlib

    return importlib.import_module(module).__version__


_feature_models: dict[tuple, object] = {}  # the last one trained in this process, by its data


def _feature_model(train: LabelledArrays, num_classes: int):
    """The CNN recipe trained on ``train`` (seed 0), in whose features fidelity is measured: a function of
    the data alone, so a second evaluation against the same split in this process (the demo's second
    setting) reuses it."""
    from genaug.classifier import arrays_dataset, train_classifier

    key = (train.fingerprint(), train.x.shape, num_classes)
    if key not in _feature_models:
        steps = min(1000, max(600, 30 * len(train.y) // 64))  # 30 epochs of digits; features, not a contest
        model = train_classifier(
            arrays_dataset(train.x, train.y, seed=0), train.x.shape[1:], num_classes, seed=0, steps=steps
        )
        _feature_models.clear()
        _feature_models[key] = model
    return _feature_models[key]


def _teacher_accuracy(syn_set: SyntheticDataset, test: LabelledArrays) -> dict | None:
    """The test accuracy of the FixMatch teacher that labelled the generator's unlabelled images (the
    run's ``teacher.keras``), or ``None`` when there is none or the run is not where it was."""
    from genaug.runs import RunDirectory, load_saved_model
    from genaug.teacher import teacher_probabilities

    path = Path(syn_set.manifest.generator.run) / RunDirectory.TEACHER
    if not path.is_file():
        return None
    accuracy = float(np.mean(teacher_probabilities(load_saved_model(path), test.x).argmax(axis=1) == test.y))
    return {**metrics.mean_interval([accuracy]), "name": "fixmatch", "path": str(path)}


def _fidelity(labelled: LabelledArrays, train: LabelledArrays, syn_x, syn_y, test, num_classes) -> dict:
    """Frechet distance, KID, precision/recall (k=3), density/coverage (k=5) of synthetic vs real train
    images (``train``, whose labels are not read), with the real test split against real train as the
    yardstick, in the features of a CNN trained on the ``labelled`` examples alone: the labels the
    setting has. Per class: the labelled examples' features against the synthetic images'."""
    from genaug.classifier import penultimate_features

    model = _feature_model(labelled, num_classes)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(syn_y), min(len(syn_y), MAX_FIDELITY_SAMPLES), replace=False)
    real_pick = rng.choice(len(train.y), min(len(train.y), MAX_FIDELITY_SAMPLES), replace=False)
    syn_f, syn_l = penultimate_features(model, syn_x[pick]), syn_y[pick]
    real_f = penultimate_features(model, train.x[real_pick])
    test_f = penultimate_features(model, test.x)
    labelled_f, labelled_l = penultimate_features(model, labelled.x), labelled.y

    def scores(a, b):
        precision, recall = metrics.precision_recall(a, b, k=3)
        density, coverage = metrics.density_coverage(a, b, k=5)
        return {
            "frechet_distance": metrics.frechet_distance(a, b),
            "kid": metrics.kernel_distance(a, b),
            "precision": precision,
            "recall": recall,
            "density": density,
            "coverage": coverage,
        }

    per_class = {}
    for c in range(num_classes):
        a, b = labelled_f[labelled_l == c], syn_f[syn_l == c]
        if len(a) > 5 and len(b) > 5:
            per_class[str(c)] = {
                "frechet_distance": metrics.frechet_distance(a, b),
                "kid": metrics.kernel_distance(a, b, subset_size=100),
            }
    return {
        "synthetic_vs_real_train": scores(real_f, syn_f),
        "real_test_vs_real_train": scores(real_f, test_f),
        "per_class": per_class,
        "features": "penultimate layer (128) of the CNN recipe trained on the labelled real train examples",
    }
