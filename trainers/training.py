"""``train(config)``: data -> model under the strategy scope -> ``fit`` with callbacks -> run directory.

No gradient tape and no epoch loop here: the algorithm is each model's ``train_step``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import itertools
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from genaug import atomic, storage
from genaug.data import (
    LabelledArrays,
    UnlabeledImages,
    holdout_subset,
    labelled_subset,
    load_arrays,
    load_unlabeled,
    resolved_spec,
    unlabeled_rest,
)
from genaug.errors import ArgumentError, GenaugError
from genaug.outputs import claim_directory
from genaug.runs import RUN_LAYOUT, RunDirectory, RunRecord, load_saved_model
from genaug.startup import keras_verbosity
from genaug.teacher import Teaching, teach, with_confident
from genaug.version import __version__
from models.base import adam
from models.scaling import to_model_range
from trainers import callbacks as cb
from trainers.config import TrainConfig, budget, checkpoint_interval, is_conditional, model_class, resolve
from trainers.pipeline import steps_per_epoch, training_dataset
from trainers.runtime import (
    FAILED,
    chief_value,
    execution_cap,
    is_chief,
    make_strategy,
    resolve_jit,
    resolve_precision,
)

log = logging.getLogger("genaug.training")  # under "genaug", which the CLI shows
MAX_ROLLBACKS = 3
# Settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {
    ("optim", "epochs"),
    ("optim", "max_steps"),
    ("run", "checkpoint_every"),
    ("run", "out"),
    ("run", "quiet"),
    ("run", "nan_rollback"),
    ("run", "sample_every"),
    ("run", "strategy"),
    ("run", "precision"),
    ("run", "jit"),
}


@dataclasses.dataclass
class Run:
    """A finished run: its directory, resolved config, trained model and ``run.json`` record."""

    directory: Path
    config: TrainConfig
    model: keras.Model
    record: RunRecord

    def summary(self) -> str:
        r = self.record
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in r.final_metrics.items())
        unlabeled = f" + {r.unlabeled['pseudo_labelled']} pseudo-labelled" if r.unlabeled else ""
        return (
            f"trained {self.config.model.kind} on {self.config.data.data} ({r.num_train_examples} examples"
            f"{unlabeled}) "
            f"for {r.epochs_completed} epoch{'' if r.epochs_completed == 1 else 's'} in {r.timings['seconds']:.0f} s: "
            f"{metrics or 'no new epochs'} "
            f"-> {self.directory}"
        )


def build_model(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The model a resolved ``config.model`` describes, for images of ``image_shape`` with ``num_classes``."""
    cls = model_class(config.model.kind)
    conditional = {"num_classes": num_classes} if is_conditional(cls) else {}
    try:
        return cls(image_shape, seed=config.run.seed, **conditional, **config.model.params)
    except ValueError as err:  # unsupported image shape, unknown loss or augmentation
        raise GenaugError(f"model {config.model.kind}: {err}") from None


def compile_model(model: keras.Model, config: TrainConfig, jit: bool, steps_per_execution: int = 1) -> None:
    """Compiles with the resolved config's optimisers and ``steps_per_execution`` steps per call."""
    settings = dataclasses.asdict(config.optim)
    optimizers = {name: adam(settings, rate) for name, rate in model.OPTIMIZERS.items()}
    model.compile(**optimizers, jit_compile=jit, steps_per_execution=steps_per_execution)


def _differences(config_path: Path, current: dict) -> list[str]:
    """The settings in which the run recorded at ``config_path`` differs from ``current``, apart from
    those a resumed run may change."""
    previous = json.loads(config_path.read_text())
    return [
        section if key is None else f"{section}.{key}"
        for section, values in current.items()
        for key, value in (values.items() if isinstance(values, dict) else [(None, values)])
        if (section, key) not in RESUMABLE_CHANGES
        and _json(previous.get(section) if key is None else previous.get(section, {}).get(key)) != _json(value)
    ]


def _json(value):
    return json.loads(json.dumps(value))


