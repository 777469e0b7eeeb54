"""The ``genaug`` command line: every subcommand is a thin call of a library function.

This is the only module that reads the command line; it starts TensorFlow through :mod:`genaug.startup`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import json
import logging
import os
import sys
from collections.abc import Iterator

from genaug import storage
from genaug.errors import ArgumentError, GenaugError
from genaug.policy import Policy
from genaug.startup import single_threaded_tensorflow, start_tensorflow
from genaug.version import __version__


def _image_size(text: str) -> tuple[int, int]:
    try:
        height, _, width = text.lower().partition("x")
        size = (int(height), int(width or height))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 28x28, got {text!r}") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"image size must be positive, got {text!r}")
    return size


def _add_metric(parser: argparse.ArgumentParser) -> None:
    from genaug.metrics import METRICS

    parser.add_argument(
        "--metric",
        choices=METRICS,
        default="accuracy",
        help="what to score: accuracy, or balanced_accuracy (mean recall over classes; for imbalanced data)",
    )


def _add_label_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--labels-per-class", type=int, metavar="K", help="scarce labels: keep K labelled examples per class (seeded)"
    )
    group.add_argument(
        "--label-fraction", type=float, metavar="F", help="scarce labels: keep a fraction F of each class (seeded)"
    )


def _add_image_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image-size", type=_image_size, metavar="HxW", help="resize every image (needed for mixed-size folders)"
    )


def _finish(parser: argparse.ArgumentParser, handler) -> None:
    """Sets the command's handler and the map from library argument names to this command's flags."""
    flags = {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings and a.dest != "help"}
    parser.set_defaults(handler=handler, flags=flags)


DATA_HELP = (
    "digits | tfds:NAME[/CONFIG] | folder:PATH | npz:PATH | idx:DIR, optionally ending in "
    "?train_size=N&imbalance=R (either or both)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genaug",
        description="Train a generator on a small labelled image dataset, sample labelled synthetic shards "
        "from it, and measure whether mixing them into the real data helps a classifier.",
        epilog="Start with: genaug demo --out demo   (the whole flow on scikit-learn's digits, offline). "
        "Each command has its own --help.",
    )
    parser.add_argument("--version", action="version", version=f"genaug {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_info, _add_train, _add_sample, _add_verify, _add_evaluate, _add_tune, _add_demo):
        add(commands)
    return parser


def _add_info(commands) -> None:
    """`genaug info DATA`."""
    info = commands.add_parser("info", help="summarise a dataset: shape, classes, counts per split")
    info.add_argument("data", help=DATA_HELP)
    _add_image_size(info)
    _finish(info, _info)


def _add_train(commands) -> None:
    """`genaug train`: its options map to config keys (`_train_config`)."""
    from models import MODEL_KINDS
    from trainers.config import JIT_MODES, PRECISIONS, PRESETS, STRATEGIES

    train = commands.add_parser("train", help="train a generator; writes a run directory")
    train.add_argument("--data", help=f"{DATA_HELP} (default: digits)")
    train.add_argument("--model", choices=tuple(MODEL_KINDS), help="the generator (default: cvae)")
    train.add_argument("--out", required=True, help="run directory to write (or to resume)")
    train.add_argument("--epochs", type=int, help="training epochs (default: the model's, within --max-steps)")
    train.add_argument("--batch-size", type=int, help="global batch size, split across replicas (default: 64)")
    train.add_argument("--seed", type=int, help="seed of weights, data order, label subset and sampling (default 0)")
    train.add_argument("--config", metavar="FILE", help="YAML or JSON config with sections data/model/optim/run")
    train.add_argument(
        "--preset", choices=tuple(PRESETS), default="default", help="named settings; smoke: tiny and fast"
    )
    _add_image_size(train)
    _add_label_options(train)
    train.add_argument(
        "--unlabeled",
        metavar="auto|none|SOURCE",
        help="images to learn from without labels: auto (the rest of the train split when labels are scarce), "
        "none, images:PATH (a flat folder) or npz:PATH (x only)",
    )
    train.add_argument(
        "--holdout",
        type=float,
        metavar="F",
        help="keep a fraction F of each class's labelled examples from the generator (seeded), so that "
        "tune can check synthetic data on labelled images the generator never saw (e.g. 0.2)",
    )
    _add_teacher_options(train)
    train.add_argument(
        "--max-steps",
        type=int,
        metavar="N",
        help="stop at N optimizer steps' worth of epochs unless --epochs is given (default: the model's, 3500 "
        "for a VAE: 150 epochs of digits, 22 of 10,000 images)",
    )
    train.add_argument("--strategy", choices=STRATEGIES, help="tf.distribute strategy (default auto)")
    train.add_argument("--precision", choices=PRECISIONS, help="Keras dtype policy (default auto)")
    train.add_argument("--jit", choices=JIT_MODES, help="XLA-compile the train step (default auto: on GPUs)")
    train.add_argument("--resume", action="store_true", help="insist on continuing from the last checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace a different genaug run in --out")
    train.add_argument(
        "--nan-rollback", action="store_true", help="on a non-finite loss, reload the last checkpoint at half the LR"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _finish(train, _train)


def _add_teacher_options(train) -> None:
    """`genaug train`'s options for the teacher of the unlabelled images (`data.teacher*` config keys)."""
    from genaug.teacher import TEACHERS

    train.add_argument(
        "--teacher",
        choices=TEACHERS,
        help="who pseudo-labels the unlabelled images: spreading (label spreading on pixels, seconds), fixmatch "
        "(a CNN, minutes; right on real-size images) or auto (both, keeping the one more accurate on the "
        "--holdout labels; fixmatch without them) (default auto)",
    )
    train.add_argument(
        "--teacher-flip",
        action="store_true",
        help="FixMatch also mirrors images left-right (right for clothes, wrong for digits)",
    )
    train.add_argument(
        "--teacher-steps",
        type=int,
        metavar="N",
        help="FixMatch's optimizer steps (default 2500; on 10,000 Fashion-MNIST images 6000 with --teacher-flip "
        "labelled 81.8 %% right against 77.2 %%, for ~15 more CPU-minutes)",
    )
    train.add_argument(
        "--teacher-members",
        type=int,
        metavar="M",
        help="train M FixMatch teachers from other initialisations and average them (default 1; 3 labelled "
        "Fashion-MNIST ~1 point better than one, for M times the time)",
    )
    train.add_argument(
        "--teacher-pretrain-steps",
        type=int,
        metavar="N",
        help="first train FixMatch's network N SimCLR steps on all the images, labels unused (default 0; on "
        "10,000 Fashion-MNIST images 3000-5000 steps, 15-25 CPU-minutes, made FixMatch's labels 2.1-3.2 points "
        "more right on three label draws)",
    )


