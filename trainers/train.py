"""``train(config)``: data -> model under the strategy scope -> ``fit`` with callbacks -> run directory.

No gradient tape and no epoch loop here: the algorithm is each model's ``train_step``.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import models
from genaug import atomic
from genaug.data import LabelledArrays, load_arrays
from genaug.errors import GenaugError
from genaug.version import __version__
from models.scaling import to_model_range
from trainers import callbacks as cb
from trainers.config import TrainConfig, family, resolve
from trainers.pipeline import execution_length, steps_per_epoch, training_dataset
from trainers.runtime import make_strategy, resolve_jit, resolve_precision

MAX_ROLLBACKS = 3
# Settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {
    ("optim", "epochs"),
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
    """A finished run: its directory, resolved config, trained model and ``run.json`` contents."""

    directory: Path
    config: TrainConfig
    model: keras.Model
    info: dict

    def summary(self) -> str:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in self.info["final_metrics"].items())
        return (
            f"trained {self.config.model.kind} on {self.config.data.data} "
            f"({self.info['num_train_examples']} examples) for {self.info['epochs_completed']} epochs "
            f"in {self.info['timings']['seconds']:.0f} s: {metrics or 'no new epochs'} -> {self.directory}"
        )


def build_model(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The model ``config.model`` describes, for images of ``image_shape`` with ``num_classes`` labels."""
    m, kind = config.model, config.model.kind
    conditional = {"num_classes": num_classes} if kind in ("cvae", "cdcgan") else {}
    seed = config.run.seed
    try:
        if family(kind) == "vae":
            return models.MODELS[kind](
                image_shape,
                latent_dim=m.latent_dim,
                base_filters=m.base_filters,
                beta=m.beta,
                seed=seed,
                **conditional,
            )
        return models.MODELS[kind](
            image_shape,
            latent_dim=m.latent_dim,
            g_filters=m.g_filters,
            d_filters=m.d_filters,
            loss=m.loss,
            spectral_norm=m.spectral_norm,
            diffaugment=m.diffaugment,
            ema_decay=m.ema_decay,
            r1_gamma=m.r1_gamma,
            gp_weight=m.gp_weight,
            d_dropout=m.d_dropout,
            coverage=m.coverage,
            fakes_per_real=m.fakes_per_real,
            seed=seed,
            **conditional,
        )
    except ValueError as err:  # unsupported image shape, unknown loss or augmentation
        raise GenaugError(f"model {kind}: {err}") from None


def compile_model(model: keras.Model, config: TrainConfig, jit: bool, steps_per_execution: int = 1) -> None:
    """Compiles with the config's optimisers; ``steps_per_execution`` from :func:`execution_length`."""
    o = config.optim
    common = dict(jit_compile=jit, steps_per_execution=steps_per_execution)
    if isinstance(model, models.DCGAN):
        model.compile(
            d_optimizer=keras.optimizers.Adam(o.d_learning_rate, beta_1=o.beta_1, beta_2=o.beta_2),
            g_optimizer=keras.optimizers.Adam(o.g_learning_rate, beta_1=o.beta_1, beta_2=o.beta_2),
            **common,
        )
    else:
        model.compile(optimizer=keras.optimizers.Adam(o.learning_rate, beta_1=o.beta_1, beta_2=o.beta_2), **common)


def _optimizers(model: keras.Model):
    return [model.d_optimizer, model.g_optimizer] if isinstance(model, models.DCGAN) else [model.optimizer]


def _differences(previous: dict, current: dict) -> list[str]:
    return [
        f"{section}.{key}"
        for section, values in current.items()
        for key, value in values.items()
        if (section, key) not in RESUMABLE_CHANGES
        and json.loads(json.dumps(previous.get(section, {}).get(key))) != json.loads(json.dumps(value))
    ]


def _prepare_run_dir(out: Path, config: TrainConfig, resume: bool, overwrite: bool) -> int:
    """Creates or reuses ``out``; returns the epoch to start from."""
    config_path, state_path = out / "config.json", out / "checkpoints" / cb.STATE
    if config_path.exists() and overwrite:
        shutil.rmtree(out)
    elif config_path.exists():
        differences = _differences(json.loads(config_path.read_text()), config.to_dict())
        if differences:
            raise GenaugError(
                f"{out} holds a different run (differs in {', '.join(differences)}); "
                "pass --overwrite to replace it or choose another --out"
            )
        for name in (cb.CHECKPOINT, cb.STATE):  # left by a killed run
            atomic.remove_stale_temporaries(out / "checkpoints" / name)
        if state_path.exists():
            return json.loads(state_path.read_text())["epoch"]
    elif out.exists() and any(out.iterdir()) and not overwrite:
        raise GenaugError(f"{out} is not empty and holds no genaug run; choose another --out or pass --overwrite")
    if resume:
        raise GenaugError(f"--resume: no checkpoint in {out / 'checkpoints'}")
    try:
        for sub in ("checkpoints", "samples", "logs"):
            (out / sub).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GenaugError(f"cannot write the run directory {out}: {err.strerror}") from None
    return 0


