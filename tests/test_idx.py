"""The idx:DIR source (the MNIST family's IDX files) and the ?train_size=N spec option, on tiny IDX files
made here (never the Debian package)."""

import gzip
import struct

import numpy as np
import pytest

from genaug.data import check_spec, load_arrays, resolved_spec, train_subset
from genaug.errors import GenaugError
from genaug.idx import FASHION_MNIST
from genaug.metrics import held_out_min_distance
from genaug.runs import RunDirectory
from genaug.synthetic import SyntheticDataset


def write_idx(path, array: np.ndarray, *, gz: bool = False, magic: bytes | None = None) -> None:
    header = magic or bytes([0, 0, 0x08, array.ndim])
    raw = header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


@pytest.fixture
def idx_dir(tmp_path):
    """An IDX directory: 30 train (3 classes x 10) and 9 test images of 6x5 pixels, train gzipped."""
    root = tmp_path / "tiny-mnist"
    root.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n, gz in (("train", 30, True), ("t10k", 9, False)):
        suffix = ".gz" if gz else ""
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 6, 5)), gz=gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % 3, gz=gz)
    return root


def test_idx_splits_shapes_and_names(idx_dir):
    train = load_arrays(f"idx:{idx_dir}", "train")
    test = load_arrays(f"idx:{idx_dir}", "test")
    assert train.x.shape == (30, 6, 5, 1) and train.x.dtype == np.uint8
    assert test.x.shape == (9, 6, 5, 1)
    np.testing.assert_array_equal(train.y, np.arange(30) % 3)
    assert train.info.class_names == ("0", "1", "2")
    assert train.info.split_sizes == {"train": 30, "test": 9}
    raw = gzip.decompress((idx_dir / "train-images-idx3-ubyte.gz").read_bytes())
    np.testing.assert_array_equal(train.x.ravel(), np.frombuffer(raw[16:], np.uint8))


def test_idx_known_dataset_names(idx_dir, tmp_path):
    fashion = tmp_path / "fashion-mnist"
    idx_dir.rename(fashion)
    names = load_arrays(f"idx:{fashion}", "test").info.class_names
    assert names == FASHION_MNIST  # by the directory's name (a real copy is known by its labels' sha256)
    (fashion / "class_names.txt").write_text("a\nb\nc\n")
    assert load_arrays(f"idx:{fashion}", "test").info.class_names == ("a", "b", "c")


def test_idx_prefixed_files(tmp_path):
    root = tmp_path / "emnist"
    root.mkdir()
    for split, n in (("train", 4), ("test", 2)):
        write_idx(root / f"emnist-letters-{split}-images-idx3-ubyte", np.zeros((n, 4, 4)))
        write_idx(root / f"emnist-letters-{split}-labels-idx1-ubyte", np.arange(n) % 2)
    # EMNIST names its test split "test", the others "t10k": both are found
    assert load_arrays(f"idx:{root}", "test").x.shape == (2, 4, 4, 1)
    assert load_arrays(f"idx:{root}", "train").info.split_sizes == {"train": 4, "test": 2}


