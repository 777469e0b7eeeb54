"""Keras 3 generative models for labelled images; each owns its ``train_step``.

genaug runs on Keras 3 with the TensorFlow backend (it is built on ``tf.data`` and TFDS); the models
use ``keras.ops`` wherever an op exists and TensorFlow where it must (gradient tapes, distribution).

The package imports lazily, so that reading :data:`MODEL_KINDS` (the command line does) does not start
TensorFlow. Load saved models with :func:`load_model`: it registers every genaug class first.
"""

from __future__ import annotations

import importlib

# The registry: model kind -> class. `genaug train --model`, the config and the docs derive from it.
MODEL_KINDS = {"vae": "VAE", "cvae": "ConditionalVAE", "dcgan": "DCGAN", "cdcgan": "ConditionalDCGAN"}
# What each kind can do beyond generating, asked for by name (no TensorFlow needed): "conditional" (one
# generator per label), "encoder" (images -> latent codes: the attention sampler's source).
MODEL_CAPABILITIES = {"vae": {"encoder"}, "cvae": {"conditional", "encoder"}, "dcgan": set(), "cdcgan": {"conditional"}}

_EXPORTS = {
    "VAE": "models.vae",
    "ConditionalVAE": "models.vae",
    "DCGAN": "models.dcgan",
    "ConditionalDCGAN": "models.dcgan",
    "FixMatch": "models.fixmatch",
    "TeacherEnsemble": "models.fixmatch",
    "SimCLR": "models.simclr",
    "SyntheticGenerator": "models.generator",
    "ProjectionHead": "models.layers",
    "to_model_range": "models.scaling",
    "from_model_range": "models.scaling",
}

__all__ = ["MODELS", "MODEL_CAPABILITIES", "MODEL_KINDS", "load_model", *_EXPORTS]


def load_model(path):
    """Loads a genaug ``.keras`` file with ``safe_mode=True`` (no code from the file is run).

    Raises:
        ValueError: the file is not a complete ``.keras`` archive (e.g. truncated by a full disk).
    """
    import os
    import zipfile

    import keras
    import tensorflow as tf

    with tf.io.gfile.GFile(os.fspath(path), "rb") as f:  # a local path or any tf.io.gfile URI
        if not zipfile.is_zipfile(f):
            raise ValueError("not a complete .keras file (truncated or corrupt)")
    for module in sorted(set(_EXPORTS.values())):
        importlib.import_module(module)  # registers the classes for deserialisation
    return keras.models.load_model(os.fspath(path), safe_mode=True)


def __getattr__(name: str):
    if name == "MODELS":
        return {kind: __getattr__(cls) for kind, cls in MODEL_KINDS.items()}
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