def _add_sample(commands) -> None:
    """`genaug sample RUN --out SYN`."""
    sample = commands.add_parser("sample", help="sample a synthetic labelled dataset from a run")
    sample.add_argument("run", help="run directory written by genaug train")
    sample.add_argument("--out", required=True, help="synthetic dataset directory to write (or to resume)")
    count = sample.add_mutually_exclusive_group()
    count.add_argument("--per-class", type=int, metavar="N", help="N images per class")
    count.add_argument("--num", type=int, metavar="N", help="N images in all, split by --class-balance")
    sample.add_argument(
        "--class-balance",
        default="uniform",
        metavar="uniform|match|fill|JSON",
        help="split of --num: uniform, match (real train prior); fill (no --num: every class topped up to the "
        'largest real one, for imbalanced data); or {"class": count} (then --num is optional)',
    )
    sample.add_argument("--seed", type=int, default=0, help="seed every draw derives from (default 0)")
    sample.add_argument(
        "--shards", dest="num_shards", type=int, metavar="K", help="shard files (default: one per 10,000 images)"
    )
    sample.add_argument(
        "--worker-index", type=int, default=0, metavar="I", help="this worker writes the shards k with k %% W == I"
    )
    sample.add_argument("--num-workers", type=int, default=1, metavar="W", help="workers sharing the shards")
    sample.add_argument(
        "--min-confidence", type=float, metavar="P", help="keep images the oracle gives their label probability >= P"
    )
    sample.add_argument(
        "--min-distance",
        default="auto",
        metavar="D|auto|off",
        help="drop images closer than D to a training image (auto: 1st percentile of test-to-train distances; "
        "a held-out tenth of train against the rest when the data has no test split)",
    )
    sample.add_argument(
        "--truncation", type=float, metavar="T", help="resample latent values beyond +-T (the truncation trick)"
    )
    sample.add_argument("--temperature", type=float, default=1.0, help="scale of the latent vectors (default 1)")
    sample.add_argument(
        "--latent",
        choices=("prior", "attention"),
        default="prior",
        help="codes from the generator's prior (default) or attention-weighted mixes of training codes (cvae)",
    )
    sample.add_argument(
        "--attention-k", type=int, metavar="K", help="--latent attention: nearest same-class codes mixed (default 5)"
    )
    sample.add_argument(
        "--attention-temperature", type=float, metavar="T", help="--latent attention: softmax temperature (default 1)"
    )
    sample.add_argument(
        "--attention-extrapolation",
        type=float,
        metavar="E",
        help="--latent attention: move E past the mix, away from the anchor (0..1, default 0)",
    )
    sample.add_argument(
        "--runner", choices=("local", "beam"), default="local", help="write shards here or in a Beam pipeline"
    )
    sample.add_argument(
        "--beam-options",
        metavar='"FLAGS"',
        help='Beam pipeline flags for --runner beam (default "--runner=DirectRunner"), e.g. '
        '"--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing"',
    )
    sample.add_argument("--overwrite", action="store_true", help="replace a different genaug synthetic set in --out")
    sample.add_argument("--quiet", action="store_true", help="no progress bar")
    _finish(sample, _sample)


