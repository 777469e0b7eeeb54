"""Typed records from JSON: a dataclass whose every field is checked against its type hint when read.

A record edited by hand or damaged (``"seed": "zero"``, ``"num_examples": NaN``, a list where a number
belongs) is one line naming the file and the field, not a TypeError three modules later.

Supported hints: ``int``, ``float`` (finite), ``str``, ``bool``, ``dict`` (contents unchecked),
``dict[str, X]``, ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y, Z]``, ``X | None`` and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path

from genaug.errors import GenaugError

_KINDS = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false"}


def read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path``; a missing or corrupt file is a one-line error naming it."""
    if not path.is_file():
        raise GenaugError(f"{path.parent}: no {path.name} (not a finished genaug {what})")
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise GenaugError(f"{path}: corrupt JSON ({err})") from None
    if not isinstance(value, dict):
        raise GenaugError(f"{path}: expected a JSON object")
    return value


def from_json(cls: type, raw: object, where: str | os.PathLike, prefix: str = ""):
    """An instance of the dataclass ``cls`` from the JSON object ``raw``, every field type-checked.

    Fields with a default may be absent (records written by older versions); unknown keys are ignored.

    Raises:
        GenaugError: ``"{where}: {field} must be an integer, got 'zero'"`` and the like.
    """
    if not isinstance(raw, dict):
        raise GenaugError(f"{where}: {prefix.rstrip('.') or 'the record'} must be a JSON object, got {_shown(raw)}")
    fields = dataclasses.fields(cls)
    required = (f for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    missing = [prefix + f.name for f in required if f.name not in raw]
    if missing:
        raise GenaugError(f"{where}: missing {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _typed(raw[f.name], hints[f.name], where, prefix + f.name) for f in fields if f.name in raw})


def to_json(record) -> dict:
    """The JSON object of a dataclass record (tuples as lists), as :func:`from_json` reads it back."""
    return json.loads(json.dumps(dataclasses.asdict(record)))


def _typed(value, hint, where, name: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _typed(value, inner, where, name)
    if dataclasses.is_dataclass(hint):
        return from_json(hint, value, where, prefix=f"{name}.")
    if origin is list or origin is tuple:
        if not isinstance(value, list):
            raise GenaugError(f"{where}: {name} must be a list, got {_shown(value)}")
        if origin is tuple and args[-1] is not Ellipsis and len(value) != len(args):
            raise GenaugError(f"{where}: {name} must hold {len(args)} values, got {len(value)}")
        items = [_typed(v, args[0] if len(args) == 1 or args[-1] is Ellipsis else args[i], where, f"{name}[{i}]")
                 for i, v in enumerate(value)]  # fmt: skip
        return items if origin is list else tuple(items)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise GenaugError(f"{where}: {name} must be a JSON object, got {_shown(value)}")
        return {k: _typed(v, args[1], where, f"{name}.{k}") for k, v in value.items()} if args else value
    if hint is typing.Any:
        return value
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise GenaugError(f"{where}: {name} must be {_KINDS[hint]}, got {_shown(value)}")
    return float(value) if hint is float else value


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
