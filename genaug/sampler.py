"""``sample``: a trained run -> a deterministic, resumable, TFDS-format synthetic labelled dataset.

It checks the arguments, plans the counts and shards, claims the output directory and chooses the runner:
this process (shards two at a time) or an Apache Beam pipeline; both write with :mod:`genaug.shard_writer`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import math
import os
from pathlib import Path

import numpy as np

from genaug import atomic, storage
from genaug.errors import ArgumentError, GenaugError
from genaug.latents import AttentionSettings
from genaug.manifest import Manifest
from genaug.metrics import default_min_distance, held_out_min_distance
from genaug.outputs import check_output, claim_directory, differing_keys
from genaug.runs import RunDirectory
from genaug.shard_writer import SampleSettings, filters_for, finalize, label_plan, needs_oracle, oracle_for, write_shard
from genaug.synthetic import SYNTHETIC_LAYOUT, SyntheticDataset

EXAMPLES_PER_SHARD = 10_000
SHARDS_IN_FLIGHT = 2
MAX_IMAGES = 100_000_000  # per call; more would not fit the label plan in memory on a small machine


def generator_fingerprint(generator) -> str:
    """sha256 over the generator's weights, in order."""
    digest = hashlib.sha256()
    for weight in generator.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def class_counts(
    num_classes: int,
    *,
    per_class: int | None = None,
    num: int | None = None,
    class_balance: str | dict = "uniform",
    prior: tuple[int, ...] | None = None,
    class_names: tuple[str, ...] = (),
) -> tuple[int, ...]:
    """How many images each class gets: ``per_class``, or ``num`` split uniformly, by the real prior
    (``"match"``), or a ``{class name or index: count}`` mapping (which may leave classes at 0; ``num``,
    if given, must be its total); ``"fill"`` tops every class of the real ``prior`` up to its largest class
    (imbalanced data: real + synthetic is then balanced)."""
    if class_balance == "fill":
        if per_class is not None or num is not None:
            raise ArgumentError("{} fill tops every class up to the largest; give neither {} nor {}",
                                "class_balance", "per_class", "num")  # fmt: skip
        counts = max(prior) - np.asarray(prior, np.int64)
        if not counts.sum():
            raise ArgumentError("{} fill asks for no images: every class is as large as the largest", "class_balance")
        return tuple(int(c) for c in counts)
    if isinstance(class_balance, dict):
        if per_class is not None:
            raise ArgumentError("{} cannot be combined with a {} mapping", "per_class", "class_balance")
        counts = [0] * num_classes
        for key, count in class_balance.items():
            index = class_names.index(key) if key in class_names else _class_index(key, num_classes)
            if not isinstance(count, int) or count < 0:
                raise ArgumentError(f"{{}}: count for class {key!r} must be a non-negative integer", "class_balance")
            counts[index] = count
        if not sum(counts):
            raise ArgumentError("{} asks for no images", "class_balance")
        if num is not None and num != sum(counts):
            raise ArgumentError(
                f"{{}} {num} disagrees with the {{}} mapping's total {sum(counts)}", "num", "class_balance"
            )
        return tuple(counts)
    if (per_class is None) == (num is None):
        raise ArgumentError("give exactly one of {} and {}", "per_class", "num")
    if per_class is not None:
        if per_class < 1:
            raise ArgumentError(f"{{}} must be at least 1, got {per_class}", "per_class")
        return (per_class,) * num_classes
    if num < 1:
        raise ArgumentError(f"{{}} must be at least 1, got {num}", "num")
    if class_balance == "uniform":
        weights = np.ones(num_classes)
    elif class_balance == "match":
        weights = np.asarray(prior, np.float64)
    else:
        raise ArgumentError(f"{{}} {class_balance!r}: expected uniform, match, fill or a mapping", "class_balance")
    exact = num * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: num - counts.sum()]] += 1  # largest remainders
    return tuple(int(c) for c in counts)


