"""How right is the teacher? Its labels' accuracy on the unlabelled train images and on the test split.

The split is the one ``genaug train`` makes (K labels per class by the seed, a fifth held out, the rest
unlabelled); the unlabelled images' true labels are used here only to score.

Run:
  python benchmarks/teacher_accuracy.py --data idx:/usr/share/datasets/fashion-mnist --train-size 10000 [--flip]
  [--members M]  (genaug train --teacher-members: the ensemble's scores, and each member's under "members")
  [--pretrain-steps N]  (genaug train --teacher-pretrain-steps: FixMatch starts from a SimCLR encoder)
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
from trainers.runtime import resolve_precision  # noqa: E402


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
    parser.add_argument("--members", type=int, default=1, help="FixMatch teachers averaged (an ensemble)")
    parser.add_argument("--pretrain-steps", type=int, default=0, help="SimCLR steps FixMatch starts from")
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
        precision=resolve_precision(args.precision),
        seed=args.seed,
        members=args.members,
        pretrain_steps=args.pretrain_steps,
    )
    result = {"args": vars(args), **_scores(teaching.labels, teaching.confidence, truth)}
    result.update(heldout_accuracy=teaching.heldout_accuracy, precision=teaching.precision)
    if teaching.model is not None:
        result["test_accuracy"] = _right(teacher_probabilities(teaching.model, test.x), test.y)
        if args.members > 1:  # the scores above are the ensemble's; each member (its EMA network) alone:
            result["members"] = [
                {
                    "unlabeled_accuracy": _right(teacher_probabilities(member, unlabeled.x), truth),
                    "test_accuracy": _right(teacher_probabilities(member, test.x), test.y),
                }
                for member in teaching.model.members
            ]
    result["seconds"] = round(time.time() - started)
    print(json.dumps(result))


def _right(probabilities: np.ndarray, truth: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == truth).mean())


def _scores(labels: np.ndarray, confidence: np.ndarray, truth: np.ndarray) -> dict:
    confident = confidence >= 0.9
    return {
        "unlabeled_accuracy": float((labels == truth).mean()),
        "confident_share": float(confident.mean()),
        "confident_accuracy": float((labels[confident] == truth[confident]).mean()) if confident.any() else None,
    }


if __name__ == "__main__":
    main()
