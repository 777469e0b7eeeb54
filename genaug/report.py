"""Writes an evaluation report: ``report.json``, ``report.md`` and PNG plots (matplotlib, Agg)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from genaug import atomic
from genaug.grids import default_scale, labelled_grid, save_png

ROUTES = {  # the report's other routes: legend label and colour, the same in every plot
    "classic_augmentation": ("classic augmentation", "tab:blue"),
    "label_spreading": ("label spreading", "tab:orange"),
    "teacher": ("teacher alone", "tab:green"),
    "policy": ("tuned policy", "tab:red"),
}
PLOTS = ("accuracy_vs_fraction.png", "per_class_accuracy.png", "samples_real_vs_synthetic.png")


def _save_figure(figure, path: Path) -> None:
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


def _accuracy_plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    utility = report["utility"]
    figure, axes = plt.subplots(1, len(utility), figsize=(5 * len(utility), 3.8), sharey=True, squeeze=False)
    for axis, (kind, result) in zip(axes[0], utility.items(), strict=True):
        conditions = sorted(result["conditions"].items(), key=lambda item: condition_fraction(item[0]))
        means = np.array([c["mean"] for _, c in conditions])
        bounds = np.array([c["ci95"] for _, c in conditions]).T
        x = [condition_fraction(name) for name, _ in conditions]
        axis.errorbar(
            x, means, yerr=np.abs(bounds - means), marker="o", capsize=3, color="black", label="real + synthetic"
        )
        lines = {**result.get("baselines", {}), **({"policy": result["policy"]} if "policy" in result else {})}
        for name, line in lines.items():
            label, color = ROUTES.get(name, (name, "tab:gray"))
            axis.axhline(line["mean"], color=color, linestyle="--", label=label)
            axis.axhspan(*line["ci95"], color=color, alpha=0.12)
        axis.set_title(f"{kind.upper()}, {report['settings']['real_train_examples']} real labelled examples")
        axis.set_xlabel("synthetic share (0: real only, 1: synthetic only)")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"accuracy on {report['data']}'s test split")
    handles = {h.get_label(): h for axis in axes[0] for h in axis.get_legend_handles_labels()[0]}
    figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8)
    figure.suptitle("Accuracy against the synthetic share; dashed: the other routes (shaded: 95 % intervals)")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    _save_figure(figure, path)


def _per_class_plot(report: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    result = report["utility"]["cnn"]["conditions"]
    names = report["settings"]["class_names"]
    figure, axis = plt.subplots(figsize=(max(5, len(names) * 0.5), 3.5))
    width = 0.8 / len(result)
    for i, (condition, values) in enumerate(result.items()):
        axis.bar(np.arange(len(names)) + i * width, values["per_class"], width, label=condition)
    axis.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names)
    axis.set_ylabel("CNN accuracy")
    axis.set_ylim(0, 1.05)
    axis.legend(fontsize=7, ncol=3)
    _save_figure(figure, path)


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


def _interval(result: dict, sign: str) -> str:
    low, high = result["ci95"]
    return f"[{low:{sign}.4f}, {high:{sign}.4f}]"


def _gain(gain: dict) -> list[str]:
    return [f"{gain['mean']:+.4f}", _interval(gain, "+")]


def _utility_rows(report: dict, section: str, cells) -> list[list[str]]:
    """One row per classifier and entry of ``section`` ("conditions", "gain", "baselines")."""
    return [
        [kind, name, *cells(entry)]
        for kind, result in report["utility"].items()
        for name, entry in result.get(section, {}).items()
    ]


def _markdown(report: dict) -> str:
    s = report["settings"]
    lines = [
        "# genaug evaluation report",
        "",
        f"Real data `{report['data']}` ({s['real_train_examples']} labelled train examples, "
        f"{s['test_examples']} test), synthetic `{report['synthetic']}` ({s['synthetic_examples']} examples "
        f"from a `{report['generator']['model']}`). {s['seeds']} seeds per condition; "
        f"{s.get('metric', 'accuracy').replace('_', ' ')} on the real test split, mean +- std [95 % interval]"
        f"{' (the labelled train split is imbalanced)' if s.get('real_train_imbalanced') else ''}.",
        "",
        "## Downstream accuracy",
        "",
        *_table(
            ["classifier", "condition", "accuracy", "95 % interval"],
            _utility_rows(report, "conditions", lambda r: [f"{r['mean']:.4f} +- {r['std']:.4f}", _interval(r, "")]),
        ),
        "",
        "Gain of real + synthetic over real only (paired by seed):",
        "",
        *_table(["classifier", "synthetic fraction", "gain", "95 % interval"], _utility_rows(report, "gain", _gain)),
    ]
    baselines = _utility_rows(report, "baselines", lambda b: [f"{b['mean']:.4f}", *_gain(b["gain"])])
    if baselines:
        lines += [
            "",
            "Without genaug (the same classifier; classic augmentation: random shifts, rotations and zooms of",
            "the labelled images; label spreading: trained on the labelled plus the unlabelled images with",
            "label spreading's labels; gain over real only, paired by seed):",
            "",
            *_table(["classifier", "baseline", "accuracy", "gain", "95 % interval of the gain"], baselines),
        ]
    with_policy = {kind: r["policy"] for kind, r in report["utility"].items() if "policy" in r}
    if with_policy:
        chosen = next(iter(with_policy.values()))["policy"]
        described = ", ".join(f"{k} {v:g}" for k, v in chosen.items() if k != "version" and v is not None)
        rows = [[kind, f"{p['mean']:.4f}", *_gain(p["gain"])] for kind, p in with_policy.items()]
        lines += [
            "",
            f"Trained as the policy says ({described}; gain over real only, paired by seed):",
            "",
            *_table(["classifier", "accuracy", "gain", "95 % interval of the gain"], rows),
        ]
    fid = report["fidelity"]
    metrics = ["frechet_distance", "kid", "precision", "recall", "density", "coverage"]
    digits = {"frechet_distance": 3, "kid": 4}
    lines += [
        "",
        "## Fidelity",
        "",
        f"Feature space: {fid['features']}.",
        "",
        *_table(
            ["comparison", "Frechet distance", "KID", "precision", "recall", "density", "coverage"],
            [
                [name, *(f"{fid[name][m]:.{digits.get(m, 3)}f}" for m in metrics)]
                for name in ("synthetic_vs_real_train", "real_test_vs_real_train")
            ],
        ),
    ]
    memo = report["memorisation"]
    lines += [
        "",
        "## Memorisation",
        "",
        "Pixel-space nearest-neighbour distances (pixels in [0, 1]).",
        "",
        "| | median | 5th percentile |",
        "| --- | --- | --- |",
        f"| synthetic -> train | {memo['synthetic_to_train_median']:.3f} | {memo['synthetic_to_train_p5']:.3f} |",
        f"| real test -> train | {memo['holdout_to_train_median']:.3f} | {memo['holdout_to_train_p5']:.3f} |",
        "",
        f"Share of synthetic images closer to train than to an equal-size holdout: "
        f"{memo['closer_to_train_share']:.3f} (0.5 = no memorisation). Near-copies (closer than "
        f"{memo['copy_threshold']:.3f}): {memo['near_copies']}.",
        "",
        "## Plots",
        "",
        *[f"![{name}]({name})" for name in PLOTS],
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path, report: dict, *, real, synthetic) -> None:
    """Writes the report files into ``out`` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "report.json", report)
    _accuracy_plot(report, out / PLOTS[0])
    _per_class_plot(report, out / PLOTS[1])
    save_png(out / PLOTS[2], sample_grid(real, synthetic, report["settings"]["class_names"]))
    atomic.write_bytes(out / "report.md", _markdown(report).encode())