def _load_training_data(config: TrainConfig) -> LabelledArrays:
    d = config.data
    return load_arrays(
        d.data,
        d.split,
        image_size=d.image_size,
        labels_per_class=d.labels_per_class,
        label_fraction=d.label_fraction,
        seed=config.run.seed,
    )


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
        >>> from trainers.config import PRESETS
        >>> run = train(dataclasses.replace(PRESETS["smoke"], run=RunConfig(out="runs/smoke")))
    """
    config = resolve(config)
    out = Path(config.run.out)
    arrays = _load_training_data(config)
    start_epoch = _prepare_run_dir(out, config, resume, overwrite)
    atomic.write_json(out / "config.json", config.to_dict())
    precision = resolve_precision(config.run.precision)
    jit = resolve_jit(config.run.jit)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        return _fit(config, out, arrays, start_epoch, precision, jit, extra_callbacks)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _fit(config, out, arrays, start_epoch, precision, jit, extra_callbacks) -> Run:
    strategy = make_strategy(config.run.strategy)
    checkpoint = out / "checkpoints" / cb.CHECKPOINT
    epochs, started, rollbacks = config.optim.epochs, time.time(), 0
    history: dict[str, list[float]] = {}
    with strategy.scope():
        if start_epoch:
            model = keras.models.load_model(checkpoint)
        else:
            keras.utils.set_random_seed(config.run.seed)  # weight initialisers draw from the global seed
            model = build_model(config, arrays.info.image_shape, arrays.info.num_classes)
            steps = steps_per_epoch(len(arrays.y), config.optim.batch_size)
            compile_model(model, config, jit, execution_length(steps, config.run.steps_per_execution))
    while start_epoch < epochs:
        dataset, steps = training_dataset(
            arrays.x,
            arrays.y,
            batch_size=config.optim.batch_size,
            seed=config.run.seed,
            start_epoch=start_epoch,
            epochs=epochs,
        )
        guard = cb.NonFiniteGuard()
        _trim_history(out / "history.csv", start_epoch)
        callbacks = [  # the checkpoint comes last, so a saved epoch is always logged too
            guard,
            keras.callbacks.CSVLogger(str(out / "history.csv"), append=start_epoch > 0),
            cb.SampleGrid(out / "samples", out / "logs", config.run.sample_every, config.run.seed, epochs),
            keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False),
            *extra_callbacks,
            cb.Checkpoint(out / "checkpoints", config.run.checkpoint_every, epochs),
        ]
        fitted = model.fit(
            dataset,
            epochs=epochs,
            initial_epoch=start_epoch,
            steps_per_epoch=steps,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles, per epoch and resumably
            verbose=0 if config.run.quiet else 1,
        )
        for key, values in fitted.history.items():
            history.setdefault(key, []).extend(values)
        if guard.tripped_at is None:
            # A callback may stop training early (e.g. a time budget): record what really ran.
            start_epoch = fitted.epoch[-1] + 1 if fitted.epoch else start_epoch
            break
        start_epoch, model = _roll_back(config, out, guard.tripped_at, rollbacks, strategy)
        rollbacks += 1
    if config.model.latent_prior == "fitted":
        model.fit_latent_prior(to_model_range(arrays.x), arrays.y, spread=config.model.prior_spread)
    seconds = time.time() - started
    atomic.save_model(model, out / "model.keras")
    atomic.save_model(model.export_generator(), out / "generator.keras")
    scarce = config.data.labels_per_class is not None or config.data.label_fraction is not None
    info = {
        "genaug_version": __version__,
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "seed": config.run.seed,
        "model": config.model.kind,
        "dataset": arrays.info.to_dict(),
        "dataset_fingerprint": arrays.fingerprint(),
        "num_train_examples": len(arrays.y),
        "train_indices": arrays.indices.tolist() if scarce else None,
        "precision": precision,
        "jit_compile": jit,
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "epochs_completed": start_epoch,
        "rollbacks": rollbacks,
        "timings": {"seconds": seconds, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        "final_metrics": {k: v[-1] for k, v in history.items()},
    }
    atomic.write_json(out / "run.json", info)
    return Run(directory=out, config=config, model=model, info=info)


def _trim_history(path: Path, start_epoch: int) -> None:
    """Drops ``history.csv`` rows of epochs that will be trained again (after a crash or roll-back)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) < start_epoch]
    atomic.write_bytes(path, "".join(kept).encode())


def _roll_back(config, out, tripped_at, rollbacks, strategy):
    epoch, batches, key = tripped_at
    state_path = out / "checkpoints" / cb.STATE
    where = f"non-finite {key} at epoch {epoch}, {batches}"
    if not state_path.exists():
        raise GenaugError(f"{where}, before any checkpoint; lower the learning rate")
    good = json.loads(state_path.read_text())["epoch"]
    if not config.run.nan_rollback:
        raise GenaugError(
            f"{where}; the last good checkpoint (epoch {good}) is kept in {out / 'checkpoints'}; "
            "rerun with --nan-rollback to resume from it at half the learning rate"
        )
    if rollbacks >= MAX_ROLLBACKS:
        raise GenaugError(f"{where} again after {rollbacks} roll-backs; giving up (checkpoint: epoch {good})")
    with strategy.scope():
        model = keras.models.load_model(out / "checkpoints" / cb.CHECKPOINT)
    for optimizer in _optimizers(model):
        optimizer.learning_rate = float(optimizer.learning_rate) * (0.5 ** (rollbacks + 1))
    print(f"genaug: {where}; rolled back to epoch {good} at {0.5 ** (rollbacks + 1):g}x the learning rate")
    return good, model
