"""Fidelity and memorisation metrics on feature or pixel arrays (numpy in, floats out).

Fidelity is measured in a domain feature space (a classifier trained on the real data), because
Inception features mean nothing for 8x8 digits and their weights cannot be downloaded here.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from genaug.errors import GenaugError


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets ``a`` and ``b`` (N x D each)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Singular products are expected with few samples; they are regularised below.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean, error = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(covmean).all() or error > 1e-3:  # near-singular product: regularise, as the FID reference does
        offset = np.eye(len(cov_a)) * 1e-6
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    trace = np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean.real)
    return float(max(0.0, ((mu_a - mu_b) ** 2).sum() + trace))


def kernel_distance(
    a: np.ndarray, b: np.ndarray, *, subsets: int = 10, subset_size: int = 1000, seed: int = 0
) -> float:
    """The kernel distance of KID (Binkowski et al. 2018) in the features given (genaug gives a domain
    CNN's, not Inception's): the unbiased MMD^2 with kernel ``(x.y / d + 1)^3``, averaged over random
    subsets. Reports call it ``kid``."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(a), len(b))
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        k_xx, k_yy, k_xy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off = size * (size - 1)
        values.append((k_xx.sum() - np.trace(k_xx)) / off + (k_yy.sum() - np.trace(k_yy)) / off - 2 * k_xy.mean())
    return float(np.mean(values))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None, :]
    return np.sqrt(np.maximum(squared, 0.0))


def _kth_neighbour_radius(x: np.ndarray, k: int) -> np.ndarray:
    distances = _pairwise(x, x)
    return np.partition(distances, k, axis=1)[:, k]  # the k+1-th smallest: the first is the point itself


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019) with k-NN manifolds."""
    real_radius, fake_radius = _kth_neighbour_radius(real, k), _kth_neighbour_radius(fake, k)
    fake_to_real = _pairwise(fake, real)
    precision = (fake_to_real <= real_radius[None, :]).any(axis=1).mean()
    recall = (fake_radius[None, :] >= fake_to_real.T).any(axis=1).mean()
    return float(precision), float(recall)


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al., 2020) with k-NN balls around real samples."""
    real_radius = _kth_neighbour_radius(real, k)
    inside = _pairwise(fake, real) <= real_radius[None, :]
    density = inside.sum() / (k * len(fake))
    coverage = inside.any(axis=0).mean()
    return float(density), float(coverage)


def nearest_distances(images: np.ndarray, reference: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """L2 distance (pixels scaled to [0, 1]) from each image to its nearest image in ``reference``."""
    ref = reference.reshape(len(reference), -1).astype(np.float32) / 255.0
    ref_sq = (ref**2).sum(axis=1)
    out = np.empty(len(images), np.float32)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].reshape(-1, ref.shape[1]).astype(np.float32) / 255.0
        squared = (part**2).sum(axis=1, keepdims=True) - 2.0 * part @ ref.T + ref_sq[None, :]
        out[start : start + chunk] = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
    return out


def default_min_distance(train_x: np.ndarray, test_x: np.ndarray) -> float:
    """The 1st percentile of real test images' distances to their nearest training image: a synthetic
    image closer than nearly every genuinely new image is treated as a copy."""
    return float(np.percentile(nearest_distances(test_x, train_x), 1.0))


def held_out_min_distance(train_x: np.ndarray, share: float = 0.1, seed: int = 0) -> float:
    """:func:`default_min_distance` for a source without a test split: a seeded ``share`` of the training
    images stands in for the new ones, measured against the rest (both are draws from the same data)."""
    if len(train_x) < 2:
        raise GenaugError(f"the memorisation guard's auto distance needs two training images, got {len(train_x)}")
    order = np.random.default_rng(seed).permutation(len(train_x))
    held = min(len(train_x) - 1, max(1, round(share * len(train_x))))
    return default_min_distance(train_x[order[held:]], train_x[order[:held]])


