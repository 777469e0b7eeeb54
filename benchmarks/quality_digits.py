"""Generator quality on digits: classification accuracy score (CAS) against a Gaussian-mixture baseline.

For each model: train on the digits train split (per-model defaults) for a fixed CPU time budget,
sample 200 images per class (unconditional models are labelled by the oracle; no filters), train
scikit-learn's SVC(C=10, gamma="scale") on the synthetic images only and report its accuracy on the real
test split. Beside it, the same SVC on real train images and on a per-class Gaussian mixture
(3 full-covariance components per class) sampled 200 per class.

Every generator, the baseline included, is scored on ``--draws`` independent sample draws (seeds
0, 1, ...; for the mixture, fit and sample seeds) and its CAS is their mean: one draw of 2,000 images
moves CAS by about 0.2 points (one test image in 450), as much as the gaps being measured.

CAS also rewards copying: a generator that returns its training images scores like real data. So
beside each CAS the benchmark prints how far the samples sit from the training set (median distance
to the nearest training image, pixels in [0, 1]) next to the same figure for the real test images;
a generator well below that yardstick wins CAS by memorising.

Run: python benchmarks/quality_digits.py [--budget 120] [--models cvae,cdcgan] [--seeds 1] [--draws 3]
[--params '{"noise_injection": true}']
(last line: JSON mapping each model, "gmm" and "real" to its CAS; with several training seeds, the mean:
a single 120 s GAN run varies by about a point of CAS from seed to seed)
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

import genaug  # noqa: E402
from genaug.metrics import nearest_distances  # noqa: E402
from trainers import config as cfg  # noqa: E402

PER_CLASS = 200


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of the first epoch past ``seconds``."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if time.time() - self.start > self.seconds:
            self.model.stop_training = True


def cas(x, y, test) -> float:
    svc = SVC(C=10, gamma="scale").fit(x.reshape(len(x), -1) / 255.0, y)
    return float((svc.predict(test.x.reshape(len(test.x), -1) / 255.0) == test.y).mean())


def gmm_samples(train, seed=0):
    xs, ys = [], []
    for c in range(10):
        members = train.x[train.y == c].reshape(-1, 64) / 255.0
        gmm = GaussianMixture(3, covariance_type="full", random_state=seed).fit(members)
        xs.append(np.clip(np.round(gmm.sample(PER_CLASS)[0] * 255), 0, 255).astype(np.uint8).reshape(-1, 8, 8, 1))
        ys.append(np.full(PER_CLASS, c))
    return np.concatenate(xs), np.concatenate(ys)


def train_distance(x, train) -> float:
    """Median distance from each image in ``x`` to its nearest training image."""
    return float(np.median(nearest_distances(x, train.x)))


def listed(scores) -> str:
    """CAS figures as ``0.9844, 0.9800``."""
    return ", ".join(f"{c:.4f}" for c in scores)


def gmm_score(train, test, draws: int) -> tuple[list[float], float]:
    """The mixture baseline's CAS for fit-and-sample seeds 0 .. draws - 1, and its samples' mean
    :func:`train_distance`."""
    samples = [gmm_samples(train, seed) for seed in range(draws)]
    return [cas(x, y, test) for x, y in samples], float(np.mean([train_distance(x, train) for x, _ in samples]))


def train_and_score(
    kind: str, seed: int, budget: float, tmp: Path, train, test, draws: int, params: dict
) -> tuple[float, float]:
    """Trains ``kind`` (its settings overridden by ``params``) with training seed ``seed`` for ``budget``
    seconds; its CAS on ``test`` and its samples' :func:`train_distance`, each averaged over ``draws``
    sample draws."""
    config = cfg.from_dict(
        {
            "model": {"kind": kind, **params},
            "optim": {"epochs": 100_000},
            "run": {
                "out": str(tmp / f"{kind}_{seed}"),
                "seed": seed,
                "quiet": True,
                "sample_every": 100_000,
                "checkpoint_every": 100_000,
            },
        }
    )
    run = genaug.train(config, extra_callbacks=[TimeBudget(budget)])
    scores, distances = [], []
    for draw in range(draws):
        out = tmp / f"syn_{kind}_{seed}_{draw}"
        genaug.sample(run.directory, out, per_class=PER_CLASS, seed=draw, min_distance=None, progress=False)
        ds, _ = genaug.load_synthetic(out)
        batch = next(iter(ds.batch(10 * PER_CLASS).as_numpy_iterator()))
        scores.append(cas(batch["image"], batch["label"], test))
        distances.append(train_distance(batch["image"], train))
    score, distance, epochs = float(np.mean(scores)), float(np.mean(distances)), run.record.epochs_completed
    print(
        f"  {kind} seed {seed}: {epochs} epochs in ~{budget:.0f} s, CAS {score:.4f} (draws: {listed(scores)}),"
        f" nearest-train distance {distance:.3f}",
        flush=True,
    )
    return score, distance


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=120.0, help="training seconds per model")
    parser.add_argument("--models", default="vae,cvae,dcgan,cdcgan")
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per model (CAS is their mean)")
    parser.add_argument("--draws", type=int, default=3, help="sample draws per generator (CAS is their mean)")
    parser.add_argument(
        "--params", type=json.loads, default={}, help="model settings, e.g. '{\"noise_injection\": true}'"
    )
    args = parser.parse_args()
    train = genaug.load_arrays("digits", "train")
    test = genaug.load_arrays("digits", "test")
    gmm, gmm_distance = gmm_score(train, test, args.draws)
    results = {"real": cas(train.x, train.y, test), "gmm": float(np.mean(gmm))}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.models.split(","):
            runs = [
                train_and_score(kind, seed, args.budget, Path(tmp), train, test, args.draws, args.params)
                for seed in range(args.seeds)
            ]
            scores = [score for score, _ in runs]
            results[kind] = float(np.mean(scores))
            spread = f" (training seeds 0..{args.seeds - 1}: {listed(scores)})" if args.seeds > 1 else ""
            distance = np.mean([d for _, d in runs])
            print(f"{kind:<7} CAS {results[kind]:.4f}, nearest-train distance {distance:.3f}{spread}", flush=True)
    print(
        f"{'gmm':<7} CAS {results['gmm']:.4f}, nearest-train distance {gmm_distance:.3f}"
        f"   (3 full-covariance components per class; draws: {listed(gmm)})"
    )
    print(
        f"{'real':<7} CAS {results['real']:.4f}, nearest-train distance {train_distance(test.x, train):.3f}"
        "   (SVC on the 1,347 real train images; distance: the real test images', the yardstick)"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
