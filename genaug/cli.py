"""The ``genaug`` command line: every subcommand is a thin call of a library function.

This is the only module that reads the command line or sets process-wide logging.
"""

from __future__ import annotations

import argparse
import os
import sys

from genaug.errors import GenaugError
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


def _add_label_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--labels-per-class", type=int, metavar="K", help="scarce labels: K per class")
    group.add_argument("--label-fraction", type=float, metavar="F", help="scarce labels: fraction F")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genaug", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"genaug {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="summarise a dataset")
    info.add_argument("data", help="digits | tfds:NAME[/CONFIG] | folder:PATH | npz:PATH")
    info.add_argument("--image-size", type=_image_size, metavar="HxW")
    info.set_defaults(handler=_info)

    train = commands.add_parser("train", help="train a generator; writes a run directory")
    train.add_argument("--data", help="data spec (default: digits)")
    train.add_argument("--model", choices=("vae", "cvae", "dcgan", "cdcgan"))
    train.add_argument("--out", required=True, help="run directory")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--config", metavar="FILE", help="YAML or JSON config (sections data/model/optim/run)")
    train.add_argument("--preset", choices=("default", "smoke"), default="default")
    train.add_argument("--image-size", type=_image_size, metavar="HxW")
    _add_label_options(train)
    train.add_argument("--strategy", choices=("auto", "default", "mirrored", "multi_worker", "tpu"))
    train.add_argument("--precision", choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"))
    train.add_argument("--jit", choices=("auto", "on", "off"))
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace a different run in --out")
    train.add_argument(
        "--nan-rollback", action="store_true", help="on NaN, reload last checkpoint at half LR"
    )
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(handler=_train)
    return parser


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
        },
        "model": {"kind": args.model},
        "optim": {"epochs": args.epochs, "batch_size": args.batch_size},
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

    run = train(_train_config(args), resume=args.resume, overwrite=args.overwrite)
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


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return args.handler(args)
    except GenaugError as err:
        if args.debug:
            raise
        print(f"genaug: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("genaug: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
