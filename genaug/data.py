"""Real data sources: every dataset becomes ``{"image": uint8[H, W, C], "label": int64[]}``.

Sources (the ``data`` spec):
  * ``digits``: scikit-learn's 1,797 8x8 handwritten digits, the embedded default (0..16 -> 0..255).
  * ``tfds:NAME[/CONFIG]``: any TFDS image-classification dataset, through ``tfds.load``.
  * ``folder:PATH``: one sub-folder per class of PNG/JPEG files (``train``/``test`` sub-folders optional).
  * ``npz:PATH``: arrays ``x`` (uint8 NxHxW[xC]) and ``y`` (integer labels), optional ``class_names``.
  * ``idx:DIR``: the MNIST family's IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST), :mod:`genaug.idx`.

Any spec may end in ``?train_size=N``: a seeded, stratified subset of N images of the train split (the test
split stays whole), so a CPU user can work on 10,000 of Fashion-MNIST's 60,000. Being part of the spec,
it travels with the run's record to ``sample``, ``evaluate`` and ``tune``.

Datasets are small enough to hold in memory, so every source is loaded as arrays once and served
through ``tf.data.Dataset.from_tensor_slices``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path

import numpy as np

from genaug.errors import ArgumentError, GenaugError

SPLITS = ("train", "test")
# The split contract for sources without their own splits (digits, npz, flat folders).
SPLIT_TEST_SIZE = 0.25
SPLIT_RANDOM_STATE = 0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGE_SIDE = 1024  # the networks support 8..64; resizing beyond this only exhausts memory
SOURCES = ("digits", "tfds", "folder", "npz", "idx")
SPEC_OPTIONS = ("train_size", "imbalance")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a loaded split is.

    Attributes:
        name: the data spec it was loaded from, e.g. ``"digits"``.
        image_shape: ``(H, W, C)`` of every image.
        class_names: one name per label value.
        split: the split loaded.
        split_sizes: number of examples in each split of the source.
        class_counts: examples per class in the loaded split (after any label subsetting).
    """

    name: str
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    split: str
    split_sizes: dict[str, int]
    class_counts: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> DatasetInfo:
        return cls(
            name=raw["name"],
            image_shape=tuple(raw["image_shape"]),
            class_names=tuple(raw["class_names"]),
            split=raw["split"],
            split_sizes=dict(raw["split_sizes"]),
            class_counts=tuple(raw["class_counts"]),
        )


@dataclasses.dataclass(frozen=True)
class LabelledArrays:
    """A split held in memory: ``x`` uint8 NxHxWxC, ``y`` int64 N, its ``info``, and ``indices``:
    the positions of these examples within the full split (a subset when labels are scarce)."""

    x: np.ndarray
    y: np.ndarray
    info: DatasetInfo
    indices: np.ndarray

    def fingerprint(self) -> str:
        """sha256 of the images and labels, to record which data a run saw."""
        digest = hashlib.sha256(np.ascontiguousarray(self.x).tobytes())
        digest.update(self.y.astype("<i8").tobytes())
        return digest.hexdigest()

    def subset(self, indices) -> LabelledArrays:
        """The examples at ``indices`` (positions within this split), e.g. a scarce-label subset."""
        indices = np.asarray(indices, np.int64)
        y = self.y[indices]
        counts = tuple(int(c) for c in np.bincount(y, minlength=self.info.num_classes))
        info = dataclasses.replace(self.info, class_counts=counts)
        return LabelledArrays(x=self.x[indices], y=y, info=info, indices=self.indices[indices])

    def at_recorded(self, positions, where: str) -> LabelledArrays:
        """:meth:`subset` at positions a record holds (``where`` names the record and field); a position
        outside this split is a one-line error naming them, not an IndexError."""
        positions = np.asarray(positions, np.int64)
        outside = positions[(positions < 0) | (positions >= len(self.y))]
        if len(outside):
            raise GenaugError(f"{where} holds position {outside[0]}, outside the {len(self.y)} examples of the split")
        return self.subset(positions)

    def without(self, positions) -> LabelledArrays:
        """These examples less those at ``positions`` in the full split (e.g. a holdout)."""
        return self.subset(np.flatnonzero(~np.isin(self.indices, np.asarray(positions, np.int64))))

    def to_dataset(self):
        """The ``tf.data.Dataset`` of ``{"image": uint8[H,W,C], "label": int64[]}`` elements."""
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices({"image": self.x, "label": self.y})


