"""The Beam sampling runner: same bytes as the local sampler, resumable, one-line errors."""

import os
import signal
import subprocess
import sys
import time

import pytest

from genaug import sampler, shards
from genaug.errors import GenaugError
from genaug.sampler import sample

TWO_WORKERS = "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing"
needs_beam = pytest.mark.skipif(
    not __import__("importlib").util.find_spec("apache_beam"),
    reason="the beam extra is not installed: pip install 'genaug[beam]'",
)


def _files(directory):
    """Every file genaug writes as output (not its lock or Beam's log), by path, with its bytes."""
    skip = {"beam.log"}
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name not in skip and not p.name.startswith("lock")
    }


@needs_beam
@pytest.mark.slow
@pytest.mark.parametrize(("kind", "options"), [("cvae", TWO_WORKERS), ("vae", None)])  # None: one, in-process
def test_beam_writes_the_local_runners_bytes(smoke_runs, tmp_path, kind, options):
    settings = dict(per_class=12, seed=4, num_shards=5, min_confidence=0.2, progress=False)
    local = sample(smoke_runs[kind], tmp_path / "local", **settings)
    beamed = sample(smoke_runs[kind], tmp_path / "beam", runner="beam", beam_options=options, **settings)
    assert beamed == local
    assert _files(tmp_path / "beam") == _files(tmp_path / "local")  # shards, metadata, manifest, shard records
    assert shards.verify(tmp_path / "beam").num_examples == 120


@needs_beam
@pytest.mark.slow
def test_a_killed_beam_run_resumes_to_the_same_bytes(smoke_runs, tmp_path):
    settings = dict(per_class=400, seed=11, num_shards=40, min_distance=None)
    sample(smoke_runs["cvae"], tmp_path / "whole", progress=False, **settings)
    command = [sys.executable, "-m", "genaug", "sample", str(smoke_runs["cvae"]), "--out", str(tmp_path / "cut")]
    command += ["--per-class", "400", "--seed", "11", "--shards", "40", "--min-distance", "off", "--quiet"]
    command += ["--runner", "beam"]  # the DirectRunner in this process (the test above runs two workers)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = tmp_path / "cut" / ".genaug"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(state.glob("shard-*.json"))) < 3 and process.poll() is None:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # the pipeline and anything it started
    process.wait()
    assert not (tmp_path / "cut" / "manifest.json").exists(), "the kill must land mid-run"
    sample(smoke_runs["cvae"], tmp_path / "cut", progress=False, runner="beam", **settings)
    assert _files(tmp_path / "cut") == _files(tmp_path / "whole")
    assert not list((tmp_path / "cut").glob(".*tmp*"))
    assert shards.verify(tmp_path / "cut").num_examples == 4000


@needs_beam
def test_a_workers_error_is_the_samplers_one_line_error(smoke_runs, tmp_path, run_cli):
    with pytest.raises(GenaugError, match=r"^class \d could not be filled in shard \d+: .* lower min_confidence"):
        sample(smoke_runs["cvae"], tmp_path / "a", per_class=2, min_distance=1e6, runner="beam", progress=False)
    code, out, err = run_cli(
        "sample", smoke_runs["cvae"], "--out", tmp_path / "b", "--per-class", "2", "--min-distance", "1e6",
        "--runner", "beam",
    )  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "lower --min-confidence or --min-distance" in err
    assert "Traceback" not in out + err


@needs_beam
def test_bad_beam_settings_fail_before_anything_is_written(smoke_runs, tmp_path, run_cli):
    run = smoke_runs["cvae"]
    for args, message in (
        (["--runner", "beam", "--beam-options=--frobnicate=2"], "--beam-options: unknown Beam option --frobnicate"),
        (["--beam-options=--runner=DirectRunner"], "--beam-options apply to the beam runner only (add --runner beam)"),
        (["--runner", "beam", "--num-workers", "2"], "--num-workers is for local workers"),
    ):
        code, _, err = run_cli("sample", run, "--out", tmp_path / "x", "--per-class", "2", *args)
        assert code == 1 and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "x").exists()


def test_without_the_extra_the_beam_runner_says_how_to_install_it(smoke_runs, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "apache_beam" else real(name, *a))
    with pytest.raises(GenaugError, match=r"pip install 'genaug\[beam\]'"):
        sampler.sample(smoke_runs["cvae"], tmp_path / "x", per_class=2, runner="beam", progress=False)
    assert not (tmp_path / "x").exists()
