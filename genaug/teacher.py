"""The teacher of a semi-supervised run (and of the baseline without genaug): pseudo-labels for unlabelled images.

Label spreading (Zhou et al. 2004, scikit-learn's ``LabelSpreading``) over a k-nearest-neighbour graph of
the labelled and unlabelled images propagates the few labels along the data's own clusters. Only the
labels of the labelled images enter; the result is a label and a confidence per unlabelled image.
"""

from __future__ import annotations

import numpy as np

from genaug.data import LabelledArrays, UnlabeledImages

NEIGHBOURS = 7


def pseudo_labels(labelled: LabelledArrays, unlabeled: UnlabeledImages) -> tuple[np.ndarray, np.ndarray]:
    """``(labels int64[N], confidence float32[N])`` for the ``N`` unlabelled images.

    Example:
        >>> labels, confidence = pseudo_labels(labelled, unlabeled)
        >>> keep = confidence >= 0.9
    """
    from sklearn.semi_supervised import LabelSpreading

    x = np.concatenate([labelled.x, unlabeled.x]).reshape(len(labelled.x) + len(unlabeled.x), -1)
    y = np.concatenate([labelled.y, np.full(len(unlabeled.x), -1)])  # -1: unlabelled, for scikit-learn
    spreading = LabelSpreading(kernel="knn", n_neighbors=NEIGHBOURS).fit(x.astype(np.float32) / 255.0, y)
    distribution = spreading.label_distributions_[len(labelled.x) :]
    classes = spreading.classes_  # the labels present, in order
    return classes[distribution.argmax(axis=1)].astype(np.int64), distribution.max(axis=1).astype(np.float32)


def with_confident(
    labelled: LabelledArrays, images: np.ndarray, labels: np.ndarray, confidence: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """What a semi-supervised generator trains on: the labelled examples, then the unlabelled ``images``
    whose pseudo-label ``confidence`` is at least ``threshold``, with those ``labels``."""
    keep = confidence >= threshold
    return np.concatenate([labelled.x, images[keep]]), np.concatenate([labelled.y, labels[keep]])