def _add_verify(commands) -> None:
    """`genaug verify SYN`."""
    verify = commands.add_parser("verify", help="check a synthetic dataset's counts and checksums")
    verify.add_argument("synthetic", help="synthetic dataset directory")
    _finish(verify, _verify)


def _add_evaluate(commands) -> None:
    """`genaug evaluate`."""
    evaluate = commands.add_parser("evaluate", help="measure whether synthetic data helps a classifier")
    evaluate.add_argument("--data", default="digits", help=f"the real data: {DATA_HELP} (default: digits)")
    evaluate.add_argument("--synthetic", required=True, help="synthetic dataset directory")
    evaluate.add_argument("--out", required=True, help="report directory")
    evaluate.add_argument(
        "--num-seeds", "--seeds", dest="seeds", type=int, default=3, metavar="K", help="classifier seeds 0..K-1"
    )
    evaluate.add_argument("--fractions", default="0.25,0.5,0.75", help="synthetic fractions, comma-separated")
    evaluate.add_argument("--steps", type=int, default=600, help="CNN gradient steps per training")
    _add_metric(evaluate)
    evaluate.add_argument("--policy", metavar="FILE", help="also train as this policy.json says (from genaug tune)")
    evaluate.add_argument(
        "--unlabeled",
        metavar="auto|none|SOURCE",
        help="images the label-spreading baseline learns from without labels (default: as the generator did)",
    )
    _add_jobs(evaluate)
    _add_image_size(evaluate)
    _add_label_options(evaluate)
    evaluate.add_argument("--quiet", action="store_true", help="no progress lines")
    _finish(evaluate, _evaluate)


