"""``tune``: choose how to use synthetic data by validation on the labelled training data alone.

The objective of a policy (:class:`genaug.policy.Policy`) is the mean accuracy of the CNN recipe over
stratified folds of the *labelled training examples*: each fold's model trains on the other folds plus
synthetic data as the policy says and is scored on the held-out real fold. Optuna's TPE sampler
searches, seeded per trial; the trials are kept in a journal file, so a rerun continues where it
stopped. The first three trials are the baselines: real only, real with classic augmentation and the
default half-synthetic mix.

Two things flatter the search's best: it is the best of many noisy scores (the winner's curse), and its
folds are images the generator learnt from, so synthetic images that echo them raise the score without
carrying anything that generalises. So the finalists (the baselines and the search's best) are scored
again. Without a holdout, on fresh folds with fresh classifier seeds, which answers the first only: the
highest is kept, ties to the simplest ("genaug never makes it worse"). With the labelled examples the
generator was kept from (``genaug train --holdout``), on those: a holdout of 20 images cannot tell two
policies apart by one or two images, so the search's choice stands unless a finalist beats it beyond the
holdout's noise (a paired bootstrap interval over the held-out images, above zero); a generator that echoes
its training images loses by more than that. The test split is read once, at the end,
to report real only, the default and the tuned policy over several seeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from genaug import atomic, metrics, storage
from genaug.data import LabelledArrays, derived_seed, load_arrays
from genaug.errors import ArgumentError
from genaug.outputs import LOCKS, STATE_DIR, Layout, check_output, claim_directory, differing_keys
from genaug.policy import (
    CLASS_WEIGHTED,
    CLASSIC_AUGMENTATION,
    DEFAULT_OVERSAMPLED,
    DEFAULT_POLICY,
    OVERSAMPLED,
    REAL_ONLY,
    TEACHER_LABELS,
    Policy,
)
from genaug.scoring import (
    Fit,
    pseudo_labelled,
    real_train,
    synthetic_arrays,
    teacher_file,
    test_predictions,
    with_pseudo_labels,
)
from genaug.synthetic import SyntheticDataset
from genaug.tuning_report import TUNING_REPORT_VERSION, Confirmation, TestRow, TuningReport
from genaug.workers import Workers, in_order

log = logging.getLogger(__name__)

RATIOS = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0)  # synthetic per real; 0 is always a candidate
AUGMENTATION = (0.0, 0.5, 1.0)
CONFIDENCES = (None, 0.5, 0.7, 0.9)  # minimum oracle confidence, searched when every set stores it
# Label mixing at the alphas their papers recommend for small images (mixup 0.2, cutmix 1.0).
LABEL_MIXING = {"none": {}, "mixup": {"mixup_alpha": 0.2}, "cutmix": {"cutmix_alpha": 1.0}}
NOISE = (0.0, 0.02, 0.05)  # Gaussian pixel noise, fraction of the pixel range
JOURNAL = "trials.journal"
TUNING_LAYOUT = Layout(
    "tuning",
    f"{STATE_DIR}/search.json",
    files=(
        r"policy\.json|trials\.csv|objective\.png|report\.json|report\.md",
        rf"{re.escape(STATE_DIR)}/(search\.json|trials\.journal|trials\.journal\.lock)",
        LOCKS,
    ),
)
CONFIRMATION_STREAM = 1  # derived_seed stream of the fresh folds
# Enqueued before the search, in this order; ties go to the earlier (simpler) one.
BASELINES = {
    "real only": REAL_ONLY,
    "classic augmentation": CLASSIC_AUGMENTATION,
    "default (50 % synthetic)": DEFAULT_POLICY,
}
# Also enqueued when the generators' runs kept a FixMatch teacher: its labels, nothing synthetic (self-training).
TEACHER_BASELINE = {"teacher's labels": TEACHER_LABELS}
# On imbalanced labels: the two usual remedies, and the default mix with the real images oversampled (the real half
# drawn class-balanced beside a `--class-balance fill` set: docs/experiments.md, 2026-12-07); both kinds of balancing
# are searched too.
IMBALANCED_BASELINE = {
    "class-weighted loss": CLASS_WEIGHTED,
    "random oversampling": OVERSAMPLED,
    "default, real oversampled": DEFAULT_OVERSAMPLED,
}


def check_tune(
    synthetic: Sequence[str | Path],
    out: str | Path,
    *,
    trials: int = 20,
    budget_s: float | None = None,
    folds: int = 3,
    seeds: int = 3,
    steps: int = 600,
    metric: str = "accuracy",
) -> None:
    """Checks :func:`tune`'s arguments, writing nothing and without TensorFlow (the CLI calls it before
    TensorFlow starts).

    Raises:
        ArgumentError: naming the first bad argument.
    """
    if not synthetic:
        raise ArgumentError("{} needs at least one synthetic dataset", "synthetic")
    for name, value, low in (("trials", trials, 1), ("folds", folds, 2), ("seeds", seeds, 0), ("steps", steps, 1)):
        if value < low:
            raise ArgumentError(f"{{}} must be at least {low}, got {value}", name)
    if metric not in metrics.METRICS:
        raise ArgumentError(f"{{}} {metric!r}: expected one of {', '.join(metrics.METRICS)}", "metric")
    if budget_s is not None and not budget_s > 0:
        raise ArgumentError(f"{{}} must be a positive number of seconds, got {budget_s}", "budget_s")
    check_output(out, TUNING_LAYOUT)


def tune(
    data: str,
    synthetic: Sequence[str | Path],
    out: str | Path,
    *,
    labels_per_class: int | None = None,
    label_fraction: float | None = None,
    seed: int = 0,
    trials: int = 20,
    budget_s: float | None = None,
    folds: int = 3,
    seeds: int = 3,
    steps: int = 600,
    image_size: tuple[int, int] | None = None,
    metric: str = "accuracy",
    overwrite: bool = False,
    workers: Workers | None = None,
    progress: bool = True,
) -> TuningReport:
    """Searches a policy for using ``synthetic`` with ``data`` and writes ``policy.json``, ``trials.csv``,
    ``objective.png``, ``report.json`` and ``report.md`` into ``out``.

    Args:
        data: the real data spec.
        synthetic: one or more synthetic dataset directories (the policy picks one).
        out: the tuning directory; rerunning into it continues the search (a different search is
            refused unless ``overwrite``).
        labels_per_class: scarce labels, as for :func:`genaug.evaluate` (by default the generator's own
            labelled subset when it had one).
        label_fraction: scarce labels as a fraction instead.
        seed: seeds the folds, the sampler and the classifiers.
        trials: policies to try in all (a rerun with more continues).
        budget_s: stop starting trials after this many seconds.
        folds: stratified folds of the labelled training data.
        seeds: classifier seeds for the final test report (0: no report; the test split is not read,
            e.g. when ``evaluate --policy`` reports instead, as the demo does).
        steps: CNN gradient steps per fit.
        image_size: resize real images (as at training).
        metric: what validation and the test report score: ``accuracy`` or ``balanced_accuracy``.
        overwrite: replace a different search in ``out``.
        workers: fit the classifiers side by side in these processes (see :func:`genaug.evaluate`'s).
        progress: log a line per trial (logger ``genaug.tuning``, INFO; the CLI shows it).

    Returns:
        The :class:`genaug.tuning_report.TuningReport` (also ``report.json``): the policy, its validation
        score and test scores.
    """
    import optuna

    say = log.info if progress else (lambda *_: None)
    check_tune(synthetic, out, trials=trials, budget_s=budget_s, folds=folds, seeds=seeds, steps=steps, metric=metric)
    choices = (labels_per_class, label_fraction, seed, folds, steps, image_size, metric)
    search = _Search.load(data, synthetic, *choices, workers)
    out, started = storage.path(out), time.time()
    with (
        _quiet(optuna),
        claim_directory(
            out, TUNING_LAYOUT, differences=lambda r: differing_keys(r, search.record), overwrite=overwrite
        ) as same,
    ):
        if not same:
            atomic.write_json(out / TUNING_LAYOUT.record, search.record)
        with _journal_file(out / STATE_DIR / JOURNAL) as (journal, sync):
            completed = _run_trials(search, journal, sync, trials, budget_s, started, say)
        best, confirmation = _confirm(search, completed, say)
        tuned = _policy(best.params)
        say(f"tune: tuned {tuned.describe()} (validation {best.value:.4f}); {seeds} test seeds")
        report = TuningReport(
            search=search.record,
            policy=tuned.to_dict(),
            validation_score=best.value,
            confirmation=confirmation,
            trials=len(completed),
            test=_test_rows(search, tuned, seeds, say),  # the test split is read here, once, after the search
            seeds=seeds,
            seconds=time.time() - started,
            report_version=TUNING_REPORT_VERSION,
        )
        report.write(out, tuned, completed)
    return report


@dataclasses.dataclass(frozen=True)
class _Checked:
    """A finalist's check: its score, and its predictions pooled over the check's fits with their truth and
    the example each is of (what the paired interval between two finalists resamples)."""

    score: float
    predicted: np.ndarray
    truth: np.ndarray
    examples: np.ndarray


@dataclasses.dataclass
class _Search:
    """A search's fixed inputs and its scores: the labelled examples (``seen`` by the generators, and the
    ``holdout`` they were kept from), the synthetic sets and their arrays (``syn``: read once per set and
    confidence threshold), per set the unlabelled images its generator's FixMatch teacher labelled
    (``pseudo``; searched as ``pseudo_labels`` when every set has them), whether the labelled examples are
    ``imbalanced`` (then ``class_balanced`` and ``real_balanced`` are searched), the folds (``fresh_splits``: the
    check's, without a holdout), ``record``, what the search depends on (``.genaug/search.json``; a rerun
    with another is refused), and the worker processes that train the classifiers, if any."""

    data: str
    sets: list[SyntheticDataset]
    full_train: LabelledArrays
    real: LabelledArrays
    seen: LabelledArrays
    holdout: LabelledArrays | None
    syn: dict[tuple[int, float | None], tuple[np.ndarray, np.ndarray]]
    confidences: tuple[float | None, ...]
    pseudo: dict[int, tuple[np.ndarray, np.ndarray]]
    imbalanced: bool
    splits: list
    fresh_splits: list | None
    seed: int
    folds: int
    steps: int
    image_size: tuple[int, int] | None
    metric: str
    record: dict
    workers: Workers | None

    @classmethod
    def load(cls, data, synthetic, labels_per_class, label_fraction, seed, folds, steps, image_size, metric, workers):
        sets = [SyntheticDataset.open(path) for path in synthetic]
        full_train = load_arrays(data, "train", image_size=image_size)
        real = real_train(full_train, sets[0], labels_per_class, label_fraction)  # every labelled example
        # The search validates on the examples the generators learnt from; the check on those they never saw.
        held = _holdout(sets)
        seen, holdout = (real, None) if held is None else (real.without(held), full_train.subset(held))
        syn = {(i, None): synthetic_arrays(s, full_train, data) for i, s in enumerate(sets)}
        confidences = CONFIDENCES if all(s.has_confidence for s in sets) else (None,)
        pseudo = {}
        if all(teacher_file(s) is not None for s in sets):
            pseudo = {i: pseudo_labelled(s) for i, s in enumerate(sets)}
        imbalanced = metrics.is_imbalanced(real.y)
        splits = _stratified_folds(seen.y, folds, seed)
        fresh_splits = None
        if holdout is None:  # the check's folds, drawn apart from the search's
            fresh_splits = _stratified_folds(seen.y, folds, derived_seed(seed, CONFIRMATION_STREAM))
        record = {
            "data": data,
            "synthetic": [str(storage.path(p)) for p in synthetic],
            "labels_per_class": labels_per_class,
            "label_fraction": label_fraction,
            "real_train_examples": len(real.y),
            "holdout_examples": 0 if holdout is None else len(holdout.y),
            "seed": seed,
            "folds": folds,
            "steps": steps,
            "image_size": list(image_size) if image_size else None,
            "min_confidence_choices": list(confidences),
            "label_mixing_choices": LABEL_MIXING,
            "noise_choices": list(NOISE),
            **({"pseudo_labels_choices": [False, True]} if pseudo else {}),  # searches before it: none
            **({"class_balanced_choices": [False, True]} if imbalanced else {}),  # searches before it: none
            **({"real_balanced_choices": [False, True]} if imbalanced else {}),  # searches before it: none
            **({"metric": metric} if metric != "accuracy" else {}),  # searches from before the option: accuracy
        }
        return cls(data, sets, full_train, real, seen, holdout, syn, confidences, pseudo, imbalanced, splits,
                   fresh_splits, seed, folds, steps, image_size, metric, record, workers)  # fmt: skip

    def predictions(self, policy: Policy, fits: Sequence[tuple[LabelledArrays, LabelledArrays, int]]) -> list:
        """The CNN trained on each ``(train, held_out, classifier_seed)`` plus synthetic data as ``policy``
        says: its predictions of ``held_out``, per fit; the fits run side by side when there are workers."""
        key = (policy.synthetic_set, policy.min_confidence)
        if key not in self.syn:  # a confidence threshold filters the set as it is read, once per threshold
            self.syn[key] = synthetic_arrays(self.sets[key[0]], self.full_train, self.data, key[1])
        pseudo = self.pseudo.get(policy.synthetic_set)
        planned = [
            Fit("cnn", with_pseudo_labels((train.x, train.y), pseudo, policy), self.syn[key], None, seed, held_out,
                self.steps, policy=policy)
            for train, held_out, seed in fits
        ]  # fmt: skip
        return list(in_order(test_predictions, planned, self.workers))

    def scores(self, policy: Policy, fits: Sequence[tuple[LabelledArrays, LabelledArrays, int]]) -> list[float]:
        """The score of each of :meth:`predictions`."""
        return self._scored(self.predictions(policy, fits), fits)

    def _scored(self, predicted: list, fits: Sequence[tuple[LabelledArrays, LabelledArrays, int]]) -> list[float]:
        return [metrics.score(self.metric, p, held_out.y) for p, (_, held_out, _) in zip(predicted, fits, strict=True)]

    def validation(self, policy: Policy) -> float:
        """The mean score over the search's folds."""
        return float(np.mean(self.scores(policy, self._fold_fits(self.splits, self.seed))))

    def _fold_fits(self, splits, first_seed: int) -> list:
        """``(train, held_out, classifier_seed)`` per fold of the seen examples, seeds from ``first_seed``."""
        return [(self.seen.subset(t), self.seen.subset(h), first_seed + k) for k, (t, h) in enumerate(splits)]

    def check(self, policy: Policy) -> _Checked:
        """What decides between the finalists: the CNN scored on the holdout, with ``folds`` fresh classifier
        seeds; without one, over fresh folds with fresh seeds."""
        if self.holdout is None:
            fits = self._fold_fits(self.fresh_splits, self.seed + self.folds)
        else:
            fits = [(self.seen, self.holdout, s) for s in range(self.seed + self.folds, self.seed + 2 * self.folds)]
        predicted = self.predictions(policy, fits)
        held_out = [h for _, h, _ in fits]
        truth, examples = np.concatenate([h.y for h in held_out]), np.concatenate([h.indices for h in held_out])
        return _Checked(float(np.mean(self._scored(predicted, fits))), np.concatenate(predicted), truth, examples)

    def objective(self, trial) -> float:
        params = {
            "synthetic_ratio": trial.suggest_categorical("synthetic_ratio", RATIOS),
            "synthetic_weight": trial.suggest_float("synthetic_weight", 0.25, 1.0),
            "augmentation": trial.suggest_categorical("augmentation", AUGMENTATION),
            "synthetic_set": trial.suggest_int("synthetic_set", 0, len(self.sets) - 1),
            "label_mixing": trial.suggest_categorical("label_mixing", tuple(LABEL_MIXING)),
            "noise": trial.suggest_categorical("noise", NOISE),
        }
        if len(self.confidences) > 1:
            params["min_confidence"] = trial.suggest_categorical("min_confidence", self.confidences)
        if self.pseudo:
            params["pseudo_labels"] = trial.suggest_categorical("pseudo_labels", (False, True))
        if self.imbalanced:
            params["class_balanced"] = trial.suggest_categorical("class_balanced", (False, True))
            params["real_balanced"] = trial.suggest_categorical("real_balanced", (False, True))
        return self.validation(_policy(params))

    @property
    def baselines(self) -> dict[str, dict]:
        """The baselines as trial parameters, by name."""
        baselines = (
            BASELINES | (TEACHER_BASELINE if self.pseudo else {}) | (IMBALANCED_BASELINE if self.imbalanced else {})
        )
        searched = len(self.confidences) > 1, bool(self.pseudo), self.imbalanced
        return {name: _params(policy, *searched) for name, policy in baselines.items()}


