"""The typed training config: frozen dataclasses, named presets, and no defaults of its own for models.

Load order: preset <- ``--config`` file (YAML or JSON) <- command-line overrides. Unknown keys and wrong
types are errors naming the key. The ``model`` section holds the model's constructor arguments
(``cls(image_shape, num_classes, seed=run.seed, **params)``), and ``None`` optimiser fields mean "the
model's ``TRAINING_DEFAULTS``": the defaults live in ``models/`` only, and :func:`resolve` copies them in
so that ``config.json`` records real values.

Example YAML (every key optional)::

    data: {data: digits, labels_per_class: 10}
    model: {kind: cdcgan, g_filters: 64, diffaugment: [translation]}
    optim: {epochs: 100, d_learning_rate: 3.0e-4}
    run: {seed: 1, sample_every: 5}
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

from genaug.errors import GenaugError
from genaug.teacher import TEACHERS

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
JIT_MODES = ("auto", "on", "off")
# Constructor arguments that are not model settings: they come from the data or the run (a model's own
# networks, its ``NETWORKS``, come from the Python API).
NOT_SETTINGS = {"image_shape", "num_classes", "seed"}


@dataclasses.dataclass(frozen=True)
class DataConfig:
    data: str = "digits"
    split: str = "train"
    labels_per_class: int | None = None
    label_fraction: float | None = None
    image_size: tuple[int, int] | None = None
    # Images learnt from without labels: "auto" (the rest of the split when labels are scarce), "none",
    # "images:PATH" or "npz:PATH". A teacher pseudo-labels them; those at least this confident are used.
    unlabeled: str = "auto"
    pseudo_label_confidence: float = 0.9
    # Who pseudo-labels them: "spreading", "fixmatch", or "auto" (both; the one more accurate on the
    # held-out labels, FixMatch without them), and FixMatch's optimizer steps.
    teacher: str = "auto"
    teacher_steps: int = 2500
    # FixMatch also mirrors images left-right in both views: right where a mirrored image keeps its class
    # (clothes: Fashion-MNIST's teacher 77.2 % against 75.2 % right, one seed), wrong for digits.
    teacher_flip: bool = False
    # FixMatch teachers from other initialisations, averaged: +1.1 points of Fashion-MNIST test accuracy over
    # the mean member at 2,500 steps, steadier across label draws, for members x the time.
    teacher_members: int = 1
    # SimCLR steps on all the images (labels unused) that FixMatch's network starts from; 0: random weights.
    # Fashion-MNIST, three label draws: FixMatch's labels +2.1 to +3.2 points for 3,000-5,000 steps (~15-25 CPU-min).
    teacher_pretrain_steps: int = 0
    # A seeded, stratified fraction of the labelled examples the generator, its teacher and its oracle
    # never see: labelled images on which ``tune`` can check synthetic data honestly.
    holdout: float = 0.0
    # How often the generator sees each class: an example of class c is drawn with probability in proportion
    # to n_c^-class_balance (0: the data as it is; 0.5: square-root balancing; 1: every class equally often),
    # so that the rare classes of imbalanced data get more of the conditional generator's updates.
    class_balance: float = 0.0

    def __post_init__(self):
        if not 0 <= self.class_balance <= 1:
            raise GenaugError(f"config key 'data.class_balance' must be in [0, 1], got {self.class_balance}")
        if not 0 <= self.holdout < 1:
            raise GenaugError(f"config key 'data.holdout' must be in [0, 1), got {self.holdout}")
        if self.teacher not in TEACHERS:
            raise GenaugError(f"config key 'data.teacher' {self.teacher!r}: expected one of {', '.join(TEACHERS)}")
        if self.teacher_steps < 1:
            raise GenaugError(f"config key 'data.teacher_steps' must be at least 1, got {self.teacher_steps}")
        if self.teacher_members < 1:
            raise GenaugError(f"config key 'data.teacher_members' must be at least 1, got {self.teacher_members}")
        if self.teacher_pretrain_steps < 0:
            steps = self.teacher_pretrain_steps
            raise GenaugError(f"config key 'data.teacher_pretrain_steps' must be at least 0, got {steps}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """``kind`` (a key of ``models.MODEL_KINDS``) and constructor arguments; after :func:`resolve`,
    ``params`` holds every argument."""

    kind: str = "cvae"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Adam and the schedule; ``None`` is the model's ``TRAINING_DEFAULTS``. ``batch_size`` is global.

    The length of training: ``epochs`` when given; else the model's default epochs, but at most
    ``max_steps`` optimizer steps' worth (:func:`budget`), so that the default fits 1,347 images and
    60,000 alike.
    """

    epochs: int | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None  # VAEs
    g_learning_rate: float | None = None  # GANs
    d_learning_rate: float | None = None  # GANs
    beta_1: float | None = None
    beta_2: float | None = None


