"""``evaluate``: did the synthetic data help? Downstream accuracy, fidelity and memorisation.

Downstream utility: the fixed classifier recipes (the CNN of :mod:`genaug.classifier`, and scikit-learn's
``SVC(C=10, gamma="scale")`` on flat pixels for images of at most 1,024 values) trained on
(a) real only, (b) real + synthetic at each asked fraction, (c) synthetic only (CAS / TSTR), each over
K seeds, always tested on the real test split. The CNN gets the same step budget in every condition.
Beside them, the routes without genaug: real + classic augmentation, and for runs that learnt from the
split's unlabelled rest, label spreading's pseudo-labels for that rest.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

from genaug import metrics, storage
from genaug.data import LabelledArrays, load_arrays
from genaug.errors import ArgumentError, GenaugError
from genaug.policy import CLASS_WEIGHTED, CLASSIC_AUGMENTATION, OVERSAMPLED, REAL_ONLY, TEACHER_LABELS, Policy
from genaug.report import (
    REPORT_VERSION,
    Condition,
    Distances,
    Estimate,
    Fidelity,
    Memorisation,
    Report,
    Route,
    Settings,
    Utility,
    condition_name,
    gain_key,
)
from genaug.scoring import (
    BATCH_SIZE,
    SVC_MAX_PIXELS,
    Fit,
    pseudo_labelled,
    real_train,
    synthetic_arrays,
    teacher_file,
    test_predictions,
    with_pseudo_labels,
)
from genaug.synthetic import SyntheticDataset
from genaug.version import __version__
from genaug.workers import Workers, in_order

log = logging.getLogger(__name__)

MAX_FIDELITY_SAMPLES = 2000


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
    if storage.path(out).exists() and not storage.path(out).is_dir():
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
) -> Report:
    """Measures a synthetic dataset against the real one and writes ``report.json``, ``report.md``
    and plots into ``out``. Beside real only, real + synthetic and synthetic only, the routes without a generator:
    classic augmentation; on imbalanced labels the class-weighted loss; with unlabelled images label spreading;
    with a FixMatch teacher its labels and the teacher alone.

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
        workers: train the classifiers side by side in these single-threaded processes
            (:class:`genaug.workers.Workers`); the figures do not depend on how many there are. By default one
            after another in this process, on its TensorFlow threads: on real-size images a fit on more than
            one thread can land a seed's noise away from the single-threaded one (the CLI is single-threaded).
        progress: log a line per stage (logger ``genaug.evaluation``, INFO; the CLI shows it).

    Returns:
        The :class:`genaug.report.Report` (also written as ``report.json``).

    Example:
        >>> report = evaluate("digits", "syn/", "report/", seeds=5)
        >>> report.utility["cnn"].gain["0.5"].mean
    """
    started = time.time()
    say = log.info if progress else (lambda *_: None)
    check_evaluate(out, seeds=seeds, fractions=fractions, steps=steps, policy=policy, metric=metric)
    inputs = _Inputs.load(data, synthetic, labels_per_class, label_fraction, image_size, policy, unlabeled)
    real, test, syn_set = inputs.real, inputs.test, inputs.syn_set
    say(f"evaluate: {len(real.y)} real train, {len(inputs.syn[1])} synthetic, {len(test.y)} real test examples")
    conditions = {condition_name(f): f for f in (0.0, *fractions, 1.0)}
    plan = _plan(inputs, conditions, seeds, steps, policy)
    running = in_order(test_predictions, plan.values(), workers)

    fidelity, teacher, memorisation = _measure(inputs, say)  # while the workers (if any) train the classifiers
    predicted = _collect(plan, running, seeds, started, say)
    scores = _Scores(predicted, test.y, seeds, metric)
    utility = {kind: _utility(kind, scores, conditions, inputs, teacher, policy, say) for kind in inputs.kinds}
    report = Report(
        genaug_version=__version__, versions=_versions(), data=data, synthetic=str(synthetic),
        generator=dataclasses.asdict(syn_set.manifest.generator),
        settings=_settings(inputs, seeds, fractions, steps, labels_per_class, label_fraction, metric),
        utility=utility, fidelity=fidelity, memorisation=memorisation, seconds=time.time() - started,
        report_version=REPORT_VERSION,
    )  # fmt: skip
    report.write(out, real=(real.x, real.y), synthetic=inputs.syn)
    say(f"  wrote {storage.path(out) / 'report.md'} in {report.seconds:.0f} s")
    return report


@dataclasses.dataclass(frozen=True)
class _Inputs:
    """What an evaluation reads: the real splits, the labelled examples, the synthetic set and its arrays
    (``policy_syn``: as the policy's confidence threshold reads them), the classifiers that apply and the
    baselines' training sets and how they train (name -> ((images, labels), policy), nothing synthetic);
    ``policy_real``: the real examples the policy trains on (with the teacher's labels, if it asks for them)."""

    full_train: LabelledArrays
    test: LabelledArrays
    real: LabelledArrays
    syn_set: SyntheticDataset
    syn: tuple[np.ndarray, np.ndarray]
    policy_syn: tuple[np.ndarray, np.ndarray]
    policy_real: tuple[np.ndarray, np.ndarray]
    kinds: tuple[str, ...]
    baselines: dict[str, tuple[tuple[np.ndarray, np.ndarray], Policy]]

    @classmethod
    def load(cls, data, synthetic, labels_per_class, label_fraction, image_size, policy, unlabeled) -> _Inputs:
        syn_set = SyntheticDataset.open(synthetic)
        full_train = load_arrays(data, "train", image_size=image_size)
        test = load_arrays(data, "test", image_size=image_size)
        syn = synthetic_arrays(syn_set, full_train, data)
        policy_syn = syn
        if policy is not None and policy.min_confidence is not None:
            policy_syn = synthetic_arrays(syn_set, full_train, data, policy.min_confidence)
        real = real_train(full_train, syn_set, labels_per_class, label_fraction)
        kinds = ("cnn",) + (("svc",) if int(np.prod(real.x.shape[1:])) <= SVC_MAX_PIXELS else ())
        # The route without genaug where there are unlabelled images: the same teacher pseudo-labels them and
        # the same classifiers train on them with the labelled ones.
        baselines = {"classic_augmentation": ((real.x, real.y), CLASSIC_AUGMENTATION)}
        if metrics.is_imbalanced(real.y):  # the usual remedies for imbalanced labels, without a generator
            baselines["class_weighted"] = ((real.x, real.y), CLASS_WEIGHTED)
            baselines["oversampled"] = ((real.x, real.y), OVERSAMPLED)
        unlabeled_images = _unlabeled_images(unlabeled, syn_set, full_train, real, image_size)
        if unlabeled_images is not None:
            baselines["label_spreading"] = (_label_spreading_set(real, unlabeled_images), REAL_ONLY)
        # The FixMatch teacher's labels without a generator: self-training, the route synthetic data must beat.
        taught = teacher_file(syn_set) is not None
        pseudo = pseudo_labelled(syn_set) if taught or (policy is not None and policy.pseudo_labels) else None
        if taught:
            teacher_labels = with_pseudo_labels((real.x, real.y), pseudo, TEACHER_LABELS)
            baselines["teacher_labels"] = (teacher_labels, TEACHER_LABELS)
        policy_real = with_pseudo_labels((real.x, real.y), pseudo, policy)
        return cls(full_train, test, real, syn_set, syn, policy_syn, policy_real, kinds, baselines)


def _plan(inputs: _Inputs, conditions: dict[str, float], seeds: int, steps: int, policy) -> dict[tuple, Fit]:
    """Every classifier the report needs, keyed by (classifier, condition, seed) and queued at once, so that
    with workers they train side by side; results are collected by key, never by position."""
    real, syn, test = (inputs.real.x, inputs.real.y), inputs.syn, inputs.test
    plan: dict[tuple[str, str, int], Fit] = {}
    for kind, seed in itertools.product(inputs.kinds, range(seeds)):
        for name, fraction in conditions.items():
            plan[kind, name, seed] = Fit(kind, real, syn, fraction, seed, test, steps)
        for name, (train_set, route) in inputs.baselines.items():
            plan[kind, name, seed] = Fit(kind, train_set, syn, None, seed, test, steps, policy=route)
        if policy is not None:
            policy_real, policy_syn = inputs.policy_real, inputs.policy_syn
            plan[kind, "policy", seed] = Fit(kind, policy_real, policy_syn, None, seed, test, steps, False, policy)
    return plan


def _collect(plan: dict[tuple, Fit], running, seeds: int, started: float, say) -> dict[tuple, np.ndarray]:
    """The fits' test predictions by key as they arrive, with a progress line as each classifier's seed finishes."""
    say(f"  classifiers: {len(plan)} fits ...")
    left = collections.Counter((kind, seed) for kind, _, seed in plan)
    predicted = {}
    for (kind, name, seed), result in zip(plan, running, strict=True):
        predicted[kind, name, seed] = result
        left[kind, seed] -= 1
        if not left[kind, seed]:
            say(f"  {kind:<4} seed {seed + 1} of {seeds} trained [{time.time() - started:.0f} s]")
    return predicted


def _measure(inputs: _Inputs, say) -> tuple[Fidelity, tuple[float, str] | None, Memorisation]:
    """Fidelity, the teacher alone (its test accuracy and file, if the run has one) and memorisation."""
    real, test = inputs.real, inputs.test
    say(f"  fidelity (features of a CNN trained on the {len(real.y)} labelled examples) ...")
    fidelity = _fidelity(real, inputs.full_train, *inputs.syn, test, real.info.num_classes)
    teacher = _teacher_accuracy(inputs.syn_set, test)
    if teacher is not None:
        say(f"  teacher alone (the run's fixmatch) accuracy {teacher[0]:.4f}")
    say("  memorisation ...")
    return fidelity, teacher, _memorisation(inputs)


@dataclasses.dataclass(frozen=True)
class _Scores:
    """The fits' test predictions scored by ``metric``, per (classifier, condition) over the seeds."""

    predicted: dict[tuple[str, str, int], np.ndarray]
    truth: np.ndarray
    seeds: int
    metric: str

    def values(self, kind: str, name: str, metric: str | None = None) -> np.ndarray:
        return np.array(
            [metrics.score(metric or self.metric, self.predicted[kind, name, s], self.truth) for s in range(self.seeds)]
        )

    def route(self, kind: str, name: str, **extra) -> Route:
        """A route's score with its gain over real only, paired by seed."""
        values = self.values(kind, name)
        return Route.of(values, gain=Estimate.of(values - self.values(kind, "real")), **extra)


def _utility(kind, scores: _Scores, conditions, inputs: _Inputs, teacher: tuple | None, policy, say) -> Utility:
    """One classifier's conditions, gains, baselines and policy."""
    num_classes, metric = inputs.real.info.num_classes, scores.metric
    balanced_too = metrics.is_imbalanced(inputs.real.y) and metric != "balanced_accuracy"
    results = {}
    for name in conditions:
        per_class = [
            metrics.recall_per_class(scores.predicted[kind, name, seed], scores.truth, range(num_classes))
            for seed in range(scores.seeds)
        ]
        results[name] = Condition.of(
            scores.values(kind, name),
            per_class=np.mean(per_class, axis=0).tolist(),
            balanced_accuracy=Estimate.of(scores.values(kind, name, "balanced_accuracy")) if balanced_too else None,
        )
        say(f"  {kind:<4} {name:<12} {metric} {results[name].mean:.4f} +- {results[name].std:.4f}")
    real_values = scores.values(kind, "real")
    gains = {
        gain_key(fraction): Estimate.of(scores.values(kind, name) - real_values)
        for name, fraction in conditions.items()
        if 0.0 < fraction < 1.0
    }
    baselines = {name: scores.route(kind, name) for name in inputs.baselines}
    for name, route in baselines.items():
        say(f"  {kind:<4} {name:<12} {metric} {route.mean:.4f} (no synthetic data)")
    if teacher is not None and kind == "cnn":  # a CNN itself, trained on the labelled + unlabelled images
        accuracy, path = teacher
        baselines["teacher"] = Route.of(
            [accuracy], gain=Estimate.of(accuracy - real_values), name="fixmatch", path=path
        )
    routed = None
    if policy is not None:
        routed = scores.route(kind, "policy", policy=policy.to_dict())
        say(f"  {kind:<4} {'policy':<12} {metric} {routed.mean:.4f}")
    return Utility(conditions=results, gain=gains, baselines=baselines, policy=routed)


def _memorisation(inputs: _Inputs) -> Memorisation:
    """Against the images the generator saw: with `unlabeled: auto`, the whole split; never its holdout."""
    syn_set, (syn_x, syn_y), test = inputs.syn_set, inputs.syn, inputs.test
    seen_all = syn_set.train_indices is None or _learnt_from_the_rest(syn_set)
    train_seen = (inputs.full_train if seen_all else inputs.real).without(syn_set.holdout_indices or [])
    sample = np.random.default_rng(0).choice(len(syn_y), min(len(syn_y), MAX_FIDELITY_SAMPLES), replace=False)
    threshold = metrics.default_min_distance(train_seen.x, test.x)
    return Memorisation(**metrics.memorisation(syn_x[sample], train_seen.x, test.x, copy_threshold=threshold))


def _versions() -> dict[str, str]:
    import importlib

    return {"python": platform.python_version()} | {
        module: importlib.import_module(module).__version__ for module in ("tensorflow", "keras")
    }


def _settings(inputs: _Inputs, seeds, fractions, steps, labels_per_class, label_fraction, metric) -> Settings:
    real = inputs.real
    return Settings(
        seeds=seeds,
        fractions=list(fractions),
        cnn_steps=steps,
        batch_size=BATCH_SIZE,
        labels_per_class=labels_per_class,
        label_fraction=label_fraction,
        real_train_examples=len(real.y),
        synthetic_examples=len(inputs.syn[1]),
        test_examples=len(inputs.test.y),
        class_names=list(real.info.class_names),
        real_train_imbalanced=metrics.is_imbalanced(real.y),
        metric=metric,
    )


# The feature CNN's budget, least and most steps: features, not a contest (100 labelled images: 128 epochs).
FEATURE_STEPS = (200, 1000)
_feature_models: dict[tuple, object] = {}  # the last one trained in this process, by its data


def _feature_model(train: LabelledArrays, num_classes: int):
    """The CNN recipe trained on ``train`` (seed 0), in whose features fidelity is measured: a function of
    the data alone, so a second evaluation against the same split in this process (the demo's second
    setting) reuses it."""
    from genaug.classifier import arrays_dataset, train_classifier

    key = (train.fingerprint(), train.x.shape, num_classes)
    if key not in _feature_models:
        least, most = FEATURE_STEPS
        steps = min(most, max(least, 30 * len(train.y) // 64))  # 30 epochs (batch 64), within FEATURE_STEPS
        model = train_classifier(
            arrays_dataset(train.x, train.y, seed=0), train.x.shape[1:], num_classes, seed=0, steps=steps
        )
        _feature_models.clear()
        _feature_models[key] = model
    return _feature_models[key]


def _teacher_accuracy(syn_set: SyntheticDataset, test: LabelledArrays) -> tuple[float, str] | None:
    """The test accuracy of the FixMatch teacher that labelled the generator's unlabelled images and its
    file (the run's ``teacher.keras``), or ``None`` when there is none or the run is not where it was."""
    from genaug.runs import load_saved_model
    from genaug.teacher import teacher_probabilities

    path = teacher_file(syn_set)
    if path is None:
        return None
    accuracy = float(np.mean(teacher_probabilities(load_saved_model(path), test.x).argmax(axis=1) == test.y))
    return accuracy, str(path)


def _fidelity(labelled: LabelledArrays, train: LabelledArrays, syn_x, syn_y, test, num_classes) -> Fidelity:
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
        return Distances(
            frechet_distance=metrics.frechet_distance(a, b),
            kid=metrics.kernel_distance(a, b),
            precision=precision,
            recall=recall,
            density=density,
            coverage=coverage,
        )

    per_class = {}
    for c in range(num_classes):
        a, b = labelled_f[labelled_l == c], syn_f[syn_l == c]
        if len(a) > 5 and len(b) > 5:
            per_class[str(c)] = {
                "frechet_distance": metrics.frechet_distance(a, b),
                "kid": metrics.kernel_distance(a, b, subset_size=100),
            }
    return Fidelity(
        synthetic_vs_real_train=scores(real_f, syn_f),
        real_test_vs_real_train=scores(real_f, test_f),
        per_class=per_class,
        features="penultimate layer (128) of the CNN recipe trained on the labelled real train examples",
    )
