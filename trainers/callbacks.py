"""Callbacks that turn ``fit`` into an inspectable, crash-safe run."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from genaug import atomic, storage
from genaug.grids import default_scale, image_grid, labelled_grid, save_png

CHECKPOINT = "last.keras"
STATE = "state.json"


def finite(logs: dict | None) -> bool:
    return all(math.isfinite(float(v)) for v in (logs or {}).values())


def finite_weights(model: keras.Model) -> bool:
    """Whether every weight is finite: a step's update lands after its loss is logged, so finite losses
    do not prove finite weights."""
    return all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.weights)


class Checkpoint(keras.callbacks.Callback):
    """Saves the whole model (weights, both optimizers, EMA, SeedGenerator state) after every
    epoch whose losses and weights are finite, atomically, then records the epoch in ``state.json``.

    The ``.keras`` file is renamed into place before ``state.json`` names its epoch, so a crash
    at any instant leaves a checkpoint that matches the state file or is one epoch ahead of it.
    """

    def __init__(
        self, directory: Path, every: int = 1, total_epochs: int | None = None, *, training_seconds=lambda: 0.0
    ):
        super().__init__()
        self.directory, self.every, self.total = storage.path(directory), every, total_epochs
        self.training_seconds = training_seconds  # the training time behind this checkpoint, resumes included

    def on_epoch_end(self, epoch, logs=None):
        if not finite(logs) or ((epoch + 1) % self.every and epoch + 1 != self.total):
            return
        if not finite_weights(self.model):
            return  # NonFiniteGuard stops the run; the last good checkpoint stays
        atomic.save_model(self.model, self.directory / CHECKPOINT)
        state = {"epoch": epoch + 1, "logs": dict(logs or {}), "seconds": round(self.training_seconds(), 3)}
        atomic.write_json(self.directory / STATE, state)


class EpochClock(keras.callbacks.Callback):
    """Advances the pipeline's ``epoch`` variable (:func:`trainers.pipeline.training_dataset`) at the end
    of each epoch's last execution: Keras starts the next epoch's iterator right after it, before
    ``on_epoch_end``, and that iterator reads the variable to choose its order."""

    def __init__(self, epoch: tf.Variable, steps: int):
        super().__init__()
        self.epoch, self.steps = epoch, steps

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 >= self.steps:  # a last execution may be reported past the end of a short epoch
            self.epoch.assign_add(1)


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first batch whose logged losses are NaN or infinite, or at the end of an
    epoch that left a non-finite weight, and remembers where (as ``(epoch, "batch B" or "batches A-B",
    loss name)``: with several steps per execution, Keras reports losses once per execution)."""

    def __init__(self):
        super().__init__()
        self.tripped_at: tuple[int, str, str] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.tripped_at is None and not finite_weights(self.model):
            self.tripped_at = (epoch + 1, "its last batch", "weights")
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                span, last = self.model.steps_per_execution, min(batch + 1, self.params["steps"])
                batches = f"batch {last}" if span == 1 else f"batches {batch + 2 - span}-{last}"
                self.tripped_at = (self._epoch + 1, batches, key)
                self.model.stop_training = True
                return


class SampleGrid(keras.callbacks.Callback):
    """Every ``every`` epochs (and at the end) writes ``samples/epoch_NNNN.png`` and a TensorBoard image
    from fixed latent vectors: one row per class, named, for conditional models; 10x10 otherwise.
    :meth:`write` draws one for any generator (training ends with the final generator's)."""

    def __init__(
        self, directory: Path, log_dir: Path, every: int, seed: int, total_epochs: int, class_names: tuple = ()
    ):
        super().__init__()
        self.directory, self.every, self.seed, self.total = storage.path(directory), every, seed, total_epochs
        self.class_names = tuple(class_names)
        self.writer = tf.summary.create_file_writer(str(storage.path(log_dir) / "samples"))

    def on_epoch_end(self, epoch, logs=None):
        if not finite(logs) or ((epoch + 1) % self.every and epoch + 1 != self.total):
            return
        self.write(self.model.export_generator(), epoch + 1)

    def write(self, generator, epoch: int) -> None:
        """``samples/epoch_NNNN.png`` and the TensorBoard image of ``generator`` after ``epoch`` epochs."""
        classes, scale = generator.num_classes, None
        if classes:
            rows = min(classes, 20)
            labels = np.repeat(np.arange(rows), 10)
            images, _ = generator.generate(len(labels), labels, seed=self.seed)
            scale = default_scale(images.shape[1])
            names = self.class_names[:rows] or tuple(str(c) for c in range(rows))
            grid = labelled_grid({f"epoch {epoch}": images.reshape(rows, 10, *images.shape[1:])}, names, scale)
        else:
            images, _ = generator.generate(100, seed=self.seed)
            grid = image_grid(images, cols=10, scale=default_scale(images.shape[1]))
        save_png(self.directory / f"epoch_{epoch:04d}.png", grid)
        with self.writer.as_default():
            tf.summary.image("samples", grid[None], step=epoch)
        self.writer.flush()


class HistoryLog(keras.callbacks.CSVLogger):
    """Keras's ``CSVLogger`` (``history.csv``), also on object storage: there ``file_utils.File`` is a
    ``GFile``, which has no ``closed`` attribute for ``on_train_end`` to ask (Keras 3.15)."""

    def on_train_end(self, logs=None):
        if self.csv_file is not None:
            self.csv_file.close()
            self.csv_file = None
        self.writer = None
