"""Scarce labels: does a generator that also learns from the unlabelled images pay, on digits and on real-size images?

For each label seed 0..S-1: train the default conditional VAE on K labels per class (a fifth of them held
out from the generator, ``--holdout 0.2``) and the rest of the train split unlabelled (its teacher,
chosen on the held-out labels, pseudo-labels them), sample N images per class, let ``genaug tune`` choose
a policy by validation on the labelled examples, and ``genaug evaluate`` it (CNN and SVC recipes) on the
real test split beside the routes without genaug. ``--labels 0``: every label (no unlabelled images).

Rows (accuracy, mean over label seeds with a 95 % t-interval; gains paired by label seed): real only,
classic augmentation, label spreading, the teacher alone (the run's FixMatch CNN, when it was chosen), the
teacher's labels (the classifier on the labelled images and the teacher's confident labels: self-training,
no generator), real + synthetic as the tuned policy says, synthetic only.

Run:
  python benchmarks/scarce_labels.py                       # digits, 10 labels per class, 5 seeds
  python benchmarks/scarce_labels.py --data idx:/usr/share/datasets/fashion-mnist --train-size 10000 \\
      --labels 10 --seeds 3                                # Fashion-MNIST (apt-get install dataset-fashion-mnist)
  ... --seeds 1 --figures docs/figures/fashion_mnist     # README's Fashion-MNIST pictures
(last line: one JSON object with every figure). ``--jobs 2`` trains tune's and evaluate's classifiers side by
side in one-thread worker processes; ``--rows FILE`` keeps each seed's row, so that a rerun continues;
``--runs DIR`` trains into DIR/run{seed} and takes a finished run found there instead of training again.
"""

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from genaug.startup import start_tensorflow  # noqa: E402

start_tensorflow(show_native_log=False)  # before anything imports TensorFlow: no oneDNN/CUDA lines

import numpy as np  # noqa: E402
from seed_rows import SeedRows  # noqa: E402

import genaug  # noqa: E402
from genaug.metrics import mean_interval  # noqa: E402
from genaug.runs import RunDirectory  # noqa: E402
from genaug.workers import Workers  # noqa: E402
from trainers import config as cfg  # noqa: E402

FIGURES = ("accuracy_vs_fraction.png", "samples_real_vs_synthetic.png")
ROWS = ("real", "classic_augmentation", "label_spreading", "teacher", "teacher_labels", "policy", "synthetic")


def cell(result: dict, sign: str = "") -> str:
    """``mean [low, high]`` in percent."""
    low, high = result["ci95"]
    return f"{100 * result['mean']:{sign}5.1f} [{100 * low:{sign}5.1f}, {100 * high:{sign}5.1f}]"


def one_seed(args, seed: int, work: Path, workers: Workers | None) -> dict:
    teacher = {"teacher_steps": args.teacher_steps, "teacher_flip": args.teacher_flip}
    teacher.update(teacher_members=args.teacher_members, teacher_pretrain_steps=args.teacher_pretrain_steps)
    data = {"data": args.data, "holdout": 0.2, **teacher}
    if args.labels:
        data["labels_per_class"] = args.labels
    out = (args.runs or work) / f"run{seed}"
    config = cfg.from_dict({"data": data, "run": {"out": str(out), "seed": seed, "quiet": True}})
    times = {}
    started = time.time()
    if args.runs is None or not (out / RunDirectory.RECORD).is_file():  # else --runs holds it, finished
        genaug.train(config)
    run = RunDirectory.open(out)
    times["train"] = time.time() - started
    syn = work / f"syn{seed}"
    genaug.sample(out, syn, per_class=args.per_class, seed=seed, progress=False)
    times["sample"] = time.time() - started - times["train"]
    tuned = genaug.tune(
        args.data, [syn], work / f"tune{seed}", seed=seed, trials=args.trials, seeds=0, workers=workers, progress=False
    )
    times["tune"] = time.time() - started - times["train"] - times["sample"]
    policy = genaug.Policy.from_dict(tuned.policy)
    report = genaug.evaluate(
        args.data, syn, work / f"report{seed}", seeds=args.classifier_seeds, fractions=(0.5,), policy=policy,
        workers=workers, progress=False,
    )  # fmt: skip
    times["evaluate"] = time.time() - started - sum(times.values())
    row = {}
    for kind, u in report.utility.items():
        results = {**u.conditions, **u.baselines, **({"policy": u.policy} if u.policy is not None else {})}
        row[kind] = {name: results[name].mean for name in ROWS if name in results}
    unlabeled = run.record.unlabeled or {}
    row["teacher"] = unlabeled.get("teacher")
    row["pseudo_labelled"] = unlabeled.get("pseudo_labelled")
    row["policy"] = tuned.policy
    row["seconds"] = times
    return row


