"""policy.json and genaug tune: the record, the search's use of labelled data only, resume."""

import dataclasses
import json

import numpy as np
import pytest
from conftest import all_files, copy_tree, shared_directory, smoke_config

from genaug import tuning as tune_module
from genaug.data import labelled_subset, load_arrays
from genaug.errors import GenaugError
from genaug.evaluation import evaluate
from genaug.policy import DEFAULT_POLICY, Policy
from genaug.report import Report
from genaug.sampler import sample
from genaug.synthetic import SyntheticDataset
from genaug.tuning_report import TuningReport

TINY = {"trials": 3, "folds": 2, "seeds": 1, "steps": 20, "progress": False}


@pytest.fixture(scope="module")
def synthetic(smoke_runs, tmp_path_factory):
    def build(root):
        sample(smoke_runs["cvae"], root / "syn", per_class=10, seed=0, progress=False)

    return shared_directory(tmp_path_factory, "tuning_synthetic", build) / "syn"


def test_policy_round_trip_and_bad_files(tmp_path):
    policy = Policy(
        synthetic_ratio=2.0, synthetic_weight=0.5, augmentation=1.0, synthetic_set=1, min_confidence=0.7, noise=0.02
    )
    policy.save(tmp_path / "policy.json")
    assert Policy.load(tmp_path / "policy.json") == policy and policy.synthetic_fraction == pytest.approx(2 / 3)
    assert Policy.from_dict({**Policy(cutmix_alpha=1).to_dict()}) == Policy(cutmix_alpha=1.0)
    assert DEFAULT_POLICY.synthetic_fraction == 0.5
    (tmp_path / "old.json").write_text(json.dumps({"version": 1, "synthetic_ratio": 2, "augmentation": 1}))
    assert Policy.load(tmp_path / "old.json") == Policy(synthetic_ratio=2.0, augmentation=1.0)  # genaug 0.2 files
    cases = [
        ({"version": 1, "ratio": 1}, "unknown policy key 'ratio'"),
        ({"version": 6}, "policy version 6"),
        ({"version": 5, "real_balanced": "no"}, "real_balanced must be true or false, got 'no'"),
        ({"version": 3, "pseudo_labels": "yes"}, "pseudo_labels must be true or false, got 'yes'"),
        ({"version": 4, "class_balanced": 1}, "class_balanced must be true or false, got 1"),
        ({"version": 2, "mixup_alpha": 0.2, "cutmix_alpha": 1}, "mixup_alpha or cutmix_alpha, not both"),
        ({"version": 2, "noise": 0.5}, "noise must be a number in [0, 0.2], got 0.5"),
        ({"version": 2, "mixup_alpha": -1}, "mixup_alpha must be a number in [0, 2]"),
        ({"version": 1, "synthetic_ratio": 4}, "synthetic_ratio must be a number in [0, 3], got 4"),
        ({"version": 1, "synthetic_weight": 0}, "synthetic_weight must be a number in (0, 1]"),
        ({"version": 1, "augmentation": "strong"}, "augmentation must be a number"),
        ({"version": 1, "synthetic_set": -1}, "synthetic_set must be an index >= 0"),
        ({"version": 1, "min_confidence": 2}, "min_confidence must be null or a number in [0, 1], got 2"),
    ]
    for raw, message in cases:
        (tmp_path / "bad.json").write_text(json.dumps(raw))
        with pytest.raises(GenaugError, match=message.replace("[", r"\[").replace("(", r"\(")) as err:
            Policy.load(tmp_path / "bad.json")
        assert str(err.value).startswith(str(tmp_path / "bad.json")) and "\n" not in str(err.value)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(GenaugError, match="corrupt JSON"):
        Policy.load(tmp_path / "bad.json")


