"""Fit orchestration: config, callbacks, checkpoints and distribution strategy around ``keras.Model.fit``."""

from trainers.config import PRESETS, TrainConfig
from trainers.train import Run, train

__all__ = ["PRESETS", "Run", "TrainConfig", "train"]
