"""Imbalanced classes: the long-tailed subset, --class-balance fill, and balanced accuracy."""

import numpy as np
import pytest
from conftest import smoke_config

from genaug.data import load_arrays, long_tailed_subset
from genaug.errors import GenaugError
from genaug.metrics import is_imbalanced, score
from genaug.report import Report
from genaug.sampler import class_counts


def test_the_long_tailed_subset_is_exact_and_seeded():
    y = np.repeat(np.arange(5), 100)
    kept = long_tailed_subset(y, ratio=100, n_max=100, seed=3)
    assert np.bincount(y[kept]).tolist() == [100, 32, 10, 3, 1]  # 100 * 100 ** (-c / 4)
    assert np.array_equal(kept, long_tailed_subset(y, ratio=100, n_max=100, seed=3))
    assert not np.array_equal(kept, long_tailed_subset(y, ratio=100, n_max=100, seed=4))
    with pytest.raises(GenaugError, match="class 0 has 100 examples, fewer than its 200"):
        long_tailed_subset(y, ratio=10, n_max=200)
    digits = load_arrays("digits?imbalance=10", "train")
    assert digits.info.class_counts[0] == 10 * digits.info.class_counts[-1] + 1  # 131 and 13
    assert len(load_arrays("digits?imbalance=10", "test").y) == 450  # the test split stays balanced
    with pytest.raises(GenaugError, match="imbalance must be a positive integer"):
        load_arrays("digits?imbalance=0", "train")


def test_fill_tops_every_class_up_to_the_largest():
    assert class_counts(3, class_balance="fill", prior=(50, 20, 5)) == (0, 30, 45)
    with pytest.raises(GenaugError, match="fill asks for no images"):
        class_counts(3, class_balance="fill", prior=(5, 5, 5))
    with pytest.raises(GenaugError, match="fill tops every class up to the largest; give neither"):
        class_counts(3, per_class=2, class_balance="fill", prior=(5, 2, 1))


def test_balanced_accuracy_weighs_every_class_the_same():
    truth = np.array([0] * 8 + [1] * 2)
    always_zero = np.zeros(10, np.int64)
    assert score("accuracy", always_zero, truth) == 0.8
    assert score("balanced_accuracy", always_zero, truth) == 0.5
    assert is_imbalanced(truth) and not is_imbalanced(np.array([0, 1, 1, 0]))
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        score("f1", always_zero, truth)


