"""Scarce labels on digits: does a generator that also learns from the unlabelled images pay?

For K labels per class and label-subset seeds 0..S-1: train the default conditional VAE with K labels per
class and the rest of the train split unlabelled (``--unlabeled auto``: label spreading pseudo-labels the
unlabelled images, those at least 0.9 confident join the training set), sample 200 images per class, and
run ``genaug.evaluate`` (CNN and SVC recipes, 3 classifier seeds each) on the real test split. Beside it,
the non-generative route a user has without genaug: the same label spreading, then the same classifier
recipes trained on the labelled plus all pseudo-labelled real images.

Rows (accuracy, mean over label seeds with a 95 % t-interval; gains paired by label seed):
real only (the K labelled images), real + synthetic (fractions 0.5, 0.75, 0.9), synthetic only, and
the label-spreading baseline.

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
from scipy import stats  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

import genaug  # noqa: E402
from genaug.classifier import arrays_dataset, predict_proba, train_classifier  # noqa: E402
from genaug.data import unlabeled_rest  # noqa: E402
from genaug.teacher import pseudo_labels  # noqa: E402
from trainers import config as cfg  # noqa: E402

FRACTIONS = (0.5, 0.75, 0.9)
CNN_STEPS = 600


def interval(values) -> dict:
    values = np.asarray(values, np.float64)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "ci95": [float(values.mean() - half), float(values.mean() + half)]}


def cell(result: dict, sign: str) -> str:
    """``mean [low, high]`` in percent."""
    low, high = result["ci95"]
    return f"{100 * result['mean']:{sign}5.1f} [{100 * low:{sign}5.1f}, {100 * high:{sign}5.1f}]"


def baseline(labels_per_class: int, seed: int, test) -> dict:
    """Label spreading over labelled + unlabelled images, then the classifier recipes on all of them."""
    full = genaug.load_arrays("digits", "train")
    labelled = genaug.load_arrays("digits", "train", labels_per_class=labels_per_class, seed=seed)
    unlabeled = unlabeled_rest(full, labelled)
    pseudo, _ = pseudo_labels(labelled, unlabeled)
    x, y = np.concatenate([labelled.x, unlabeled.x]), np.concatenate([labelled.y, pseudo])
    svc = SVC(C=10, gamma="scale").fit(x.reshape(len(x), -1) / 255.0, y)
    svc_acc = float((svc.predict(test.x.reshape(len(test.x), -1) / 255.0) == test.y).mean())
    cnn_accs = []
    for classifier_seed in range(3):
        model = train_classifier(
            arrays_dataset(x, y, seed=classifier_seed), (8, 8, 1), 10, seed=classifier_seed, steps=CNN_STEPS
        )
        cnn_accs.append(float((predict_proba(model, test.x).argmax(axis=1) == test.y).mean()))
    return {"cnn": float(np.mean(cnn_accs)), "svc": svc_acc}


def one_seed(labels_per_class: int, seed: int, epochs: int, work: Path, test) -> dict:
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
    row = {kind: {name: r["mean"] for name, r in u["conditions"].items()} for kind, u in report["utility"].items()}
    for kind, accuracy in baseline(labels_per_class, seed, test).items():
        row[kind]["label_spreading"] = accuracy
    row["pseudo_labelled"] = run.record.unlabeled["pseudo_labelled"]
    row["seconds"] = time.time() - started
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[10], help="labels per class (several allowed)")
    parser.add_argument("--seeds", type=int, default=5, help="label-subset seeds 0..S-1")
    parser.add_argument("--epochs", type=int, default=150)
    args = parser.parse_args()
    test = genaug.load_arrays("digits", "test")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.labels:
            rows = []
            for seed in range(args.seeds):
                rows.append(one_seed(k, seed, args.epochs, Path(tmp) / f"k{k}", test))
                print(f"K={k} seed {seed}: {json.dumps(rows[-1])}", flush=True)
            summary = {}
            for kind in ("cnn", "svc"):
                names = list(rows[0][kind])
                summary[kind] = {name: interval([r[kind][name] for r in rows]) for name in names}
                real = np.array([r[kind]["real"] for r in rows])
                summary[kind]["gain"] = {
                    name: interval(np.array([r[kind][name] for r in rows]) - real) for name in names if name != "real"
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
