import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PREVIOUS_SYNTHETIC = Path(__file__).parent / "fixtures" / "previous_release" / "syn"


def test_info_digits(run_cli):
    code, out, _ = run_cli("info", "digits")
    assert code == 0
    assert "classes      10" in out and "train 1347, test 450" in out


def test_bad_input_is_one_line_and_nonzero(run_cli, tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 2, 2), np.uint8))
    code, out, err = run_cli("info", f"npz:{tmp_path / 'bad.npz'}")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("genaug: error:") and "'y'" in err


def test_python_dash_m_entry_point_reports_missing_path():
    result = subprocess.run(
        [sys.executable, "-m", "genaug", "info", "folder:/no/such/dir"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "genaug: error: folder not found: /no/such/dir"


def test_every_option_has_a_help_text():
    from genaug.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, command in {"genaug": parser, **commands}.items():
        for action in command._actions:
            if action.dest not in ("help", "version", "command"):
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_library_errors_name_arguments_and_the_cli_names_flags(run_cli, tmp_path):
    import pytest

    from genaug.errors import ArgumentError
    from genaug.evaluation import evaluate

    with pytest.raises(ArgumentError, match="^seeds must be at least 1, got 0$"):
        evaluate("digits", tmp_path, tmp_path / "r", seeds=0)
    synthetic = Path(__file__).parent / "fixtures" / "previous_release" / "syn"
    code, _, err = run_cli("evaluate", "--synthetic", synthetic, "--out", tmp_path / "r", "--num-seeds", "0")
    assert code == 1 and err == "genaug: error: --num-seeds must be at least 1, got 0\n"


def _genaug_in_a_fresh_process(*args: str, cwd=None) -> tuple[subprocess.CompletedProcess, bool]:
    """Runs the CLI in a new interpreter (no TF_CPP_MIN_LOG_LEVEL set); also says whether TensorFlow
    was imported by the time it returned."""
    script = (
        "import sys\nfrom genaug.cli import main\ncode = main(sys.argv[1:])\n"
        "print('tensorflow imported:', 'tensorflow' in sys.modules)\nsys.exit(code)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    result = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd
    )
    return result, "tensorflow imported: True" in result.stdout


def test_bad_paths_and_configs_report_before_tensorflow_starts(tmp_path):
    cases = [
        (["sample", "/no/such/run", "--out", str(tmp_path / "s"), "--per-class", "3"], "run directory not found"),
        (["train", "--data", "folder:/nope", "--out", str(tmp_path / "r")], "folder not found: /nope"),
        (["train", "--config", "/nope.yaml", "--out", str(tmp_path / "r")], "config file not found"),
        (["train", "--labels-per-class", "3", "--unlabeled", "npz:/no.npz", "--out", str(tmp_path)], "--unlabeled"),
        (["evaluate", "--data", "digits", "--synthetic", "/nope", "--out", str(tmp_path / "e")], "not found: /nope"),
        (["train", "--image-size", "10x10", "--out", str(tmp_path / "r")], "image size 10 unsupported"),
        (["train", "--holdout", "1", "--out", str(tmp_path / "r")], "'data.holdout' must be in [0, 1), got 1.0"),
        (["train", "--teacher-members", "0", "--out", str(tmp_path / "r")], "'data.teacher_members' must be at"),
        (["train", "--teacher-pretrain-steps", "-1", "--out", str(tmp_path / "r")], "'data.teacher_pretrain_steps'"),
        (["demo", "--jobs", "0", "--out", str(tmp_path / "d")], "--jobs must be at least 1"),
        (["evaluate", "--synthetic", str(PREVIOUS_SYNTHETIC), "--out", str(tmp_path / "e"), "--jobs", "0"], "--jobs"),
        (["tune", "--synthetic", "/nope", "--out", str(tmp_path / "t")], "not found: /nope"),
        (["tune", "--synthetic", str(PREVIOUS_SYNTHETIC), "--out", str(tmp_path / "t"), "--jobs", "0"], "--jobs"),
    ]
    for args, message in cases:
        result, started = _genaug_in_a_fresh_process(*args)
        assert result.returncode == 1 and not started, args
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not any(tmp_path.iterdir())


def test_info_on_a_source_read_without_tfds_does_not_start_tensorflow():
    result, started = _genaug_in_a_fresh_process("info", "digits")
    assert result.returncode == 0 and not started and "classes      10" in result.stdout


def test_a_normal_run_prints_no_tensorflow_log_lines_or_warnings(tmp_path):
    brief = '{"data": {"teacher_steps": 30, "pseudo_label_confidence": 0}}'  # both teachers, briefly
    (tmp_path / "c.json").write_text(brief)
    result, started = _genaug_in_a_fresh_process(
        "train", "--data", "digits", "--epochs", "1", "--labels-per-class", "3", "--config", str(tmp_path / "c.json"),
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert result.returncode == 0 and started, result.stderr
    assert result.stderr == "", result.stderr  # no oneDNN / CUDA / absl lines, no retracing or deprecation
    assert re.search(r"^trained cvae on digits .* for 1 epoch in \d+ s: ", result.stdout, re.M), result.stdout
    # Progress goes to a pipe here: one plain line per epoch, no progress bar's control characters.
    assert re.search(r"^\d+/\d+ - .* loss: ", result.stdout, re.M), result.stdout
    assert not any(c in result.stdout for c in "\r\b\x1b"), repr(result.stdout)


@pytest.mark.parametrize(
    ("command", "function", "cli_only"),
    [
        (
            "sample",
            "genaug.sampler:sample",
            {"quiet", "attention_k", "attention_temperature", "attention_extrapolation"},
        ),
        ("evaluate", "genaug.evaluation:evaluate", {"jobs", "quiet"}),
        ("tune", "genaug.tuning:tune", {"jobs", "quiet"}),
        ("demo", "genaug.demo:demo", set()),
    ],
)
def test_every_flag_reaches_a_library_parameter_of_its_name(command: str, function: str, cli_only: set):
    """The CLI passes options to the library by name: a renamed library parameter must fail here, not
    silently drop its flag."""
    import importlib
    import inspect

    from genaug.cli import build_parser

    module, name = function.split(":")
    parameters = set(inspect.signature(getattr(importlib.import_module(module), name)).parameters)
    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    dests = {a.dest for a in subcommands.choices[command]._actions if a.dest != "help"}
    assert dests - cli_only <= parameters, sorted(dests - cli_only - parameters)
    assert cli_only <= dests, sorted(cli_only - dests)


def test_progress_lines_go_to_the_current_stdout_once_and_the_logger_is_restored():
    """The CLI shows the library's log lines on stdout as it is at each line (a second main() in one process,
    under another capture, printed into the first one's stream), only there (a root handler some library
    installed printed them again on stderr), and leaves the logger as it found it."""
    import contextlib
    import io
    import logging

    from genaug.cli import _library_progress

    logger, root_lines = logging.getLogger("genaug"), io.StringIO()
    root_handler = logging.StreamHandler(root_lines)
    logging.getLogger().addHandler(root_handler)
    try:
        first, second = io.StringIO(), io.StringIO()
        for stream, line in ((first, "one"), (second, "two")):
            with contextlib.redirect_stdout(stream), _library_progress(quiet=False):
                logging.getLogger("genaug.test").info(line)
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert first.getvalue() == "one\n" and second.getvalue() == "two\n" and root_lines.getvalue() == ""
    assert logger.propagate and not logger.handlers


def test_train_flags_reach_their_config_keys():
    """Every teacher flag of `genaug train` lands in the config the run records (and only when given)."""
    from genaug.cli import _train_config, build_parser

    args = build_parser().parse_args(
        [
            "train",
            "--out",
            "r",
            "--teacher",
            "fixmatch",
            "--teacher-steps",
            "6000",
            "--teacher-flip",
            "--teacher-members",
            "3",
            "--teacher-pretrain-steps",
            "3000",
            "--holdout",
            "0.2",
        ]
    )
    data = _train_config(args).data
    assert (data.teacher, data.teacher_steps, data.teacher_flip, data.holdout) == ("fixmatch", 6000, True, 0.2)
    assert (data.teacher_members, data.teacher_pretrain_steps) == (3, 3000)
    default = _train_config(build_parser().parse_args(["train", "--out", "r"])).data
    assert (default.teacher_steps, default.teacher_flip, default.teacher_members) == (2500, False, 1)
    assert default.teacher_pretrain_steps == 0


def test_evaluate_and_tune_fit_single_threaded_here_and_in_one_worker_per_core(monkeypatch, run_cli):
    """A fit's figures must not depend on --jobs: on 28x28 images TensorFlow on two threads lands a CNN fit with
    100 labels up to two points away from one thread, so this process and every worker run on one thread."""
    from genaug import cli, workers

    started, pools = [], []
    monkeypatch.setattr(cli, "single_threaded_tensorflow", lambda: started.append("single"))
    monkeypatch.setattr(cli, "start_tensorflow", lambda **_: started.append("default"))

    class Pool:
        def __init__(self, processes):
            pools.append(processes)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(workers, "Workers", Pool)
    monkeypatch.setattr(cli, "_evaluate", lambda args: cli._with_jobs(args.jobs, lambda workers: 0))
    monkeypatch.setattr(cli, "_tune", lambda args: cli._with_jobs(args.jobs, lambda workers: 0))
    code, _, err = run_cli("evaluate", "--synthetic", PREVIOUS_SYNTHETIC, "--out", "unused")
    assert code == 0, err
    code, _, err = run_cli("tune", "--synthetic", PREVIOUS_SYNTHETIC, "--out", "unused", "--jobs", "3")
    assert code == 0, err
    assert started == ["single", "single"] and pools == [workers.worker_count(None), 3]