def _start_epoch(run: RunDirectory, config: TrainConfig, resuming: bool, resume: bool) -> int:
    """The epoch to start from: the last checkpoint's when the directory holds this run, else 0."""
    checkpoints = run / RunDirectory.CHECKPOINTS
    if resuming:
        for name in (cb.CHECKPOINT, cb.STATE):  # left by a killed run
            atomic.remove_stale_temporaries(checkpoints / name)
        if (checkpoints / cb.STATE).exists():
            done = json.loads((checkpoints / cb.STATE).read_text())["epoch"]
            if config.optim.epochs is not None and done > config.optim.epochs:
                raise ArgumentError(
                    f"{run.path} has trained {done} epochs already; {{}} {config.optim.epochs} would undo them "
                    "(ask for at least as many, or choose another {})",
                    "epochs",
                    "out",
                )
            return done
    if resume:
        raise ArgumentError(f"{{}}: no checkpoint in {checkpoints}", "resume")
    for sub in (RunDirectory.CHECKPOINTS, RunDirectory.SAMPLES, RunDirectory.LOGS):
        (run / sub).mkdir(parents=True, exist_ok=True)
    return 0


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What a run learns from: the ``labelled`` examples, the ``unlabeled`` images with the teacher's
    ``teaching`` (labels and confidences), and ``x``/``y``, the labelled examples plus the confidently
    pseudo-labelled images, which the generator trains on."""

    labelled: LabelledArrays
    unlabeled: UnlabeledImages | None
    teaching: Teaching | None
    x: np.ndarray
    y: np.ndarray
    holdout: np.ndarray | None = None  # positions in the split of the labelled examples kept out
    heldout: LabelledArrays | None = None  # those examples


def _load_training_data(config: TrainConfig) -> TrainingData:
    """The labelled examples, the unlabelled images and the held-out examples; :func:`_taught` adds the
    teacher's labels."""
    d = config.data
    full = load_arrays(d.data, d.split, image_size=d.image_size)  # loaded once, labelled and unlabelled alike
    labelled = full
    if d.labels_per_class is not None or d.label_fraction is not None:
        chosen = labelled_subset(
            full.y, labels_per_class=d.labels_per_class, label_fraction=d.label_fraction, seed=config.run.seed
        )
        labelled = full.subset(chosen)
    if d.unlabeled == "none":
        unlabeled = None
    elif d.unlabeled == "auto":
        unlabeled = unlabeled_rest(full, labelled)  # before the holdout leaves: it is not unlabelled either
    else:
        unlabeled = load_unlabeled(d.unlabeled, labelled, image_size=d.image_size)
    holdout, heldout = None, None
    if d.holdout:
        positions = holdout_subset(labelled.y, d.holdout, seed=config.run.seed)
        holdout, heldout = labelled.indices[positions], labelled.subset(positions)
        labelled = labelled.without(holdout)
    return TrainingData(labelled, unlabeled, None, labelled.x, labelled.y, holdout, heldout)


def _taught(config: TrainConfig, run: RunDirectory, data: TrainingData, start_epoch: int) -> TrainingData:
    """``data`` with the teacher's labels: those the run wrote before it was interrupted, or new ones
    (written at once, with the FixMatch teacher, so that a resumed run need not teach again)."""
    if data.unlabeled is None:
        return data
    d = config.data
    if start_epoch and (run / RunDirectory.PSEUDO_LABELS).is_file():
        teaching = Teaching.from_record(*run.read_pseudo_labels())
    else:
        teaching = teach(
            data.labelled,
            data.unlabeled,
            teacher=d.teacher,
            heldout=data.heldout,
            steps=d.teacher_steps,
            flip=d.teacher_flip,
            precision=resolve_precision(config.run.precision),
            seed=config.run.seed,
            members=d.teacher_members,
            pretrain_steps=d.teacher_pretrain_steps,
        )
        run.write_pseudo_labels(teaching.labels, teaching.confidence, teaching.record())
        if teaching.model is not None:
            atomic.save_model(teaching.model, run / RunDirectory.TEACHER)
    x, y = with_confident(
        data.labelled, data.unlabeled.x, teaching.labels, teaching.confidence, d.pseudo_label_confidence
    )
    return dataclasses.replace(data, teaching=teaching, x=x, y=y)


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> Run:
    """Trains the model ``config`` describes and writes its run directory.

    Re-running into the same ``config.run.out`` with the same settings continues from the last
    checkpoint (``resume=True`` insists that one exists); a directory holding a different run is
    refused unless ``overwrite``.

    Args:
        config: the training config (``None`` fields are filled with per-model defaults).
        resume: require and continue from an existing checkpoint.
        overwrite: replace whatever run ``config.run.out`` holds.
        extra_callbacks: more Keras callbacks for ``fit``.

    Returns:
        The finished :class:`Run`.

    Raises:
        GenaugError: bad data or settings, an unusable output directory, or a non-finite loss
            (without ``config.run.nan_rollback``, or after too many roll-backs).

    Example:
        >>> from trainers.config import PRESETS, from_dict
        >>> run = train(from_dict({"model": {"kind": "cdcgan"}, "run": {"out": "runs/gan"}}, PRESETS["smoke"]))
    """
    config = resolve(config)
    strategy = make_strategy(config.run.strategy)  # first: a cluster's collective ops precede any TF op
    data = _load_training_data(config)
    # Bad settings fail here, before anything is written.
    build_model(config, data.labelled.info.image_shape, data.labelled.info.num_classes)
    # (the pseudo-labelled images count too, once the teacher has labelled them: at most all of them)
    steps_per_epoch(len(data.y) + (0 if data.unlabeled is None else len(data.unlabeled.x)), config.optim.batch_size)
    with _output(config, strategy, overwrite=overwrite, resume=resume) as (run, start_epoch):
        data = _taught(config, run, data, start_epoch)
        config = budget(config, steps_per_epoch(len(data.y), config.optim.batch_size))
        run.write_config(config.to_dict())  # with the epochs the budget decided
        precision = resolve_precision(config.run.precision)
        jit = resolve_jit(config.run.jit)
        previous_policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(precision)
        try:
            return _fit(config, strategy, run, data, start_epoch, precision, jit, extra_callbacks)
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)


