"""``policy.json``: how a classifier uses synthetic data. ``genaug tune`` writes it; ``evaluate --policy``,
:func:`genaug.mix` and :func:`genaug.as_supervised` apply it."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from genaug import atomic, storage
from genaug.errors import GenaugError

# 2 added mixup_alpha, cutmix_alpha and noise, 3 pseudo_labels, 4 class_balanced, 5 real_balanced; older files load
# with them off
POLICY_VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)
MAX_RATIO = 3.0  # beyond ~3 synthetic per real image, generated data hurt in the literature (issue 19)
MAX_AUGMENTATION = 2.0
MAX_ALPHA = 2.0  # Beta(a, a) beyond 2 mixes nearly half-and-half every time
MAX_NOISE = 0.2


@dataclasses.dataclass(frozen=True)
class Policy:
    """How synthetic data joins a classifier's training stream.

    Attributes:
        synthetic_ratio: synthetic examples per real one, from 0 (real only) to 3.
        synthetic_weight: loss weight of a synthetic example (a real one weighs 1), in (0, 1].
        augmentation: strength of classic augmentation of every batch (random shifts, rotations and
            zooms, :mod:`genaug.augment`): 0 is off, 1 the default magnitudes, at most 2.
        synthetic_set: which of the synthetic sets given to ``tune``/``evaluate`` (0-based).
        min_confidence: use only synthetic images the sampler's oracle gave their label at least this
            probability (read from the shards' ``confidence``; ``None``: every image).
        mixup_alpha: mix each example with a random partner, images and one-hot labels, by
            lambda ~ Beta(a, a) (Zhang et al. 2018); 0 is off. Labels become soft: use categorical
            cross-entropy (:class:`genaug.classifier.ClassifierTrainer` switches by itself).
        cutmix_alpha: paste a random box of a partner image, labels mixed by area (Yun et al. 2019);
            0 is off; at most one of mixup and cutmix.
        noise: standard deviation of Gaussian pixel noise added to every training image, as a fraction
            of the pixel range (0 is off).
        pseudo_labels: the real stream also holds the unlabelled images the generator's teacher labelled
            confidently enough to train the generator on, with those labels (scarce-label runs only).
        class_balanced: weigh each example's loss by the inverse of its class's share of the stream, real and
            synthetic together, so that every class weighs the same (the class-weighted loss of imbalanced data).
        real_balanced: draw the real examples with every class equally often (random oversampling of the real
            stream; the synthetic stream is as it is, e.g. ``sample --class-balance fill``).

    Example:
        >>> policy = Policy.load("tuned/policy.json")
        >>> batches = as_supervised(mix(real, syn, policy=policy, seed=0), 64, policy=policy, seed=0)
    """

    synthetic_ratio: float = 1.0
    synthetic_weight: float = 1.0
    augmentation: float = 0.0
    synthetic_set: int = 0
    min_confidence: float | None = None
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    noise: float = 0.0
    pseudo_labels: bool = False
    class_balanced: bool = False
    real_balanced: bool = False

    def __post_init__(self):
        ranges = {
            "synthetic_ratio": (0.0, MAX_RATIO, "a number in [0, 3]"),
            "synthetic_weight": (1e-9, 1.0, "a number in (0, 1]"),
            "augmentation": (0.0, MAX_AUGMENTATION, "a number in [0, 2]"),
            "mixup_alpha": (0.0, MAX_ALPHA, "a number in [0, 2]"),
            "cutmix_alpha": (0.0, MAX_ALPHA, "a number in [0, 2]"),
            "noise": (0.0, MAX_NOISE, "a number in [0, 0.2]"),
        }
        for name, (low, high, what) in ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise GenaugError(f"policy {name} must be {what}, got {value!r}")
            object.__setattr__(self, name, float(value))
        if isinstance(self.synthetic_set, bool) or not isinstance(self.synthetic_set, int) or self.synthetic_set < 0:
            raise GenaugError(f"policy synthetic_set must be an index >= 0, got {self.synthetic_set!r}")
        confidence = self.min_confidence
        if confidence is not None:
            if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
                raise GenaugError(f"policy min_confidence must be null or a number in [0, 1], got {confidence!r}")
            object.__setattr__(self, "min_confidence", float(confidence))
        for name in ("pseudo_labels", "class_balanced", "real_balanced"):
            if not isinstance(getattr(self, name), bool):
                raise GenaugError(f"policy {name} must be true or false, got {getattr(self, name)!r}")
        if self.mixup_alpha and self.cutmix_alpha:
            raise GenaugError("policy: give mixup_alpha or cutmix_alpha, not both")

    @property
    def soft_labels(self) -> bool:
        """Whether the policy mixes labels (mixup or cutmix), so a classifier sees one-hot vectors."""
        return bool(self.mixup_alpha or self.cutmix_alpha)

    @property
    def synthetic_fraction(self) -> float:
        """The share of synthetic examples in the stream: ``ratio / (1 + ratio)``."""
        return self.synthetic_ratio / (1.0 + self.synthetic_ratio)

    def describe(self) -> str:
        """One line for progress and reports, e.g. ``ratio 2 weight 0.61 augmentation 0.5 set 0``."""
        extras = [
            f"confidence >= {self.min_confidence:g}" if self.min_confidence is not None else "",
            f"mixup {self.mixup_alpha:g}" if self.mixup_alpha else "",
            f"cutmix {self.cutmix_alpha:g}" if self.cutmix_alpha else "",
            f"noise {self.noise:g}" if self.noise else "",
            "pseudo-labels" if self.pseudo_labels else "",
            "class-balanced" if self.class_balanced else "",
            "real oversampled" if self.real_balanced else "",
        ]
        return " ".join(
            [
                f"ratio {self.synthetic_ratio:g} weight {self.synthetic_weight:.2f} "
                f"augmentation {self.augmentation:g} set {self.synthetic_set}",
                *filter(None, extras),
            ]
        )

    def check_sets(self, given: int) -> None:
        """Raises unless the synthetic set the policy names is among the ``given`` ones (``evaluate`` is
        given one: the set the policy chose, as set 0)."""
        if self.synthetic_ratio and self.synthetic_set >= given:
            raise GenaugError(
                f"policy synthetic_set {self.synthetic_set} names set {self.synthetic_set + 1}, but "
                f"{given} synthetic set{'s are' if given > 1 else ' is'} given; pass the set it chose and "
                "set synthetic_set to its position (0 for the one set evaluate takes)"
            )

    def to_dict(self) -> dict:
        return {"version": POLICY_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, raw: dict, where: str = "policy") -> Policy:
        """The policy a ``policy.json`` object describes; unknown keys, a different version or bad values
        are one-line errors naming ``where`` and the key."""
        raw = dict(raw)
        version = raw.pop("version", None)
        if version not in READABLE_VERSIONS:
            raise GenaugError(f"{where}: policy version {version!r}, expected one of {READABLE_VERSIONS}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise GenaugError(f"{where}: unknown policy key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        try:
            return cls(**raw)
        except GenaugError as err:
            raise GenaugError(f"{where}: {err}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Policy:
        from genaug.json_records import read_json

        path = storage.path(path)
        if not path.is_file():
            raise GenaugError(f"policy file not found: {path}")
        return cls.from_dict(read_json(path, "policy"), str(path))

    def save(self, path: str | os.PathLike) -> None:
        atomic.write_json(path, self.to_dict())


def class_balancing_weights(shares: np.ndarray) -> np.ndarray:
    """A loss weight per class from each class's share (or count) of a training stream: ``1 / (K p_c)`` over
    the ``K`` classes present, so that every present class weighs the same and the mean example weighs 1."""
    shares = np.asarray(shares, np.float64)
    shares = shares / shares.sum()
    present = shares > 0
    weights = np.zeros_like(shares)
    weights[present] = 1.0 / (present.sum() * shares[present])
    return weights


#: What genaug did before tuning: half synthetic, weighted like real data, no classic augmentation.
DEFAULT_POLICY = Policy()
REAL_ONLY = Policy(synthetic_ratio=0.0)
#: The route without a generator that ``evaluate`` reports beside genaug: real data, classic augmentation.
CLASSIC_AUGMENTATION = Policy(synthetic_ratio=0.0, augmentation=1.0)
#: Self-training without a generator: the labelled examples and the teacher's confident labels, nothing synthetic.
TEACHER_LABELS = Policy(synthetic_ratio=0.0, pseudo_labels=True)
#: The usual remedy for imbalanced data, without a generator: real data, each class's loss weighted alike.
CLASS_WEIGHTED = Policy(synthetic_ratio=0.0, class_balanced=True)
#: The other usual remedy: real data, every class drawn equally often (random oversampling).
OVERSAMPLED = Policy(synthetic_ratio=0.0, real_balanced=True)
#: The default mix with the real half drawn class-balanced, beside a ``--class-balance fill`` set.
DEFAULT_OVERSAMPLED = Policy(real_balanced=True)