def load_arrays(
    data: str,
    split: str = "train",
    *,
    image_size: tuple[int, int] | None = None,
    labels_per_class: int | None = None,
    label_fraction: float | None = None,
    seed: int = 0,
) -> LabelledArrays:
    """Loads one split of a data source into memory.

    Args:
        data: the source spec (``digits``, ``tfds:NAME[/CONFIG]``, ``folder:PATH``, ``npz:PATH``,
            ``idx:DIR``), optionally ending in ``?train_size=N``.
        split: ``"train"`` or ``"test"``.
        image_size: ``(H, W)`` to resize every image to; required for folders of mixed sizes.
        labels_per_class: keep a seeded, stratified subset of K examples per class (scarce labels).
        label_fraction: keep a seeded, stratified fraction F of each class instead.
        seed: seed of the label subset.

    Returns:
        The split's arrays and info.

    Raises:
        GenaugError: on an unknown spec or split, a missing path, or malformed data.

    Example:
        >>> arrays = load_arrays("digits", "train")
        >>> arrays.x.shape, arrays.info.num_classes
        ((1347, 8, 8, 1), 10)
    """
    if split not in SPLITS:
        raise GenaugError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    if image_size is not None and not all(1 <= side <= MAX_IMAGE_SIDE for side in image_size):
        raise ArgumentError(f"{{}} {image_size} must be between 1 and {MAX_IMAGE_SIDE} pixels a side", "image_size")
    kind, arg = check_spec(data)
    loaders = {"digits": _load_digits, "tfds": _load_tfds, "folder": _load_folder, "npz": _load_npz, "idx": _load_idx}
    x, y, class_names, split_sizes = loaders[kind](arg, split, image_size)
    options = spec_options(data)
    if "train_size" in options:
        split_sizes = {**split_sizes, "train": options["train_size"]}
    for option, subset in (("train_size", train_subset), ("imbalance", _long_tail_of_smallest)):
        if split == "train" and option in options:
            chosen = subset(y, options[option], data)
            x, y = x[chosen], y[chosen]
            split_sizes = {**split_sizes, "train": len(y)}
    if image_size is not None and x.shape[1:3] != tuple(image_size):
        x = resize_images(x, image_size)
    keep = np.arange(len(y))
    if labels_per_class is not None or label_fraction is not None:
        keep = labelled_subset(y, labels_per_class=labels_per_class, label_fraction=label_fraction, seed=seed)
        x, y = x[keep], y[keep]
    info = DatasetInfo(
        name=data,
        image_shape=tuple(int(d) for d in x.shape[1:]),
        class_names=tuple(class_names),
        split=split,
        split_sizes=split_sizes,
        class_counts=tuple(int(c) for c in np.bincount(y, minlength=len(class_names))),
    )
    return LabelledArrays(x=x, y=y, info=info, indices=keep)


def check_spec(data: str) -> tuple[str, str]:
    """Splits a data spec into ``(kind, argument)`` after checking what needs no loading: the syntax, its
    options and that a folder or file exists (so a command can report a bad spec before TensorFlow starts)."""
    spec_options(data)
    kind, _, arg = data.partition("?")[0].partition(":")
    if kind not in SOURCES or (kind == "digits") == bool(arg):
        raise GenaugError(
            f"bad data spec {data!r}: expected digits, tfds:NAME[/CONFIG], folder:PATH, npz:PATH or idx:DIR, "
            "optionally ending in ?train_size=N&imbalance=R (either or both)"
        )
    if kind in ("folder", "idx") and not Path(arg).is_dir():
        raise GenaugError(f"folder not found: {Path(arg)}")
    if kind == "npz" and not Path(arg).is_file():
        raise GenaugError(f"npz file not found: {Path(arg)}")
    return kind, arg


