"""The demo end to end, with the settings shrunk (the real schedule is measured in README)."""

import json

import pytest

from genaug import demo as demo_module


@pytest.mark.slow
def test_demo_prints_the_table_and_writes_everything(tmp_path, monkeypatch, run_cli):
    monkeypatch.setattr(
        demo_module,
        "SETTINGS",
        {
            "10_per_class": {
                "labels_per_class": 10,
                "holdout": 0.2,
                "teacher_steps": 10,
                "epochs": 2,
                "batch_size": 64,
                "fraction": 0.9,
                "tune": True,
            },
            "full": {"labels_per_class": None, "epochs": 4, "batch_size": 64, "fraction": 0.5},
        },
    )
    monkeypatch.setattr(demo_module, "TUNING", {"quick": {"trials": 3, "folds": 2, "steps": 50}})
    monkeypatch.setattr(demo_module, "EVALUATION_STEPS", 50)
    # One worker process: the queue and the reports are the same; test_evaluation checks several workers.
    code, out, err = run_cli("demo", "--out", tmp_path / "demo", "--seeds", "2", "--jobs", "1")
    assert code == 0, err
    assert "real only" in out and "synthetic only" in out and "closer-to-train" in out
    assert "+ classic aug." in out and "label spreading" in out and "(90%)" in out and "(50%)" in out
    tuned = [line for line in out.splitlines() if line.startswith("10_per_class") and "ratio" in line]
    assert len(tuned) == 2 and "tuned policy (genaug tune" in out  # a CNN and an SVC row
    assert (tmp_path / "demo" / "10_per_class" / "tuned" / "policy.json").is_file()
    tuning = json.loads((tmp_path / "demo" / "10_per_class" / "tuned" / "report.json").read_text())
    assert tuning["confirmation"]["on"] == "holdout" and tuning["confirmation"]["examples"] == 20
    assert not (tmp_path / "demo" / "full" / "tuned").exists()
    for setting in ("10_per_class", "full"):
        for path in (
            "run/generator.keras",
            "synthetic/manifest.json",
            "report/report.md",
            "report/accuracy_vs_fraction.png",
        ):
            assert (tmp_path / "demo" / setting / path).is_file(), (setting, path)


def test_an_error_in_a_worker_is_one_line_and_stops_the_demo(tmp_path, run_cli):
    (tmp_path / "demo" / "10_per_class" / "run").mkdir(parents=True)
    (tmp_path / "demo" / "10_per_class" / "run" / "mine.txt").write_text("a user's file")
    code, _, err = run_cli("demo", "--out", tmp_path / "demo", "--jobs", "1")
    assert code == 1 and err.count("\n") == 1 and "mine.txt" in err
    assert (tmp_path / "demo" / "10_per_class" / "run" / "mine.txt").read_text() == "a user's file"
    code, _, err = run_cli("demo", "--out", tmp_path / "demo", "--jobs", "0")
    assert code == 1 and "--jobs must be at least 1" in err
