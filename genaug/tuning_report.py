"""What ``genaug tune`` writes: the typed record of a search (``report.json``), ``report.md``, ``trials.csv``
and ``objective.png``.

Versions: 1 (genaug 0.2, no version field), 2 (``report_version``), 3 (the confirmation's ``choice`` and
``intervals``), 4 (``validation_score``, in the searched metric; ``validation_accuracy`` before). Every version
still loads.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from pathlib import Path

import numpy as np

from genaug import atomic, storage
from genaug.json_records import from_json, read_json, to_json
from genaug.policy import Policy
from genaug.report import REPORT, Estimate, save_figure

TUNING_REPORT_VERSION = 4


@dataclasses.dataclass(frozen=True)
class Confirmation:
    """The finalists scored again ``on`` the holdout or on fresh folds (of ``examples`` labelled examples):
    their scores and policies by name, the search's ``choice`` (its best by validation), each other
    finalist's paired 95 % interval of its score minus the choice's (``intervals``), and the one ``kept``."""

    on: str
    examples: int
    scores: dict[str, float]
    policies: dict[str, dict]
    kept: str
    choice: str = ""  # reports before version 3: not recorded
    intervals: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    def describe_scores(self) -> str:
        """``"real only 0.8500 [-0.0500, +0.1000], ..."``: each score, with its interval against the choice."""
        return ", ".join(
            f"{name} {score:.4f}{self.interval(name)}" + (" (the search's choice)" if name == self.choice else "")
            for name, score in self.scores.items()
        )

    def interval(self, name: str) -> str:
        """``" [-0.0500, +0.1000]"``: finalist ``name``'s interval against the choice ("" for the choice itself)."""
        low, high = self.intervals.get(name, (None, None))
        return "" if low is None else f" [{low:+.4f}, {high:+.4f}]"


@dataclasses.dataclass(frozen=True)
class TestRow(Estimate):
    """A policy's score on the test split over the classifier seeds."""

    policy: dict


@dataclasses.dataclass(frozen=True)
class TuningReport:
    """A search's outcome, as written to ``report.json``.

    Example:
        >>> report = TuningReport.read("tuned/")
        >>> Policy.from_dict(report.policy), report.test["tuned"].mean
    """

    search: dict  # what the search depended on (also ``.genaug/search.json``)
    policy: dict  # the tuned policy (also ``policy.json``)
    validation_score: float  # the tuned policy's, in ``search["metric"]`` (accuracy unless said)
    confirmation: Confirmation | None
    trials: int
    test: dict[str, TestRow]  # empty when no test seeds were asked for
    seeds: int
    seconds: float
    report_version: int = 1

    @classmethod
    def read(cls, directory: str | os.PathLike) -> TuningReport:
        path = storage.path(directory) / REPORT
        raw = read_json(path, "tuning report")
        if isinstance(raw, dict) and "validation_accuracy" in raw:  # versions 1-3
            raw["validation_score"] = raw.pop("validation_accuracy")
        return from_json(cls, raw, path)

    def to_json(self) -> dict:
        return to_json(self)

    def write(self, out: Path, tuned: Policy, completed: list) -> None:
        """Writes ``policy.json``, ``trials.csv`` and ``objective.png`` from the ``completed`` trials, then
        ``report.json`` and ``report.md``."""
        tuned.save(out / "policy.json")
        _write_trials(out / "trials.csv", completed, self.search.get("metric", "accuracy"))
        _plot_objective(out / "objective.png", completed)
        atomic.write_json(out / REPORT, self.to_json())
        atomic.write_bytes(out / "report.md", _markdown(self).encode())


def _write_trials(path: Path, completed, metric: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    names = sorted(completed[0].params)
    writer.writerow(["trial", f"validation_{metric}", *names])  # the score the search maximised
    for trial in completed:
        writer.writerow([trial.number, f"{trial.value:.6f}", *(trial.params[n] for n in names)])
    atomic.write_bytes(path, buffer.getvalue().encode())


def _plot_objective(path: Path, completed) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numbers = [t.number for t in completed]
    values = [t.value for t in completed]
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(numbers, values, "o", label="trial")
    axis.plot(numbers, np.maximum.accumulate(values), "-", label="best so far")
    axis.set_xlabel("trial")
    axis.set_ylabel("validation score (folds of the labelled data)")
    axis.legend()
    save_figure(figure, path)


def _markdown(report: TuningReport) -> str:
    policy, search = Policy.from_dict(report.policy), report.search
    lines = [
        "# genaug tune",
        "",
        f"Data: `{search['data']}` ({search['real_train_examples']} labelled training examples, "
        + (f"{held} of them held out from the generator; " if (held := search.get("holdout_examples")) else "")
        + f"{search['folds']} folds{' of the rest' if held else ''}); {report.trials} trials.",
        "",
        f"Tuned policy: {policy.describe()} (validation {_metric(report)} {report.validation_score:.4f}).",
    ]
    if confirmation := report.confirmation:
        on = (
            f"fresh folds ({confirmation.examples} labelled examples)"
            if confirmation.on == "fresh folds"
            else f"the holdout ({confirmation.examples} labelled images the generator never saw)"
        )
        scores = "; ".join(
            f"{name} ({Policy.from_dict(confirmation.policies[name]).describe()}) {score:.4f}"
            + confirmation.interval(name)
            for name, score in confirmation.scores.items()
        )
        lines += ["", f"Scored again on {on}: {scores}. Kept: {confirmation.kept}."]
        if confirmation.intervals:
            rule = (
                "the highest is kept"
                if confirmation.on == "fresh folds"
                else "the search's choice stands unless another beats it beyond that noise (interval above zero)"
            )
            lines += [
                "",
                f"In brackets: paired 95 % intervals over the examples of each score minus the search's choice's "
                f"({confirmation.choice}); {rule}.",
            ]
    if not search.get("holdout_examples"):
        lines += [
            "",
            "The generator learnt from every labelled example, so validation favours synthetic images that "
            "resemble them; `genaug train --holdout 0.2` keeps some back for an honest check.",
        ]
    if not report.test:
        return "\n".join([*lines, "", "No test report was asked for (the test split was not read)."]) + "\n"
    lines += [
        "",
        f"Test {_metric(report)} over {report.seeds} classifier seeds (the test split was read once, after the "
        "search):",
        "",
        f"| policy | {_metric(report)} | 95 % interval |",
        "| --- | --- | --- |",
    ]
    for name, row in report.test.items():
        low, high = row.ci95
        lines.append(f"| {name} | {row.mean:.4f} | [{low:.4f}, {high:.4f}] |")
    return "\n".join(lines) + "\n"


def _metric(report: TuningReport) -> str:
    return report.search.get("metric", "accuracy").replace("_", " ")