def spec_options(data: str) -> dict[str, int]:
    """The options after a spec's ``?`` (``train_size=N``), checked: unknown keys and values that are not
    positive integers are errors naming the spec."""
    _, mark, query = data.partition("?")
    options = {}
    for item in query.split("&") if mark else []:
        key, _, value = item.partition("=")
        if key not in SPEC_OPTIONS:
            raise GenaugError(f"bad data spec {data!r}: unknown option {key!r} (known: {', '.join(SPEC_OPTIONS)})")
        if not value.isdigit() or int(value) < 1:
            raise GenaugError(f"bad data spec {data!r}: {key} must be a positive integer, got {value!r}")
        options[key] = int(value)
    return options


def train_subset(y: np.ndarray, size: int, data: str = "data") -> np.ndarray:
    """Sorted positions of a stratified subset of ``size`` examples of ``y`` (each class in proportion,
    largest remainders first), the same for the same ``(y, size)``: ``?train_size=N``."""
    counts = np.bincount(y)
    if not counts.sum() >= size >= np.count_nonzero(counts):
        raise GenaugError(
            f"{data}: train_size {size} must be between the number of classes ({np.count_nonzero(counts)}) and "
            f"the train split's size ({len(y)})"
        )
    exact = counts * size / counts.sum()
    take = np.floor(exact).astype(np.int64)
    take[np.argsort(take - exact, kind="stable")[: size - take.sum()]] += 1
    take = np.maximum(take, np.minimum(counts, 1))  # every class keeps at least one image
    while take.sum() > size:  # only when that raised a class: trim the largest
        take[take.argmax()] -= 1
    return _stratified_choice(y, SPLIT_RANDOM_STATE, None, take)


def long_tailed_subset(y: np.ndarray, ratio: int, n_max: int, seed: int = SPLIT_RANDOM_STATE) -> np.ndarray:
    """Sorted positions of a seeded long-tailed subset of ``y``: the c-th class (of K, in label order) keeps
    ``round(n_max * ratio ** (-c / (K - 1)))`` examples (at least one), the exponential profile of
    long-tailed benchmarks (Cui et al. 2019): ``n_max`` for the first class, ``n_max / ratio`` for the last.
    ``?imbalance=R`` (with ``n_max`` the smallest class) makes any source's train split long-tailed.

    Raises:
        GenaugError: ``ratio`` below 1, or a class with fewer than its share.
    """
    if ratio < 1:
        raise GenaugError(f"imbalance ratio {ratio} must be at least 1")
    counts = np.bincount(y)
    present = np.flatnonzero(counts)
    keep = np.zeros_like(counts)
    for rank, label in enumerate(present):
        keep[label] = max(1, round(n_max * ratio ** (-rank / max(1, len(present) - 1))))
    short = np.flatnonzero(keep > counts)
    if len(short):
        raise GenaugError(f"class {short[0]} has {counts[short[0]]} examples, fewer than its {keep[short[0]]}")
    return _stratified_choice(y, seed, None, keep)


def _long_tail_of_smallest(y: np.ndarray, ratio: int, data: str) -> np.ndarray:
    """``?imbalance=R``: :func:`long_tailed_subset` from the smallest class's size."""
    try:
        return long_tailed_subset(y, ratio, int(np.bincount(y)[np.bincount(y) > 0].min()))
    except GenaugError as err:
        raise GenaugError(f"{data}: {err}") from None