@contextlib.contextmanager
def _journal_file(path):
    """Optuna's journal as a local file it can lock, and a function that stores it at ``path``. On object
    storage the journal is a local copy of ``path``, stored there after every trial, so a rerun resumes."""
    if not storage.is_remote(path):
        yield path, lambda: None
        return
    with tempfile.TemporaryDirectory(prefix="genaug-tune-") as scratch:
        local = Path(scratch) / path.name
        if path.is_file():
            local.write_bytes(path.read_bytes())
        yield local, lambda: atomic.write_bytes(path, local.read_bytes())


def _run_trials(search: _Search, journal_path: Path, sync, trials: int, budget_s, started: float, say) -> list:
    """The completed trials after continuing the journal's study up to ``trials`` (or the budget); the
    baselines are enqueued first; ``sync()`` after every trial stores the journal."""
    import optuna

    journal = optuna.storages.journal.JournalFileBackend(str(journal_path))
    study = optuna.create_study(
        study_name="genaug-tune", storage=optuna.storages.JournalStorage(journal), direction="maximize",
        load_if_exists=True,
    )  # fmt: skip
    states = optuna.trial.TrialState
    completed = [t for t in study.trials if t.state == states.COMPLETE]
    queued = [t.params or t.system_attrs.get("fixed_params") for t in study.trials if t.state == states.WAITING]
    for params in search.baselines.values():
        if not any(t.params == params for t in completed) and params not in queued:
            study.enqueue_trial(params)
    say(
        f"tune: {len(search.seen.y)} labelled examples in {search.folds} folds"
        + (f", {len(search.holdout.y)} held out from the generator" if search.holdout is not None else "")
        + f"; {len(search.sets)} synthetic sets; {len(completed)} trials"
    )
    while len(completed) < trials and (not completed or budget_s is None or time.time() - started < budget_s):
        # A sampler seeded per trial: a resumed search suggests what an uninterrupted one would have.
        study.sampler = optuna.samplers.TPESampler(seed=search.seed + len(completed))
        trial = study.ask()
        try:
            value = search.objective(trial)
        except BaseException:
            study.tell(trial, state=states.FAIL)  # not left "running" in the journal
            sync()
            raise
        study.tell(trial, value)
        sync()
        completed.append(study.trials[trial.number])
        say(
            f"  trial {len(completed) - 1:3d}  validation {value:.4f}  best {max(t.value for t in completed):.4f}  "
            f"{_policy(trial.params).describe()}  [{time.time() - started:.0f} s]"
        )
    return completed


