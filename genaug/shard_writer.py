"""The shard writer both runners share: the local sampler and the Beam pipeline import it (it imports
neither), so every shard's bytes come from one piece of code.

Every shard is a pure function of (generator, seed, shard index, settings): its labels come from a seeded
plan, its latent vectors from ``SeedSequence([seed, shard, round])``. Shards are written under a temporary
name and renamed; a record per shard (``.genaug/shard-K.json``) lets a rerun skip shards whose checksum is
already right. :func:`finalize` writes the metadata and ``manifest.json`` once every shard exists.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from genaug import atomic, shards, storage
from genaug.errors import ArgumentError, GenaugError
from genaug.manifest import MANIFEST_VERSION, Filters, GeneratorRef, Manifest, ShardEntry, SourceRef
from genaug.outputs import STATE_DIR
from genaug.runs import RunDirectory
from genaug.synthetic import metadata_files, shard_name
from genaug.version import __version__

log = logging.getLogger(__name__)
MAX_ROUNDS = 100
ORACLE_EPOCHS = 30
ORACLE_MIN_STEPS = 300


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


def label_plan(counts: tuple[int, ...], seed: int, num_shards: int) -> list[np.ndarray]:
    """The labels of every shard: all labels, shuffled by ``seed``, cut into ``num_shards`` pieces."""
    labels = np.repeat(np.arange(len(counts)), counts)
    labels = np.random.default_rng(seed).permutation(labels)
    bounds = np.linspace(0, len(labels), num_shards + 1).astype(int)
    return [labels[bounds[k] : bounds[k + 1]] for k in range(num_shards)]


def oracle_for(run: RunDirectory):
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
    oracle = oracle_for(run) if needs_oracle(generator, settings) else None
    seen = run.training_images() if settings.min_distance is not None or settings.latent else None
    train_x = seen[0] if settings.min_distance is not None else None
    latents = _attention_latents(run, settings.latent, *seen) if settings.latent else None
    return _Filters(settings, generator, oracle, train_x, latents)


def _attention_latents(run: RunDirectory, latent: dict, x: np.ndarray, y: np.ndarray):
    """The attention sampler over the codes the run's VAE gives its training images ``x`` (labels ``y``)."""
    import models
    from genaug.latents import AttentionLatents, AttentionSettings

    model = run.load_trained_model()
    codes = model.posterior_means(models.to_model_range(x), y)
    settings = AttentionSettings(**{k: v for k, v in latent.items() if k != "kind"})
    return AttentionLatents(codes, y, model.num_classes, settings)


def needs_oracle(generator, settings: SampleSettings) -> bool:
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
        log.info(
            f"{len(done)}/{settings.num_shards} shards present in {out}; the last worker to finish writes the metadata"
        )
        return None
    dataset, record, data = run.record.dataset, run.record, run.read_config()["data"]
    scored = {r.get("confidence", False) for r in records}  # shards written before 0.2.0 carry none
    if len(scored) > 1:
        raise GenaugError(f"{out}: some shards store the oracle's confidence and some do not; rerun with --overwrite")
    schema = shards.features(dataset.image_shape, dataset.class_names, confidence=scored.pop())
    num_bytes = sum(storage.stat(out / r["file"]).size for r in records)
    description = f"Synthetic images sampled by genaug {__version__} from {run.path}"
    shards.write_metadata(out, schema, [r["examples"] for r in records], num_bytes, description)

    def per_class(key):
        return np.sum([r[key] for r in records], axis=0).tolist()

    drawn, accepted = per_class("drawn"), per_class("accepted")
    manifest = Manifest(
        genaug_version=__version__,
        manifest_version=MANIFEST_VERSION,
        features=sorted(schema.keys()),
        generator=GeneratorRef(
            run=str(run.path), sha256=settings.generator_sha256, model=record.model, run_seed=record.seed
        ),
        source=SourceRef(
            dataset=data["data"],
            split=data["split"],
            class_names=dataset.class_names,
            image_shape=dataset.image_shape,
            train_indices=record.train_indices,
            holdout_indices=record.holdout_indices,  # labelled examples the generator never saw
            unlabeled=record.unlabeled,  # images the generator learnt from without labels, if any
            dataset_fingerprint=record.dataset_fingerprint,
        ),
        seed=settings.seed,
        settings=settings.to_json(),
        num_examples=int(sum(settings.counts_per_class)),
        counts_per_class=list(settings.counts_per_class),
        filters=Filters(
            drawn=drawn,
            accepted=accepted,
            rejected_low_confidence=per_class("low_confidence"),
            rejected_too_close=per_class("too_close"),
            acceptance_rate=[a / d if d else None for a, d in zip(accepted, drawn, strict=True)],
        ),
        shards=[ShardEntry(r["file"], r["examples"], r["sha256"]) for r in records],
        metadata={name: shards.sha256_file(out / name) for name in metadata_files(out)},  # what TFDS reads them as
    )
    manifest.write(out)
    return manifest