def check_unlabeled_spec(spec: str) -> tuple[str, str]:
    """Splits an unlabelled-images spec (``images:PATH`` or ``npz:PATH``) after checking its syntax and
    that the path exists."""
    kind, _, arg = spec.partition(":")
    if kind not in ("images", "npz") or not arg:
        raise ArgumentError(f"{{}} {spec!r}: expected auto, none, images:PATH or npz:PATH", "unlabeled")
    if kind == "npz" and not Path(arg).is_file():
        raise ArgumentError(f"{{}} {spec}: npz file not found", "unlabeled")
    if kind == "images" and not Path(arg).is_dir():
        raise ArgumentError(f"{{}} {spec}: folder not found", "unlabeled")
    return kind, arg


def resolved_spec(data: str) -> str:
    """``data`` with a folder or file path made absolute, so that a run can be read from any folder."""
    spec, mark, query = data.partition("?")
    kind, _, arg = spec.partition(":")
    return f"{kind}:{Path(arg).resolve()}{mark}{query}" if kind in ("folder", "npz", "images", "idx") and arg else data


def load_dataset(data: str, split: str = "train", **kwargs):
    """Loads a split as a ``tf.data.Dataset`` plus its :class:`DatasetInfo`.

    Takes the same arguments as :func:`load_arrays`. Elements are
    ``{"image": uint8[H, W, C], "label": int64[]}``.

    Example:
        >>> ds, info = load_dataset("digits", "test")
        >>> info.class_counts[0], ds.element_spec["image"].shape
        (45, TensorShape([8, 8, 1]))
    """
    arrays = load_arrays(data, split, **kwargs)
    return arrays.to_dataset(), arrays.info


def labelled_subset(
    y: np.ndarray,
    *,
    labels_per_class: int | None = None,
    label_fraction: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Sorted indices of a seeded, stratified subset of ``y``: the scarce-label simulation.

    The same ``(y, K or F, seed)`` always gives the same indices.

    Raises:
        GenaugError: if both or neither option is given, K exceeds the smallest class or F is not in
            (0, 1].
    """
    if (labels_per_class is None) == (label_fraction is None):
        raise ArgumentError("give exactly one of {} and {}", "labels_per_class", "label_fraction")
    counts = np.bincount(y)
    present = np.flatnonzero(counts)
    if labels_per_class is not None:
        smallest = int(counts[present].min())
        if labels_per_class < 1 or labels_per_class > smallest:
            raise ArgumentError(
                f"{{}} {labels_per_class} must be between 1 and the smallest class size ({smallest})",
                "labels_per_class",
            )
    elif not 0.0 < label_fraction <= 1.0:
        raise ArgumentError(f"{{}} {label_fraction} must be in (0, 1]", "label_fraction")
    return _stratified_choice(y, seed, lambda n: labels_per_class or max(1, round(label_fraction * n)))


def _stratified_choice(y: np.ndarray, seed: int, count, per_label: np.ndarray | None = None) -> np.ndarray:
    """Sorted positions of ``count(n)`` examples (or ``per_label[label]``) drawn without replacement from
    each class of ``n``."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.flatnonzero(np.bincount(y)):
        members = np.flatnonzero(y == label)
        size = count(len(members)) if per_label is None else int(per_label[label])
        chosen.append(rng.choice(members, size=size, replace=False))
    return np.sort(np.concatenate(chosen))


def derived_seed(seed: int, stream: int) -> int:
    """A seed for the random choice ``stream`` (1, 2, ...) of a run seeded ``seed``, independent of the
    seed's own stream and of the other streams."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


HOLDOUT_STREAM = 2  # derived_seed stream of the holdout (1 is tune's confirmation folds)


def holdout_subset(y: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted positions in ``y`` of a seeded, stratified fraction of each class to keep out of training
    (at least one example per class, and at least one left to train on).

    Raises:
        ArgumentError: naming ``holdout`` if ``fraction`` is not in (0, 1) or a class has fewer than two
            examples.
    """
    if not 0.0 < fraction < 1.0:
        raise ArgumentError(f"{{}} {fraction} must be in (0, 1)", "holdout")
    counts = np.bincount(y)
    present = np.flatnonzero(counts)
    if counts[present].min() < 2:
        raise ArgumentError("{} needs at least two labelled examples of every class", "holdout")
    return _stratified_choice(y, derived_seed(seed, HOLDOUT_STREAM), lambda n: min(n - 1, max(1, round(fraction * n))))


@dataclasses.dataclass(frozen=True)
class UnlabeledImages:
    """Images used without their labels: ``x`` uint8 NxHxWxC, the ``source`` spec, and ``indices``, their
    positions in the training split when they are its unlabelled rest (``None`` for another source)."""

    x: np.ndarray
    source: str
    indices: np.ndarray | None

    def fingerprint(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.x).tobytes()).hexdigest()