def _class_index(key, num_classes: int) -> int:
    try:
        index = int(key)
    except (TypeError, ValueError):
        raise ArgumentError(f"{{}}: unknown class {key!r}", "class_balance") from None
    if not 0 <= index < num_classes:
        raise ArgumentError(f"{{}}: unknown class {key!r}", "class_balance")
    return index


def sample(
    run: RunDirectory | str | os.PathLike,
    out: str | Path,
    *,
    per_class: int | None = None,
    num: int | None = None,
    class_balance: str | dict = "uniform",
    seed: int = 0,
    num_shards: int | None = None,
    worker_index: int = 0,
    num_workers: int = 1,
    min_confidence: float | None = None,
    min_distance: float | str | None = "auto",
    truncation: float | None = None,
    temperature: float = 1.0,
    latent: str = "prior",
    attention: AttentionSettings | None = None,
    overwrite: bool = False,
    progress: bool = True,
    runner: str = "local",
    beam_options: str | None = None,
) -> Manifest | None:
    """Writes a synthetic labelled dataset from a run's generator.

    Args:
        run: a run directory written by ``genaug train``.
        out: the synthetic dataset directory.
        per_class: images per class; or ``num`` in total, split by ``class_balance``.
        num: total number of images.
        class_balance: ``"uniform"``, ``"match"`` (the real train prior), ``"fill"`` (every class topped up
            to the largest real one; no count needed) or ``{class: count}``.
        seed: the seed every draw derives from.
        num_shards: shard files (default: one per 10,000 images, at least ``num_workers``).
        worker_index: which of ``num_workers`` workers this is; it writes shards ``k % W == I``.
        num_workers: independent processes (or machines) sharing the shards.
        min_confidence: keep an image only if the oracle gives its label at least this probability.
        min_distance: drop images closer than this to a training image (pixels in [0, 1]); ``None``: no guard;
            ``"auto"``: the 1st percentile of test-to-train distances (no test split: a tenth of train held out).
        truncation, temperature: latent truncation threshold and scale (the prior only).
        latent: ``"prior"`` (the generator's latent prior) or ``"attention"``: attention-weighted
            interpolation of training images' codes (a conditional VAE's run; :mod:`genaug.latents`).
        attention: the attention sampler's settings (default ``AttentionSettings()``).
        overwrite: replace a synthetic dataset made with other settings.
        progress: show a progress bar with images/s.
        runner: ``"local"`` (this process) or ``"beam"`` (an Apache Beam pipeline; same bytes).
        beam_options: Beam pipeline flags for the beam runner (default ``--runner=DirectRunner``).

    Returns:
        The manifest once every shard exists, else ``None`` (other workers still running).

    Raises:
        GenaugError: bad settings, a run without a generator, another set in ``out``, an unfillable class.

    Example:
        >>> manifest = sample("runs/x", "syn/", per_class=200, seed=0)
    """
    run, out = run if isinstance(run, RunDirectory) else RunDirectory.open(run), storage.path(out)
    counts, num_shards, latent_settings = plan_sample(
        run, out, per_class=per_class, num=num, class_balance=class_balance, num_shards=num_shards,
        worker_index=worker_index, num_workers=num_workers, min_confidence=min_confidence, min_distance=min_distance,
        truncation=truncation, temperature=temperature, latent=latent, attention=attention, runner=runner,
        beam_options=beam_options, seed=seed,
    )  # fmt: skip
    settings = SampleSettings(
        counts_per_class=counts, seed=seed, num_shards=num_shards, min_confidence=min_confidence,
        min_distance=_min_distance(run, min_distance), truncation=truncation, temperature=temperature,
        generator_sha256=generator_fingerprint(run.generator), latent=latent_settings,
    )  # fmt: skip
    wanted = settings.to_json()
    lock = "lock" if num_workers == 1 else f"lock-{worker_index}-of-{num_workers}"  # workers share `out`
    with claim_directory(
        out, SYNTHETIC_LAYOUT, differences=lambda r: differing_keys(r, wanted), overwrite=overwrite, lock=lock
    ) as same:
        if not same:
            atomic.write_json(out / SYNTHETIC_LAYOUT.record, wanted)
        if runner == "beam":
            return _write_with_beam(run, out, settings, beam_options)
        mine = [k for k in range(num_shards) if k % num_workers == worker_index]
        _write_locally(run, out, settings, mine, run.record.dataset.num_classes, progress)
        return finalize(out, run=run, settings=settings)