@pytest.mark.slow
def test_an_imbalanced_run_is_filled_and_scored_by_balanced_accuracy(tmp_path, run_cli):
    import json

    from trainers import train

    run = train(smoke_config(tmp_path / "run", data={"data": "digits?imbalance=10", "labels_per_class": None}))
    prior = run.record.dataset.class_counts
    code, _, err = run_cli("sample", run.directory, "--out", tmp_path / "syn", "--class-balance", "fill", "--quiet")
    assert code == 0, err
    manifest = json.loads((tmp_path / "syn" / "manifest.json").read_text())
    assert [p + c for p, c in zip(prior, manifest["counts_per_class"], strict=True)] == [max(prior)] * 10
    args = ("--data", "digits?imbalance=10", "--synthetic", tmp_path / "syn", "--out", tmp_path / "report")
    code, _, err = run_cli("evaluate", *args, "--num-seeds", "1", "--steps", "5", "--metric", "balanced_accuracy",
                           "--jobs", "1")  # fmt: skip
    assert code == 0, err
    report = Report.read(tmp_path / "report")
    assert report.settings.metric == "balanced_accuracy" and report.settings.real_train_imbalanced
    assert "balanced accuracy on the real test split" in (tmp_path / "report" / "report.md").read_text()
    baselines = report.utility["cnn"].baselines
    assert baselines["class_weighted"].mean > 0 and baselines["oversampled"].mean > 0  # the usual remedies
    # tune on imbalanced labels: the class-weighted loss, random oversampling and the default mix with the real
    # images oversampled are baselines, and both kinds of class balancing searched dimensions.
    args = ("--data", "digits?imbalance=10", "--synthetic", tmp_path / "syn", "--out", tmp_path / "tuned")
    tiny = ("--trials", "6", "--folds", "2", "--steps", "5", "--seeds", "0", "--jobs", "1", "--quiet")
    code, _, err = run_cli("tune", *args, *tiny, "--metric", "balanced_accuracy")
    assert code == 0, err
    import csv

    with open(tmp_path / "tuned" / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    assert "validation_balanced_accuracy" in trials[0]  # the score the search maximised
    remedies = [(t["class_balanced"], t["real_balanced"], t["synthetic_ratio"]) for t in trials[3:6]]
    assert remedies == [("True", "False", "0.0"), ("False", "True", "0.0"), ("False", "True", "1.0")]
    search = json.loads((tmp_path / "tuned" / ".genaug" / "search.json").read_text())
    assert search["class_balanced_choices"] and search["real_balanced_choices"]
    # At 5 steps a balancing remedy is far ahead on balanced accuracy, so tune keeps one.
    kept = json.loads((tmp_path / "tuned" / "policy.json").read_text())
    assert kept["class_balanced"] or kept["real_balanced"]


def test_class_balancing_policies_weigh_or_oversample_the_svc_by_class(monkeypatch):
    from sklearn.svm import SVC

    from genaug.data import load_arrays
    from genaug.policy import Policy
    from genaug.scoring import Fit, test_predictions

    seen = {}
    fit_svc = SVC.fit

    def recording_fit(self, x, y, sample_weight=None):
        seen["totals"] = np.bincount(y, weights=np.ones(len(y)) if sample_weight is None else sample_weight)
        return fit_svc(self, x, y, sample_weight=sample_weight)

    monkeypatch.setattr(SVC, "fit", recording_fit)
    real, test = load_arrays("digits?imbalance=10", "train"), load_arrays("digits", "test")
    synthetic = (real.x[:0], real.y[:0])
    for balanced in (False, True):
        policy = Policy(synthetic_ratio=0.0, class_balanced=balanced)
        test_predictions(Fit("svc", (real.x, real.y), synthetic, None, 0, test, 0, policy=policy))
        totals = seen["totals"]
        assert np.allclose(totals, totals.mean()) == balanced  # every class weighs the same, or as it counts
    test_predictions(Fit("svc", (real.x, real.y), synthetic, None, 0, test, 0, policy=Policy(0.0, real_balanced=True)))
    assert (seen["totals"] == np.bincount(real.y).max()).all()  # oversampled: every class as many as the largest


def test_class_balance_gives_the_generator_rare_classes_more_often_and_is_keyed_by_seed_and_epoch():
    import tensorflow as tf

    from trainers.pipeline import training_dataset

    y = np.repeat(np.arange(3), [80, 15, 5])
    x = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)  # each image names its example

    def epoch_labels(balance: float, epoch: int, seed: int = 0) -> np.ndarray:
        clock = tf.Variable(epoch, dtype=tf.int64)
        dataset, steps = training_dataset(x, y, batch_size=10, seed=seed, epoch=clock, class_balance=balance)
        assert steps == 10
        labels = np.concatenate([batch["label"].numpy() for batch in dataset])
        pixels = np.concatenate([batch["image"].numpy().ravel() for batch in dataset])
        assert np.array_equal(y[np.round((pixels + 1) * 127.5).astype(int)], labels)  # labels stay with images
        return labels

    assert np.bincount(epoch_labels(0.0, 0), minlength=3).tolist() == [80, 15, 5]  # an epoch: every example once
    draws = np.concatenate([epoch_labels(1.0, epoch) for epoch in range(5)])
    assert np.all(np.abs(np.bincount(draws, minlength=3) / len(draws) - 1 / 3) < 0.1)  # every class alike
    square_root = np.concatenate([epoch_labels(0.5, epoch) for epoch in range(5)])
    assert np.bincount(square_root)[2] > 2 * np.bincount(np.concatenate([y] * 5))[2]  # between the two
    assert np.array_equal(epoch_labels(1.0, 3), epoch_labels(1.0, 3))  # a resumed epoch sees the same
    assert not np.array_equal(epoch_labels(1.0, 3), epoch_labels(1.0, 4))
    assert not np.array_equal(epoch_labels(1.0, 3), epoch_labels(1.0, 3, seed=1))


def test_class_balance_is_checked():
    from trainers import config as cfg

    with pytest.raises(GenaugError, match="data.class_balance"):
        cfg.from_dict({"data": {"class_balance": 2}})
