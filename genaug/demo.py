"""``genaug demo``: the whole factory on the embedded digits, in a few minutes on a CPU.

For two settings, scarce labels (10 per class, the other 1,247 train images used without labels) and
the full train split, it trains a conditional VAE, samples 200 labelled images per class, mixes them
into the real data and evaluates over 5 seeds, beside the routes without genaug (classic augmentation,
and label spreading when labels are scarce).
"""

from __future__ import annotations

import time
from pathlib import Path

# Per setting: labels per class (None = all), the training schedule that fits the demo's budget, and
# the synthetic share of the classifiers' training data. With 10 labels per class more synthetic data
# kept helping up to 90 % (docs/experiments.md, scarce labels); with all labels, half costs nothing.
SETTINGS = {
    "10_per_class": {"labels_per_class": 10, "epochs": 150, "batch_size": 64, "fraction": 0.9},
    "full": {"labels_per_class": None, "epochs": 150, "batch_size": 64, "fraction": 0.5},
}


def demo(out: str | Path = "demo", *, seeds: int = 5, per_class: int = 200, overwrite: bool = False) -> dict:
    """Runs train -> sample -> evaluate for each setting under ``out`` and prints a summary table.

    Args:
        out: folder for ``SETTING/run``, ``SETTING/synthetic`` and ``SETTING/report``.
        seeds: classifier seeds per condition.
        per_class: synthetic images per class.
        overwrite: replace the runs and synthetic sets a previous demo left in ``out``.

    Returns:
        ``{setting: report}``.
    """
    from genaug.evaluation import evaluate
    from genaug.sampler import sample
    from trainers import config as cfg
    from trainers import train

    out = Path(out)
    reports, started = {}, time.time()
    for name, setting in SETTINGS.items():
        base = out / name
        labels = setting["labels_per_class"]
        print(
            f"[{time.time() - started:5.0f} s] {name}: training a conditional VAE "
            f"({setting['epochs']} epochs on "
            f"{f'{labels} labels per class and the rest unlabelled' if labels else 'all 1,347 digits'})"
        )
        config = cfg.from_dict(
            {
                "model": {"kind": "cvae"},
                "data": {"data": "digits", "labels_per_class": labels},
                "optim": {"epochs": setting["epochs"], "batch_size": setting["batch_size"]},
                "run": {
                    "out": str(base / "run"),
                    "quiet": True,
                    "seed": 0,
                    "sample_every": max(1, setting["epochs"] // 4),
                    "checkpoint_every": max(1, setting["epochs"] // 4),
                },
            }
        )
        run = train(config, overwrite=overwrite)
        print(f"[{time.time() - started:5.0f} s] {name}: sampling {per_class} images per class")
        sample(run.directory, base / "synthetic", per_class=per_class, seed=0, overwrite=overwrite, progress=False)
        print(f"[{time.time() - started:5.0f} s] {name}: evaluating ({seeds} seeds)")
        reports[name] = evaluate(
            "digits", base / "synthetic", base / "report", seeds=seeds, fractions=(setting["fraction"],), progress=False
        )
    print()
    print(summary_table(reports))
    print(
        f"\nwrote runs, synthetic sets and reports under {out}/ in {time.time() - started:.0f} s "
        f"(see {out}/*/report/report.md)"
    )
    return reports


def _cell(result: dict) -> str:
    low, high = result["ci95"]
    return f"{100 * result['mean']:5.1f} [{100 * low:5.1f}, {100 * high:5.1f}]"


def summary_table(reports: dict) -> str:
    """Accuracy (%, mean [95 % interval]) per setting and classifier, then fidelity and memorisation."""
    columns = ["real only", "+ classic aug.", "label spreading", "real + synthetic (share)", "gain", "synthetic only"]
    widths = [21, 21, 21, 27, 6, 21]

    def row(first: str, cells: list[str]) -> str:
        cells = (f"{c:>{w}}" if w == 6 else f"{c:<{w}}" for c, w in zip(cells, widths, strict=True))
        return (first + " ".join(cells)).rstrip()

    lines = [row(f"{'setting':<13} {'model':<5} ", columns)]
    for name, report in reports.items():
        fraction = report["settings"]["fractions"][0]
        for kind, result in report["utility"].items():
            c, baselines = result["conditions"], result["baselines"]
            spreading = baselines.get("label_spreading")
            cells = [
                _cell(c["real"]),
                _cell(baselines["classic_augmentation"]),
                _cell(spreading) if spreading else "    -",
                f"{_cell(c[f'mixed_{fraction:g}'])} ({fraction:.0%})",
                f"{100 * result['gain'][f'{fraction:g}']['mean']:+.1f}",
                _cell(c["synthetic"]),
            ]
            lines.append(row(f"{name:<13} {kind:<5} ", cells))
    lines.append("")
    lines.append(
        f"{'setting':<13} {'FD syn':>8} {'FD test':>8} {'precision':>9} {'recall':>7} "
        f"{'closer-to-train':>15} {'near-copies':>11}"
    )
    for name, report in reports.items():
        fid, memo = report["fidelity"], report["memorisation"]
        syn, test = fid["synthetic_vs_real_train"], fid["real_test_vs_real_train"]
        lines.append(
            f"{name:<13} {syn['frechet_distance']:8.2f} {test['frechet_distance']:8.2f} "
            f"{syn['precision']:9.3f} {syn['recall']:7.3f} {memo['closer_to_train_share']:15.3f} "
            f"{memo['near_copies']:11d}"
        )
    return "\n".join(lines)
