"""``sample``: a trained run -> a deterministic, resumable, TFDS-format synthetic labelled dataset.

Every shard is a pure function of (generator, seed, shard index, settings): its labels come from a
seeded plan, its latent vectors from ``SeedSequence([seed, shard, round])``. Shards are written under
a temporary name and renamed; a record per shard (``.genaug/shard-K.json``) lets a rerun skip shards
whose checksum is already right. Metadata and ``manifest.json`` are written once every shard exists.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from genaug import atomic, shards
from genaug.errors import ArgumentError, GenaugError
from genaug.latents import AttentionSettings
from genaug.metrics import default_min_distance
from genaug.records import (
    MANIFEST,
    STATE_DIR,
    SYNTHETIC_LAYOUT,
    RunDirectory,
    SyntheticDataset,
    claim_directory,
    differing_keys,
    metadata_files,
    shard_name,
)
from genaug.version import __version__

EXAMPLES_PER_SHARD = 10_000
MAX_ROUNDS = 100
SHARDS_IN_FLIGHT = 2
ORACLE_EPOCHS = 30
ORACLE_MIN_STEPS = 300
# 2 (genaug 0.2.0): "features" lists the shards' features; sets whose sampler ran the oracle store its
# confidence in each label (their shard bytes changed). Sets without a version are 1 and still load.
MANIFEST_VERSION = 3  # 3: the sha256 of TFDS's metadata files
MAX_IMAGES = 100_000_000  # per call; more would not fit the label plan in memory on a small machine


@dataclasses.dataclass(frozen=True)
class SampleSettings:
    """Everything that determines the bytes of the shards (recorded in the manifest)."""

    counts_per_class: tuple[int, ...]
    seed: int
    num_shards: int
    min_confidence: float | None
    min_distance: float | None
    truncation: float | None
    temperature: float
    generator_sha256: str
    # None: the generator's latent prior; {"kind": "attention", "k", "temperature", "extrapolation"}:
    # attention-weighted interpolation of training codes (genaug.latents). Absent from older records.
    latent: dict | None = None

    def to_json(self) -> dict:
        """As ``settings.json`` and the manifest hold it (tuples as lists), for comparing with them."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


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
    if given, must be its total)."""
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
        raise ArgumentError(f"{{}} {class_balance!r}: expected uniform, match or a mapping", "class_balance")
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


def label_plan(counts: tuple[int, ...], seed: int, num_shards: int) -> list[np.ndarray]:
    """The labels of every shard: all labels, shuffled by ``seed``, cut into ``num_shards`` pieces."""
    labels = np.repeat(np.arange(len(counts)), counts)
    labels = np.random.default_rng(seed).permutation(labels)
    bounds = np.linspace(0, len(labels), num_shards + 1).astype(int)
    return [labels[bounds[k] : bounds[k + 1]] for k in range(num_shards)]


def _oracle(run: RunDirectory):
    """A classifier trained on the run's training images (a semi-supervised run's pseudo-labelled ones
    too); trained once and kept as ``oracle.keras``."""
    from genaug.classifier import arrays_dataset, train_classifier

    oracle = run.load_oracle()
    if oracle is None:
        (x, y), seed, info = run.training_images(), run.record.seed, run.record.dataset
        steps = max(ORACLE_MIN_STEPS, ORACLE_EPOCHS * len(y) // 64)
        oracle = train_classifier(
            arrays_dataset(x, y, seed=seed), info.image_shape, info.num_classes, seed=seed, steps=steps
        )
        run.save_oracle(oracle)
    return oracle


class _Filters:
    """Draws candidates (:class:`genaug.candidates.Candidates`) and judges them by the settings."""

    def __init__(self, settings: SampleSettings, generator, oracle, train_x: np.ndarray | None, latents=None):
        from genaug.candidates import Candidates

        self.settings = settings
        reference = train_x if settings.min_distance is not None else None
        self.candidates = Candidates(generator, oracle, reference, latents=latents)

    @property
    def scores(self) -> bool:
        """Whether candidates get the oracle's confidence (stored in the shards as ``confidence``)."""
        return self.candidates.oracle is not None

    def __call__(self, n: int, labels: np.ndarray | None, seed: int):
        """Returns (images, labels, the oracle's confidence in each label or None, accepted mask,
        rejected-by-confidence mask, rejected-by-distance mask)."""
        settings = self.settings
        drawn = self.candidates(n, labels, seed=seed, truncation=settings.truncation, temperature=settings.temperature)
        confident, confidence = np.ones(n, bool), None
        if "probs" in drawn:
            probs = drawn["probs"]
            if labels is None:  # unconditional: the oracle names the class
                labels = probs.argmax(axis=1)
            confidence = probs[np.arange(n), labels]
            if settings.min_confidence is not None:
                confident = confidence >= settings.min_confidence
        novel = np.ones(n, bool)
        if "distances" in drawn:
            novel = drawn["distances"] >= settings.min_distance
        return drawn["images"], labels, confidence, confident & novel, ~confident, confident & ~novel