def memorisation(
    synthetic: np.ndarray, train: np.ndarray, holdout: np.ndarray, copy_threshold: float, seed: int = 0
) -> dict:
    """How close synthetic images sit to the training images, against a held-out yardstick.

    Args:
        synthetic: uint8 images.
        train: the images the generator trained on.
        holdout: real images it never saw (the test split).
        copy_threshold: distance below which a synthetic image counts as a near-copy.
        seed: picks the train subset matched in size to ``holdout``.

    Returns:
        Pixel-space (scaled to [0, 1]) nearest-neighbour statistics: median and 5th percentile of
        synthetic->train and holdout->train distances, ``closer_to_train_share`` (share of synthetic
        images nearer to an equal-size train subset than to the holdout; about 0.5 when nothing is
        memorised, near 1 for copies) and ``near_copies``.
    """
    rng = np.random.default_rng(seed)
    syn_to_train = nearest_distances(synthetic, train)
    holdout_to_train = nearest_distances(holdout, train)
    subset = train[rng.choice(len(train), min(len(train), len(holdout)), replace=False)]
    closer = nearest_distances(synthetic, subset) < nearest_distances(synthetic, holdout)
    return {
        "synthetic_to_train_median": float(np.median(syn_to_train)),
        "synthetic_to_train_p5": float(np.percentile(syn_to_train, 5)),
        "holdout_to_train_median": float(np.median(holdout_to_train)),
        "holdout_to_train_p5": float(np.percentile(holdout_to_train, 5)),
        "closer_to_train_share": float(closer.mean()),
        "near_copies": int((syn_to_train < copy_threshold).sum()),
        "copy_threshold": float(copy_threshold),
    }


def mean_interval(values) -> dict:
    """Mean, sample std and a 95 % t-interval of the mean of ``values`` (e.g. accuracies over seeds, or
    paired gains), with the values themselves."""
    from scipy import stats

    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    half = float(stats.t.ppf(0.975, len(values) - 1) * std / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half], "values": values.tolist()}


METRICS = ("accuracy", "balanced_accuracy")


def score(metric: str, predicted: np.ndarray, truth: np.ndarray) -> float:
    """A classifier's ``metric`` on ``truth``: ``accuracy``, or ``balanced_accuracy`` (the mean recall over
    the classes present in ``truth``: what counts on imbalanced data, where accuracy rewards ignoring rare
    classes)."""
    if metric == "accuracy":
        return float(np.mean(predicted == truth))
    if metric == "balanced_accuracy":
        return float(np.mean(recall_per_class(predicted, truth, np.unique(truth))))
    raise ValueError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")


def paired_interval(
    metric: str,
    truth: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    examples: np.ndarray,
    seed: int,
    resamples: int = 2000,
) -> tuple[float, float]:
    """The 95 % interval of ``score(second) - score(first)`` by a paired bootstrap over the examples: both
    predictions of ``truth`` are scored on the same resampled examples. ``examples`` names the example of
    each prediction, so the predictions of one example by several classifier seeds are resampled together."""
    _, example = np.unique(examples, return_inverse=True)
    count = int(example.max()) + 1
    draws = np.random.default_rng(seed).multinomial(count, np.full(count, 1 / count), size=resamples)
    weights = draws[:, example].astype(np.float64)
    differences = _weighted_scores(metric, weights, second == truth, truth) - _weighted_scores(
        metric, weights, first == truth, truth
    )
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(low), float(high)


def _weighted_scores(metric: str, weights: np.ndarray, correct: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``metric`` once per row of ``weights`` (how often each prediction was drawn); :func:`score` for unit weights."""
    if metric == "accuracy":
        return weights @ correct / weights.sum(axis=1)
    if metric == "balanced_accuracy":  # the mean recall over the classes drawn
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls = [weights[:, truth == c] @ correct[truth == c] / weights[:, truth == c].sum(axis=1)
                       for c in np.unique(truth)]  # fmt: skip
        return np.nanmean(recalls, axis=0)
    raise ValueError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")


def recall_per_class(predicted: np.ndarray, truth: np.ndarray, classes) -> np.ndarray:
    """For each class in ``classes``, the share of its examples in ``truth`` predicted as it."""
    return np.array([np.mean(predicted[truth == c] == c) for c in classes], np.float64)


def is_imbalanced(labels: np.ndarray, ratio: float = 1.5) -> bool:
    """Whether the largest class of ``labels`` has more than ``ratio`` times the examples of the smallest."""
    counts = np.bincount(labels)
    counts = counts[counts > 0]
    return bool(counts.max() > ratio * counts.min())
