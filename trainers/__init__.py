"""Fit orchestration: config, callbacks, checkpoints and distribution strategy around ``keras.Model.fit``.

Imported lazily, so that reading ``trainers.config`` (the command line does) does not start TensorFlow.
"""

import importlib

_EXPORTS = {
    "PRESETS": "trainers.config",
    "TrainConfig": "trainers.config",
    "Run": "trainers.training",
    "train": "trainers.training",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trainers' has no attribute {name!r}")
