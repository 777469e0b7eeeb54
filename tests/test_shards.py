"""Shard I/O: the serialised bytes, the TFDS schema, and verify."""

import numpy as np
import pytest
import tensorflow as tf

from genaug import shards
from genaug.sampler import sample


def test_serializer_matches_the_schema():
    schema = shards.features((4, 4, 3), ["a", "b"])
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    decoded = schema.deserialize_example(shards.serialize(image, 1))
    assert np.array_equal(decoded["image"].numpy(), image) and int(decoded["label"]) == 1
    # The same proto as the schema's own serializer (whose map order is not fixed, so compare parsed).
    ours = tf.train.Example.FromString(shards.serialize(image, 1))
    theirs = tf.train.Example.FromString(schema.serialize_example({"image": image, "label": 1}))
    assert ours == theirs


def test_serializer_with_confidence_matches_the_schema():
    schema = shards.features((4, 4, 1), ["a", "b"], confidence=True)
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    decoded = schema.deserialize_example(shards.serialize(image, 1, 0.8125))
    assert float(decoded["confidence"]) == 0.8125 and int(decoded["label"]) == 1
    ours = tf.train.Example.FromString(shards.serialize(image, 1, 0.8125))
    example = {"image": image, "label": 1, "confidence": np.float32(0.8125)}
    assert ours == tf.train.Example.FromString(schema.serialize_example(example))


def test_template_serializer_is_byte_identical():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 5, 5, 3), dtype=np.uint8)
    images[0] = 0xAB  # the template's own marker value must still splice correctly
    labels = rng.integers(0, 300, 50)  # labels past 127 take two varint bytes
    confidences = rng.random(50).astype(np.float32)
    confidences[1] = shards._CONFIDENCE_MARKER  # so must its confidence marker
    fast, scored = shards._TemplateSerializer((5, 5, 3)), shards._TemplateSerializer((5, 5, 3), confidence=True)
    for image, label, confidence in zip(images, labels.tolist(), confidences.tolist(), strict=True):
        assert fast(image, label) == shards.serialize(image, label)
        assert scored(image, label, confidence) == shards.serialize(image, label, confidence)


def test_verify_catches_a_flipped_byte_and_a_missing_shard(smoke_runs, tmp_path, run_cli):
    out = tmp_path / "syn"
    sample(smoke_runs["cvae"], out, per_class=10, seed=7, num_shards=2, progress=False)
    assert run_cli("verify", out)[0] == 0
    shard = sorted(out.glob("genaug_synthetic-*"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    code, _, err = run_cli("verify", out)
    assert code == 1 and f"shard {shard.name} is corrupt" in err
    shard.unlink()
    code, _, err = run_cli("verify", out)
    assert code == 1 and f"shard {shard.name} is missing" in err


def test_genaug_reader_serves_what_tfds_reads_in_shard_order(smoke_runs, tmp_path):
    import tensorflow_datasets as tfds

    out = tmp_path / "syn"
    sample(smoke_runs["cvae"], out, per_class=7, seed=3, num_shards=3, progress=False)
    ours, info = shards.load_synthetic(out)
    assert int(ours.cardinality()) == 70 == info.split_sizes["train"]  # known: mix() need not count
    assert ours.element_spec["image"].shape == info.image_shape and ours.element_spec["label"].dtype == tf.int64
    sequential = tfds.ReadConfig(interleave_cycle_length=1)  # TFDS interleaves shards by default
    theirs = tfds.builder_from_directory(str(out)).as_dataset(split="train", read_config=sequential)
    pairs = list(zip(tfds.as_numpy(ours), tfds.as_numpy(theirs), strict=True))
    assert len(pairs) == 70
    for a, b in pairs:
        assert np.array_equal(a["image"], b["image"]) and a["label"] == b["label"]


def test_a_full_disk_while_writing_a_shard_names_the_shard(tmp_path):
    from genaug import atomic

    target = tmp_path / "genaug_synthetic-train.tfrecord-00000-of-00001"
    full = tf.errors.ResourceExhaustedError(None, None, "write failed: No space left on device")
    with (
        pytest.raises(OSError, match="No space left") as caught,
        atomic.atomic_path(target) as tmp,
    ):
        tmp.write_bytes(b"partial")
        raise full
    assert caught.value.errno == 28 and caught.value.filename == str(target)
    assert not list(tmp_path.iterdir())
