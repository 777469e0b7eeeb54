"""What every genaug generative model shares: a saved training RNG and ``generate``."""

import keras

SEED_STATE_KEY = "seed_generator_state"


class GenerativeModel(keras.Model):
    """Base of the models: subclasses set ``self.seed_generator`` and implement ``export_generator``.

    The ``SeedGenerator``'s state is saved with the weights: Keras saves layer variables but not that
    state, so without this a reloaded (resumed) model would replay its first epoch's random draws.
    """

    seed_generator: keras.random.SeedGenerator

    def export_generator(self):
        raise NotImplementedError

    def generate(self, n: int, labels=None, **kwargs):
        """``n`` uint8 images (and their labels); see :meth:`SyntheticGenerator.generate`."""
        return self.export_generator().generate(n, labels, **kwargs)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[SEED_STATE_KEY] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        own = {key: store[key] for key in store.keys()}  # noqa: SIM118 (an H5 entry, not a dict)
        if SEED_STATE_KEY in own:
            self.seed_generator.state.assign(own.pop(SEED_STATE_KEY))
        super().load_own_variables(own)


def require_classes(model_name: str, num_classes) -> None:
    """Conditional models refuse to be built without classes."""
    if not num_classes:
        raise ValueError(f"{model_name} needs num_classes >= 1")
