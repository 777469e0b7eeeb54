"""Writes an evaluation report: ``report.json``, ``report.md`` and PNG plots (matplotlib, Agg)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from genaug import atomic
from genaug.grids import default_scale, image_grid, save_png

PLOTS = ("accuracy_vs_fraction.png", "per_class_accuracy.png", "samples_real_vs_synthetic.png")


def _save_figure(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    atomic.write_bytes(path, buffer.getvalue())


def _fraction(name: str) -> float:
    fixed = {"real": 0.0, "synthetic": 1.0}
    return fixed[name] if name in fixed else float(name.removeprefix("mixed_"))


def _accuracy_plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.5))
    for kind, result in report["utility"].items():
        names = list(result["conditions"])
        x = [_fraction(n) for n in names]
        means = [result["conditions"][n]["mean"] for n in names]
        errors = [result["conditions"][n]["mean"] - result["conditions"][n]["ci95"][0] for n in names]
        axis.errorbar(x, means, yerr=errors, marker="o", capsize=3, label=kind.upper())
    axis.set_xlabel("synthetic fraction of training data (0 = real only, 1 = synthetic only)")
    axis.set_ylabel("accuracy on the real test split")
    axis.set_title(f"{report['data']}: {report['settings']['real_train_examples']} real labelled examples")
    axis.grid(alpha=0.3)
    axis.legend()
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


def _sample_grid(real, synthetic, num_classes: int, per_class: int = 8) -> np.ndarray:
    """Per class, ``per_class`` real images then ``per_class`` synthetic ones, one row per class."""
    rng = np.random.default_rng(0)
    rows = []
    for c in range(min(num_classes, 20)):
        for x, y in (real, synthetic):
            members = np.flatnonzero(y == c)
            pick = rng.choice(members, min(per_class, len(members)), replace=False) if len(members) else []
            chosen = x[pick] if len(pick) else np.zeros((0, *x.shape[1:]), np.uint8)
            blank = np.full((per_class - len(chosen), *x.shape[1:]), 255, np.uint8)
            rows.append(np.concatenate([chosen, blank]))
    return image_grid(np.concatenate(rows), cols=2 * per_class, scale=default_scale(real[0].shape[1]))


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
        f"from a `{report['generator']['model']}`). {s['seeds']} seeds per condition; accuracy on the real "
        "test split, mean +- std [95 % interval].",
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
    save_png(out / PLOTS[2], _sample_grid(real, synthetic, len(report["settings"]["class_names"])))
    atomic.write_bytes(out / "report.md", _markdown(report).encode())
