"""The evaluation report: a typed record (``report.json``), ``report.md`` and PNG plots (matplotlib, Agg).

Versions: 1 (genaug 0.1 and 0.2, no version field), 2 (``report_version``; ``settings.metric`` and
``real_train_imbalanced``; a teacher baseline; a balanced accuracy per condition on imbalanced data).
Every version still loads.
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path

import numpy as np

from genaug import atomic, metrics, storage
from genaug.grids import default_scale, labelled_grid, save_png
from genaug.json_records import from_json, read_json, to_json

REPORT = "report.json"
REPORT_VERSION = 2

ROUTES = {  # the report's other routes: legend label and colour, the same in every plot
    "classic_augmentation": ("classic augmentation", "tab:blue"),
    "label_spreading": ("label spreading", "tab:orange"),
    "teacher": ("teacher alone", "tab:green"),
    "teacher_labels": ("teacher's labels", "tab:olive"),
    "class_weighted": ("class-weighted loss", "tab:purple"),
    "oversampled": ("random oversampling", "tab:brown"),
    "policy": ("tuned policy", "tab:red"),
}
PLOTS = ("accuracy_vs_fraction.png", "per_class_accuracy.png", "samples_real_vs_synthetic.png")


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A score over seeds (or paired gains): mean, sample std, the 95 % t-interval of the mean, the values."""

    mean: float
    std: float
    ci95: tuple[float, float]
    values: list[float]

    @classmethod
    def of(cls, values, **fields):
        """The estimate of ``values`` (a subclass's own ``fields`` beside it: ``Route.of(values, gain=...)``)."""
        estimate = metrics.mean_interval(values)
        return cls(estimate["mean"], estimate["std"], tuple(estimate["ci95"]), estimate["values"], **fields)


@dataclasses.dataclass(frozen=True)
class Condition(Estimate):
    """One synthetic share's score, its recall per class and, on imbalanced data scored by accuracy, its
    balanced accuracy too."""

    per_class: list[float]
    balanced_accuracy: Estimate | None = None


@dataclasses.dataclass(frozen=True)
class Route(Estimate):
    """A route beside the synthetic shares (a baseline or the tuned policy): its score and its gain over
    real only, paired by seed; the teacher's name and file, or the policy applied."""

    gain: Estimate
    name: str | None = None
    path: str | None = None
    policy: dict | None = None


@dataclasses.dataclass(frozen=True)
class Utility:
    """One classifier's scores: per condition (:func:`condition_name`), the gain of each mixed share over
    real only (:func:`gain_key`), the routes without genaug and the policy."""

    conditions: dict[str, Condition]
    gain: dict[str, Estimate]
    baselines: dict[str, Route] = dataclasses.field(default_factory=dict)
    policy: Route | None = None


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the evaluation ran: seeds, shares, the CNN's budget, the labelled subset, the sizes, the metric."""

    seeds: int
    fractions: list[float]
    cnn_steps: int
    batch_size: int
    labels_per_class: int | None
    label_fraction: float | None
    real_train_examples: int
    synthetic_examples: int
    test_examples: int
    class_names: list[str]
    real_train_imbalanced: bool = False
    metric: str = "accuracy"


@dataclasses.dataclass(frozen=True)
class Distances:
    """Synthetic (or real test) images against real train images in a feature space."""

    frechet_distance: float
    kid: float
    precision: float
    recall: float
    density: float
    coverage: float


@dataclasses.dataclass(frozen=True)
class Fidelity:
    """Synthetic and real test images against real train images in ``features``, and per class (by label)."""

    synthetic_vs_real_train: Distances
    real_test_vs_real_train: Distances
    per_class: dict[str, dict[str, float]]
    features: str


@dataclasses.dataclass(frozen=True)
class Memorisation:
    """Pixel-space nearest-neighbour distances (see :func:`genaug.metrics.memorisation`)."""

    synthetic_to_train_median: float
    synthetic_to_train_p5: float
    holdout_to_train_median: float
    holdout_to_train_p5: float
    closer_to_train_share: float
    near_copies: int
    copy_threshold: float