def _min_distance(run: RunDirectory, asked: float | str | None) -> float | None:
    """The memorisation guard's distance: ``"auto"`` is the 1st percentile of real test-to-train distances,
    measured against every image the generator saw (a semi-supervised run's unlabelled ones too); a source
    without a test split (a directory of ``train-*`` IDX files) holds out a tenth of those images instead."""
    if asked == "auto":
        seen = run.training_images()[0]
        if "test" in run.record.dataset.split_sizes:
            asked = default_min_distance(seen, run.load_split("test").x)
        else:
            asked = held_out_min_distance(seen)
    return None if asked is None else round(float(asked), 6)


def _write_with_beam(run: RunDirectory, out: Path, settings: SampleSettings, beam_options: str | None) -> Manifest:
    """Every shard by an Apache Beam pipeline (:mod:`genaug.beam_runner`), which also finalizes."""
    from genaug import beam_runner

    if needs_oracle(run.generator, settings):
        oracle_for(run)  # trained here, once, before any worker loads it
    beam_runner.write_dataset(run.path, out, settings, run.record.dataset.num_classes, beam_options)
    return SyntheticDataset.open(out).manifest


def _write_locally(run: RunDirectory, out: Path, settings: SampleSettings, mine: list[int], num_classes: int,
                   progress: bool) -> None:  # fmt: skip
    """Writes shards ``mine`` in this process. Shards are independent: two at a time overlap one's last
    small filter rounds with the next one's first big batch; each is still a pure function of its index, so
    the bytes do not change."""
    filters = filters_for(run, settings)
    plan = label_plan(settings.counts_per_class, settings.seed, settings.num_shards)
    bar = _progress(sum(len(plan[k]) for k in mine)) if progress else None
    pool = concurrent.futures.ThreadPoolExecutor(SHARDS_IN_FLIGHT, thread_name_prefix="genaug-shard")
    try:
        written = pool.map(lambda k: write_shard(out, k, plan[k], filters, settings, num_classes), mine)
        for k, _ in zip(mine, written, strict=True):
            if bar:
                bar.add(len(plan[k]))
    finally:
        pool.shutdown(cancel_futures=True)  # on an error, start no further shard


def plan_sample(
    run: RunDirectory,
    out: Path,
    *,
    per_class: int | None = None,
    num: int | None = None,
    class_balance: str | dict = "uniform",
    num_shards: int | None = None,
    worker_index: int = 0,
    num_workers: int = 1,
    min_confidence: float | None = None,
    min_distance: float | str | None = "auto",
    truncation: float | None = None,
    temperature: float = 1.0,
    latent: str = "prior",
    attention: AttentionSettings | None = None,
    runner: str = "local",
    beam_options: str | None = None,
    seed: int = 0,
) -> tuple[tuple[int, ...], int, dict | None]:
    """Checks :func:`sample`'s arguments without TensorFlow or writing anything (the CLI calls it before
    TensorFlow starts) and returns ``(counts per class, number of shards, the latent settings)``.

    Raises:
        ArgumentError: naming the first bad argument.
    """
    _check_arguments(run, out, worker_index, num_workers, min_confidence, min_distance, truncation, temperature, seed)
    check_output(out, SYNTHETIC_LAYOUT)
    _check_runner(runner, beam_options, num_workers)
    latent_settings = _latent_settings(run, latent, attention, truncation, temperature)
    dataset = run.record.dataset
    counts = class_counts(
        dataset.num_classes,
        per_class=per_class,
        num=num,
        class_balance=class_balance,
        prior=dataset.class_counts,
        class_names=dataset.class_names,
    )
    total = sum(counts)
    if total > MAX_IMAGES:
        raise ArgumentError(f"asks for {total:,} images; at most {MAX_IMAGES:,} per call (use {{}})", "num_workers")
    if num_shards is None:
        num_shards = max(num_workers, math.ceil(total / EXAMPLES_PER_SHARD))
    if not 1 <= num_shards <= total:
        raise ArgumentError(
            f"{{}} must be between 1 and the number of images ({total}), got {num_shards}", "num_shards"
        )
    return counts, num_shards, latent_settings


