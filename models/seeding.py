"""Saving the training RNG with the model, so a resumed run continues the same random stream."""

import keras

SEED_STATE_KEY = "seed_generator_state"


class SeedStateMixin:
    """For models holding ``self.seed_generator``: its state goes into the ``.keras`` file.

    Keras saves layer variables, but a ``SeedGenerator``'s state is not among them, so without this
    a reloaded model would replay the random draws of its first epoch.
    """

    seed_generator: keras.random.SeedGenerator

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[SEED_STATE_KEY] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        own = {key: store[key] for key in store.keys()}  # noqa: SIM118 (an H5 entry, not a dict)
        if SEED_STATE_KEY in own:
            self.seed_generator.state.assign(own.pop(SEED_STATE_KEY))
        super().load_own_variables(own)