def test_the_search_never_reads_test_labels(synthetic, tmp_path, monkeypatch):
    honest = tune_module.tune("digits", [synthetic], tmp_path / "honest", **TINY)
    real_load = tune_module.load_arrays
    calls = []

    def poisoned(data, split, **kwargs):
        arrays = real_load(data, split, **kwargs)
        calls.append(split)
        if split == "test":  # the labels are scrambled: a search that used them would choose differently
            arrays = arrays.subset(np.arange(len(arrays.y)))
            arrays.y[:] = np.random.default_rng(1).permutation(arrays.y)
        return arrays

    monkeypatch.setattr(tune_module, "load_arrays", poisoned)
    blind = tune_module.tune("digits", [synthetic], tmp_path / "poisoned", **TINY)
    assert calls == ["train", "test"]  # the test split once, after the search
    assert blind.policy == honest.policy and blind.validation_score == honest.validation_score
    assert (tmp_path / "poisoned" / "trials.csv").read_text() == (tmp_path / "honest" / "trials.csv").read_text()
    assert blind.test["tuned"].mean != honest.test["tuned"].mean  # the poison did reach the report


def test_a_resumed_search_equals_an_uninterrupted_one(synthetic, tmp_path, ram):
    """Also on object storage: the interrupted search runs on ``ram://``, where Optuna's journal (a locked
    local file) lives as a copy stored after every trial. (That scores do not depend on where the classifiers
    train, here or in worker processes, test_evaluation checks for the scoring tune and evaluate share.)"""
    quick = {**TINY, "seeds": 0}  # the search alone: no test rows
    whole = tune_module.tune("digits", [synthetic], tmp_path / "whole", **{**quick, "trials": 4})
    copy_tree(synthetic, f"{ram}/syn")
    tune_module.tune("digits", [f"{ram}/syn"], f"{ram}/parts", **{**quick, "trials": 2})
    parts = tune_module.tune("digits", [f"{ram}/syn"], f"{ram}/parts", **{**quick, "trials": 4})
    assert all_files(f"{ram}/parts")["trials.csv"] == (tmp_path / "whole" / "trials.csv").read_bytes()
    assert parts.policy == whole.policy and parts.trials == 4
    assert Policy.load(f"{ram}/parts/policy.json") == Policy.load(tmp_path / "whole" / "policy.json")
    rows = (tmp_path / "whole" / "trials.csv").read_text().splitlines()[1:4]
    baselines = [  # real only, classic augmentation, the default 50 % mix
        ["0.0", "none", "0.0", "0.0", "0", "1.0"],
        ["1.0", "none", "0.0", "0.0", "0", "1.0"],
        ["0.0", "none", "0.0", "1.0", "0", "1.0"],
    ]
    assert [r.split(",")[2:] for r in rows] == baselines
    for name in ("policy.json", "objective.png", "report.md"):
        assert (tmp_path / "whole" / name).is_file()
    with pytest.raises(GenaugError, match="holds a different tuning"):
        tune_module.tune("digits", [synthetic], tmp_path / "whole", **{**quick, "folds": 3})


@pytest.mark.parametrize("holds_up", [False, True])
def test_the_search_winner_must_beat_the_baselines_on_fresh_folds(synthetic, tmp_path, monkeypatch, holds_up):
    folds = TINY["folds"]

    def lucky(fit):
        """Baselines get half the fold right; other policies all of it in the search (classifier seeds
        below ``folds``) and, unless they hold up, none on the fresh folds."""
        held_out = fit.test
        if fit.policy in tune_module.BASELINES.values():
            right = np.arange(len(held_out.y)) % 2 == 0
        else:
            right = np.full(len(held_out.y), holds_up or fit.seed < folds)
        return np.where(right, held_out.y, held_out.y + 1)

    monkeypatch.setattr(tune_module, "test_predictions", lucky)
    report = tune_module.tune("digits", [synthetic], tmp_path / "tuned", **{**TINY, "trials": 4, "seeds": 0})
    assert TuningReport.read(tmp_path / "tuned") == report
    raw = json.loads((tmp_path / "tuned" / "report.json").read_text())  # as version 3 wrote it
    raw["validation_accuracy"], raw["report_version"] = raw.pop("validation_score"), 3
    (tmp_path / "tuned" / "report.json").write_text(json.dumps(raw))
    assert TuningReport.read(tmp_path / "tuned") == dataclasses.replace(report, report_version=3)
    confirmation = report.confirmation
    assert confirmation.on == "fresh folds" and list(confirmation.scores) == [*tune_module.BASELINES, "search"]
    assert confirmation.scores["search"] == (1.0 if holds_up else 0.0)
    assert confirmation.kept == ("search" if holds_up else "real only")  # a tie keeps the simplest
    assert report.policy == confirmation.policies[confirmation.kept]
    assert report.policy == Policy.load(tmp_path / "tuned" / "policy.json").to_dict()
    markdown = (tmp_path / "tuned" / "report.md").read_text()
    assert f"Kept: {confirmation.kept}." in markdown and "--holdout" in markdown