@contextlib.contextmanager
def _output(config: TrainConfig, strategy, *, overwrite: bool, resume: bool) -> Iterator[tuple[RunDirectory, int]]:
    """Yields the directory this process writes and the epoch to start from.

    The chief (the only process, unless training on a cluster) claims ``config.run.out`` for the whole
    run and decides the start epoch; other workers are told it, read the chief's checkpoint, and write
    to a temporary directory that is deleted afterwards (the Keras convention for multi-worker runs).
    """
    if not is_chief(strategy):
        start_epoch = chief_value(strategy, FAILED)
        if start_epoch == FAILED:
            raise GenaugError(f"the chief worker could not start the run in {config.run.out} (see its error)")
        scratch = Path(tempfile.mkdtemp(prefix="genaug-worker-"))
        try:
            for sub in (RunDirectory.CHECKPOINTS, RunDirectory.SAMPLES, RunDirectory.LOGS):
                (scratch / sub).mkdir()
            yield RunDirectory(scratch), start_epoch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    run, wanted = RunDirectory(config.run.out), config.to_dict()
    with contextlib.ExitStack() as claimed:
        try:
            same = claimed.enter_context(
                claim_directory(
                    run.path, RUN_LAYOUT, differences=lambda path: _differences(path, wanted), overwrite=overwrite
                )
            )
            start_epoch = _start_epoch(run, config, same, resume)
            run.write_config(wanted)
        except BaseException:
            chief_value(strategy, FAILED)  # so the other workers stop too, rather than wait
            raise
        chief_value(strategy, start_epoch)
        yield run, start_epoch


