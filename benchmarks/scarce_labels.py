"""Scarce labels on digits: does a generator that also learns from the unlabelled images pay?

For K labels per class and label-subset seeds 0..S-1: train the default conditional VAE with K labels per
class and the rest of the train split unlabelled (``--unlabeled auto``: label spreading pseudo-labels the
unlabelled images, those at least 0.9 confident join the training set), sample 200 images per class, and
run ``genaug.evaluate`` (CNN and SVC recipes, 3 classifier seeds each) on the real test split. It puts
beside the synthetic data the routes a user has without genaug: classic augmentation of the labelled
images, and the same label spreading with the classifier recipes trained on the labelled plus all
pseudo-labelled real images.

Rows (accuracy, mean over label seeds with a 95 % t-interval; gains paired by label seed):
real only (the K labelled images), real + synthetic (fractions 0.5, 0.75, 0.9), synthetic only,
real + classic augmentation and label spreading.

Run: python benchmarks/scarce_labels.py [--labels 10] [--seeds 5] [--epochs 150]
(last line: one JSON object with every figure)
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import genaug  # noqa: E402
from genaug.metrics import mean_interval  # noqa: E402
from trainers import config as cfg  # noqa: E402

FRACTIONS = (0.5, 0.75, 0.9)
CNN_STEPS = 600


def cell(result: dict, sign: str) -> str:
    """``mean [low, high]`` in percent."""
    low, high = result["ci95"]
    return f"{100 * result['mean']:{sign}5.1f} [{100 * low:{sign}5.1f}, {100 * high:{sign}5.1f}]"


def one_seed(labels_per_class: int, seed: int, epochs: int, work: Path) -> dict:
    config = cfg.from_dict(
        {
            "data": {"labels_per_class": labels_per_class},
            "optim": {"epochs": epochs},
            "run": {"out": str(work / f"run{seed}"), "seed": seed, "quiet": True, "sample_every": epochs},
        }
    )
    started = time.time()
    run = genaug.train(config)
    genaug.sample(run.directory, work / f"syn{seed}", per_class=200, seed=seed, progress=False)
    report = genaug.evaluate(
        "digits",
        work / f"syn{seed}",
        work / f"report{seed}",
        seeds=3,
        fractions=FRACTIONS,
        steps=CNN_STEPS,
        progress=False,
    )
    row = {
        kind: {name: r["mean"] for name, r in {**u["conditions"], **u["baselines"]}.items()}
        for kind, u in report["utility"].items()
    }
    row["pseudo_labelled"] = run.record.unlabeled["pseudo_labelled"]
    row["seconds"] = time.time() - started
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[10], help="labels per class (several allowed)")
    parser.add_argument("--seeds", type=int, default=5, help="label-subset seeds 0..S-1")
    parser.add_argument("--epochs", type=int, default=150)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.labels:
            rows = []
            for seed in range(args.seeds):
                rows.append(one_seed(k, seed, args.epochs, Path(tmp) / f"k{k}"))
                print(f"K={k} seed {seed}: {json.dumps(rows[-1])}", flush=True)
            summary = {}
            for kind in ("cnn", "svc"):
                names = list(rows[0][kind])
                summary[kind] = {name: mean_interval([r[kind][name] for r in rows]) for name in names}
                real = np.array([r[kind]["real"] for r in rows])
                others = [name for name in names if name != "real"]
                summary[kind]["gain"] = {
                    name: mean_interval(np.array([r[kind][name] for r in rows]) - real) for name in others
                }
                print(
                    f"\nK={k} {kind}: accuracy % (mean [95 % interval] over {args.seeds} label seeds; gain over real)"
                )
                for name in names:
                    gain = summary[kind]["gain"].get(name)
                    print(
                        f"  {name:<16} {cell(summary[kind][name], '')}" + (f"  gain {cell(gain, '+')}" if gain else "")
                    )
            results[str(k)] = {"rows": rows, "summary": summary}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
