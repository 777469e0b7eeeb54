"""SimCLR pretraining of the FixMatch teacher's network: it learns, saves and loads with safe_mode, and the
teacher starts from its encoder and records it."""

import keras
import numpy as np
import pytest

import models
from genaug.data import load_arrays, unlabeled_rest
from genaug.teacher import pretrain_encoder, teach, train_fixmatch
from models.scaling import to_model_range


@pytest.fixture(scope="module")
def digits():
    full = load_arrays("digits", "train")
    labelled = full.subset(np.arange(0, 1347, 27))
    return labelled, unlabeled_rest(full, labelled)


def test_simclr_learns_saves_and_loads_safely(digits, tmp_path):
    _, unlabeled = digits
    keras.utils.set_random_seed(0)
    simclr = models.SimCLR((8, 8, 1), width=8, seed=0)
    simclr.compile()
    batch = to_model_range(unlabeled.x[:64])
    before = float(simclr.contrastive_loss(batch))
    assert before == pytest.approx(np.log(127), abs=0.5)  # near chance among the 2B - 1 other views
    simclr.fit(np.tile(batch, (100, 1, 1, 1)), batch_size=64, epochs=1, shuffle=False, verbose=0)
    assert float(simclr.contrastive_loss(batch)) < before - 0.5
    simclr.save(tmp_path / "simclr.keras")
    loaded = models.load_model(tmp_path / "simclr.keras")  # safe_mode=True
    assert isinstance(loaded, models.SimCLR) and loaded.get_config() == simclr.get_config()
    np.testing.assert_allclose(loaded(batch), simclr(batch), atol=1e-6)
    with pytest.raises(ValueError, match="temperature must be above 0"):
        models.SimCLR((8, 8, 1), temperature=0)


def test_fixmatch_starts_from_the_pretrained_encoder(digits, caplog):
    labelled, unlabeled = digits
    caplog.set_level("INFO", logger="genaug.teacher")
    encoder = pretrain_encoder(unlabeled.x[:128], steps=100, seed=0)
    assert any(m.startswith("teacher simclr: step 50/100, contrastive loss ") for m in caplog.messages)
    again = pretrain_encoder(unlabeled.x[:128], steps=100, seed=0)
    np.testing.assert_allclose(again(to_model_range(unlabeled.x[:20])), encoder(to_model_range(unlabeled.x[:20])))
    teacher = models.FixMatch((8, 8, 1), 10)
    head = teacher.network.layers[-1].get_weights()
    teacher.start_from(encoder)
    for network in (teacher.network, teacher.ema_network):
        features = keras.Model(network.input, network.layers[-2].output)
        images = to_model_range(unlabeled.x[:20])
        np.testing.assert_allclose(features(images), encoder(images), atol=1e-6)
        for kept, weight in zip(head, network.layers[-1].get_weights(), strict=True):
            np.testing.assert_array_equal(kept, weight)
    trained = train_fixmatch(labelled, unlabeled.x[:256], steps=3, seed=0, encoder=encoder)
    scratch = train_fixmatch(labelled, unlabeled.x[:256], steps=3, seed=0)
    assert not np.allclose(trained.network.get_weights()[0], scratch.network.get_weights()[0])


def test_teach_pretrains_once_and_records_it(digits, monkeypatch):
    import genaug.teacher as teacher

    labelled, unlabeled = digits
    calls = []
    original = teacher.pretrain_encoder
    monkeypatch.setattr(
        teacher, "pretrain_encoder", lambda images, **kw: calls.append(len(images)) or original(images, **kw)
    )
    teaching = teach(labelled, unlabeled, teacher="fixmatch", steps=3, members=2, pretrain_steps=3, seed=1)
    assert calls == [len(labelled.y) + len(unlabeled.x)]  # labelled and unlabelled images, once for both members
    assert teaching.record()["pretrain_steps"] == 3 and teaching.pretrain_steps == 3
    assert teacher.Teaching.from_record(teaching.labels, teaching.confidence, teaching.record()).pretrain_steps == 3
    assert teach(labelled, unlabeled, teacher="spreading", pretrain_steps=3).record().get("pretrain_steps") is None
    with pytest.raises(ValueError, match="pretrain_steps must be at least 0"):
        teach(labelled, unlabeled, teacher="fixmatch", pretrain_steps=-1)
