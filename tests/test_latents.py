"""The attention sampler (``genaug sample --latent attention``)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from genaug import shards
from genaug.errors import ArgumentError
from genaug.latents import AttentionLatents, AttentionSettings
from genaug.sampler import sample


def _clusters(num_classes=3, per_class=8, dim=4, seed=0):
    """Codes of class c scattered around 100 * c, so a code's class is plain from its value."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    codes = (100.0 * labels[:, None] + rng.standard_normal((len(labels), dim))).astype(np.float32)
    return codes, labels


def test_each_code_mixes_its_own_class_and_is_a_function_of_the_seed():
    codes, code_labels = _clusters()
    latents = AttentionLatents(codes, code_labels, 3, AttentionSettings(k=4, temperature=1.0))
    labels = np.array([2, 0, 1, 1, 0, 2, 2])
    z = latents(labels, seed=5)
    assert z.shape == (7, 4) and z.dtype == np.float32
    for code, label in zip(z, labels, strict=True):
        members = codes[code_labels == label]
        assert (members.min(axis=0) <= code).all() and (code <= members.max(axis=0)).all()
    assert np.array_equal(z, latents(labels, seed=5))
    assert not np.allclose(z, latents(labels, seed=6))
    assert len({tuple(row) for row in latents(np.zeros(50, int), seed=0)}) == 50  # a fresh mix per draw


def test_k1_copies_a_training_code_and_extrapolation_leaves_the_anchor_behind():
    codes, code_labels = _clusters()
    copies = AttentionLatents(codes, code_labels, 3, AttentionSettings(k=1))(np.array([1] * 5), seed=0)
    assert all(any(np.array_equal(c, m) for m in codes[code_labels == 1]) for c in copies)
    near = AttentionLatents(codes, code_labels, 3, AttentionSettings(k=8, temperature=100.0))
    far = AttentionLatents(codes, code_labels, 3, AttentionSettings(k=8, temperature=100.0, extrapolation=1.0))
    labels = np.zeros(200, int)
    centre = codes[code_labels == 0].mean(axis=0)
    # At a high temperature the mix is about the class mean; extrapolating doubles the step from the anchor.
    assert np.abs(near(labels, seed=1) - centre).max() < 1.0
    assert np.abs(far(labels, seed=1) - centre).mean() > np.abs(near(labels, seed=1) - centre).mean()


@pytest.mark.parametrize(
    "settings, culprit",
    [
        ({"k": 0}, "attention_k"),
        ({"temperature": 0.0}, "attention_temperature"),
        ({"extrapolation": 2}, "extrapolation"),
    ],
)
def test_bad_attention_settings_name_the_setting(settings, culprit):
    with pytest.raises(ArgumentError, match=culprit):
        AttentionSettings(**settings)


def test_attention_sampling_honours_labels_and_seeds(smoke_runs, tmp_path):
    def draw(name, seed, **kwargs):
        manifest = sample(
            smoke_runs["cvae"], tmp_path / name, per_class=6, seed=seed, latent="attention", progress=False, **kwargs
        )
        ds, _ = shards.load_synthetic(tmp_path / name)
        return manifest, next(iter(tfds.as_numpy(ds.batch(100))))

    manifest, first = draw("a", 0, min_distance=None)
    assert manifest.settings["latent"] == {"kind": "attention", "k": 5, "temperature": 1.0, "extrapolation": 0.0}
    assert np.bincount(first["label"]).tolist() == [6] * 10
    _, again = draw("b", 0, min_distance=None)
    _, other = draw("c", 1, min_distance=None)
    assert np.array_equal(first["image"], again["image"]) and np.array_equal(first["label"], again["label"])
    assert not np.array_equal(first["image"], other["image"])
    prior = sample(smoke_runs["cvae"], tmp_path / "p", per_class=6, seed=0, min_distance=None, progress=False)
    assert prior.settings["latent"] is None and prior.shards[0].sha256 != manifest.shards[0].sha256


def test_attention_needs_a_conditional_vae_and_no_prior_settings(smoke_runs, tmp_path, run_cli):
    cases = [
        ("vae", [], "--latent attention needs a conditional model with an encoder"),
        ("cvae", ["--truncation", "1"], "--truncation and --temperature shape the prior; --latent attention"),
        ("cvae", ["--attention-k", "0"], "--attention-k must be an integer >= 1"),
    ]
    for k, (kind, extra, message) in enumerate(cases):
        out = tmp_path / str(k)
        code, _, err = run_cli(
            "sample", smoke_runs[kind], "--out", out, "--per-class", 2, "--latent", "attention", *extra
        )
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1
        assert not out.exists()
