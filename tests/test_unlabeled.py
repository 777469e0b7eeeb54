"""Scarce labels: the rest of the train split (or another source) is learnt from without its labels."""

import json

import numpy as np
import pytest
from conftest import smoke_config

import genaug
import genaug.data
import models
from genaug.runs import RunDirectory
from trainers import train, training


def _weights(run_dir):
    return [w.numpy() for w in models.load_model(run_dir / "generator.keras").weights]


def test_auto_learns_from_the_rest_of_the_split_and_records_it(tmp_path):
    run = train(smoke_config(tmp_path / "run", data={"unlabeled": "auto", "teacher": "spreading"}, optim={"epochs": 1}))
    record = run.record
    assert record.num_train_examples == 100 and len(record.train_indices) == 100
    assert sorted(record.train_indices + record.unlabeled_indices) == list(range(1347))
    assert record.unlabeled["count"] == 1247 and 900 < record.unlabeled["pseudo_labelled"] <= 1247
    x, y = RunDirectory.open(run.directory).training_images()
    assert len(x) == len(y) == 100 + record.unlabeled["pseudo_labelled"]
    # The teacher is right on most of what it keeps (the labels are read here only to check that).
    truth = genaug.load_arrays("digits", "train").y[record.unlabeled_indices]
    with np.load(run.directory / "pseudo_labels.npz") as pseudo:
        kept = pseudo["confidence"] >= 0.9
        assert np.mean(pseudo["labels"][kept] == truth[kept]) > 0.9


@pytest.mark.slow
def test_the_unlabelled_images_labels_are_never_read(tmp_path, monkeypatch):
    config = smoke_config(tmp_path / "plain", data={"unlabeled": "auto"}, optim={"epochs": 1})
    train(config)
    chosen = genaug.data.labelled_subset(genaug.load_arrays("digits", "train").y, labels_per_class=10, seed=0)
    original = training.load_arrays

    def scrambled(data, split="train", **kwargs):  # the split with the unlabelled images' labels shuffled
        arrays = original(data, split, **kwargs)
        rest = np.setdiff1d(np.arange(len(arrays.y)), chosen)
        y = arrays.y.copy()
        y[rest] = np.random.default_rng(1).permutation(y[rest])
        return genaug.data.LabelledArrays(arrays.x, y, arrays.info, arrays.indices)

    # The labelled subset is chosen from every label (that is how scarcity is simulated); fix it, so
    # that only what happens after the choice is tested.
    monkeypatch.setattr(training, "labelled_subset", lambda *args, **kwargs: chosen)
    monkeypatch.setattr(training, "load_arrays", scrambled)
    train(smoke_config(tmp_path / "scrambled", data={"unlabeled": "auto"}, optim={"epochs": 1}))
    for a, b in zip(_weights(tmp_path / "plain"), _weights(tmp_path / "scrambled"), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_an_npz_source_is_used_without_its_labels(tmp_path):
    digits = genaug.load_arrays("digits", "test").subset(range(200))
    np.savez(tmp_path / "u.npz", x=digits.x, y=digits.y)
    np.savez(tmp_path / "v.npz", x=digits.x, y=np.zeros_like(digits.y))
    for name in ("u", "v"):
        train(smoke_config(tmp_path / name, data={"unlabeled": f"npz:{tmp_path / name}.npz"}, optim={"epochs": 1}))
    for a, b in zip(_weights(tmp_path / "u"), _weights(tmp_path / "v"), strict=True):
        np.testing.assert_array_equal(a, b)
    record = json.loads((tmp_path / "u" / "run.json").read_text())
    assert record["unlabeled_indices"] is None and record["unlabeled"]["count"] == 200


@pytest.mark.parametrize(
    ("make", "culprit"),
    [
        (lambda root: root.mkdir(), "no PNG/JPEG images in"),
        (lambda root: _pngs(root, [(8, 8), (9, 9)]), "images of mixed sizes"),
        (lambda root: _pngs(root, [(16, 16)]), "images of shape (16, 16, 1), not (8, 8, 1)"),
        (lambda root: (root.mkdir(), (root / "x.png").write_bytes(b"not a png")), "x.png: not a readable image"),
    ],
)
def test_bad_unlabelled_sources_are_one_line(tmp_path, run_cli, make, culprit):
    make(tmp_path / "u")
    args = ["train", "--preset", "smoke", "--labels-per-class", "5", "--out", tmp_path / "run"]
    code, _, err = run_cli(*args, "--unlabeled", f"images:{tmp_path / 'u'}")
    assert code == 1 and culprit in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def _pngs(root, sizes):
    from PIL import Image

    root.mkdir()
    for i, size in enumerate(sizes):
        Image.fromarray(np.zeros(size, np.uint8)).save(root / f"{i}.png")


@pytest.mark.slow
def test_evaluate_reports_the_route_without_genaug(tmp_path):
    run = train(smoke_config(tmp_path / "run", data={"unlabeled": "auto", "teacher": "spreading"}, optim={"epochs": 1}))
    genaug.sample(run.directory, tmp_path / "syn", per_class=5, progress=False)
    report = genaug.evaluate(
        "digits", tmp_path / "syn", tmp_path / "r", seeds=2, fractions=(0.5,), steps=30, progress=False
    )
    for kind in ("cnn", "svc"):
        baseline = report.utility[kind].baselines["label_spreading"]
        real = report.utility[kind].conditions["real"].values
        assert len(baseline.values) == 2
        assert baseline.gain.mean == pytest.approx(np.mean(baseline.values) - np.mean(real))
    assert report.utility["svc"].baselines["label_spreading"].mean > 0.9  # 100 labels + spreading
    assert "Without genaug" in (tmp_path / "r" / "report.md").read_text()