def _add_tune(commands) -> None:
    """`genaug tune`."""
    tune = commands.add_parser(
        "tune",
        help="choose how to use synthetic data, by validation on the labelled data",
        description="Search a policy for using synthetic data by validation on the labelled training data, "
        "then check the finalists on the labelled examples the generator was kept from (train it with "
        "--holdout 0.2) or, without those, on fresh folds. The test split is read once, to report.",
    )
    tune.add_argument("--data", default="digits", help=f"the real data: {DATA_HELP} (default: digits)")
    tune.add_argument("--synthetic", required=True, nargs="+", help="synthetic dataset directories (one or more)")
    tune.add_argument("--out", required=True, help="tuning directory (a rerun continues the search)")
    tune.add_argument("--trials", type=int, default=20, help="policies to try (default 20)")
    tune.add_argument("--budget-s", type=float, metavar="T", help="start no trial after T seconds")
    tune.add_argument("--folds", type=int, default=3, help="stratified folds of the labelled data (default 3)")
    tune.add_argument(
        "--num-seeds",
        "--seeds",
        dest="seeds",
        type=int,
        default=3,
        metavar="K",
        help="seeds for the test report (0: no report, the test split is not read)",
    )
    tune.add_argument("--seed", type=int, default=0, help="seeds the folds, the search and the classifiers")
    tune.add_argument("--steps", type=int, default=600, help="CNN gradient steps per training")
    _add_metric(tune)
    _add_image_size(tune)
    _add_label_options(tune)
    _add_jobs(tune)
    tune.add_argument("--overwrite", action="store_true", help="replace a different search in --out")
    tune.add_argument("--quiet", action="store_true", help="no progress lines")
    _finish(tune, _tune)


def _add_jobs(command) -> None:
    command.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="train the classifiers side by side in N single-threaded worker processes (default: one per core, "
        "up to 4); the figures do not depend on N",
    )


def _add_demo(commands) -> None:
    """`genaug demo`."""
    demo = commands.add_parser("demo", help="the main job: train, sample, tune, mix and evaluate on digits")
    demo.add_argument("--out", default="demo", help="output folder (default: demo)")
    demo.add_argument(
        "--num-seeds", "--seeds", dest="seeds", type=int, metavar="K",
        help="classifier seeds 0..K-1 in both settings (default: 4 with 10 labels per class, 3 with all; "
        "--thorough 5)",
    )  # fmt: skip
    demo.add_argument(
        "--jobs", type=int, default=None, metavar="N", help="worker processes (default: one per core, up to 4)"
    )
    demo.add_argument(
        "--thorough", action="store_true",
        help="the longer schedule: teacher auto (also FixMatch), 150 generator epochs, 5 seeds everywhere, "
        "20 tune trials on 3 folds (a few minutes longer)",
    )  # fmt: skip
    demo.add_argument("--overwrite", action="store_true", help="replace a previous demo's output")
    _finish(demo, _demo)


def _demo(args: argparse.Namespace) -> int:
    from genaug.demo import demo

    demo(args.out, seeds=args.seeds, overwrite=args.overwrite, jobs=args.jobs, thorough=args.thorough)
    return 0


def _needs_tensorflow(args: argparse.Namespace) -> bool:
    """Whether to start TensorFlow before the command: `info` reads non-TFDS sources without it, and
    the demo runs in worker processes that start their own."""
    if args.handler is _info:
        return args.data.startswith("tfds:")
    return args.handler is not _demo


def _evaluate(args: argparse.Namespace) -> int:
    from genaug.evaluation import evaluate

    _with_jobs(args.jobs, evaluate, **_arguments_for(evaluate, args, fractions=_fractions(args.fractions),
                                                     progress=not args.quiet))  # fmt: skip
    return 0


