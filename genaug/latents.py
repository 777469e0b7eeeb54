"""Attention-weighted latent interpolation (``genaug sample --latent attention``): new codes for a VAE's
decoder made from the codes of real training images, instead of draws from the fitted prior.

Each sample picks an anchor training image of its class, takes the codes of the anchor's ``k`` nearest
same-class neighbours (the anchor included) and decodes their softmax-attention-weighted mean. The
attention scores are the neighbours' negative squared distances to the anchor (in units of the class's
mean squared neighbour distance) plus Gumbel noise, divided by ``temperature``: each sample gets its own
random convex combination, leaning towards the closest codes; a low temperature approaches a copy of one
code, a high one the neighbourhood's mean. ``extrapolation`` > 0 moves past the mean, away from the
anchor (DeVries & Taylor 2017, "Dataset augmentation in feature space").
"""

from __future__ import annotations

import dataclasses

import numpy as np

from genaug.errors import ArgumentError


@dataclasses.dataclass(frozen=True)
class AttentionSettings:
    """The attention sampler's settings (recorded with the sampler's other settings)."""

    k: int = 5
    temperature: float = 1.0
    extrapolation: float = 0.0

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ArgumentError(f"{{}} must be an integer >= 1, got {self.k!r}", "attention_k")
        if not self.temperature > 0:
            raise ArgumentError(f"{{}} must be positive, got {self.temperature!r}", "attention_temperature")
        if not 0 <= self.extrapolation <= 1:
            raise ArgumentError(f"{{}} must be in [0, 1], got {self.extrapolation!r}", "attention_extrapolation")


class AttentionLatents:
    """Draws codes for given labels, a pure function of (codes, settings, labels, seed).

    Args:
        codes: float32[N, latent_dim] posterior means of the training images.
        labels: int[N] their labels.
        num_classes: number of classes; every class needs at least one training image.
        settings: k, temperature and extrapolation.
    """

    def __init__(self, codes: np.ndarray, labels: np.ndarray, num_classes: int, settings: AttentionSettings):
        self.settings = settings
        self._members, self._neighbours, self._scale = [], [], []
        for c in range(num_classes):
            members = codes[labels == c].astype(np.float64)
            if not len(members):
                raise ArgumentError(
                    f"--latent attention: class {c} has no training image to anchor on ({{}})", "latent"
                )
            squared = ((members[:, None, :] - members[None, :, :]) ** 2).sum(axis=-1)
            k = min(settings.k, len(members))
            neighbours = np.argsort(squared, axis=1, kind="stable")[:, :k]  # each row starts with itself
            near = np.take_along_axis(squared, neighbours, axis=1)[:, 1:]
            self._members.append(members)
            self._neighbours.append(neighbours)
            self._scale.append(float(near.mean()) if near.size and near.mean() > 0 else 1.0)

    def __call__(self, labels: np.ndarray, seed: int) -> np.ndarray:
        """float32[len(labels), latent_dim] codes, one per label."""
        rng = np.random.default_rng(seed)
        settings = self.settings
        out = np.empty((len(labels), self._members[0].shape[1]), np.float64)
        for c in np.unique(labels):
            slots = np.flatnonzero(labels == c)
            members, neighbours = self._members[c], self._neighbours[c]
            anchors = rng.integers(len(members), size=len(slots))
            keys = members[neighbours[anchors]]  # [n, k, d]
            query = members[anchors]
            scores = -((keys - query[:, None, :]) ** 2).sum(axis=-1) / self._scale[c]
            logits = (scores + rng.gumbel(size=scores.shape)) / settings.temperature
            weights = np.exp(logits - logits.max(axis=1, keepdims=True))
            weights /= weights.sum(axis=1, keepdims=True)
            mixed = np.einsum("nk,nkd->nd", weights, keys)
            out[slots] = query + (1.0 + settings.extrapolation) * (mixed - query)
        return out.astype(np.float32)
