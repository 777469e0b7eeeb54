"""Imbalanced classes: does filling the rare classes with synthetic images beat the usual remedies?

For each seed 0..S-1, on a long-tailed train split (``DATA?imbalance=R``: class c keeps n_max R^(-c/(K-1))
images) scored on the balanced official test split: train the default conditional VAE on it, sample
``--class-balance fill`` (every class topped up to the largest), let ``genaug tune`` choose a policy by
balanced accuracy on the labelled data, and train the CNN recipe (600 steps) as each route says:

  real only | class-weighted loss (n / (K n_c)) | random oversampling | classic augmentation + oversampling |
  genaug (real + the filled synthetic set, the tuned policy; it may weigh classes or oversample the real images, as
  tune searches both on imbalanced labels) | synthetic fill, half and half (no tuning) | the same with the real half
  oversampled (no tuning)

Scores: balanced accuracy (mean recall), macro F1, and the mean recall of the three rarest classes; mean
over seeds with 95 % t-intervals, and genaug's gains paired by seed.

Run:
  python benchmarks/imbalanced.py --imbalance 10 --seeds 3                   # digits
  python benchmarks/imbalanced.py --data idx:/usr/share/datasets/fashion-mnist --train-size 10000 \\
      --imbalance 100 --seeds 3                                               # Fashion-MNIST, n_max 1,000
(last line: one JSON object with every figure). ``--jobs 2`` trains tune's and the routes' classifiers side by
side in one-thread worker processes; ``--rows FILE`` keeps each seed's row, so that a rerun continues.
"""

import argparse
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from genaug.startup import start_tensorflow  # noqa: E402

start_tensorflow(show_native_log=False)

import numpy as np  # noqa: E402
from seed_rows import SeedRows  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402

import genaug  # noqa: E402
from genaug.metrics import mean_interval, recall_per_class, score  # noqa: E402
from genaug.policy import CLASS_WEIGHTED, DEFAULT_OVERSAMPLED  # noqa: E402
from genaug.scoring import Fit, oversampled, test_predictions  # noqa: E402
from genaug.synthetic import SyntheticDataset  # noqa: E402
from genaug.workers import Workers, in_order  # noqa: E402
from trainers import config as cfg  # noqa: E402

STEPS = 600
ROUTES = (
    "real", "class_weighted", "oversampled", "classic_oversampled", "genaug", "fill_half", "fill_half_oversampled",
)  # fmt: skip


def scores(predicted: np.ndarray, test, rarest: np.ndarray) -> dict:
    return {
        "balanced_accuracy": score("balanced_accuracy", predicted, test.y),
        "macro_f1": float(f1_score(test.y, predicted, average="macro")),
        "rarest_recall": float(np.mean(recall_per_class(predicted, test.y, rarest))),
    }


def one_seed(args, seed: int, work: Path, workers: Workers | None) -> dict:
    started = time.time()
    data = {"data": args.data, "unlabeled": "none", "class_balance": args.generator_balance}
    config = cfg.from_dict({"data": data, "run": {"out": str(work / f"run{seed}"), "seed": seed, "quiet": True}})
    run = genaug.train(config)
    syn = work / f"syn{seed}"
    genaug.sample(run.directory, syn, class_balance="fill", seed=seed, progress=False)
    tuned = genaug.tune(
        args.data, [syn], work / f"tune{seed}", seed=seed, trials=args.trials, seeds=0, metric="balanced_accuracy",
        workers=workers, progress=False,
    )  # fmt: skip
    policy = genaug.Policy.from_dict(tuned.policy)
    real, test = genaug.load_arrays(args.data, "train"), genaug.load_arrays(args.data, "test")
    syn_x, syn_y = SyntheticDataset.open(syn).arrays()
    rarest = np.argsort(np.bincount(real.y), kind="stable")[:3]
    over = oversampled(real.x, real.y, np.random.default_rng(seed))

    def cnn(train, fraction=0.0, augment=False, route_policy=None):
        return Fit("cnn", train, (syn_x, syn_y), fraction, seed, test, STEPS, augment, route_policy)

    fits = {
        "real": cnn((real.x, real.y)),
        "oversampled": cnn(over),
        "classic_oversampled": cnn(over, augment=True),
        "genaug": cnn((real.x, real.y), fraction=None, route_policy=policy),
        "fill_half": cnn((real.x, real.y), fraction=0.5),
        "fill_half_oversampled": cnn((real.x, real.y), fraction=None, route_policy=DEFAULT_OVERSAMPLED),
        "class_weighted": cnn((real.x, real.y), fraction=None, route_policy=CLASS_WEIGHTED),
    }
    predicted = dict(zip(fits, in_order(test_predictions, fits.values(), workers), strict=True))
    row = {route: scores(p, test, rarest) for route, p in predicted.items()}
    row["policy"] = tuned.policy
    row["seconds"] = round(time.time() - started)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", help="data spec (default digits)")
    parser.add_argument("--train-size", type=int, help="a stratified subset of N train images first")
    parser.add_argument("--imbalance", type=int, default=10, help="imbalance ratio R (largest / smallest class)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..S-1 (generator, sampler, classifiers)")
    parser.add_argument("--trials", type=int, default=5, help="tune's trials per seed")
    parser.add_argument(
        "--generator-balance", type=float, default=0.0, metavar="B",
        help="the generator's data.class_balance: class c drawn in proportion to n_c^-B while it trains",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, help="worker processes for the classifier fits (default: none)")
    parser.add_argument("--rows", type=Path, help="keep each seed's row in this JSON file; a rerun continues")
    args = parser.parse_args()
    options = [f"train_size={args.train_size}"] if args.train_size else []
    args.data = f"{args.data}?{'&'.join([*options, f'imbalance={args.imbalance}'])}"
    stored = SeedRows(args.rows, {k: v for k, v in vars(args).items() if k not in ("seeds", "rows")})
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Workers(args.jobs) if args.jobs else contextlib.nullcontext() as pool:
        for seed in range(args.seeds):
            rows.append(stored.get(seed, lambda s: one_seed(args, s, Path(tmp), pool)))
            print(f"seed {seed}: {json.dumps(rows[-1])}", flush=True)
    summary = {}
    for measure in ("balanced_accuracy", "macro_f1", "rarest_recall"):
        summary[measure] = {route: mean_interval([r[route][measure] for r in rows]) for route in ROUTES}
        for base in ROUTES[:4]:
            gains = [r["genaug"][measure] - r[base][measure] for r in rows]
            summary[measure][f"genaug - {base}"] = mean_interval(gains)
        print(f"\n{measure} % on the balanced test split (mean [95 % interval] over {args.seeds} seeds)")
        for name, result in summary[measure].items():
            low, high = result["ci95"]
            print(f"  {name:<32} {100 * result['mean']:6.1f} [{100 * low:6.1f}, {100 * high:6.1f}]")
    print(json.dumps({"args": vars(args) | {"rows": args.rows and str(args.rows)}, "rows": rows, "summary": summary}))


if __name__ == "__main__":
    main()