def _with_jobs(jobs: int | None, function, **arguments):
    """``function(**arguments)`` with ``workers=`` a pool of ``jobs`` single-threaded processes (``None``: one per
    core, up to 4). This process is single-threaded too (:func:`_run`): a classifier fit gives the same figures
    here and in any worker, where TensorFlow on more threads sums in another order and, with few labels, can
    land a point or two away on 28x28 images."""
    from genaug.workers import Workers, worker_count

    with Workers(worker_count(jobs)) as workers:
        return function(**arguments, workers=workers)


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(f) for f in text.split(","))
    except ValueError:
        raise GenaugError(f"--fractions {text!r}: expected numbers like 0.25,0.5") from None


def _tune(args: argparse.Namespace) -> int:
    from genaug.tuning import tune

    report = _with_jobs(args.jobs, tune, **_arguments_for(tune, args, progress=not args.quiet))
    tuned = report.test.get("tuned")  # none with --num-seeds 0: the test split is not read
    scored = f"test {tuned.mean:.4f}" if tuned else f"validation {report.validation_score:.4f}"
    print(f"wrote {args.out}/policy.json and {args.out}/report.md (tuned: {scored})")
    return 0


def _class_balance(text: str):
    if text in ("uniform", "match", "fill"):
        return text
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError:
        raise GenaugError(f"--class-balance {text!r}: expected uniform, match, fill or a JSON mapping") from None
    if not isinstance(mapping, dict):
        raise GenaugError("--class-balance JSON must map class names (or indices) to counts")
    return mapping


def _min_distance(text: str):
    if text in ("auto", "off"):
        return None if text == "off" else text
    try:
        return float(text)
    except ValueError:
        raise GenaugError(f"--min-distance {text!r}: expected a number, auto or off") from None


def _arguments_for(function, args: argparse.Namespace, **converted) -> dict:
    """The parsed options named like ``function``'s parameters, with ``converted`` values replacing some."""
    parameters = inspect.signature(function).parameters
    return {**{name: value for name, value in vars(args).items() if name in parameters}, **converted}


def _sample(args: argparse.Namespace) -> int:
    from genaug.sampler import sample

    manifest = sample(**_arguments_for(sample, args, **_sample_conversions(args), progress=not args.quiet))
    if manifest:
        rates = [r for r in manifest.filters.acceptance_rate if r is not None]
        print(
            f"wrote {manifest.num_examples} images in {len(manifest.shards)} shards to {args.out} "
            f"(filter acceptance {min(rates):.0%}..{max(rates):.0%})"
        )
    return 0


def _sample_conversions(args: argparse.Namespace) -> dict:
    """``sample``'s arguments that the CLI parses from text."""
    return {
        "class_balance": _class_balance(args.class_balance),
        "min_distance": _min_distance(args.min_distance),
        "attention": _attention(args),
    }


def _attention(args: argparse.Namespace):
    """The attention sampler's settings from ``--attention-*`` (``None`` when none is given)."""
    from genaug.latents import AttentionSettings

    given = {
        name: value
        for name, value in (
            ("k", args.attention_k),
            ("temperature", args.attention_temperature),
            ("extrapolation", args.attention_extrapolation),
        )
        if value is not None
    }
    return AttentionSettings(**given) if given else None


def _verify(args: argparse.Namespace) -> int:
    from genaug.shards import verify

    manifest = verify(args.synthetic)
    print(f"ok: {manifest.num_examples} examples in {len(manifest.shards)} shards, checksums match")
    if manifest.metadata is None:
        print(
            "note: this set's manifest (before version 3) records no sha256 of dataset_info.json, features.json and "
            "label.labels.txt, so they were not checked"
        )
    return 0