def _confirm(search: _Search, completed: list, say) -> tuple:
    """The trial to keep and the record of the check that chose it (``None`` when the search's best is a
    baseline and there is no holdout): the finalists scored again. On fresh folds (the winner's curse) the
    highest is kept, ties to the simplest; on the holdout the search's choice stands unless a finalist beats
    it beyond the holdout's noise (the paired 95 % interval of the difference above zero)."""
    best = _best(completed)
    finalists = {name: _best([t for t in completed if t.params == params]) for name, params in search.baselines.items()}
    finalists = {name: t for name, t in finalists.items() if t is not None}
    searched_best = best.number not in {t.number for t in finalists.values()}
    if not searched_best and search.holdout is None:  # see the module docstring
        return best, None
    if searched_best:
        finalists["search"] = best
    choice = next(name for name, t in finalists.items() if t.number == best.number)
    checked = {name: search.check(_policy(t.params)) for name, t in finalists.items()}
    scores = {name: c.score for name, c in checked.items()}
    intervals = {
        name: metrics.paired_interval(search.metric, c.truth, checked[choice].predicted, c.predicted, c.examples,
                                      search.seed)
        for name, c in checked.items() if name != choice
    }  # fmt: skip
    if search.holdout is None:
        kept = max(scores, key=scores.get)  # ties: the first, the simplest
    else:
        kept = max((name for name, (low, _) in intervals.items() if low > 0), key=scores.get, default=choice)
    confirmation = Confirmation(
        on="fresh folds" if search.holdout is None else "holdout",
        examples=len(search.seen.y) if search.holdout is None else len(search.holdout.y),
        scores=scores,
        policies={name: _policy(t.params).to_dict() for name, t in finalists.items()},
        kept=kept,
        choice=choice,
        intervals=intervals,
    )
    say(f"tune: on the {confirmation.on}: {confirmation.describe_scores()}; keeping {kept}")
    return finalists[kept], confirmation