def unlabeled_rest(full: LabelledArrays, labelled: LabelledArrays) -> UnlabeledImages | None:
    """The images of the split ``full`` outside its subset ``labelled``, without their labels (``None``
    when ``labelled`` is the whole split): what ``unlabeled: auto`` learns from."""
    rest = np.setdiff1d(np.arange(len(full.x)), labelled.indices)
    return UnlabeledImages(full.x[rest], "auto", rest) if len(rest) else None


def load_unlabeled(
    spec: str, labelled: LabelledArrays, *, image_size: tuple[int, int] | None = None
) -> UnlabeledImages:
    """Images from another source to learn from without labels, next to ``labelled``.

    Args:
        spec: ``"images:PATH"`` (a flat folder of PNG/JPEG files) or ``"npz:PATH"`` (array ``x``; a ``y``
            there is never read). The rest of the training split is :func:`unlabeled_rest`.
        labelled: the labelled training examples; unlabelled images must have their shape.
        image_size: resize as the labelled images were.

    Raises:
        ArgumentError: naming ``unlabeled`` for an unknown spec, a missing or empty source, or images
            of another shape.
    """
    kind, arg = check_unlabeled_spec(spec)
    if kind == "images":
        folder = Path(arg)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ArgumentError(f"{{}} {spec}: no PNG/JPEG images in {folder}", "unlabeled")
        images = [_read_image(f, image_size) for f in files]
        x = np.stack(images) if len({image.shape for image in images}) == 1 else None
    else:
        try:
            with np.load(arg, allow_pickle=False) as npz:
                x = npz["x"]  # only x: labels of unlabelled images are never read
        except KeyError:
            raise ArgumentError(f"{{}} {spec}: missing array 'x'", "unlabeled") from None
        except Exception as err:
            raise ArgumentError(f"{{}} {spec}: not a readable npz file ({err})", "unlabeled") from None
        x = _validated_pixels(x, f"{arg}: x")
        if image_size is not None and x.shape[1:3] != tuple(image_size):
            x = resize_images(x, image_size)
    if x is None or x.shape[1:] != labelled.x.shape[1:]:
        shape = "mixed sizes" if x is None else f"shape {x.shape[1:]}"
        raise ArgumentError(f"{{}} {spec}: images of {shape}, not {labelled.x.shape[1:]}", "unlabeled")
    return UnlabeledImages(x, resolved_spec(spec), None)