def test_a_holdout_decides_where_the_generator_leaks(synthetic, tmp_path, monkeypatch):
    """A generator that echoes its training images makes synthetic data look useful on folds of those
    images; the examples it was kept from tell the truth."""
    from trainers import train

    run = train(smoke_config(tmp_path / "run", data={"holdout": 0.2, "unlabeled": "auto"}, optim={"epochs": 1}))
    record = run.record
    chosen = labelled_subset(load_arrays("digits", "train").y, labels_per_class=10, seed=0)
    held, seen = record.holdout_indices, record.train_indices
    assert len(held) == 20 and len(seen) == 80 and sorted(held + seen) == chosen.tolist()
    assert np.bincount(load_arrays("digits", "train").y[held]).tolist() == [2] * 10
    assert not set(held) & set(record.unlabeled_indices)  # not even without labels
    assert len(held) + len(seen) + len(record.unlabeled_indices) == 1347
    sample(run.directory, tmp_path / "syn", per_class=3, seed=0, progress=False)
    assert SyntheticDataset.open(tmp_path / "syn").holdout_indices == held
    with pytest.raises(GenaugError, match="synthetic sets come from generators with different holdouts"):
        tune_module.tune("digits", [tmp_path / "syn", synthetic], tmp_path / "two", **TINY)
    assert not (tmp_path / "two").exists()

    def leaky(fit):
        """Synthetic data gets every image the generator saw right and a quarter of the others;
        without it, half of everything."""
        held_out = fit.test
        if fit.policy.synthetic_ratio > 0:
            right = ~np.isin(held_out.indices, held) | (np.arange(len(held_out.y)) % 4 == 0)
        else:
            right = np.arange(len(held_out.y)) % 2 == 0
        return np.where(right, held_out.y, held_out.y + 1)

    monkeypatch.setattr(tune_module, "test_predictions", leaky)
    report = tune_module.tune("digits", [tmp_path / "syn"], tmp_path / "tuned", **{**TINY, "trials": 4, "seeds": 0})
    assert report.search["real_train_examples"] == 100 and report.search["holdout_examples"] == 20
    confirmation = report.confirmation
    assert confirmation.on == "holdout" and confirmation.examples == 20
    assert max(t for t in _validation_scores(tmp_path / "tuned")) == 1.0  # the search was fooled ...
    assert confirmation.kept == "real only" and report.policy["synthetic_ratio"] == 0  # ... the check not
    assert confirmation.choice != "real only" and confirmation.intervals["real only"][0] > 0  # beyond its noise
    assert "--holdout" not in (tmp_path / "tuned" / "report.md").read_text()

    def one_image_apart(fit):
        """Synthetic data gets the folds right and all but two held-out images; without it, half of the
        folds and all but one held-out image: on the holdout real only is ahead by one image of twenty."""
        held_out, synthetic = fit.test, fit.policy.synthetic_ratio > 0
        if np.isin(held_out.indices, held).all():
            right = np.arange(len(held_out.y)) >= (2 if synthetic else 1)
        else:
            right = np.full(len(held_out.y), True) if synthetic else np.arange(len(held_out.y)) % 2 == 0
        return np.where(right, held_out.y, held_out.y + 1)

    monkeypatch.setattr(tune_module, "test_predictions", one_image_apart)
    report = tune_module.tune("digits", [tmp_path / "syn"], tmp_path / "close", **{**TINY, "trials": 4, "seeds": 0})
    confirmation = report.confirmation
    assert confirmation.scores["real only"] - confirmation.scores[confirmation.choice] == pytest.approx(0.05)
    low, high = confirmation.intervals["real only"]
    assert low <= 0 < high  # inside the holdout's noise: the search's choice stands
    assert confirmation.kept == confirmation.choice and report.policy["synthetic_ratio"] > 0
    assert "paired 95 % intervals" in (tmp_path / "close" / "report.md").read_text()


