"""Resolving ``auto`` for the distribution strategy, the precision policy and XLA."""

from __future__ import annotations

import tensorflow as tf

from genaug.errors import GenaugError


def _gpus():
    return tf.config.list_physical_devices("GPU")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """``auto`` is MirroredStrategy with more than one GPU, else the default strategy.

    ``multi_worker`` reads the cluster from the ``TF_CONFIG`` environment variable (see README);
    ``tpu`` connects to the TPU the environment names.
    """
    if name == "auto":
        name = "mirrored" if len(_gpus()) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as err:
            raise GenaugError(f"strategy tpu: no TPU found ({str(err).splitlines()[0]})") from None
        return tf.distribute.TPUStrategy(resolver)
    raise GenaugError(f"unknown strategy {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory: the only worker, or the chief of a cluster (the
    others write to temporary locations, the Keras convention)."""
    return strategy.extended.should_checkpoint


FAILED = -1  # what the chief broadcasts when it cannot start the run


def chief_value(strategy: tf.distribute.Strategy, value: int) -> int:
    """The chief's ``value`` on every worker (a collective: every worker calls it, in the same order).

    Workers decide nothing about the run directory themselves: the chief claims it and tells them the
    epoch to start from, so they never disagree (or read a directory the chief is still clearing).
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return value

    def from_replica_0():
        first = tf.distribute.get_replica_context().replica_id_in_sync_group == 0
        return tf.constant(value, tf.int64) * tf.cast(first, tf.int64)

    @tf.function  # collectives run eagerly are slow, and TensorFlow warns about it
    def broadcast():
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(from_replica_0), axis=None)

    return int(broadcast())


def execution_cap(strategy: tf.distribute.Strategy, requested: int) -> int:
    """``steps_per_execution`` as far as the strategy allows: Keras runs several steps in a
    ``tf.while_loop`` whose ``tf.cond`` a multi-worker cluster's collectives cannot run in ("You must
    feed a value for placeholder tensor"), so there it is one step per execution."""
    return 1 if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else requested


def resolve_precision(name: str) -> str:
    """``auto`` is mixed_float16 on GPUs with compute capability >= 7.0 (tensor cores), else float32."""
    if name != "auto":
        return name
    gpus = _gpus()
    if gpus and all(
        tf.config.experimental.get_device_details(g).get("compute_capability", (0, 0)) >= (7, 0) for g in gpus
    ):
        return "mixed_float16"
    return "float32"


def resolve_jit(name: str) -> bool:
    """``auto`` compiles the train step with XLA on GPUs only: on a 2-core CPU it made every default
    model 2-25 % slower (``benchmarks/bench_train.py``; README, performance)."""
    if name == "auto":
        return bool(_gpus())
    return name == "on"
