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
    return parser


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
