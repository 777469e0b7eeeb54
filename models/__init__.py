"""Keras 3 generative models for labelled images; each owns its ``train_step``.

Importing this package registers every model and layer for ``.keras`` loading with ``safe_mode=True``.
"""

from models.dcgan import DCGAN, ConditionalDCGAN
from models.generator import SyntheticGenerator
from models.scaling import from_model_range, to_model_range
from models.vae import VAE, ConditionalVAE

MODELS = {"vae": VAE, "cvae": ConditionalVAE, "dcgan": DCGAN, "cdcgan": ConditionalDCGAN}

__all__ = [
    "DCGAN",
    "MODELS",
    "VAE",
    "ConditionalDCGAN",
    "ConditionalVAE",
    "SyntheticGenerator",
    "from_model_range",
    "to_model_range",
]