def _fit(config, strategy, run: RunDirectory, data: TrainingData, start_epoch, precision, jit, extra_callbacks) -> Run:
    arrays = data.labelled
    out = run.path
    checkpoints = storage.path(config.run.out) / RunDirectory.CHECKPOINTS  # the chief's: every worker resumes from it
    epochs, started, rollbacks = config.optim.epochs, time.time(), 0
    training_seconds = _TrainingClock(checkpoints)
    training_seconds.resume(start_epoch)
    epoch = tf.Variable(start_epoch, dtype=tf.int64, trainable=False)  # read by the pipeline; not a weight
    dataset, steps = training_dataset(
        data.x, data.y, batch_size=config.optim.batch_size, seed=config.run.seed, epoch=epoch,
        class_balance=config.data.class_balance,
    )  # fmt: skip
    execution = min(steps, execution_cap(strategy, config.run.steps_per_execution))
    interval = checkpoint_interval(config.run.checkpoint_every, steps)
    with strategy.scope():
        if start_epoch:
            model = load_saved_model(checkpoints / cb.CHECKPOINT)
            model.steps_per_execution = execution  # the strategy may differ from the interrupted run's
        else:
            keras.utils.set_random_seed(config.run.seed)  # weight initialisers draw from the global seed
            model = build_model(config, arrays.info.image_shape, arrays.info.num_classes)
            compile_model(model, config, jit, execution)
        _global_batch_statistics(model, strategy)
    while start_epoch < epochs:
        epoch.assign(start_epoch)
        training_seconds.resume(start_epoch)
        guard = cb.NonFiniteGuard()
        _trim_history(out / RunDirectory.HISTORY, start_epoch)
        callbacks = [  # the checkpoint comes last, so a saved epoch is always logged too
            cb.EpochClock(epoch, steps),
            guard,
            cb.HistoryLog(str(out / RunDirectory.HISTORY), append=start_epoch > 0),
            sample_grid(config, out, epochs, arrays.info.class_names),
            keras.callbacks.TensorBoard(str(out / RunDirectory.LOGS), write_graph=False),
            *extra_callbacks,
            cb.Checkpoint(out / RunDirectory.CHECKPOINTS, interval, epochs, training_seconds=training_seconds),
        ]
        try:
            fitted = model.fit(
                dataset,
                epochs=epochs,
                initial_epoch=start_epoch,
                steps_per_epoch=steps,
                callbacks=callbacks,
                shuffle=False,  # the pipeline shuffles, per epoch and resumably
                verbose=keras_verbosity(config.run.quiet),
            )
        except BaseException:
            _forget_unsaved_epochs(out)
            raise
        if guard.tripped_at is None:
            # A callback may stop training early (e.g. a time budget): record what really ran.
            start_epoch = fitted.epoch[-1] + 1 if fitted.epoch else start_epoch
            break
        start_epoch, model = _roll_back(config, guard.tripped_at, rollbacks, strategy)
        rollbacks += 1
    # Every session's fitting that led to this model, as its last checkpoint records it (so a rerun with
    # no new epochs reports the same); the clock where training stopped without one.
    fitting_seconds = training_seconds.recorded(start_epoch) or training_seconds()
    model.finish_training(to_model_range(data.x), data.y)
    # Every run ends with its final generator's grid, whatever sample_every (a resumed run with no new
    # epochs too, and after the fitted prior, which changes what the generator makes).
    sample_grid(config, out, epochs, arrays.info.class_names).write(model.export_generator(), start_epoch)
    timings = {
        "seconds": fitting_seconds,
        "this_session_seconds": time.time() - started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic.save_model(model, out / RunDirectory.MODEL)
    atomic.save_model(model.export_generator(), out / RunDirectory.GENERATOR)
    d = config.data  # the labelled examples are recorded when they are not the whole split
    subset = d.labels_per_class is not None or d.label_fraction is not None or data.holdout is not None
    record = RunRecord(
        genaug_version=__version__,
        versions={
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        seed=config.run.seed,
        model=config.model.kind,
        dataset=arrays.info,
        dataset_fingerprint=arrays.fingerprint(),
        num_train_examples=len(arrays.y),
        train_indices=arrays.indices.tolist() if subset else None,
        holdout_indices=None if data.holdout is None else data.holdout.tolist(),
        precision=precision,
        jit_compile=jit,
        strategy=type(strategy).__name__,
        replicas=strategy.num_replicas_in_sync,
        epochs_completed=start_epoch,
        checkpoint_interval=interval,
        rollbacks=rollbacks,
        timings=timings,
        final_metrics=_last_epoch_metrics(out / RunDirectory.HISTORY),
        data_source=resolved_spec(config.data.data),
        **_unlabeled_record(run, data),
    )
    run.write_record(record)
    return Run(directory=storage.path(config.run.out), config=config, model=model, record=record)


def _global_batch_statistics(model: keras.Model, strategy) -> None:
    """With several replicas, batch normalisation uses the statistics of the global batch, as one process
    would: results do not depend on how many replicas share a batch, and every replica's moving averages,
    so every worker's weights, stay identical (each replica's own half-batch statistics would differ)."""
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = strategy.num_replicas_in_sync > 1


def _unlabeled_record(run: RunDirectory, data: TrainingData) -> dict:
    """run.json's account of the unlabelled images (their pseudo-labels are in ``pseudo_labels.npz``)."""
    if data.unlabeled is None:
        return {}
    teaching = data.teaching
    u = data.unlabeled
    return {
        "unlabeled_indices": None if u.indices is None else u.indices.tolist(),
        "unlabeled": {
            "source": u.source,
            "fingerprint": u.fingerprint(),
            "count": len(u.x),
            "pseudo_labelled": len(data.y) - len(data.labelled.y),
            "teacher": teaching.record(),
        },
    }


class _TrainingClock:
    """Seconds of fitting behind the model: those recorded with the checkpoint a session resumed from
    (0 for a fresh start or an older checkpoint without it), plus this session's since then."""

    def __init__(self, checkpoints: Path):
        self.checkpoints, self.earlier, self.since = checkpoints, 0.0, time.time()

    def resume(self, epoch: int) -> None:
        self.earlier, self.since = self.recorded(epoch) or 0.0, time.time()

    def recorded(self, epoch: int) -> float | None:
        """The seconds ``state.json`` records with the checkpoint of ``epoch``, if that is its epoch."""
        state = self.checkpoints / cb.STATE
        if not epoch or not state.exists():
            return None
        recorded = json.loads(state.read_text())
        return float(recorded["seconds"]) if recorded.get("epoch") == epoch and "seconds" in recorded else None

    def __call__(self) -> float:
        return self.earlier + time.time() - self.since


def _last_epoch_metrics(path: Path) -> dict[str, float]:
    """The last epoch's row of ``history.csv`` (every session's epochs are there, a resumed run's too)."""
    if not path.exists():
        return {}
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return {k: float(v) for k, v in rows[-1].items() if k != "epoch" and v not in ("", "NA")} if rows else {}


def sample_grid(config: TrainConfig, out: Path, epochs: int, class_names) -> cb.SampleGrid:
    """The run's sample sheets: every ``run.sample_every`` epochs, at the end, and on demand."""
    samples, logs = out / RunDirectory.SAMPLES, out / RunDirectory.LOGS
    return cb.SampleGrid(samples, logs, config.run.sample_every, config.run.seed, epochs, class_names)


def _trim_history(path: Path, start_epoch: int) -> None:
    """Drops ``history.csv`` rows of epochs that will be trained again (after a crash or roll-back). Rows
    come in epoch order, so the file is cut where the first such row starts: in place, which works on a
    full disk too."""
    if not path.exists():
        return
    lines = path.read_bytes().splitlines(keepends=True)
    kept = lines[:1] + list(itertools.takewhile(lambda line: int(line.split(b",", 1)[0]) < start_epoch, lines[1:]))
    if storage.is_remote(path):  # objects are replaced whole
        atomic.write_bytes(path, b"".join(kept))
    else:
        os.truncate(path, sum(map(len, kept)))


def _forget_unsaved_epochs(out: Path) -> None:
    """After a failed fit (a full disk, an interrupt): the history rows and sample grids of epochs no
    checkpoint holds go, so the run records nothing its checkpoint cannot resume from."""
    state = out / RunDirectory.CHECKPOINTS / cb.STATE
    saved = json.loads(state.read_text())["epoch"] if state.is_file() else 0
    with contextlib.suppress(OSError, ValueError):
        _trim_history(out / RunDirectory.HISTORY, saved)
        for grid in (out / RunDirectory.SAMPLES).glob("epoch_*.png"):
            if int(grid.stem.removeprefix("epoch_")) > saved:
                grid.unlink()


def _roll_back(config, tripped_at, rollbacks, strategy):
    epoch, batches, key = tripped_at
    checkpoints = storage.path(config.run.out) / RunDirectory.CHECKPOINTS
    state_path = checkpoints / cb.STATE
    where = f"non-finite {key} at epoch {epoch}, {batches}"
    if not state_path.exists():
        raise GenaugError(f"{where}, before any checkpoint; lower the learning rate")
    good = json.loads(state_path.read_text())["epoch"]
    if not config.run.nan_rollback:
        raise GenaugError(
            f"{where}; the last good checkpoint (epoch {good}) is kept in {checkpoints}; "
            "rerun with --nan-rollback to resume from it at half the learning rate"
        )
    if rollbacks >= MAX_ROLLBACKS:
        raise GenaugError(f"{where} again after {rollbacks} roll-backs; giving up (checkpoint: epoch {good})")
    with strategy.scope():
        model = load_saved_model(checkpoints / cb.CHECKPOINT)
    for optimizer in model.training_optimizers:
        optimizer.learning_rate = float(optimizer.learning_rate) * (0.5 ** (rollbacks + 1))
    log.warning(f"{where}; rolled back to epoch {good} at {0.5 ** (rollbacks + 1):g}x the learning rate")
    return good, model
