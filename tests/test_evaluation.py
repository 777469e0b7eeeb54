"""End-to-end evaluate on a smoke run's synthetic set (tiny step budget)."""

import json
import re
from pathlib import Path

import pytest
from conftest import all_files, copy_tree, shared_directory

from genaug import sample
from genaug.errors import GenaugError
from genaug.evaluation import evaluate
from genaug.report import REPORT_VERSION, Report

PREVIOUS_SYNTHETIC = Path(__file__).parent / "fixtures" / "previous_release" / "syn"  # 3 per class, 5 labels


@pytest.fixture(scope="module")
def synthetic(smoke_runs, tmp_path_factory):
    def build(root):
        sample(smoke_runs["cvae"], root / "syn", per_class=20, progress=False)

    return shared_directory(tmp_path_factory, "evaluation_synthetic", build) / "syn"


@pytest.mark.slow
def test_report_has_every_section(synthetic, tmp_path, run_cli):
    code, out, _ = run_cli(
        "evaluate",
        "--data",
        "digits",
        "--synthetic",
        synthetic,
        "--out",
        tmp_path / "r",
        "--seeds",
        "2",
        "--fractions",
        "0.5",
        "--steps",
        "20",
        "--jobs",
        "1",  # one worker process: the test below checks that several give the same figures
    )
    assert code == 0 and "cnn  mixed_0.5" in out
    # Progress while the classifiers train: each classifier's seeds as they finish.
    assert "classifiers: 16 fits ..." in out  # two classifiers, two seeds, three shares and classic augmentation
    assert re.search(r"cnn  seed 1 of 2 trained \[\d+ s\]", out) and re.search(r"svc  seed 2 of 2 trained", out)
    report = Report.read(tmp_path / "r")
    assert report.report_version == REPORT_VERSION
    # The generator trained on 20 labels per class: evaluation uses exactly that subset.
    assert report.settings.real_train_examples == 200
    for kind in ("cnn", "svc"):
        conditions = report.utility[kind].conditions
        assert set(conditions) == {"real", "mixed_0.5", "synthetic"}
        assert len(conditions["real"].values) == 2 and len(conditions["real"].per_class) == 10
        assert set(report.utility[kind].gain) == {"0.5"}
        # The smoke run learnt from labelled images only: the classic-augmentation route, no spreading.
        baselines = report.utility[kind].baselines
        assert set(baselines) == {"classic_augmentation"} and len(baselines["classic_augmentation"].values) == 2
        assert baselines["classic_augmentation"].gain.ci95[0] <= baselines["classic_augmentation"].gain.mean
    assert 0 <= report.fidelity.synthetic_vs_real_train.precision <= 1
    assert len(report.fidelity.per_class) == 10
    assert 0 <= report.memorisation.closer_to_train_share <= 1 and report.memorisation.near_copies >= 0
    for name in ("report.md", "accuracy_vs_fraction.png", "per_class_accuracy.png", "samples_real_vs_synthetic.png"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    assert "## Memorisation" in (tmp_path / "r" / "report.md").read_text()
    # A report of genaug 0.1 or 0.2 (without what version 2 added) still loads; a damaged field is one line.
    raw = json.loads((tmp_path / "r" / "report.json").read_text())
    del raw["report_version"], raw["settings"]["metric"], raw["settings"]["real_train_imbalanced"]
    for utility in raw["utility"].values():
        del utility["policy"]
        for condition in utility["conditions"].values():
            del condition["balanced_accuracy"]
        for route in utility["baselines"].values():
            del route["name"], route["path"], route["policy"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.json").write_text(json.dumps(raw))
    old = Report.read(tmp_path / "old")
    assert old.report_version == 1 and old.utility == report.utility and old.settings.metric == "accuracy"
    raw["utility"]["cnn"]["conditions"]["real"]["mean"] = "high"
    (tmp_path / "old" / "report.json").write_text(json.dumps(raw))
    with pytest.raises(GenaugError, match=r"report.json: utility.cnn.conditions.real.mean must be a finite number"):
        Report.read(tmp_path / "old")


@pytest.mark.slow
def test_the_figures_depend_on_neither_the_workers_nor_the_storage(synthetic, tmp_path, ram):
    """In this process from local disk, and in two worker processes from a copy on ``ram://`` (object
    storage's code path) with the report written there: the same figures, the same files."""
    from genaug.workers import Workers

    settings = {"seeds": 1, "fractions": (0.5,), "steps": 20, "progress": False}
    here = evaluate("digits", synthetic, tmp_path / "report", **settings)
    copy_tree(synthetic, f"{ram}/syn")
    with Workers(2) as workers:
        there = evaluate("digits", f"{ram}/syn", f"{ram}/report", workers=workers, **settings)
    assert there.utility == here.utility and Report.read(f"{ram}/report").utility == here.utility
    assert set(all_files(f"{ram}/report")) == set(all_files(tmp_path / "report"))


def test_fidelity_depends_on_the_data_alone_not_on_what_trained_before():
    import keras

    from genaug import evaluation
    from genaug.data import load_arrays

    train, test = load_arrays("digits", "train").subset(range(300)), load_arrays("digits", "test")
    measured = []
    for earlier_seed in (1, 2):  # evaluate's classifier fits leave the global seed at their own
        evaluation._feature_models.clear()  # trained afresh each time
        keras.utils.set_random_seed(earlier_seed)
        measured.append(evaluation._fidelity(train, train, train.x[:100], train.y[:100], test, 10))
    assert measured[0] == measured[1]


def test_the_feature_model_is_trained_once_per_split(monkeypatch):
    """The demo's second setting evaluates against the same split: its fidelity reuses the model."""
    from genaug import classifier, evaluation
    from genaug.data import load_arrays

    trained = []
    monkeypatch.setattr(classifier, "train_classifier", lambda *args, **kwargs: trained.append(args) or object())
    monkeypatch.setattr(evaluation, "_feature_models", {})  # its fakes stay in this test
    train = load_arrays("digits", "train")
    model = evaluation._feature_model(train.subset(range(300)), 10)
    assert evaluation._feature_model(train.subset(range(300)), 10) is model and len(trained) == 1
    assert evaluation._feature_model(train.subset(range(299)), 10) is not model and len(trained) == 2
    assert evaluation._feature_model(train.subset(range(300)), 9) is not model and len(trained) == 3


def test_scarce_labels_must_match_the_generator_subset(tmp_path):
    with pytest.raises(GenaugError, match="labels_per_class 10 disagrees with the generator's training subset"):
        evaluate("digits", PREVIOUS_SYNTHETIC, tmp_path / "r", labels_per_class=10, seeds=1, progress=False)


def test_mismatched_data_is_refused(tmp_path):
    import numpy as np

    path = tmp_path / "other.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 4)
    with pytest.raises(GenaugError, match="does not match"):
        evaluate(f"npz:{path}", PREVIOUS_SYNTHETIC, tmp_path / "r", seeds=1, progress=False)


def test_missing_synthetic_dir(tmp_path, run_cli):
    code, _, err = run_cli("evaluate", "--synthetic", tmp_path / "nope", "--out", tmp_path / "r")
    assert code == 1 and "synthetic dataset not found" in err


def test_unlabeled_chooses_the_images_of_the_label_spreading_route(synthetic, tmp_path, run_cli):
    import numpy as np

    from genaug.data import load_arrays
    from genaug.evaluation import _unlabeled_images
    from genaug.synthetic import SyntheticDataset

    syn = SyntheticDataset.open(synthetic)
    full = load_arrays("digits", "train")
    real = full.subset(syn.train_indices)
    assert _unlabeled_images(None, syn, full, real, None) is None  # its generator learnt from labels only
    assert _unlabeled_images("none", syn, full, real, None) is None
    assert len(_unlabeled_images("auto", syn, full, real, None).x) == len(full.y) - len(real.y) == 1147
    np.savez(tmp_path / "u.npz", x=full.x[:50], y=np.zeros(50, int))  # a y there is never read
    assert len(_unlabeled_images(f"npz:{tmp_path / 'u.npz'}", syn, full, real, None).x) == 50
    code, _, err = run_cli("evaluate", "--synthetic", synthetic, "--out", tmp_path / "r", "--unlabeled", "images:/no")
    assert code == 1 and "--unlabeled images:/no: folder not found" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()