def _test_rows(search: _Search, tuned: Policy, seeds: int, say) -> dict[str, TestRow]:
    """Real only, the default and the tuned policy on the test split over ``seeds`` classifier seeds."""
    if not seeds:
        return {}
    test = load_arrays(search.data, "test", image_size=search.image_size)
    compared = {name: BASELINES[name] for name in ("real only", "default (50 % synthetic)")} | {"tuned": tuned}
    rows = {}
    for name, policy in compared.items():
        values = search.scores(policy, [(search.real, test, s) for s in range(seeds)])
        rows[name] = TestRow.of(values, policy=policy.to_dict())
        say(f"  {name:<26} test {search.metric} {rows[name].mean:.4f}")
    return rows


@contextlib.contextmanager
def _quiet(optuna):
    """Optuna's INFO lines off while tuning (tune prints its own line per trial), restored after."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def _params(policy: Policy, confidence_searched: bool, pseudo_searched: bool, balance_searched: bool) -> dict:
    """The policy as a trial's parameters (``min_confidence``, ``pseudo_labels``, ``class_balanced`` and
    ``real_balanced`` only where the search has that dimension; mixup and cutmix as one ``label_mixing`` choice)."""
    params = policy.to_dict()
    del params["version"]
    if not confidence_searched:
        del params["min_confidence"]
    if not pseudo_searched:
        del params["pseudo_labels"]
    if not balance_searched:
        del params["class_balanced"], params["real_balanced"]
    mixing = {k: v for k in ("mixup_alpha", "cutmix_alpha") if (v := params.pop(k))}
    params["label_mixing"] = next(name for name, choice in LABEL_MIXING.items() if choice == mixing)
    return params


def _policy(params: dict) -> Policy:
    params = dict(params)
    mixing = LABEL_MIXING[params.pop("label_mixing")]
    return Policy(**params, **mixing)


def _best(trials):
    """The trial with the highest score (ties: the earliest, the simplest), ``None`` if there is none."""
    return max(trials, key=lambda t: (t.value, -t.number), default=None)


def _holdout(sets: Sequence[SyntheticDataset]) -> np.ndarray | None:
    """The labelled examples every set's generator was kept from (``genaug train --holdout``), as positions
    in the training split; ``None`` if there are none."""
    held = {tuple(s.holdout_indices or ()) for s in sets}
    if len(held) > 1:
        raise ArgumentError("{} sets come from generators with different holdouts: tune one at a time", "synthetic")
    positions = held.pop()
    return np.asarray(positions, np.int64) if positions else None


def _stratified_folds(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(labels).min())
    if smallest < folds:
        raise ArgumentError(f"{{}} {folds} is more than the {smallest} labelled examples of the rarest class", "folds")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))
