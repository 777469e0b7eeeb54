"""Where a cvae's codes come from when sampling: the fitted prior against attention-weighted interpolation of
training codes (``genaug sample --latent attention``), on digits.

Trains the default cvae once (``--labels`` per class, the rest unlabelled; 0: every label), then for each
latent setting draws ``--draws`` sets of 200 images per class (no filters) and reports, averaged over
draws: CAS (SVC(C=10) trained on the synthetic images only, accuracy on the real test split), the Frechet
distance to the real training images in the CNN recipe's feature space (real test images: the
yardstick), and the share of near-copies (closer to an image the generator trained on than 99 % of real
test images are).

Run: python benchmarks/latent_sampler.py [--labels 10] [--draws 3] [--seed 0]
(last line: JSON mapping each setting to its CAS, Frechet distance and near-copy share)
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

import genaug  # noqa: E402
from genaug import metrics  # noqa: E402
from genaug.classifier import arrays_dataset, penultimate_features, train_classifier  # noqa: E402
from genaug.latents import AttentionSettings  # noqa: E402
from genaug.runs import RunDirectory  # noqa: E402
from genaug.synthetic import SyntheticDataset  # noqa: E402
from trainers import config as cfg  # noqa: E402

PER_CLASS = 200
SETTINGS = {
    "prior": {},
    "attention k5 T1": {"latent": "attention", "attention": AttentionSettings(k=5, temperature=1.0)},
    "attention k10 T1": {"latent": "attention", "attention": AttentionSettings(k=10, temperature=1.0)},
    "attention k5 T1 extrapolate 0.5": {
        "latent": "attention",
        "attention": AttentionSettings(k=5, temperature=1.0, extrapolation=0.5),
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=10, help="labels per class (0: all)")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train = genaug.load_arrays("digits", "train")
    test = genaug.load_arrays("digits", "test")
    features = train_classifier(arrays_dataset(train.x, train.y), train.x.shape[1:], 10, seed=0, steps=1000)
    real_f, test_f = penultimate_features(features, train.x), penultimate_features(features, test.x)
    yardstick = metrics.frechet_distance(real_f, test_f)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = {"labels_per_class": args.labels or None}
        config = cfg.from_dict(
            {
                "data": data,
                "model": {"kind": "cvae"},
                "run": {"out": str(tmp / "run"), "seed": args.seed, "quiet": True},
            }
        )
        started = time.time()
        run = genaug.train(config).directory
        seen = RunDirectory.open(run).training_images()[0]
        threshold = metrics.default_min_distance(seen, test.x)
        print(
            f"cvae, {args.labels or 'all'} labels per class: trained in {time.time() - started:.0f} s; "
            f"real test vs train Frechet distance {yardstick:.2f}",
            flush=True,
        )
        results = {}
        for name, kwargs in SETTINGS.items():
            scores, distances, copies = [], [], []
            for draw in range(args.draws):
                out = tmp / f"{name}-{draw}".replace(" ", "_")
                genaug.sample(run, out, per_class=PER_CLASS, seed=draw, min_distance=None, progress=False, **kwargs)
                x, y = SyntheticDataset.open(out).arrays()
                svc = SVC(C=10, gamma="scale").fit(x.reshape(len(x), -1) / 255.0, y)
                scores.append(float((svc.predict(test.x.reshape(len(test.x), -1) / 255.0) == test.y).mean()))
                distances.append(metrics.frechet_distance(real_f, penultimate_features(features, x)))
                copies.append(float((metrics.nearest_distances(x, seen) < threshold).mean()))
            results[name] = {
                "cas": metrics.mean_interval(scores),
                "frechet_distance": float(np.mean(distances)),
                "near_copy_share": float(np.mean(copies)),
            }
            low, high = results[name]["cas"]["ci95"]
            print(
                f"  {name:<34} CAS {100 * np.mean(scores):.1f} [{100 * low:.1f}, {100 * high:.1f}]  "
                f"FD {np.mean(distances):.2f}  near-copies {100 * np.mean(copies):.1f} %",
                flush=True,
            )
    print(
        json.dumps(
            {
                name: {"cas": r["cas"]["mean"], "fd": r["frechet_distance"], "near_copies": r["near_copy_share"]}
                for name, r in results.items()
            }
        )
    )


if __name__ == "__main__":
    main()