def _train_config(args: argparse.Namespace):
    from trainers import config as cfg

    config = cfg.PRESETS[args.preset]
    if args.config:
        config = cfg.load(args.config, config)
    overrides = {
        "data": {
            "data": args.data,
            "labels_per_class": args.labels_per_class,
            "label_fraction": args.label_fraction,
            "image_size": args.image_size,
            "unlabeled": args.unlabeled,
            "holdout": args.holdout,
            "teacher": args.teacher,
            "teacher_flip": args.teacher_flip or None,
            "teacher_steps": args.teacher_steps,
            "teacher_members": args.teacher_members,
            "teacher_pretrain_steps": args.teacher_pretrain_steps,
        },
        "model": {"kind": args.model},
        "optim": {"epochs": args.epochs, "max_steps": args.max_steps, "batch_size": args.batch_size},
        "run": {
            "out": args.out,
            "seed": args.seed,
            "strategy": args.strategy,
            "precision": args.precision,
            "jit": args.jit,
            "quiet": args.quiet or None,
            "nan_rollback": args.nan_rollback or None,
        },
    }
    given = {k: {f: v for f, v in section.items() if v is not None} for k, section in overrides.items()}
    return cfg.from_dict(given, config)


def _train(args: argparse.Namespace) -> int:
    from trainers import train

    run = train(args.train_config, resume=args.resume, overwrite=args.overwrite)
    print(run.summary())
    return 0


def _info(args: argparse.Namespace) -> int:
    from genaug.data import SPLITS, load_arrays

    loaded = [load_arrays(args.data, split, image_size=args.image_size) for split in SPLITS]
    first = loaded[0].info
    print(f"dataset      {first.name}")
    print(f"image shape  {'x'.join(str(d) for d in first.image_shape)} (uint8)")
    print(f"classes      {first.num_classes}")
    print("splits       " + ", ".join(f"{a.info.split} {len(a.y)}" for a in loaded))
    width = max(len("class"), *(len(n) for n in first.class_names))
    print(f"{'class':<{width}}  " + "  ".join(f"{s:>6}" for s in SPLITS))
    for i, name in enumerate(first.class_names):
        print(f"{name:<{width}}  " + "  ".join(f"{a.info.class_counts[i]:>6}" for a in loaded))
    return 0


def _check_inputs(args: argparse.Namespace) -> None:
    """Checks what needs no TensorFlow (data specs, paths, the config file), so bad input reports at once.
    ``train``'s config is built here, once, and kept as ``args.train_config``; ``--policy`` is loaded here."""
    from genaug.data import check_spec, check_unlabeled_spec
    from genaug.runs import RunDirectory
    from genaug.synthetic import SyntheticDataset

    if args.handler is _train:
        args.train_config = _train_config(args)
        data = args.train_config.data
        check_spec(data.data)
        if data.image_size is not None:
            from models.shapes import upsampling_plan

            try:
                upsampling_plan((*data.image_size, 1))
            except ValueError as err:
                raise GenaugError(f"model {args.train_config.model.kind}: {err}") from None
        if data.unlabeled not in ("auto", "none"):
            check_unlabeled_spec(data.unlabeled)
    elif getattr(args, "data", None):
        check_spec(args.data)
        if getattr(args, "unlabeled", None) not in (None, "auto", "none"):
            check_unlabeled_spec(args.unlabeled)
    if getattr(args, "run", None):
        RunDirectory.open(args.run)
    synthetic = getattr(args, "synthetic", None) or []  # one directory, or several for `tune`
    for path in synthetic if isinstance(synthetic, list) else [synthetic]:
        SyntheticDataset.open(path)
    if getattr(args, "policy", None):
        args.policy = Policy.load(args.policy)  # read once: the command gets the checked policy
        args.policy.check_sets(len(synthetic) if isinstance(synthetic, list) else 1)
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        raise GenaugError(f"--jobs must be at least 1, got {args.jobs}")
    _UP_FRONT.get(args.handler, lambda _: None)(args)


def _check_train(args: argparse.Namespace) -> None:
    from genaug.outputs import check_output
    from genaug.runs import RUN_LAYOUT
    from trainers.config import check_counts

    check_counts(args.train_config)
    check_output(args.train_config.run.out, RUN_LAYOUT)


