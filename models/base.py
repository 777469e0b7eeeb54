"""What every genaug generative model shares: a saved training RNG and ``generate``."""

import keras

SEED_STATE_KEY = "seed_generator_state"


class GenerativeModel(keras.Model):
    """Base of the models: subclasses set ``self.seed_generator`` and implement ``export_generator``.

    The ``SeedGenerator``'s state is saved with the weights: Keras saves layer variables but not that
    state, so without this a reloaded (resumed) model would replay its first epoch's random draws.
    """

    seed_generator: keras.random.SeedGenerator
    #: Constructor arguments that take a user's own network (serialised only when given).
    NETWORKS: tuple[str, ...] = ()
    #: ``compile`` argument of each optimizer -> the ``TRAINING_DEFAULTS`` key of its learning rate, so a
    #: trainer builds and inspects them without knowing the model kind.
    OPTIMIZERS: dict[str, str] = {"optimizer": "learning_rate"}

    @property
    def training_optimizers(self) -> list[keras.optimizers.Optimizer]:
        """The optimizers :meth:`compile` set, in :attr:`OPTIMIZERS` order."""
        return [getattr(self, name) for name in self.OPTIMIZERS]

    def finish_training(self, images, labels) -> None:
        """Called once after ``fit`` (by ``genaug train``) with the training images (float, [-1, 1]) and
        their labels; a VAE fits its sampling prior here. Nothing by default."""

    def _keep_arguments(self, arguments: dict) -> None:
        """Keeps the constructor's arguments (its ``locals()``) as attributes of the same names; they
        are what :meth:`get_config` returns, so a new argument needs no second list."""
        skip = ("self", "kwargs", "__class__", *self.NETWORKS)
        self._setting_names = tuple(name for name in arguments if name not in skip)
        for name in self._setting_names:
            setattr(self, name, arguments[name])
        self.custom_networks = tuple(arguments[name] for name in self.NETWORKS)

    def get_config(self):
        settings = {name: getattr(self, name) for name in self._setting_names}
        networks = serialize_networks(**dict(zip(self.NETWORKS, self.custom_networks, strict=True)))
        return {**super().get_config(), **settings, **networks}

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_networks(config, cls.NETWORKS))

    def export_generator(self):
        raise NotImplementedError

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras 3.15 (TensorFlow backend) ``fit`` peeks at a batch and reduces it across replicas before
        building the model from it; under MultiWorkerMirroredStrategy that reduce fails on dict batches
        (keras-team/keras#20585). Our networks are built in the constructor, so nothing is left to build
        from data; Keras's path still runs for anything unbuilt."""
        if all(layer.built for layer in self._flatten_layers(include_self=False)):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

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


def serialize_networks(**networks) -> dict:
    """Config entries for the networks a user passed in (the built ones follow from the arguments)."""
    return {name: keras.saving.serialize_keras_object(net) for name, net in networks.items() if net is not None}


def deserialize_networks(config: dict, names) -> dict:
    """``config`` with the networks :func:`serialize_networks` wrote turned back into models."""
    config = dict(config)
    for name in names:
        if config.get(name) is not None:
            config[name] = keras.saving.deserialize_keras_object(config[name])
    return config


def clone_network(network: keras.Model, name: str) -> keras.Model:
    """A copy of ``network`` with its own variables, holding the same values."""
    clone = keras.models.clone_model(network)
    clone.name = name
    clone.set_weights(network.get_weights())
    return clone


def adam(settings: dict, rate: str) -> keras.optimizers.Adam:
    """Adam with ``settings[rate]`` as its learning rate and ``settings``' ``beta_1`` and ``beta_2``."""
    return keras.optimizers.Adam(settings[rate], beta_1=settings["beta_1"], beta_2=settings["beta_2"])


def require_classes(model_name: str, num_classes) -> None:
    """Conditional models refuse to be built without classes."""
    if not num_classes:
        raise ValueError(f"{model_name} needs num_classes >= 1")