def filters_for(run: RunDirectory, settings: SampleSettings) -> _Filters:
    """The candidate function and judges for ``settings``: the run's generator, its oracle (trained and
    saved on first use) where needed, and its training images where the memorisation guard is on."""
    generator = run.generator
    oracle = _oracle(run) if _needs_oracle(generator, settings) else None
    seen = run.training_images() if settings.min_distance is not None or settings.latent else None
    train_x = seen[0] if settings.min_distance is not None else None
    latents = _attention_latents(run, settings.latent, *seen) if settings.latent else None
    return _Filters(settings, generator, oracle, train_x, latents)


def _attention_latents(run: RunDirectory, latent: dict, x: np.ndarray, y: np.ndarray):
    """The attention sampler over the codes the run's VAE gives its training images ``x`` (labels ``y``)."""
    import models
    from genaug.latents import AttentionLatents

    model = run.load_trained_model()
    codes = model.posterior_means(models.to_model_range(x), y)
    settings = AttentionSettings(**{k: v for k, v in latent.items() if k != "kind"})
    return AttentionLatents(codes, y, model.num_classes, settings)


def _needs_oracle(generator, settings: SampleSettings) -> bool:
    """An unconditional generator's images get their labels from the oracle; a threshold needs it too."""
    return generator.num_classes is None or settings.min_confidence is not None