@dataclasses.dataclass(frozen=True)
class Report:
    """What ``genaug evaluate`` measured, as written to ``report.json``.

    Example:
        >>> report = Report.read("report/")
        >>> report.utility["cnn"].gain["0.5"].mean, report.utility["cnn"].conditions["real"].ci95
    """

    genaug_version: str
    versions: dict[str, str]
    data: str
    synthetic: str
    generator: dict  # the manifest's generator record
    settings: Settings
    utility: dict[str, Utility]
    fidelity: Fidelity
    memorisation: Memorisation
    seconds: float
    report_version: int = 1

    @classmethod
    def read(cls, directory: str | os.PathLike) -> Report:
        """The report in ``directory``; a missing, corrupt or mistyped one is a one-line error naming the
        file and the field."""
        path = storage.path(directory) / REPORT
        return from_json(cls, read_json(path, "evaluation report"), path)

    def to_json(self) -> dict:
        return to_json(self)

    def write(self, out: str | os.PathLike, *, real, synthetic) -> None:
        """Writes ``report.json``, the plots and ``report.md`` (last) into ``out`` (created if needed);
        ``real`` and ``synthetic`` (images, labels) make the sample grid."""
        out = storage.path(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic.write_json(out / REPORT, self.to_json())
        _accuracy_plot(self, out / PLOTS[0])
        _per_class_plot(self, out / PLOTS[1])
        save_png(out / PLOTS[2], sample_grid(real, synthetic, self.settings.class_names))
        atomic.write_bytes(out / "report.md", _markdown(self).encode())


def save_figure(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    atomic.write_bytes(path, buffer.getvalue())


def condition_name(fraction: float) -> str:
    """The report's key of the condition with this synthetic share: ``real``, ``mixed_0.5``, ``synthetic``
    (built here only; :func:`condition_fraction` reads it back)."""
    return {0.0: "real", 1.0: "synthetic"}.get(fraction, f"mixed_{fraction:g}")


def gain_key(fraction: float) -> str:
    """The key of a share's gain over real only in the report's ``gain`` (``"0.5"``)."""
    return f"{fraction:g}"


def condition_fraction(name: str) -> float:
    """The synthetic share of the condition the report calls ``name``."""
    fixed = {"real": 0.0, "synthetic": 1.0}
    return fixed[name] if name in fixed else float(name.removeprefix("mixed_"))


def _accuracy_plot(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    utility = report.utility
    figure, axes = plt.subplots(1, len(utility), figsize=(5 * len(utility), 3.8), sharey=True, squeeze=False)
    for axis, (kind, result) in zip(axes[0], utility.items(), strict=True):
        conditions = sorted(result.conditions.items(), key=lambda item: condition_fraction(item[0]))
        means = np.array([c.mean for _, c in conditions])
        bounds = np.array([c.ci95 for _, c in conditions]).T
        x = [condition_fraction(name) for name, _ in conditions]
        axis.errorbar(
            x, means, yerr=np.abs(bounds - means), marker="o", capsize=3, color="black", label="real + synthetic"
        )
        for name, line in _routes(result).items():
            label, color = ROUTES.get(name, (name, "tab:gray"))
            axis.axhline(line.mean, color=color, linestyle="--", label=label)
            axis.axhspan(*line.ci95, color=color, alpha=0.12)
        axis.set_title(f"{kind.upper()}, {report.settings.real_train_examples} real labelled examples")
        axis.set_xlabel("synthetic share (0: real only, 1: synthetic only)")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{_metric_name(report)} on {report.data}'s test split")
    handles = {h.get_label(): h for axis in axes[0] for h in axis.get_legend_handles_labels()[0]}
    figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8)
    figure.suptitle(
        f"{_metric_name(report).capitalize()} against the synthetic share; dashed: the other routes "
        "(shaded: 95 % intervals)"
    )
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    save_figure(figure, path)


def _routes(result: Utility) -> dict[str, Route]:
    """The baselines and the policy, by name."""
    return {**result.baselines, **({"policy": result.policy} if result.policy is not None else {})}


def _metric_name(report: Report) -> str:
    return report.settings.metric.replace("_", " ")


def _per_class_plot(report: Report, path: Path) -> None:
    import matplotlib.pyplot as plt

    conditions = report.utility["cnn"].conditions
    names = report.settings.class_names
    figure, axis = plt.subplots(figsize=(max(5, len(names) * 0.5), 3.5))
    width = 0.8 / len(conditions)
    for i, (condition, values) in enumerate(conditions.items()):
        axis.bar(np.arange(len(names)) + i * width, values.per_class, width, label=condition)
    axis.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
    axis.set_ylabel("CNN recall")
    axis.set_ylim(0, 1.05)
    axis.legend(fontsize=7, ncol=3)
    save_figure(figure, path)


def sample_grid(real, synthetic, class_names, per_class: int = 8) -> np.ndarray:
    """One row per class (named at the left, at most 20): ``per_class`` real images, a divider, as many
    synthetic ones, under the titles "real" and "synthetic"."""
    rng = np.random.default_rng(0)
    rows = min(len(class_names), 20)
    blocks = {}
    for title, (x, y) in (("real", real), ("synthetic", synthetic)):
        block = np.full((rows, per_class, *x.shape[1:]), 255, np.uint8)
        for c in range(rows):
            members = np.flatnonzero(y == c)
            pick = rng.choice(members, min(per_class, len(members)), replace=False)
            block[c, : len(pick)] = x[pick]
        blocks[title] = block
    return labelled_grid(blocks, class_names[:rows], scale=default_scale(real[0].shape[1]))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table's lines."""
    return [f"| {' | '.join(cells)} |" for cells in (header, ["---"] * len(header), *rows)]


def _interval(result: Estimate, sign: str) -> str:
    low, high = result.ci95
    return f"[{low:{sign}.4f}, {high:{sign}.4f}]"


def _gain(gain: Estimate) -> list[str]:
    return [f"{gain.mean:+.4f}", _interval(gain, "+")]


def _utility_rows(report: Report, section: str, cells) -> list[list[str]]:
    """One row per classifier and entry of ``section`` ("conditions", "gain", "baselines")."""
    return [
        [kind, name, *cells(entry)]
        for kind, result in report.utility.items()
        for name, entry in getattr(result, section).items()
    ]


def _markdown(report: Report) -> str:
    return "\n".join(
        [*_summary(report), *_utility_section(report), *_fidelity_section(report), *_memorisation_section(report)]
    )


def _summary(report: Report) -> list[str]:
    s = report.settings
    return [
        "# genaug evaluation report",
        "",
        f"Real data `{report.data}` ({s.real_train_examples} labelled train examples, {s.test_examples} test), "
        f"synthetic `{report.synthetic}` ({s.synthetic_examples} examples from a "
        f"`{report.generator.get('model')}`). {s.seeds} seeds per condition; {_metric_name(report)} on the "
        f"real test split, mean +- std [95 % interval]"
        f"{' (the labelled train split is imbalanced)' if s.real_train_imbalanced else ''}.",
    ]


def _utility_section(report: Report) -> list[str]:
    lines = [
        "",
        "## Downstream accuracy",
        "",
        *_table(
            ["classifier", "condition", _metric_name(report), "95 % interval"],
            _utility_rows(report, "conditions", lambda r: [f"{r.mean:.4f} +- {r.std:.4f}", _interval(r, "")]),
        ),
        "",
        "Gain of real + synthetic over real only (paired by seed):",
        "",
        *_table(["classifier", "synthetic fraction", "gain", "95 % interval"], _utility_rows(report, "gain", _gain)),
    ]
    baselines = _utility_rows(report, "baselines", lambda b: [f"{b.mean:.4f}", *_gain(b.gain)])
    if baselines:
        lines += [
            "",
            "Without genaug (the same classifier; classic augmentation: random shifts, rotations and zooms of",
            "the labelled images; label spreading: trained on the labelled plus the unlabelled images with",
            "label spreading's labels; gain over real only, paired by seed):",
            "",
            *_table(["classifier", "baseline", _metric_name(report), "gain", "95 % interval of the gain"], baselines),
        ]
    with_policy = {kind: r.policy for kind, r in report.utility.items() if r.policy is not None}
    if with_policy:
        chosen = next(iter(with_policy.values())).policy
        described = ", ".join(f"{k} {v:g}" for k, v in chosen.items() if k != "version" and v is not None)
        rows = [[kind, f"{p.mean:.4f}", *_gain(p.gain)] for kind, p in with_policy.items()]
        lines += [
            "",
            f"Trained as the policy says ({described}; gain over real only, paired by seed):",
            "",
            *_table(["classifier", _metric_name(report), "gain", "95 % interval of the gain"], rows),
        ]
    return lines


def _fidelity_section(report: Report) -> list[str]:
    fid = report.fidelity
    digits = {"frechet_distance": 3, "kid": 4}
    names = [f.name for f in dataclasses.fields(Distances)]
    return [
        "",
        "## Fidelity",
        "",
        f"Feature space: {fid.features}.",
        "",
        *_table(
            ["comparison", "Frechet distance", "KID", "precision", "recall", "density", "coverage"],
            [
                [name, *(f"{getattr(distances, m):.{digits.get(m, 3)}f}" for m in names)]
                for name, distances in (
                    ("synthetic_vs_real_train", fid.synthetic_vs_real_train),
                    ("real_test_vs_real_train", fid.real_test_vs_real_train),
                )
            ],
        ),
    ]


def _memorisation_section(report: Report) -> list[str]:
    memo = report.memorisation
    return [
        "",
        "## Memorisation",
        "",
        "Pixel-space nearest-neighbour distances (pixels in [0, 1]).",
        "",
        "| | median | 5th percentile |",
        "| --- | --- | --- |",
        f"| synthetic -> train | {memo.synthetic_to_train_median:.3f} | {memo.synthetic_to_train_p5:.3f} |",
        f"| real test -> train | {memo.holdout_to_train_median:.3f} | {memo.holdout_to_train_p5:.3f} |",
        "",
        f"Share of synthetic images closer to train than to an equal-size holdout: "
        f"{memo.closer_to_train_share:.3f} (0.5 = no memorisation). Near-copies (closer than "
        f"{memo.copy_threshold:.3f}): {memo.near_copies}.",
        "",
        "## Plots",
        "",
        *[f"![{name}]({name})" for name in PLOTS],
        "",
    ]
