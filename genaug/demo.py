"""``genaug demo``: the whole factory on the embedded digits, in a few minutes on a CPU.

For two settings, scarce labels (10 per class, the other 1,247 train images used without labels) and
the full train split, it trains a conditional VAE, samples 200 labelled images per class, mixes them
into the real data and evaluates over several seeds, beside the routes without genaug (classic augmentation,
and label spreading when labels are scarce). ``--thorough`` runs the longer schedule (see SCHEDULES).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from genaug.errors import ArgumentError
from genaug.policy import Policy
from genaug.report import Estimate, Report, condition_name, gain_key
from genaug.startup import single_threaded_tensorflow
from genaug.workers import Workers, worker_count

# Per setting: labels per class (None = all) and the synthetic share of the classifiers' training data.
# With 10 labels per class more synthetic data kept helping up to 90 % (docs/experiments.md, scarce labels);
# with all labels, half costs nothing. With scarce labels, genaug tune then chooses a policy by validation
# on the labelled examples alone, checked on the fifth of them the generator was kept from (holdout), and
# evaluate reports it beside the rest.
SETTINGS = {
    "10_per_class": {"labels_per_class": 10, "holdout": 0.2, "batch_size": 64, "fraction": 0.9, "tune": True},
    "full": {"labels_per_class": None, "batch_size": 64, "fraction": 0.5},
}
# How long each stage works. The default takes under two minutes of a 2-core CPU (109-111 s measured, 210
# CPU-s, nearly all of it the CNN fits): label spreading as the teacher (95 % right on digits' pixels, in
# seconds), 40 generator epochs, 4 classifier seeds with 10 labels per class and 3 with all (the intervals of
# the 10-labels table as wide as with 5), 4 tune trials (the 3 baselines and one searched policy) on 2 folds.
# --thorough (480 s before tune shared the workers): the teacher `auto` (also FixMatch, ~80 s), 150
# epochs, 5 seeds everywhere and the benchmark's 20 tune trials (docs/performance.md compares them).
SCHEDULES = {
    "quick": {
        "epochs": 40, "teacher": "spreading", "seeds": {"10_per_class": 4, "full": 3},
        "tuning": {"trials": 4, "folds": 2},
    },
    "thorough": {
        "epochs": 150, "teacher": "auto", "seeds": {"10_per_class": 5, "full": 5},
        "tuning": {"trials": 20, "folds": 3},
    },
}  # fmt: skip
EVALUATION_STEPS = 600  # evaluate's CNN budget, its default (the test shrinks it)


def demo(
    out: str | Path = "demo",
    *,
    seeds: int | None = None,
    per_class: int = 200,
    overwrite: bool = False,
    jobs: int | None = None,
    thorough: bool = False,
) -> dict:
    """Runs train -> sample -> evaluate for each setting under ``out`` and prints a summary table.

    Args:
        out: folder for ``SETTING/run``, ``SETTING/synthetic`` and ``SETTING/report``.
        seeds: classifier seeds per condition in both settings (default: the schedule's).
        per_class: synthetic images per class.
        overwrite: replace the runs and synthetic sets a previous demo left in ``out``.
        jobs: worker processes, each running one task at a time: a training, a tuning or one classifier fit
            (default: one per CPU core, at most 4). The figures do not depend on it.
        thorough: the longer schedule (:data:`SCHEDULES`): a few minutes more.

    Returns:
        ``{setting: report}``.
    """
    check_demo(out, seeds)
    jobs = worker_count(jobs)
    out, started = Path(out), time.time()
    schedule = SCHEDULES["thorough" if thorough else "quick"]

    def say(name: str, message: str) -> None:
        _say(started, name, message)

    # The work is a queue of tasks for the worker processes (Workers: TensorFlow on one thread each): the
    # settings' trainings side by side, then every classifier fit of the tuning and of each evaluation, so
    # that no core idles. This process queues them, runs the search and writes the reports.
    with Workers(jobs) as workers:
        generated = {
            name: workers.submit(_train_and_sample, name, setting, schedule, out / name, per_class, overwrite, started)
            for name, setting in SETTINGS.items()
        }
        # TensorFlow starts here once the workers are on their way: the search and evaluate's own share
        # (data, fidelity, memorisation, plots) run here while the workers train the classifiers.
        single_threaded_tensorflow()
        from genaug.evaluation import evaluate

        policies = {}
        for name, setting in SETTINGS.items():
            if setting.get("tune"):
                generated[name].get()
                policies[name] = _tune(name, out / name, overwrite, started, schedule["tuning"], workers)
        reports = {}
        for name, setting in SETTINGS.items():
            generated[name].get()
            setting_seeds = seeds or schedule["seeds"][name]
            say(name, f"evaluating ({setting_seeds} seeds)")
            reports[name] = evaluate(
                "digits",
                out / name / "synthetic",
                out / name / "report",
                seeds=setting_seeds,
                fractions=(setting["fraction"],),
                steps=EVALUATION_STEPS,
                policy=policies.get(name),
                workers=workers,
                progress=False,
            )
            say(name, "done")
    print()
    print(summary_table(reports))
    print(
        f"\nwrote runs, synthetic sets and reports under {out}/ in {time.time() - started:.0f} s "
        f"(see {out}/*/report/report.md)"
    )
    return reports


STAGES = ("run", "synthetic", "tuned", "report")  # what the demo writes in each setting's folder


def check_demo(out: str | os.PathLike, seeds: int | None = None) -> None:
    """Checks :func:`demo`'s arguments, writing nothing (the CLI calls it before anything starts). An ``out``
    holding anything the demo does not write is refused (each stage's folder then checks its own files as
    it is claimed), so that a demo never writes into, or replaces inside, a user's folder.

    Raises:
        ArgumentError: naming ``seeds``, or ``out`` and the first entry the demo did not write.
    """
    if seeds is not None and seeds < 1:
        raise ArgumentError(f"{{}} must be at least 1, got {seeds}", "seeds")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ArgumentError(f"{out} is a file, not a directory; choose another {{}}", "out")
    if not out.is_dir():
        return
    for entry in sorted(out.iterdir()):
        inside = sorted(entry.iterdir()) if entry.is_dir() and not entry.is_symlink() else []
        if entry.name not in SETTINGS or entry.is_symlink() or not entry.is_dir():
            foreign = entry
        else:
            foreign = next((e for e in inside if e.name not in STAGES or e.is_symlink() or not e.is_dir()), None)
        if foreign is not None:
            raise ArgumentError(
                f"{out} holds {str(foreign.relative_to(out))!r}, which genaug demo did not write; choose another {{}}",
                "out",
            )


def _say(started: float, name: str, message: str) -> None:
    # One write per line: the workers share the terminal, and print() writes the text and the newline apart.
    sys.stdout.write(f"[{time.time() - started:5.0f} s] {name}: {message}\n")
    sys.stdout.flush()


def _train_and_sample(
    name: str, setting: dict, schedule: dict, base: Path, per_class: int, overwrite: bool, started: float
) -> None:
    """A worker's task: train one setting's generator into ``base/run`` and sample ``base/synthetic``."""
    from genaug.sampler import sample
    from trainers import config as cfg
    from trainers import train

    labels = setting["labels_per_class"]
    data = f"{labels} labels per class and the rest unlabelled" if labels else "all 1,347 digits"
    if setting.get("holdout"):
        data += f"; {setting['holdout']:.0%} of the labelled kept for tune's check"
    epochs = schedule["epochs"]
    _say(started, name, f"training a conditional VAE ({epochs} epochs on {data})")
    config = cfg.from_dict(
        {
            "model": {"kind": "cvae"},
            "data": {
                "data": "digits",
                "labels_per_class": labels,
                "holdout": setting.get("holdout", 0.0),
                "teacher": schedule["teacher"],
            },
            "optim": {"epochs": epochs, "batch_size": setting["batch_size"]},
            "run": {
                "out": str(base / "run"),
                "quiet": True,
                "seed": 0,
                "sample_every": max(1, epochs // 4),
                "checkpoint_every": max(1, epochs // 4),
            },
        }
    )
    run = train(config, overwrite=overwrite)
    _say(started, name, f"sampling {per_class} images per class")
    sample(run.directory, base / "synthetic", per_class=per_class, seed=0, overwrite=overwrite, progress=False)


def _tune(name: str, base: Path, overwrite: bool, started: float, tuning: dict, workers: Workers) -> Policy:
    """``genaug tune`` on ``base/synthetic`` into ``base/tuned``, its fits in ``workers``; the policy."""
    from genaug.tuning import tune

    trials = tuning["trials"]
    _say(started, name, f"tuning how to use the synthetic data ({trials} trials on the labelled examples only)")
    report = tune(
        "digits", [base / "synthetic"], base / "tuned", seeds=0, overwrite=overwrite, workers=workers,
        progress=False, **tuning,
    )  # fmt: skip
    return Policy.from_dict(report.policy)


def _cell(result: Estimate) -> str:
    low, high = result.ci95
    return f"{100 * result.mean:5.1f} [{100 * low:5.1f}, {100 * high:5.1f}]"


def summary_table(reports: dict[str, Report]) -> str:
    """Accuracy (%, mean [95 % interval]) per setting and classifier, then fidelity and memorisation."""
    columns = ["real only", "+ classic aug.", "label spreading", "real + synthetic (share)", "gain", "synthetic only"]
    widths = [21, 21, 21, 27, 6, 21]

    def row(first: str, cells: list[str]) -> str:
        cells = (f"{c:>{w}}" if w == 6 else f"{c:<{w}}" for c, w in zip(cells, widths, strict=True))
        return (first + " ".join(cells)).rstrip()

    lines = [row(f"{'setting':<13} {'model':<5} ", columns)]
    for name, report in reports.items():
        fraction = report.settings.fractions[0]
        for kind, result in report.utility.items():
            c, baselines = result.conditions, result.baselines
            spreading = baselines.get("label_spreading")
            cells = [
                _cell(c["real"]),
                _cell(baselines["classic_augmentation"]),
                _cell(spreading) if spreading else "    -",
                f"{_cell(c[condition_name(fraction)])} ({fraction:.0%})",
                f"{100 * result.gain[gain_key(fraction)].mean:+.1f}",
                _cell(c["synthetic"]),
            ]
            lines.append(row(f"{name:<13} {kind:<5} ", cells))
    tuned = [(name, kind, r.policy) for name, report in reports.items() for kind, r in report.utility.items()]
    if any(entry for _, _, entry in tuned):
        lines += ["", "tuned policy (genaug tune, by validation on the labelled examples only; gain over real only):"]
        for name, kind, entry in tuned:
            if entry:
                gain, (low, high) = entry.gain.mean, entry.gain.ci95
                interval = f"{100 * gain:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"
                described = Policy.from_dict(entry.policy).describe()
                lines.append(f"{name:<13} {kind:<5} {_cell(entry)}  {interval}  {described}")
    lines.append("")
    lines.append(
        f"{'setting':<13} {'FD syn':>8} {'FD test':>8} {'precision':>9} {'recall':>7} "
        f"{'closer-to-train':>15} {'near-copies':>11}"
    )
    for name, report in reports.items():
        syn, test = report.fidelity.synthetic_vs_real_train, report.fidelity.real_test_vs_real_train
        memo = report.memorisation
        lines.append(
            f"{name:<13} {syn.frechet_distance:8.2f} {test.frechet_distance:8.2f} "
            f"{syn.precision:9.3f} {syn.recall:7.3f} {memo.closer_to_train_share:15.3f} "
            f"{memo.near_copies:11d}"
        )
    return "\n".join(lines)
