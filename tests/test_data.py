import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from genaug.data import holdout_subset, labelled_subset, load_arrays, load_dataset
from genaug.errors import GenaugError


def _assert_element_structure(ds, shape):
    spec = ds.element_spec
    assert set(spec) == {"image", "label"}
    assert spec["image"].dtype == tf.uint8 and tuple(spec["image"].shape) == shape
    assert spec["label"].dtype == tf.int64 and spec["label"].shape == ()


def test_digits_split_contract():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    train = load_arrays("digits", "train")
    test = load_arrays("digits", "test")
    assert len(train.y) == 1347 and len(test.y) == 450
    assert train.x.dtype == np.uint8 and train.x.max() == 255
    digits = load_digits()
    _, test_index = train_test_split(np.arange(1797), test_size=0.25, random_state=0, stratify=digits.target)
    np.testing.assert_array_equal(test.y, digits.target[test_index])
    np.testing.assert_array_equal(test.x[..., 0], np.round(digits.images[test_index] * 255 / 16))
    assert train.info.class_names == tuple("0123456789")
    assert train.info.split_sizes == {"train": 1347, "test": 450}


def test_load_dataset_element_structure():
    ds, info = load_dataset("digits", "test")
    _assert_element_structure(ds, (8, 8, 1))
    assert sum(info.class_counts) == 450


def test_tfds_source_offline():
    with tfds.testing.mock_data(num_examples=12):
        ds, info = load_dataset("tfds:mnist", "train")
        _assert_element_structure(ds, (28, 28, 1))
        assert info.num_classes == 10 and sum(info.class_counts) == 12


def test_tfds_rgb_source_offline():
    with tfds.testing.mock_data(num_examples=4):
        ds, info = load_dataset("tfds:cifar10", "test")
        _assert_element_structure(ds, (32, 32, 3))
        assert info.num_classes == 10 and info.split_sizes["test"] == 4


def test_unknown_tfds_name():
    with pytest.raises(GenaugError, match="unknown tfds dataset 'no_such_set'"):
        load_arrays("tfds:no_such_set")


def test_folder_source_with_stratified_split(image_folder):
    train = load_arrays(f"folder:{image_folder}", "train")
    test = load_arrays(f"folder:{image_folder}", "test")
    assert train.info.class_names == ("cat", "dog", "eel")
    assert len(train.y) + len(test.y) == 18
    assert train.info.class_counts == (4, 4, 5) and test.info.class_counts == (2, 2, 1)
    _assert_element_structure(train.to_dataset(), (8, 8, 1))


def test_folder_with_split_subfolders(tmp_path):
    for split, count in (("train", 3), ("test", 1)):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (4, 4), (i, 0, 0)).save(tmp_path / split / name / f"{i}.png")
    arrays = load_arrays(f"folder:{tmp_path}", "test")
    assert arrays.x.shape == (2, 4, 4, 3)
    assert arrays.info.split_sizes == {"train": 6, "test": 2}


def test_folder_resizes_with_image_size(image_folder):
    Image.new("L", (16, 12)).save(image_folder / "cat" / "big.png")
    with pytest.raises(GenaugError, match="differ in size.*pass image_size HxW"):
        load_arrays(f"folder:{image_folder}")
    arrays = load_arrays(f"folder:{image_folder}", image_size=(4, 4))
    assert arrays.x.shape[1:] == (4, 4, 1)