@pytest.mark.parametrize(
    "damage, culprit",
    [
        (lambda d: write_idx(d / "t10k-images-idx3-ubyte", np.zeros((9, 6, 5)), magic=b"\0\0\x08\x02"), "magic number"),
        (lambda d: write_idx(d / "t10k-images-idx3-ubyte", np.zeros((9, 6, 5)), magic=b"\0\0\x0d\x03"), "type 0x0d"),
        (lambda d: _truncate(d / "t10k-images-idx3-ubyte", 7), "truncated"),
        (lambda d: _append(d / "t10k-labels-idx1-ubyte", b"\0"), "longer than its header"),
        (lambda d: write_idx(d / "t10k-labels-idx1-ubyte", np.arange(8) % 3), "8 labels for the 9 images"),
        (lambda d: (d / "t10k-labels-idx1-ubyte").unlink(), "no t10k-labels-idx1-ubyte"),
        (lambda d: (d / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip"), "several labels-idx1-ubyte files"),
        (lambda d: (d / "t10k-images-idx3-ubyte").write_bytes(b""), "magic number missing"),
    ],
)
def test_idx_bad_files_name_the_file(idx_dir, damage, culprit):
    damage(idx_dir)
    with pytest.raises(GenaugError, match=culprit) as caught:
        load_arrays(f"idx:{idx_dir}", "test")
    assert str(idx_dir) in str(caught.value) and "\n" not in str(caught.value)


def test_idx_corrupt_gzip(idx_dir):
    (idx_dir / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(GenaugError, match="train-labels-idx1-ubyte.gz: not a readable gzip file"):
        load_arrays(f"idx:{idx_dir}", "train")


def _truncate(path, drop):
    path.write_bytes(path.read_bytes()[:-drop])


def _append(path, extra):
    path.write_bytes(path.read_bytes() + extra)


def test_train_size_is_stratified_seeded_and_in_the_spec(idx_dir):
    subset = load_arrays(f"idx:{idx_dir}?train_size=12", "train")
    assert len(subset.y) == 12 and np.bincount(subset.y).tolist() == [4, 4, 4]
    assert subset.info.split_sizes == {"train": 12, "test": 9}
    np.testing.assert_array_equal(subset.x, load_arrays(f"idx:{idx_dir}?train_size=12", "train").x)
    full = load_arrays(f"idx:{idx_dir}", "train")
    assert {x.tobytes() for x in subset.x} <= {x.tobytes() for x in full.x}
    assert len(load_arrays(f"idx:{idx_dir}?train_size=12", "test").y) == 9  # the test split stays whole
    assert len(load_arrays("digits?train_size=100", "train").y) == 100
    assert resolved_spec("idx:rel/dir?train_size=5").endswith("/rel/dir?train_size=5")


def test_train_subset_proportions():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    assert np.bincount(y[train_subset(y, 10)]).tolist() == [5, 3, 2]
    assert np.bincount(y[train_subset(y, 7)]).tolist() == [4, 2, 1]
    rare = np.repeat([0, 1], [99, 1])
    assert np.bincount(rare[train_subset(rare, 3)]).tolist() == [2, 1]  # every class keeps one


@pytest.mark.parametrize(
    "spec, culprit",
    [
        ("digits?train_size=0", "train_size must be a positive integer"),
        ("digits?train_size=ten", "must be a positive integer, got 'ten'"),
        ("digits?size=10", "unknown option 'size'"),
        ("idx:/no/such/dir", "folder not found"),
    ],
)
def test_bad_specs(spec, culprit):
    with pytest.raises(GenaugError, match=culprit):
        check_spec(spec)


def test_train_size_out_of_range(idx_dir):
    with pytest.raises(GenaugError, match="train_size 31 must be between the number of classes"):
        load_arrays(f"idx:{idx_dir}?train_size=31", "train")


def test_cli_info_on_idx(run_cli, idx_dir, tmp_path):
    code, out, _ = run_cli("info", f"idx:{idx_dir}?train_size=15")
    assert code == 0 and "train 15, test 9" in out and "6x5x1" in out
    (idx_dir / "t10k-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03\0\0\0\x09")
    code, _, err = run_cli("info", f"idx:{idx_dir}")
    assert code == 1 and err.count("\n") == 1 and "t10k-images-idx3-ubyte" in err


def test_a_directory_of_the_train_split_alone_trains_and_samples(run_cli, tmp_path):
    root = tmp_path / "train-only"
    root.mkdir()
    rng, labels = np.random.default_rng(0), np.arange(60) % 3
    # Three patterns with a little noise: near neighbours in train, as in real data, so that "auto" passes draws.
    images = np.clip(rng.integers(40, 216, (3, 8, 8))[labels] + rng.integers(-4, 5, (60, 8, 8)), 0, 255)
    write_idx(root / "train-images-idx3-ubyte", images)
    write_idx(root / "train-labels-idx1-ubyte", labels)
    assert load_arrays(f"idx:{root}", "train").info.split_sizes == {"train": 60}
    code, _, err = run_cli(
        "train", "--data", f"idx:{root}", "--out", tmp_path / "run", "--preset", "smoke", "--max-steps", "1"
    )
    assert code == 0, err
    # The memorisation guard's default distance comes from a held-out tenth of train, not the missing test split.
    code, _, err = run_cli("sample", tmp_path / "run", "--out", tmp_path / "syn", "--per-class", "2")
    assert code == 0, err
    guard = SyntheticDataset.open(tmp_path / "syn").manifest.settings["min_distance"]
    seen = RunDirectory.open(tmp_path / "run").training_images()[0]
    assert len(seen) == 60 and guard == round(held_out_min_distance(seen), 6) > 0
    # What cannot do without the test split names the missing file in one line, leaving nothing behind.
    code, _, err = run_cli(
        "evaluate", "--data", f"idx:{root}", "--synthetic", tmp_path / "syn", "--out", tmp_path / "r"
    )
    assert code == 1 and err.count("\n") == 1 and "no t10k-images-idx3-ubyte[.gz] file (the test split" in err
    assert not (tmp_path / "r").exists()
