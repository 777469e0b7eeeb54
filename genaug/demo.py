"""``genaug demo``: the whole factory on the embedded digits, in a few minutes on a CPU.

For two settings, scarce labels (10 per class, the other 1,247 train images used without labels) and
the full train split, it trains a conditional VAE, samples 200 labelled images per class, mixes them
into the real data and evaluates over 5 seeds.
"""

from __future__ import annotations

import time
from pathlib import Path

# Per setting: labels per class (None = all) and the training schedule that fits the demo's budget.
SETTINGS = {
    "10_per_class": {"labels_per_class": 10, "epochs": 150, "batch_size": 64},
    "full": {"labels_per_class": None, "epochs": 150, "batch_size": 64},
}
FRACTION = 0.5


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
            "digits", base / "synthetic", base / "report", seeds=seeds, fractions=(FRACTION,), progress=False
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
    mixed = f"mixed_{FRACTION:g}"
    lines = [
        f"{'setting':<13} {'model':<5} {'real only':<21} {'real+synthetic':<21} {'gain':>6} {'synthetic only':<21}",
    ]
    for name, report in reports.items():
        for kind, result in report["utility"].items():
            c = result["conditions"]
            gain = 100 * result["gain"][f"{FRACTION:g}"]["mean"]
            lines.append(
                f"{name:<13} {kind:<5} {_cell(c['real']):<21} {_cell(c[mixed]):<21} {gain:+6.1f} "
                f"{_cell(c['synthetic']):<21}"
            )
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