def _make_shard(index: int, wanted: np.ndarray, filters: _Filters, settings, num_classes: int):
    """Fills the shard's label slots, drawing rounds of candidates until every slot passes the filters."""
    generator = filters.candidates.generator
    conditional = generator.num_classes is not None
    images = np.empty((len(wanted), *generator.image_shape), np.uint8)
    confidences = np.empty(len(wanted), np.float32) if filters.scores else None
    filled = np.zeros(len(wanted), bool)
    stats = {k: np.zeros(num_classes, np.int64) for k in ("drawn", "accepted", "low_confidence", "too_close")}
    for round_ in range(MAX_ROUNDS):
        todo = np.flatnonzero(~filled)
        if not len(todo):
            break
        draw_seed = int(np.random.SeedSequence([settings.seed, index, round_]).generate_state(1)[0])
        n = len(todo) if conditional else max(2 * len(todo), 64)
        candidates, labels, confidence, ok, low, close = filters(n, wanted[todo] if conditional else None, draw_seed)
        for key, mask in (("drawn", slice(None)), ("low_confidence", low), ("too_close", close)):
            np.add.at(stats[key], labels[mask], 1)
        if conditional:
            images[todo[ok]] = candidates[ok]
            if confidences is not None:
                confidences[todo[ok]] = confidence[ok]
            filled[todo[ok]] = True
            np.add.at(stats["accepted"], labels[ok], 1)
            continue
        for label in np.unique(wanted[todo]):  # unconditional: hand out candidates by oracle label
            slots = todo[wanted[todo] == label]
            found = np.flatnonzero(ok & (labels == label))[: len(slots)]
            images[slots[: len(found)]] = candidates[found]
            confidences[slots[: len(found)]] = confidence[found]  # an unconditional sampler always scores
            filled[slots[: len(found)]] = True
            stats["accepted"][label] += len(found)
    if not filled.all():
        missing = wanted[~filled]
        worst = int(np.bincount(missing, minlength=num_classes).argmax())
        if conditional:
            rate = stats["accepted"][worst] / max(1, stats["drawn"][worst])
            what = f"{rate:.1%} of its {stats['drawn'][worst]} draws passed the filters"
        else:
            what = f"the oracle gave it {stats['drawn'][worst]} of {stats['drawn'].sum()} draws"
        raise ArgumentError(
            f"class {worst} could not be filled in shard {index}: {what} after {MAX_ROUNDS} rounds; "
            "lower {} or {}, or train the generator longer",
            "min_confidence",
            "min_distance",
        )
    return images, confidences, stats


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
) -> dict | None:
    """Writes a synthetic labelled dataset from a run's generator.

    Args:
        run: a run directory written by ``genaug train``.
        out: the synthetic dataset directory.
        per_class: images per class; or ``num`` in total, split by ``class_balance``.
        num: total number of images.
        class_balance: ``"uniform"``, ``"match"`` (the real train prior) or ``{class: count}``.
        seed: the seed every draw derives from.
        num_shards: shard files (default: one per 10,000 images, at least ``num_workers``).
        worker_index: which of ``num_workers`` workers this is; it writes shards ``k % W == I``.
        num_workers: independent processes (or machines) sharing the shards.
        min_confidence: keep an image only if the oracle gives its label at least this probability.
        min_distance: drop images closer than this to a training image (pixels in [0, 1]); ``"auto"``
            uses the 1st percentile of real test-to-train distances; ``None`` turns the guard off.
        truncation: latent truncation threshold (the prior only).
        temperature: latent scale (the prior only).
        latent: ``"prior"`` (the generator's latent prior) or ``"attention"``: attention-weighted
            interpolation of training images' codes (a conditional VAE's run; :mod:`genaug.latents`).
        attention: the attention sampler's k, temperature and extrapolation (default
            ``AttentionSettings()``).
        overwrite: replace a synthetic dataset made with other settings.
        progress: show a progress bar with images/s.
        runner: ``"local"`` (this process) or ``"beam"`` (an Apache Beam pipeline; same bytes).
        beam_options: Beam pipeline flags for the beam runner (default ``--runner=DirectRunner``).

    Returns:
        The manifest once every shard exists, else ``None`` (other workers still running).

    Raises:
        GenaugError: on bad settings, a run without a generator, a mismatched output directory, or a
            class the filters cannot fill.

    Example:
        >>> manifest = sample("runs/x", "syn/", per_class=200, seed=0)
    """
    run = run if isinstance(run, RunDirectory) else RunDirectory.open(run)
    out = Path(out)
    _check_arguments(run, out, worker_index, num_workers, min_confidence, min_distance, truncation, temperature, seed)
    _check_runner(runner, beam_options, num_workers)
    latent_settings = _latent_settings(run, latent, attention, truncation, temperature)
    dataset = run.record.dataset
    num_classes = dataset.num_classes
    counts = class_counts(
        num_classes,
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
    if min_distance == "auto":  # a semi-supervised run's generator saw the unlabelled images too
        min_distance = default_min_distance(run.training_images()[0], run.load_split("test").x)
    generator = run.generator
    settings = SampleSettings(
        counts_per_class=counts,
        seed=seed,
        num_shards=num_shards,
        min_confidence=min_confidence,
        min_distance=None if min_distance is None else round(float(min_distance), 6),
        truncation=truncation,
        temperature=temperature,
        generator_sha256=generator_fingerprint(generator),
        latent=latent_settings,
    )
    wanted = settings.to_json()

    lock = "lock" if num_workers == 1 else f"lock-{worker_index}-of-{num_workers}"  # workers share `out`
    with claim_directory(
        out, SYNTHETIC_LAYOUT, differences=lambda r: differing_keys(r, wanted), overwrite=overwrite, lock=lock
    ) as same:
        if not same:
            atomic.write_json(out / SYNTHETIC_LAYOUT.record, wanted)
        if runner == "beam":
            from genaug import beam_runner

            if _needs_oracle(generator, settings):
                _oracle(run)  # trained here, once, before any worker loads it
            beam_runner.write_dataset(run.path, out, settings, num_classes, beam_options)
            return SyntheticDataset.open(out).manifest
        filters = filters_for(run, settings)
        plan = label_plan(counts, seed, num_shards)
        mine = [k for k in range(num_shards) if k % num_workers == worker_index]
        bar = _progress(sum(len(plan[k]) for k in mine)) if progress else None
        # Shards are independent: two at a time overlap one's last small filter rounds with the next one's
        # first big batch. Each is still a pure function of its index, so the bytes do not change.
        pool = concurrent.futures.ThreadPoolExecutor(SHARDS_IN_FLIGHT, thread_name_prefix="genaug-shard")
        try:
            written = pool.map(lambda k: write_shard(out, k, plan[k], filters, settings, num_classes), mine)
            for k, _ in zip(mine, written, strict=True):
                if bar:
                    bar.add(len(plan[k]))
        finally:
            pool.shutdown(cancel_futures=True)  # on an error, start no further shard
        return finalize(out, run=run, settings=settings)


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
    if run.record.model != "cvae":
        raise ArgumentError(
            f"{{}} attention needs a conditional VAE's run (cvae); {run.path} is a {run.record.model}", "latent"
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


def write_shard(out: Path, k: int, labels: np.ndarray, filters: _Filters, settings, num_classes: int) -> None:
    """Writes shard ``k`` unless a checksum-verified copy exists; then records it in ``.genaug/``."""
    # Each shard has one owner (k % W == I), so its leftovers from a killed run are ours to remove.
    name = shard_name(k, settings.num_shards)
    atomic.remove_stale_temporaries(out / name)
    atomic.remove_stale_temporaries(out / STATE_DIR / f"shard-{k:05d}.json")
    if _shard_is_done(out, k, settings.num_shards):
        return
    images, confidences, stats = _make_shard(k, labels, filters, settings, num_classes)
    digest = shards.write_shard(out / name, images, labels, confidences)
    record = {
        "file": name,
        "examples": len(labels),
        "sha256": digest,
        "counts_per_class": np.bincount(labels, minlength=num_classes).tolist(),
        "confidence": confidences is not None,
        **{key: value.tolist() for key, value in stats.items()},
    }
    atomic.write_json(out / STATE_DIR / f"shard-{k:05d}.json", record)


def _progress(total: int):
    import keras

    from genaug.startup import keras_verbosity

    return keras.utils.Progbar(total, unit_name="image", verbose=keras_verbosity())


def _shard_record(out: Path, k: int) -> dict | None:
    path = out / STATE_DIR / f"shard-{k:05d}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _shard_is_done(out: Path, k: int, num_shards: int) -> bool:
    record = _shard_record(out, k)
    file = out / shard_name(k, num_shards)
    return record is not None and file.is_file() and shards.sha256_file(file) == record["sha256"]


def finalize(out: Path, *, run: RunDirectory, settings: SampleSettings):
    """Writes TFDS metadata and ``manifest.json`` if every shard is present; returns the manifest or None."""
    records = [_shard_record(out, k) for k in range(settings.num_shards)]
    done = [r for r in records if r is not None]
    if len(done) < settings.num_shards:
        print(
            f"genaug: {len(done)}/{settings.num_shards} shards present in {out}; "
            "the last worker to finish writes the metadata"
        )
        return None
    dataset, record, data = run.record.dataset, run.record, run.read_config()["data"]
    scored = {r.get("confidence", False) for r in records}  # shards written before 0.2.0 carry none
    if len(scored) > 1:
        raise GenaugError(f"{out}: some shards store the oracle's confidence and some do not; rerun with --overwrite")
    schema = shards.features(dataset.image_shape, dataset.class_names, confidence=scored.pop())
    num_bytes = sum((out / r["file"]).stat().st_size for r in records)
    description = f"Synthetic images sampled by genaug {__version__} from {run.path}"
    shards.write_metadata(out, schema, [r["examples"] for r in records], num_bytes, description)

    def per_class(key):
        return np.sum([r[key] for r in records], axis=0).tolist()

    drawn, accepted = per_class("drawn"), per_class("accepted")
    manifest = {
        "genaug_version": __version__,
        "manifest_version": MANIFEST_VERSION,
        "features": sorted(schema.keys()),
        "generator": {
            "run": str(run.path),
            "sha256": settings.generator_sha256,
            "model": record.model,
            "run_seed": record.seed,
        },
        "source": {
            "dataset": data["data"],
            "split": data["split"],
            "class_names": list(dataset.class_names),
            "image_shape": list(dataset.image_shape),
            "train_indices": record.train_indices,
            "holdout_indices": record.holdout_indices,  # labelled examples the generator never saw
            "unlabeled": record.unlabeled,  # images the generator learnt from without labels, if any
            "dataset_fingerprint": record.dataset_fingerprint,
        },
        "seed": settings.seed,
        "settings": settings.to_json(),
        "num_examples": int(sum(settings.counts_per_class)),
        "counts_per_class": list(settings.counts_per_class),
        "filters": {
            "drawn": drawn,
            "accepted": accepted,
            "rejected_low_confidence": per_class("low_confidence"),
            "rejected_too_close": per_class("too_close"),
            "acceptance_rate": [a / d if d else None for a, d in zip(accepted, drawn, strict=True)],
        },
        "shards": [{"file": r["file"], "examples": r["examples"], "sha256": r["sha256"]} for r in records],
        "metadata": {name: shards.sha256_file(out / name) for name in metadata_files(out)},  # what TFDS reads them as
    }
    atomic.write_json(out / MANIFEST, manifest)
    return manifest