def _check_arguments(run, out, worker_index, num_workers, min_confidence, min_distance, truncation, temperature, seed):
    """Refuses bad values before anything is written."""
    if out.resolve() == run.path.resolve():
        raise ArgumentError("{} is the run directory being sampled; choose another", "out")
    if not 0 <= worker_index < num_workers:
        raise ArgumentError(f"{{}} {worker_index} must be in [0, {{}} {num_workers})", "worker_index", "num_workers")
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:  # NaN fails too
        raise ArgumentError(f"{{}} must be in [0, 1], got {min_confidence}", "min_confidence")
    if isinstance(min_distance, float) and not min_distance >= 0:
        raise ArgumentError(f"{{}} must be a distance >= 0, got {min_distance}", "min_distance")
    if truncation is not None and not 0 < truncation < math.inf:
        raise ArgumentError(f"{{}} must be a positive number, got {truncation}", "truncation")
    if not 0 < temperature < math.inf:
        raise ArgumentError(f"{{}} must be a positive number, got {temperature}", "temperature")
    if not 0 <= seed < 2**63:
        raise ArgumentError(f"{{}} must be a non-negative integer, got {seed}", "seed")


def _latent_settings(run, latent: str, attention, truncation, temperature) -> dict | None:
    """The settings' ``latent`` entry: ``None`` for the prior, the attention sampler's settings otherwise."""
    if latent not in ("prior", "attention"):
        raise ArgumentError(f"{{}} {latent!r}: expected prior or attention", "latent")
    if latent == "prior":
        if attention is not None:
            raise ArgumentError("{} settings apply to {} attention only", "attention", "latent")
        return None
    from models import MODEL_CAPABILITIES

    if not {"conditional", "encoder"} <= MODEL_CAPABILITIES.get(run.record.model, set()):
        raise ArgumentError(
            f"{{}} attention needs a conditional model with an encoder (cvae); {run.path} is a {run.record.model}",
            "latent",
        )
    if truncation is not None or temperature != 1.0:
        raise ArgumentError(
            "{} and {} shape the prior; {} attention does not draw from it", "truncation", "temperature", "latent"
        )
    return {"kind": "attention", **dataclasses.asdict(attention or AttentionSettings())}


def _check_runner(runner: str, beam_options: str | None, num_workers: int) -> None:
    if runner not in ("local", "beam"):
        raise ArgumentError(f"{{}} {runner!r}: expected local or beam", "runner")
    if runner == "local":
        if beam_options is not None:
            raise ArgumentError("{} apply to the beam runner only (add {} beam)", "beam_options", "runner")
        return
    if num_workers != 1:
        raise ArgumentError("{} is for local workers; Beam spreads the shards itself", "num_workers")
    import importlib.util

    if importlib.util.find_spec("apache_beam") is None:
        raise GenaugError("the beam runner needs the optional extra: pip install 'genaug[beam]'")
    from genaug.beam_runner import pipeline_options

    pipeline_options(beam_options)  # bad flags fail before anything is written


def _progress(total: int):
    import keras

    from genaug.startup import keras_verbosity

    return keras.utils.Progbar(total, unit_name="image", verbose=keras_verbosity())