def summarise(rows: list[dict], kind: str) -> dict:
    names = [name for name in ROWS if all(name in r[kind] for r in rows)]
    summary = {name: mean_interval([r[kind][name] for r in rows]) for name in names}
    paired = {}
    for base in ("real", "classic_augmentation", "teacher", "teacher_labels"):
        if base in names:
            values = np.array([r[kind]["policy"] - r[kind][base] for r in rows])
            paired[f"policy - {base}"] = mean_interval(values.tolist())
    return {"rows": summary, "paired": paired}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", help="data spec (default digits)")
    parser.add_argument("--train-size", type=int, help="a stratified subset of N train images (?train_size=N)")
    parser.add_argument("--labels", type=int, default=10, help="labels per class; 0: all labels")
    parser.add_argument("--seeds", type=int, default=5, help="label seeds 0..S-1")
    parser.add_argument("--per-class", type=int, default=200, help="synthetic images per class")
    parser.add_argument("--trials", type=int, default=5, help="tune's trials per seed")
    parser.add_argument("--classifier-seeds", type=int, default=1, help="classifier seeds per label seed")
    parser.add_argument("--teacher-steps", type=int, default=2500, help="FixMatch's steps (data.teacher_steps)")
    parser.add_argument("--teacher-flip", action="store_true", help="FixMatch mirrors images too (clothes)")
    parser.add_argument(
        "--teacher-members", type=int, default=1, help="FixMatch teachers averaged (data.teacher_members)"
    )
    parser.add_argument(
        "--teacher-pretrain-steps", type=int, default=0, help="SimCLR steps first (data.teacher_pretrain_steps)"
    )
    parser.add_argument("--figures", type=Path, help="copy label seed 0's report pictures into this folder")
    parser.add_argument("--jobs", type=int, help="worker processes for the classifier fits (default: none)")
    parser.add_argument("--rows", type=Path, help="keep each seed's row in this JSON file; a rerun continues")
    parser.add_argument("--runs", type=Path, help="train into DIR/run{seed}, or take the finished run there")
    args = parser.parse_args()
    if args.train_size:
        args.data = f"{args.data}?train_size={args.train_size}"
    unchanging = ("seeds", "rows", "figures", "runs")  # what does not change a seed's row
    stored = SeedRows(args.rows, {k: v for k, v in vars(args).items() if k not in unchanging})
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Workers(args.jobs) if args.jobs else contextlib.nullcontext() as pool:
        for seed in range(args.seeds):
            rows.append(stored.get(seed, lambda s: one_seed(args, s, Path(tmp), pool)))
            print(f"seed {seed}: {json.dumps(rows[-1])}", flush=True)
            if seed == 0 and args.figures and (Path(tmp) / "report0").is_dir():  # measured now, not read back
                args.figures.mkdir(parents=True, exist_ok=True)
                for name in FIGURES:
                    shutil.copyfile(Path(tmp) / "report0" / name, args.figures / name)
    results = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "rows": rows}
    for kind in ("cnn", "svc"):
        if not all(kind in r for r in rows):
            continue
        results[kind] = summarise(rows, kind)
        print(f"\n{kind}: accuracy % on the test split (mean [95 % interval] over {args.seeds} label seeds)")
        for name, result in results[kind]["rows"].items():
            print(f"  {name:<22} {cell(result)}")
        for name, result in results[kind]["paired"].items():
            print(f"  {name:<22} {cell(result, '+')}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