def resize_images(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes uint8 NxHxWxC images to ``size`` (H, W) with PIL's area-aware filter."""
    from PIL import Image

    height, width = size
    out = np.empty((len(x), height, width, x.shape[-1]), np.uint8)
    for i, image in enumerate(x):
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        out[i] = np.asarray(pil.resize((width, height), Image.Resampling.BOX)).reshape(out.shape[1:])
    return out


def _stratified_split(y: np.ndarray, split: str, names, source) -> tuple[np.ndarray, dict[str, int]]:
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y, minlength=len(names))
    if counts.min(initial=2) < 2:
        raise GenaugError(
            f"{source}: class {names[int(counts.argmin())]!r} has {counts.min()} image(s); the seeded 75/25 "
            "split needs at least 2 per class (or give train/ and test/ sub-folders)"
        )
    if round(len(y) * SPLIT_TEST_SIZE) < len(names):
        raise GenaugError(
            f"{source}: {len(y)} images are too few to hold out 25 % with every one of {len(names)} classes"
        )
    train, test = train_test_split(
        np.arange(len(y)), test_size=SPLIT_TEST_SIZE, random_state=SPLIT_RANDOM_STATE, stratify=y
    )
    return (train if split == "train" else test), {"train": len(train), "test": len(test)}


def _load_digits(_arg, split, _image_size):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    names = [str(i) for i in range(10)]
    index, sizes = _stratified_split(labels, split, names, "digits")
    return images[index], labels[index], names, sizes


def _load_tfds(arg, split, _image_size):
    import tensorflow_datasets as tfds

    name = arg
    try:
        ds, info = tfds.load(name, split=split, with_info=True)
    except tfds.core.registered.DatasetNotFoundError:
        raise GenaugError(f"unknown tfds dataset {name!r}") from None
    except (ValueError, KeyError) as err:  # e.g. a split the dataset does not have
        raise GenaugError(f"tfds:{name}: {str(err).splitlines()[0]}") from None
    except Exception as err:  # download failures have many types; name the dataset and the cause
        raise GenaugError(f"tfds:{name} could not be loaded: {str(err).splitlines()[0]}") from None
    image_key, label_key = info.supervised_keys or ("image", "label")
    # Batched numpy iteration, not batch_size=-1: TF 2.21 aborts batching mock data by sys.maxsize.
    batches = list(tfds.as_numpy(ds.map(lambda e: (e[image_key], e[label_key])).batch(4096)))
    if not batches:
        raise GenaugError(f"tfds:{name}: split {split!r} is empty")
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches]).astype(np.int64)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise GenaugError(f"tfds:{name}: {image_key!r} is not a uint8 image feature")
    names = [str(n) for n in info.features[label_key].names]
    sizes = {s: info.splits[s].num_examples for s in SPLITS if s in info.splits}
    sizes.setdefault(split, len(labels))  # metadata without split statistics (e.g. mock data)
    return images, labels, names, sizes


def _load_idx(arg, split, _image_size):
    from genaug.idx import label_count, load_idx

    x, y, names = load_idx(Path(arg), split)
    sizes = {s: len(y) if s == split else label_count(Path(arg), s) for s in SPLITS}
    return x, y, names, {s: size for s, size in sizes.items() if size is not None}