@dataclasses.dataclass(frozen=True)
class RunConfig:
    out: str = "runs/default"
    seed: int = 0
    strategy: str = "auto"  # one of STRATEGIES
    precision: str = "auto"  # one of PRECISIONS
    jit: str = "auto"  # one of JIT_MODES
    steps_per_execution: int = 32  # at most the steps per epoch; an epoch's last execution may be shorter
    sample_every: int = 10  # epochs between sample grids
    checkpoint_every: int | None = None  # epochs between checkpoints; None: see checkpoint_interval
    nan_rollback: bool = False  # on a non-finite loss, reload the last checkpoint at half the LR
    quiet: bool = False


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    preset: str = "default"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    run: RunConfig = RunConfig()

    def to_dict(self) -> dict:
        """The nested dict ``config.json`` holds (the model section flat: ``{"kind": ..., **params}``)."""
        raw = dataclasses.asdict(self)
        raw["model"] = {"kind": self.model.kind, **self.model.params}
        return raw


PRESETS = {
    "default": TrainConfig(),
    # Shrinks everything for tests and local smoke runs: tiny networks (PRESET_MODELS), two epochs, and
    # samples and a checkpoint after every epoch (so the machinery runs, resume included).
    "smoke": TrainConfig(
        preset="smoke",
        data=DataConfig(teacher_steps=20),
        optim=OptimConfig(epochs=2, batch_size=32),
        run=RunConfig(sample_every=1, checkpoint_every=1),
    ),
}
# What a preset sets in the model, for each kind whose constructor takes that argument.
PRESET_MODELS = {"default": {}, "smoke": {"latent_dim": 4, "base_filters": 8, "g_filters": 8, "d_filters": 8}}


def model_class(kind: str) -> type:
    import models

    if kind not in models.MODEL_KINDS:
        raise GenaugError(f"unknown model {kind!r}: expected one of {', '.join(models.MODEL_KINDS)}")
    return models.MODELS[kind]


def is_conditional(cls: type) -> bool:
    """Whether ``cls`` needs ``num_classes`` (a class-conditional model)."""
    return inspect.signature(cls).parameters["num_classes"].default is inspect.Parameter.empty


def model_settings(cls: type) -> dict[str, tuple[Any, Any]]:
    """``{argument: (default, type hint)}`` of the settings ``cls``'s constructor takes (its own and its
    base classes', for a subclass that passes ``**kwargs`` on)."""
    settings = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or not hasattr(klass, "TRAINING_DEFAULTS"):
            continue
        hints = typing.get_type_hints(klass.__init__)
        for name, parameter in inspect.signature(klass.__init__).parameters.items():
            if parameter.default is not inspect.Parameter.empty and name not in {*NOT_SETTINGS, *cls.NETWORKS}:
                settings.setdefault(name, (parameter.default, hints[name]))
    return settings


def resolve(config: TrainConfig) -> TrainConfig:
    """Validates choices and fills every model argument and optimiser field the config leaves open."""
    cls = model_class(config.model.kind)
    for key, allowed in (("strategy", STRATEGIES), ("precision", PRECISIONS), ("jit", JIT_MODES)):
        if getattr(config.run, key) not in allowed:
            raise GenaugError(f"run.{key} {getattr(config.run, key)!r}: expected one of {', '.join(allowed)}")
    if config.preset not in PRESETS:
        raise GenaugError(f"unknown preset {config.preset!r}: expected one of {', '.join(PRESETS)}")
    settings = model_settings(cls)
    params = {name: default for name, (default, _) in settings.items()}
    params.update({k: v for k, v in PRESET_MODELS[config.preset].items() if k in settings})
    for key, value in config.model.params.items():
        if key not in settings:
            raise GenaugError(
                f"config key 'model.{key}' does not apply to {config.model.kind} (known: {', '.join(sorted(settings))})"
            )
        params[key] = _coerce(value, settings[key][1], f"model.{key}")
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}  # as JSON has them
    optim = {}
    for field in dataclasses.fields(OptimConfig):
        value = getattr(config.optim, field.name)
        if field.name not in cls.TRAINING_DEFAULTS and value is not None:
            raise GenaugError(f"config key 'optim.{field.name}' does not apply to {config.model.kind}")
        optim[field.name] = cls.TRAINING_DEFAULTS.get(field.name) if value is None else value
    optim["epochs"] = config.optim.epochs  # None until budget() knows the epoch's length
    check_counts(config)
    for key, value in optim.items():
        if isinstance(value, float) and not 0 <= value < math.inf:
            raise GenaugError(f"config key 'optim.{key}' must be a finite number >= 0, got {value}")
    return dataclasses.replace(config, model=ModelConfig(config.model.kind, params), optim=OptimConfig(**optim))