def test_npz_source(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(
        path,
        x=rng.integers(0, 256, (40, 6, 6), dtype=np.uint8),
        y=np.arange(40) % 4,
        class_names=np.array(["a", "b", "c", "d"]),
    )
    arrays = load_arrays(f"npz:{path}", "train")
    assert arrays.x.shape == (30, 6, 6, 1) and arrays.info.class_names == ("a", "b", "c", "d")


def test_labelled_subset_is_seeded_and_stratified():
    y = np.repeat(np.arange(3), [5, 7, 9])
    first = labelled_subset(y, labels_per_class=4, seed=1)
    assert np.array_equal(first, labelled_subset(y, labels_per_class=4, seed=1))
    assert not np.array_equal(first, labelled_subset(y, labels_per_class=4, seed=2))
    assert np.bincount(y[first]).tolist() == [4, 4, 4]
    fraction = labelled_subset(y, label_fraction=0.5, seed=0)
    assert np.bincount(y[fraction]).tolist() == [2, 4, 4]  # round half to even, at least 1


def test_holdout_is_seeded_stratified_and_leaves_every_class_something():
    y = np.repeat(np.arange(3), [10, 5, 2])
    held = holdout_subset(y, 0.2, seed=0)
    assert np.bincount(y[held]).tolist() == [2, 1, 1]  # at least one per class, at least one left
    assert np.array_equal(held, holdout_subset(y, 0.2, seed=0)) and np.all(np.diff(held) > 0)
    assert not np.array_equal(held, labelled_subset(y, label_fraction=0.2, seed=0))  # its own random stream
    assert np.bincount(y[holdout_subset(y, 0.9, seed=3)]).tolist() == [9, 4, 1]
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(GenaugError, match=r"holdout .* must be in \(0, 1\)"):
            holdout_subset(y, fraction)
    with pytest.raises(GenaugError, match="holdout needs at least two labelled examples of every class"):
        holdout_subset(np.array([0, 0, 1]), 0.5)


def test_scarce_labels_through_load_arrays():
    arrays = load_arrays("digits", labels_per_class=10, seed=3)
    assert arrays.info.class_counts == (10,) * 10


# ---- bad input: one clear error naming the culprit --------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("npz:/no/such.npz", "npz file not found: /no/such.npz"),
        ("folder:/no/such/dir", "folder not found: /no/such/dir"),
        ("mnist", "bad data spec 'mnist'"),
        ("digits:extra", "bad data spec"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(GenaugError, match=message):
        load_arrays(spec)


def test_unknown_split():
    with pytest.raises(GenaugError, match="unknown split 'validation'"):
        load_arrays("digits", "validation")


def test_empty_class_folder(image_folder):
    (image_folder / "fox").mkdir()
    with pytest.raises(GenaugError, match="fox: empty class folder"):
        load_arrays(f"folder:{image_folder}")


def test_corrupt_image_is_named(image_folder):
    (image_folder / "dog" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(GenaugError, match="broken.png: not a readable image"):
        load_arrays(f"folder:{image_folder}")


def test_mixed_channels_without_image_size(image_folder):
    Image.new("RGB", (8, 8)).save(image_folder / "eel" / "colour.png")
    with pytest.raises(GenaugError, match="differ in size or channels"):
        load_arrays(f"folder:{image_folder}")


def _npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 3, 3), np.uint8)}, "missing array 'y'"),
        ({"y": np.zeros(4, int)}, "missing array 'x'"),
        ({"x": np.full((4, 3, 3), np.nan), "y": np.zeros(4, int)}, "NaN"),
        ({"x": np.full((4, 3, 3), 300), "y": np.zeros(4, int)}, "outside the integers 0..255"),
        ({"x": np.zeros((4, 3, 3), np.uint8), "y": np.zeros(5, int)}, "4 images but y has 5"),
        ({"x": np.zeros((4, 3, 3), np.uint8), "y": np.array([0, 1, -1, 0])}, "negative labels"),
        ({"x": np.zeros((4, 3), np.uint8), "y": np.zeros(4, int)}, "must be NxHxW"),
    ],
)
def test_bad_npz(tmp_path, arrays, message):
    with pytest.raises(GenaugError, match=message):
        load_arrays(_npz(tmp_path, **arrays))


def test_labels_per_class_larger_than_smallest_class():
    with pytest.raises(GenaugError, match="labels_per_class 200 .*smallest class size \\(131\\)"):
        load_arrays("digits", labels_per_class=200)


def test_bad_label_fraction():
    with pytest.raises(GenaugError, match="label_fraction 1.5"):
        load_arrays("digits", label_fraction=1.5)
