"""The teacher's labels as a route of their own and inside a policy: ``Policy.pseudo_labels``, evaluate's
"teacher's labels" baseline and tune's search dimension (classifier fits stubbed: this checks the wiring)."""

import shutil

import numpy as np
import pytest
from conftest import smoke_config

import genaug
from genaug import evaluation, scoring, tuning
from genaug.errors import GenaugError
from genaug.policy import TEACHER_LABELS, Policy
from genaug.synthetic import SyntheticDataset
from trainers import train


@pytest.fixture(scope="module")
def taught(tmp_path_factory):
    """A smoke run whose FixMatch teacher labelled the other digits, and a synthetic set it sampled."""
    root = tmp_path_factory.mktemp("taught")
    # A 3-step teacher is never 0.9 sure: every one of its labels counts here.
    data = {
        "unlabeled": "auto",
        "teacher": "fixmatch",
        "teacher_steps": 3,
        "holdout": 0.2,
        "pseudo_label_confidence": 0.0,
    }
    run = train(smoke_config(root / "run", data=data, optim={"epochs": 1}))
    genaug.sample(run.directory, root / "syn", per_class=5, seed=0, progress=False)
    return run, root / "syn"


def sizes_of_fits(monkeypatch, module) -> list:
    """Stubs the module's classifier fits; each records (its policy, its number of real examples)."""
    fits = []

    def stub(fit):
        fits.append((fit.policy, len(fit.real[1])))
        return fit.test.y

    monkeypatch.setattr(module, "test_predictions", stub)
    return fits


def test_the_policy_field_is_versioned_checked_and_described():
    assert not Policy().pseudo_labels and TEACHER_LABELS.pseudo_labels and TEACHER_LABELS.synthetic_ratio == 0
    assert Policy.from_dict({"version": 2, "synthetic_ratio": 1.0}).pseudo_labels is False  # older files load
    assert TEACHER_LABELS.to_dict()["version"] == 5 and Policy.from_dict(TEACHER_LABELS.to_dict()) == TEACHER_LABELS
    assert TEACHER_LABELS.describe().endswith("pseudo-labels")
    with pytest.raises(GenaugError, match="^policy pseudo_labels must be true or false, got 1$"):
        Policy(pseudo_labels=1)


def test_the_teacher_labels_join_the_real_examples_only_when_asked(taught):
    run, syn = taught
    pseudo = scoring.pseudo_labelled(SyntheticDataset.open(syn))
    labels, confidence, _ = run_directory(run).read_pseudo_labels()
    threshold = run_directory(run).read_config()["data"]["pseudo_label_confidence"]
    assert len(pseudo[1]) == int((confidence >= threshold).sum()) > 0
    np.testing.assert_array_equal(pseudo[1], labels[confidence >= threshold])
    real = (np.zeros((3, 8, 8, 1), np.uint8), np.arange(3))
    assert scoring.with_pseudo_labels(real, pseudo, Policy()) is real
    x, y = scoring.with_pseudo_labels(real, pseudo, TEACHER_LABELS)
    assert len(x) == len(y) == 3 + len(pseudo[1])
    with pytest.raises(GenaugError, match="learnt from labels alone"):
        scoring.with_pseudo_labels(real, None, TEACHER_LABELS)


def run_directory(run):
    from genaug.runs import RunDirectory

    return RunDirectory.open(run.directory)


def test_evaluate_reports_the_teacher_labels_and_a_policy_trains_on_them(taught, tmp_path, monkeypatch):
    run, syn = taught
    fits = sizes_of_fits(monkeypatch, evaluation)
    policy = Policy(synthetic_ratio=1.0, pseudo_labels=True)
    report = genaug.evaluate("digits", syn, tmp_path / "report", seeds=1, fractions=(0.5,), policy=policy,
                             progress=False)  # fmt: skip
    pseudo = len(scoring.pseudo_labelled(SyntheticDataset.open(syn))[1])
    assert "teacher_labels" in report.utility["cnn"].baselines and "teacher_labels" in report.utility["svc"].baselines
    with_policy = [n for p, n in fits if p == policy]
    assert with_policy == [100 + pseudo] * 2  # the CNN and the SVC: every labelled example and the teacher's
    assert [n for p, n in fits if p == TEACHER_LABELS] == [100 + pseudo] * 2  # the baseline, nothing synthetic


def test_tune_searches_the_teacher_labels_when_the_run_kept_its_teacher(taught, tmp_path, monkeypatch):
    run, syn = taught
    fits = sizes_of_fits(monkeypatch, tuning)
    report = tuning.tune("digits", [syn], tmp_path / "tuned", trials=5, folds=2, seeds=0, steps=5, progress=False)
    assert report.search["pseudo_labels_choices"] == [False, True]
    assert list(report.confirmation.scores)[:4] == [*tuning.BASELINES, "teacher's labels"]
    seen = [n for p, n in fits if p == TEACHER_LABELS]
    assert seen and min(seen) > max(n for p, n in fits if not p.pseudo_labels)


def test_a_policy_asking_for_the_labels_of_a_run_that_is_gone_is_one_line(taught, tmp_path):
    run, _ = taught
    shutil.copytree(run.directory, tmp_path / "run")
    genaug.sample(tmp_path / "run", tmp_path / "syn", per_class=5, seed=0, progress=False)
    shutil.rmtree(tmp_path / "run")
    policy = Policy(synthetic_ratio=1.0, pseudo_labels=True)
    with pytest.raises(
        GenaugError, match=r"syn: its generator's run .*/run is gone, and with it the teacher's labels$"
    ):
        genaug.evaluate("digits", tmp_path / "syn", tmp_path / "report", seeds=1, policy=policy, progress=False)
    assert not (tmp_path / "report").exists()
