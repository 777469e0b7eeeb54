"""How right is the teacher? Its labels' accuracy on the unlabelled train images and on the test split.

The split is the one ``genaug train`` makes (K labels per class by the seed, a fifth held out, the rest
unlabelled); the unlabelled images' true labels are used here only to score.

Run:
  python benchmarks/teacher_accuracy.py --data idx:/usr/share/datasets/fashion-mnist --train-size 10000 [--flip]
(last line: one JSON object)
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from genaug.startup import start_tensorflow  # noqa: E402

start_tensorflow(show_native_log=False)

import numpy as np  # noqa: E402

from genaug.data import holdout_subset, labelled_subset, load_arrays, unlabeled_rest  # noqa: E402
from genaug.teacher import teach, teacher_probabilities  # noqa: E402
from trainers.config import PRECISIONS  # noqa: E402
from trainers.runtime import resolve_teacher_precision  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--train-size", type=int, help="a stratified subset of N train images")
    parser.add_argument("--labels", type=int, default=10, help="labels per class")
    parser.add_argument("--seed", type=int, default=0, help="label seed (and FixMatch's)")
    parser.add_argument("--teacher", default="fixmatch", choices=("fixmatch", "spreading"))
    parser.add_argument("--steps", type=int, default=2500, help="FixMatch's steps")
    parser.add_argument("--flip", action="store_true", help="FixMatch mirrors images too")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="FixMatch's dtype policy")
    args = parser.parse_args()
    spec = f"{args.data}?train_size={args.train_size}" if args.train_size else args.data
    full, test = load_arrays(spec, "train"), load_arrays(spec, "test")
    labelled = full.subset(labelled_subset(full.y, labels_per_class=args.labels, seed=args.seed))
    unlabeled = unlabeled_rest(full, labelled)
    held = holdout_subset(labelled.y, 0.2, seed=args.seed)
    heldout, labelled = labelled.subset(held), labelled.without(labelled.indices[held])
    truth = full.y[np.searchsorted(full.indices, unlabeled.indices)]
    started = time.time()
    teaching = teach(
        labelled,
        unlabeled,
        teacher=args.teacher,
        heldout=heldout,
        steps=args.steps,
        flip=args.flip,
        precision=resolve_teacher_precision(args.precision),
        seed=args.seed,
    )
    confident = teaching.confidence >= 0.9
    result = {
        "args": vars(args),
        "unlabeled_accuracy": float((teaching.labels == truth).mean()),
        "confident_share": float(confident.mean()),
        "confident_accuracy": float((teaching.labels[confident] == truth[confident]).mean()),
        "heldout_accuracy": teaching.heldout_accuracy,
        "precision": teaching.precision,
        "seconds": round(time.time() - started),
    }
    if teaching.model is not None:
        predicted = teacher_probabilities(teaching.model, test.x).argmax(axis=1)
        result["test_accuracy"] = float((predicted == test.y).mean())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