def _validation_scores(out):
    return [float(row.split(",")[1]) for row in (out / "trials.csv").read_text().splitlines()[1:]]


def test_evaluate_applies_a_policy(synthetic, tmp_path):
    policy = Policy(synthetic_ratio=0.5, synthetic_weight=0.5, augmentation=1.0)
    report = evaluate("digits", synthetic, tmp_path / "report", seeds=1, fractions=(0.5,), steps=20, policy=policy)
    for kind in ("cnn", "svc"):
        entry = report.utility[kind].policy
        assert entry.policy == policy.to_dict() and 0.0 < entry.mean <= 1.0 and len(entry.gain.values) == 1
    assert "Trained as the policy says" in (tmp_path / "report" / "report.md").read_text()


def test_the_cli_tunes_without_test_seeds_and_evaluate_reads_a_policy_file(synthetic, tmp_path, run_cli):
    code, out, err = run_cli("tune", "--synthetic", synthetic, "--out", tmp_path / "t", "--trials", "1", "--folds", "2",
                             "--num-seeds", "0", "--steps", "5", "--jobs", "1", "--quiet")  # fmt: skip
    assert code == 0 and "(tuned: validation " in out, err
    Policy(synthetic_ratio=0.5).save(tmp_path / "policy.json")
    args = [
        "--synthetic",
        synthetic,
        "--out",
        tmp_path / "report",
        "--num-seeds",
        "1",
        "--fractions",
        "0.5",
        "--jobs",
        "1",
    ]
    code, _, err = run_cli("evaluate", *args, "--steps", "20", "--policy", tmp_path / "policy.json", "--quiet")
    assert code == 0, err
    report = Report.read(tmp_path / "report")
    assert report.utility["cnn"].policy.policy == Policy(synthetic_ratio=0.5).to_dict()
    code, _, err = run_cli("evaluate", *args, "--policy", tmp_path / "missing.json")
    assert code == 1 and "policy file not found" in err


def test_a_confidence_threshold_is_searched_and_applied_when_the_set_stores_confidence(smoke_runs, synthetic, tmp_path):
    import tensorflow as tf

    from genaug.mixing import mix
    from genaug.synthetic import SyntheticDataset

    scored = tmp_path / "scored"
    sample(smoke_runs["cvae"], scored, per_class=10, seed=0, min_confidence=0.0, progress=False)
    report = tune_module.tune("digits", [scored], tmp_path / "tuned", **TINY)
    header = (tmp_path / "tuned" / "trials.csv").read_text().splitlines()[0]
    assert "min_confidence" in header and "min_confidence" in report.policy
    assert "class_balanced" not in header  # searched on imbalanced labels only
    # The Python API filters by each element's confidence as it reads.
    policy = Policy(synthetic_ratio=1.0, min_confidence=0.7)
    zeros = {"image": np.zeros((50, 8, 8, 1), np.uint8), "label": np.zeros(50, np.int64)}
    real = tf.data.Dataset.from_tensor_slices(zeros)
    synthetic_set = SyntheticDataset.open(scored)
    mixed = list(mix(real, synthetic_set.as_dataset(), policy=policy, seed=0).as_numpy_iterator())
    kept = {e["image"].tobytes() for e in mixed if e["is_synthetic"]}
    allowed = {x.tobytes() for x in synthetic_set.arrays(min_confidence=0.7)[0]}
    assert kept and kept <= allowed
    # evaluate applies it to the set read with that threshold.
    quick = dict(seeds=1, fractions=(0.5,), steps=20, policy=policy)
    applied = evaluate("digits", scored, tmp_path / "scored_report", **quick)
    assert applied.utility["cnn"].policy.policy["min_confidence"] == 0.7
    # A set without stored confidence cannot take such a policy: one line, before any training.
    with pytest.raises(GenaugError, match="stores no oracle confidence"):
        evaluate("digits", synthetic, tmp_path / "report", **quick)
