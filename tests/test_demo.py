"""The demo end to end, with its schedule shrunk (the real one is measured in README)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from genaug import demo as demo_module
from genaug import evaluation
from genaug.tuning_report import TuningReport


@pytest.mark.slow
def test_demo_prints_the_table_and_writes_everything(tmp_path, monkeypatch, run_cli):
    tiny = {"epochs": 3, "teacher": "spreading", "seeds": {}, "tuning": {"trials": 3, "folds": 2, "steps": 50}}
    monkeypatch.setattr(demo_module, "SCHEDULES", {"quick": tiny})
    monkeypatch.setattr(demo_module, "EVALUATION_STEPS", 50)
    monkeypatch.setattr(evaluation, "FEATURE_STEPS", (50, 50))
    # One worker process: the queue and the reports are the same; test_evaluation checks several workers.
    code, out, err = run_cli("demo", "--out", tmp_path / "demo", "--seeds", "1", "--jobs", "1")
    assert code == 0, err
    assert "real only" in out and "synthetic only" in out and "closer-to-train" in out
    assert "+ classic aug." in out and "label spreading" in out and "(90%)" in out and "(50%)" in out
    tuned = [line for line in out.splitlines() if line.startswith("10_per_class") and "ratio" in line]
    assert len(tuned) == 2 and "tuned policy (genaug tune" in out  # a CNN and an SVC row
    assert (tmp_path / "demo" / "10_per_class" / "tuned" / "policy.json").is_file()
    tuning = TuningReport.read(tmp_path / "demo" / "10_per_class" / "tuned")
    assert tuning.confirmation.on == "holdout" and tuning.confirmation.examples == 20
    assert not (tmp_path / "demo" / "full" / "tuned").exists()
    for setting in ("10_per_class", "full"):
        for path in (
            "run/generator.keras",
            "synthetic/manifest.json",
            "report/report.md",
            "report/accuracy_vs_fraction.png",
            "report/samples_real_vs_synthetic.png",  # README's pictures are copies of these two
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


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_workers_end_when_their_parent_is_killed():
    script = (  # the worker is busy when its parent dies (an idle one would read EOF from its queue and exit)
        "import os, time; from genaug.workers import Workers; w = Workers(1); "
        "print(w.submit(os.getpid).get(), flush=True); w.submit(time.sleep, 600); time.sleep(600)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    assert _running(worker)
    parent.kill()
    parent.wait()
    deadline = time.time() + 10
    while _running(worker) and time.time() < deadline:
        time.sleep(0.2)
    assert not _running(worker), "a worker outlived its SIGKILLed parent"


def test_the_demo_refuses_an_out_holding_what_it_does_not_write(tmp_path):
    from genaug.errors import ArgumentError

    for setting in demo_module.SETTINGS:
        for stage in demo_module.STAGES:
            (tmp_path / "demo" / setting / stage).mkdir(parents=True)
    demo_module.check_demo(tmp_path / "demo")  # a previous demo's output: each stage checks its own files
    (tmp_path / "demo" / "10_per_class" / "notes.txt").write_text("mine")
    with pytest.raises(ArgumentError, match="holds '10_per_class/notes.txt', which genaug demo did not write"):
        demo_module.check_demo(tmp_path / "demo")
    (tmp_path / "demo" / "10_per_class" / "notes.txt").unlink()
    (tmp_path / "demo" / "thesis").mkdir()
    with pytest.raises(ArgumentError, match="holds 'thesis'"):
        demo_module.check_demo(tmp_path / "demo")
