"""Does the tuned policy beat real only and the default 50 % mix, label draw by label draw?

For seeds 0..S-1 (each draws K labels per class, the rest of the train split unlabelled; K = 0 means all
labels, and the seed then varies the generator and the folds): train the default conditional VAE
(optionally keeping a fraction of the labelled examples from it), sample 200 images per class, run
``genaug.tune`` (T trials, 3 folds of the labelled examples) and read its test report: real only, the
default policy and the tuned policy, each the mean over 3 classifier seeds. The promises checked: on every
seed the tuned policy is at or above the better of the other two within one test image (0.22 points on
digits), and never below real only by more than one test image.

Seeds run in two worker processes with TensorFlow on one thread each (as the demo does).

Run: python benchmarks/tune_policy.py [--data digits] [--labels 10] [--seeds 5] [--trials 20]
     [--min-confidence 0] [--min-distance auto|off] [--holdout 0.2]
e.g. on stripes: python benchmarks/make_stripes.py stripes.npz; python benchmarks/tune_policy.py
     --data npz:stripes.npz --labels 0 --seeds 3 --trials 12 --min-confidence 0 --min-distance off --holdout 0.2
(last line: one JSON object with the policies and accuracies)
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from genaug.workers import Workers  # noqa: E402


def one_seed(seed: int, work: str, args: argparse.Namespace) -> dict:
    import genaug
    from trainers import config as cfg

    work = Path(work)
    config = cfg.from_dict(
        {
            "data": {"data": args.data, "labels_per_class": args.labels or None, "holdout": args.holdout},
            "optim": {"epochs": 150},
            "run": {"out": str(work / f"run{seed}"), "seed": seed, "quiet": True, "sample_every": 150},
        }
    )
    started = time.time()
    run = genaug.train(config)
    syn = work / f"syn{seed}"
    min_distance = None if args.min_distance == "off" else args.min_distance
    genaug.sample(
        run.directory,
        syn,
        per_class=200,
        seed=seed,
        min_confidence=args.min_confidence,
        min_distance=min_distance,
        progress=False,
    )
    report = genaug.tune(args.data, [syn], work / f"tune{seed}", trials=args.trials, seed=seed, progress=False)
    row = {name: result.mean for name, result in report.test.items()}
    print(f"seed {seed}: {row} policy {report.policy} [{time.time() - started:.0f} s]", flush=True)
    # Which finalist tune kept: "search" (its best) or a baseline's name; no check: a baseline won the
    # search itself and there was no holdout.
    check = report.confirmation
    return {
        "seed": seed,
        "test": row,
        "policy": report.policy,
        "kept": check.kept if check else "a baseline won the search",
        "check_scores": check.scores if check else None,
        "tune_seconds": report.seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", help="a data spec (digits, npz:PATH, ...)")
    parser.add_argument("--labels", type=int, default=10, help="labels per class (0: all)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--min-confidence",
        type=float,
        help="sample with this oracle threshold, storing each image's confidence (0 keeps all), so that "
        "tune also searches a read-time threshold",
    )
    parser.add_argument("--min-distance", default="auto", help="the sampler's memorisation guard: auto or off")
    parser.add_argument(
        "--holdout", type=float, default=0.0, help="train each generator with this holdout (tune checks on it)"
    )
    args = parser.parse_args()
    from genaug.data import load_arrays
    from genaug.metrics import mean_interval

    one_test_image = 1 / len(load_arrays(args.data, "test").y)

    with tempfile.TemporaryDirectory() as work, Workers(2) as workers:
        pending = [workers.submit(one_seed, s, work, args) for s in range(args.seeds)]
        rows = [result.get() for result in pending]
    real, default, tuned = (
        np.array([r["test"][k] for r in rows]) for k in ("real only", "default (50 % synthetic)", "tuned")
    )
    better = np.maximum(real, default)
    summary = {
        "data": args.data,
        "labels_per_class": args.labels or None,
        "trials": args.trials,
        "sampled_min_confidence": args.min_confidence,
        "holdout": args.holdout,
        "real_only": mean_interval(real.tolist()),
        "default": mean_interval(default.tolist()),
        "tuned": mean_interval(tuned.tolist()),
        "tuned_minus_better": mean_interval((tuned - better).tolist()),
        "never_worse_within_one_image": bool(np.all(tuned >= better - one_test_image - 1e-9)),
        "never_worse_than_real_within_one_image": bool(np.all(tuned >= real - one_test_image - 1e-9)),
        "policies": [r["policy"] for r in rows],
        "kept": [r["kept"] for r in rows],
        "check_scores": [r["check_scores"] for r in rows],
        "tune_seconds": [r["tune_seconds"] for r in rows],
    }
    print(f"{'seed':<11} {'real only':>9} {'default':>8} {'tuned':>7}  kept")
    for r, a, b, c in zip(rows, real, default, tuned, strict=True):
        print(f"{r['seed']:<11} {100 * a:9.1f} {100 * b:8.1f} {100 * c:7.1f}  {r['kept']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