def budget(config: TrainConfig, steps_per_epoch: int) -> TrainConfig:
    """``config`` with its epochs decided: as given, or the model's default epochs but no more than
    ``optim.max_steps`` steps of ``steps_per_epoch`` (150 epochs of digits' 21 steps; 22 epochs of
    10,000 images' 156)."""
    if config.optim.epochs is not None:
        return config
    default = model_class(config.model.kind).TRAINING_DEFAULTS["epochs"]
    epochs = min(default, math.ceil(config.optim.max_steps / steps_per_epoch))
    return dataclasses.replace(config, optim=dataclasses.replace(config.optim, epochs=epochs))


def check_counts(config: TrainConfig) -> None:
    """Checks the counts and the seed ``config`` gives (the models' defaults are valid), without the model
    classes: the CLI refuses ``--epochs 0`` before TensorFlow starts."""
    counts = [(f"optim.{k}", getattr(config.optim, k)) for k in ("epochs", "batch_size", "max_steps")]
    runs = [(f"run.{k}", getattr(config.run, k)) for k in ("steps_per_execution", "sample_every", "checkpoint_every")]
    for key, value in counts + runs:
        if value is not None and value < 1:
            raise GenaugError(f"config key {key!r} must be at least 1, got {value}")
    if config.run.seed < 0:
        raise GenaugError(f"config key 'run.seed' must be >= 0, got {config.run.seed}")


# A checkpoint (the whole model, atomically) costs about as much as a few dozen steps of genaug's small
# models: saved after every epoch of 4 steps, it doubled a 300-image training (21 s against 12 s).
CHECKPOINT_STEPS = 100


def checkpoint_interval(checkpoint_every: int | None, steps_per_epoch: int) -> int:
    """Epochs between checkpoints: ``checkpoint_every``, or by default the fewest epochs that make
    CHECKPOINT_STEPS steps (every epoch once an epoch is that long). The last epoch is always saved."""
    return checkpoint_every or max(1, math.ceil(CHECKPOINT_STEPS / steps_per_epoch))


def from_dict(raw: dict, base: TrainConfig | None = None) -> TrainConfig:
    """Overlays a nested dict (``{"model": {"kind": "cdcgan"}}``) on ``base``, checking keys and types."""
    return _overlay(base or TrainConfig(), raw, "")


def load(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """Reads a YAML or JSON config file and overlays it on ``base``."""
    path = Path(path)
    if not path.is_file():
        raise GenaugError(f"config file not found: {path}")
    try:
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text) or {}
        else:
            raw = json.loads(text)
    except Exception as err:
        raise GenaugError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'} ({err})") from None
    if not isinstance(raw, dict):
        raise GenaugError(f"{path}: the top level must be a mapping of sections")
    return from_dict(raw, base)


def _overlay(obj, raw: dict, prefix: str):
    if not isinstance(raw, dict):
        raise GenaugError(f"config key {prefix.rstrip('.') or '<root>'} must be a mapping")
    if isinstance(obj, ModelConfig):  # arguments are checked against the model's constructor in resolve()
        kind = _coerce(raw.get("kind", obj.kind), str, f"{prefix}kind")
        return ModelConfig(kind, {**obj.params, **{k: v for k, v in raw.items() if k != "kind"}})
    fields = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    changes = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if key not in fields:
            raise GenaugError(f"unknown config key {name!r} (known: {', '.join(sorted(fields))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            changes[key] = _overlay(current, value, f"{name}.")
        else:
            changes[key] = _coerce(value, hints[key], name)
    return dataclasses.replace(obj, **changes)


def _coerce(value, hint, name: str):
    """Checks ``value`` against a field's type hint; lists become tuples, ints may stand for floats."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise GenaugError(f"config key {name!r} must not be null")
    for option in options:
        origin = typing.get_origin(option)
        if origin is tuple and isinstance(value, (list, tuple)):
            item_type = typing.get_args(option)[0]
            if all(isinstance(v, item_type) and not isinstance(v, bool) for v in value):
                return tuple(value)
        elif option in (bool, int, str) and type(value) is option:
            return value
        elif option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    expected = " or ".join(getattr(o, "__name__", str(o)) for o in options if o is not type(None)) or "null"
    raise GenaugError(f"config key {name!r} must be {expected}, got {value!r}")