def _load_npz(arg, split, _image_size):
    path = Path(arg)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as err:
        raise GenaugError(f"{path}: not a readable npz file ({err})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise GenaugError(f"{path}: missing array {key!r} (expected 'x' and 'y')")
    x, y = arrays["x"], arrays["y"]
    x = _validated_pixels(x, f"{path}: x")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise GenaugError(f"{path}: y must be a 1-D integer array, got {y.dtype} {y.shape}")
    if len(y) != len(x):
        raise GenaugError(f"{path}: x has {len(x)} images but y has {len(y)} labels")
    if len(y) and y.min() < 0:
        raise GenaugError(f"{path}: y has negative labels (min {y.min()})")
    if not len(y):
        raise GenaugError(f"{path}: holds no images")
    num_classes = int(y.max()) + 1
    if "class_names" in arrays:
        names = [str(n) for n in arrays["class_names"]]
        if len(names) < num_classes:
            raise GenaugError(f"{path}: label {num_classes - 1} has no entry in class_names")
    else:
        missing = np.setdiff1d(np.arange(min(num_classes, 1 << 20)), y)
        if len(missing):
            raise GenaugError(
                f"{path}: labels must be 0..K-1 without gaps when there are no class_names, but {missing[0]} is "
                f"absent (labels {np.unique(y)[:5].tolist()}...); relabel or add class_names"
            )
        names = [str(i) for i in range(num_classes)]
    y = y.astype(np.int64)
    index, sizes = _stratified_split(y, split, names, path)
    return x[index], y[index], names, sizes


def _validated_pixels(x: np.ndarray, what: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise GenaugError(f"{what} must be NxHxW or NxHxWxC with C in (1, 3), got shape {x.shape}")
    if x.dtype != np.uint8:
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise GenaugError(f"{what} has dtype {x.dtype}; expected uint8 pixels")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise GenaugError(f"{what} contains NaN or infinite pixels")
        if x.size and (x.min() < 0 or x.max() > 255 or np.any(x != np.round(x))):
            raise GenaugError(f"{what} has pixels outside the integers 0..255")
        x = x.astype(np.uint8)
    return x


def _load_folder(arg, split, image_size):
    root = Path(arg)
    has_splits = all((root / s).is_dir() for s in SPLITS)
    base = root / split if has_splits else root
    class_dirs = sorted(p for p in base.iterdir() if p.is_dir())
    if not class_dirs:
        raise GenaugError(f"{base}: no class sub-folders")
    names = [p.name for p in class_dirs]
    files, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        members = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not members:
            raise GenaugError(f"{class_dir}: empty class folder (no PNG/JPEG files)")
        files += members
        labels += [label] * len(members)
    images = [_read_image(f, image_size) for f in files]
    channels = {im.shape[-1] for im in images}
    if image_size is not None and len(channels) > 1:
        images = [np.repeat(im, 3, axis=-1) if im.shape[-1] == 1 else im for im in images]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        first = images[0].shape
        odd = next(i for i, im in enumerate(images) if im.shape != first)
        raise ArgumentError(
            f"{base}: images differ in size or channels ({files[0].name} is {first}, {files[odd]} is "
            f"{images[odd].shape}); pass {{}} HxW",
            "image_size",
        )
    x = np.stack(images)
    y = np.asarray(labels, np.int64)
    if has_splits:
        sizes = {s: _count_images(root / s) for s in SPLITS}
        return x, y, names, sizes
    index, sizes = _stratified_split(y, split, names, root)
    return x[index], y[index], names, sizes


def _count_images(folder: Path) -> int:
    return sum(1 for p in folder.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_image(path: Path, image_size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow's DecompressionBombWarning: refused just below instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            pil = Image.open(path)
        with pil:
            limit = Image.MAX_IMAGE_PIXELS  # Pillow only warns between 1x and 2x it; decoding is the risk
            if limit and pil.width * pil.height > limit:
                raise GenaugError(
                    f"{path}: declares {pil.width}x{pil.height} pixels, more than Pillow's limit of {limit:,}; "
                    "not decoded"
                )
            pil.load()
            wide = pil.mode.startswith("I")  # 16- or 32-bit grey: scale to 8 bits, do not clip
            pil = pil.convert("I" if wide else "L" if pil.mode in ("1", "L") else "RGB")
            if image_size is not None:
                pil = pil.resize((image_size[1], image_size[0]), Image.Resampling.BOX)
            image = np.asarray(pil)
            if wide:
                top = 65535 if image.max(initial=0) <= 65535 else np.iinfo(np.int32).max
                image = np.round(image.astype(np.float64) * 255 / top).clip(0, 255)
            image = image.astype(np.uint8)
    except Image.DecompressionBombError:  # over twice the limit: Pillow refuses at open
        limit = Image.MAX_IMAGE_PIXELS
        raise GenaugError(f"{path}: declares more than twice Pillow's limit of {limit:,} pixels; not decoded") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise GenaugError(f"{path}: not a readable image ({type(err).__name__})") from None
    return image[..., None] if image.ndim == 2 else image