def _check_sample(args: argparse.Namespace) -> None:
    from genaug.runs import RunDirectory
    from genaug.sampler import plan_sample

    converted = {"run": RunDirectory.open(args.run), "out": storage.path(args.out), **_sample_conversions(args)}
    plan_sample(**_arguments_for(plan_sample, args, **converted))


def _check_evaluate(args: argparse.Namespace) -> None:
    from genaug.evaluation import check_evaluate

    check_evaluate(**_arguments_for(check_evaluate, args, fractions=_fractions(args.fractions)))


def _check_tune(args: argparse.Namespace) -> None:
    from genaug.tuning import check_tune

    check_tune(**_arguments_for(check_tune, args))


def _check_demo(args: argparse.Namespace) -> None:
    from genaug.demo import check_demo

    check_demo(args.out, args.seeds)


# The checks each command makes before TensorFlow starts: the library's own, so the messages are the same.
_UP_FRONT = {
    _train: _check_train,
    _sample: _check_sample,
    _evaluate: _check_evaluate,
    _tune: _check_tune,
    _demo: _check_demo,
}


class _CurrentStdout(logging.StreamHandler):
    """Writes to ``sys.stdout`` as it is at each line (main() may run again with another stdout: a test's
    capture, a caller's redirection), not as it was when the handler was made."""

    stream = property(lambda self: sys.stdout, lambda self, value: None)


@contextlib.contextmanager
def _library_progress(quiet: bool) -> Iterator[None]:
    """While a command runs, the library's ``genaug`` loggers (a teacher's training, evaluate's stages, ...)
    print here, one plain line each on stdout (warnings only with ``--quiet``), and only here: not also
    through a root handler some library installed (the lines came twice, once on stderr). The logger's
    settings are restored afterwards, for a caller that runs main() in its own process."""
    logger = logging.getLogger("genaug")
    saved = logger.level, logger.propagate
    handler = _CurrentStdout()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.level, logger.propagate = saved


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if not args.debug:  # native errors such as "failed call to cuInit" on a machine without a GPU
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _library_progress(quiet=getattr(args, "quiet", False)):
        return _run(args)


def _names_a_uri(args: argparse.Namespace) -> bool:
    """Whether any argument is a ``tf.io.gfile`` URI (``gs://...``)."""
    values = [v for value in vars(args).values() for v in (value if isinstance(value, list) else [value])]
    return any(isinstance(v, str) and storage.is_remote(v) for v in values)


def _run(args: argparse.Namespace) -> int:
    """The command ``args`` names, its errors as one line and an exit code."""
    try:
        if args.handler in (_evaluate, _tune):  # fits single-threaded, here as in its workers (see _with_jobs)
            start = single_threaded_tensorflow
        else:
            start = functools.partial(start_tensorflow, show_native_log=args.debug)
        if _names_a_uri(args):  # checking a URI's directory reads it through tf.io.gfile: start TensorFlow quietly
            start()
        _check_inputs(args)
        if _needs_tensorflow(args):
            start()
        return args.handler(args)
    except GenaugError as err:
        if args.debug:
            raise
        message = err.naming(args.flags) if isinstance(err, ArgumentError) else str(err)
        print(f"genaug: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("genaug: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("genaug: error: out of memory; ask for fewer or smaller images (or a larger machine)", file=sys.stderr)
        return 1
    except OSError as err:  # the machine, not genaug: a full disk, a permission, a vanished file
        if args.debug:
            raise
        where = f": {err.filename}" if err.filename else ""
        print(f"genaug: error: {err.strerror or err}{where}", file=sys.stderr)
        return 1
    except Exception as err:  # a bug, not bad input: still one line, with the way to the traceback
        if args.debug:
            raise
        print(f"genaug: internal error: {type(err).__name__}: {err} (rerun with --debug)", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
