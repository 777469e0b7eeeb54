"""Training speed: genaug's train steps against the keras-io recipes (``reference.py``) and the matmul peak.

Three measurements, in one run on this machine:

1. Same-architecture throughput (images/s): genaug's ``ConditionalDCGAN`` and ``VAE`` given the
   reference's networks, with genaug's pipeline and compile defaults, against the reference models
   with theirs; at 28x28x1 (MNIST-shaped, digits resized) and at digits' own 8x8, batch 64. Each side
   is warmed up (traced) by a short fit, then a fit over the same images is timed; rounds alternate
   and the best of each side counts.
2. Achieved FLOP/s of genaug's default conditional GAN and VAE: matmul and convolution FLOPs of one
   train step, counted on its traced graph, times measured steps/s, over the best dense float32 matmul
   rate measured here.
3. Time to quality on digits: training seconds until the classification accuracy score (SVC on 200
   synthetic images per class, tested on the real test split; as ``quality_digits.py``) beats the
   per-class Gaussian mixture, for genaug's default model (``genaug train`` defaults) and for the
   reference recipe; CAS is measured every ``--every`` training seconds (evaluation time excluded).

Run: python benchmarks/bench_train.py [--rounds 2] [--budget 300] [--every 15]
(the last line is one JSON object)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import reference as ref  # noqa: E402
import tensorflow as tf  # noqa: E402
from quality_digits import PER_CLASS, cas, gmm_samples  # noqa: E402
from tensorflow.python.framework import ops as tf_ops  # noqa: E402

import genaug  # noqa: E402
import models  # noqa: E402
from trainers import config as cfg  # noqa: E402
from trainers.pipeline import steps_per_epoch, training_dataset  # noqa: E402
from trainers.runtime import resolve_jit  # noqa: E402
from trainers.training import build_model, compile_model  # noqa: E402

BATCH = 64
# Images per timed fit, so that each takes a few seconds on a 2-core CPU.
TIMED_IMAGES = {("gan", 28): 1344, ("vae", 28): 8064, ("gan", 8): 21504, ("vae", 8): 64512}
DEFAULT_TIMED_IMAGES = {("cdcgan", 28): 1344, ("cvae", 28): 8064, ("cdcgan", 8): 10752, ("cvae", 8): 32256}
MATMUL_OPS = {"MatMul", "BatchMatMulV2", "BatchMatMulV3", "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"}
DEFAULTS = cfg.resolve(cfg.TrainConfig())  # genaug train's defaults


@functools.cache
def digits_at(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The digits train split at ``size`` x ``size`` (loaded and resized once per size)."""
    train = genaug.load_arrays("digits", "train")
    x = train.x if size == 8 else tf.cast(tf.round(tf.image.resize(train.x, (size, size))), tf.uint8).numpy()
    return x, train.y


def repeated(x, y, n):
    index = np.resize(np.arange(len(y)), n)
    return x[index], y[index]


def timed_fit(model, data, **fit_kwargs) -> float:
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0, **fit_kwargs)
    return time.perf_counter() - start


def genaug_dataset(x, y):
    return training_dataset(x, y, batch_size=BATCH, seed=0, epoch=tf.Variable(0, dtype=tf.int64))[0]


def genaug_compile_kwargs(num_examples: int) -> dict:
    """What ``genaug train`` compiles with for ``num_examples`` training images."""
    steps = steps_per_epoch(num_examples, BATCH)
    return dict(
        steps_per_execution=min(steps, DEFAULTS.run.steps_per_execution),
        jit_compile=resolve_jit(DEFAULTS.run.jit),
    )


def same_architecture(family: str, size: int, rounds: int) -> dict:
    """Images/s of the reference and of genaug's model on the reference's networks."""
    x, y = repeated(*digits_at(size), TIMED_IMAGES[family, size])
    warm_x = x[: 8 * BATCH]
    keras.utils.set_random_seed(0)
    if family == "gan":
        reference = ref.compiled_reference_gan(size)
        ref_data, ref_warm = (ref.reference_gan_dataset(a, y[: len(a)], 10, BATCH) for a in (x, warm_x))
        ref_fit = {}
        generator, discriminator = ref.genaug_gan_networks(size)
        ours = models.ConditionalDCGAN(
            (size, size, 1), 10, latent_dim=ref.LATENT_DIM, generator=generator, discriminator=discriminator
        )
        ours.compile(
            d_optimizer=keras.optimizers.Adam(ref.LEARNING_RATE),
            g_optimizer=keras.optimizers.Adam(ref.LEARNING_RATE),
            **genaug_compile_kwargs(len(y)),
        )
    else:
        reference = ref.compiled_reference_vae(size)
        ref_data, ref_warm = x.astype("float32") / 255.0, warm_x.astype("float32") / 255.0
        ref_fit = {"batch_size": BATCH}
        encoder, decoder = ref.genaug_vae_networks(size)
        ours = models.VAE((size, size, 1), latent_dim=ref.VAE_LATENT_DIM, encoder=encoder, decoder=decoder)
        ours.compile(optimizer=keras.optimizers.Adam(), **genaug_compile_kwargs(len(y)))
    ours_data = genaug_dataset(x, y)
    ours_warm = ours_data.take(ours.steps_per_execution)  # one execution traces the step
    reference.fit(ref_warm, epochs=1, verbose=0, **ref_fit)
    ours.fit(ours_warm, epochs=1, verbose=0)
    ref_times, our_times = [], []
    for _ in range(rounds):
        ref_times.append(timed_fit(reference, ref_data, **ref_fit))
        our_times.append(timed_fit(ours, ours_data))
    images = len(y) // BATCH * BATCH
    return {"reference": len(y) / min(ref_times), "genaug": images / min(our_times)}


def step_flops(model: keras.Model, batch: dict) -> float:
    """Matmul and convolution FLOPs of one ``train_step`` on ``batch``, from its traced graph.

    Only live ops count: a tape also emits gradient ops nobody consumes (e.g. D's input gradient
    for the real half), which graph optimisation prunes before anything runs.
    """
    spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), batch)
    graph = tf.function(model.train_step).get_concrete_function(spec).graph
    live, pending = set(), [op for op in graph.get_operations() if op._is_stateful] + [t.op for t in graph.outputs]
    while pending:
        op = pending.pop()
        if op not in live:
            live.add(op)
            pending.extend([t.op for t in op.inputs] + list(op.control_inputs))
    return float(
        sum(
            tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value or 0
            for op in live
            if op.type in MATMUL_OPS
        )
    )


def matmul_peak(seconds: float = 3.0) -> float:
    """The best float32 FLOP/s of a dense square matmul here (sizes 1024..4096)."""
    best = 0.0
    for n in (1024, 2048, 4096):
        a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
        product = tf.function(lambda a=a, b=b: tf.reduce_sum(tf.matmul(a, b)))
        product().numpy()
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            product().numpy()
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start))
    return best


def default_model_speed(kind: str, size: int, rounds: int, jit: bool) -> tuple[float, float]:
    """``(images/s, matmul FLOPs per step)`` of genaug's default ``kind`` as ``genaug train`` compiles it,
    with XLA on or off."""
    config = cfg.resolve(cfg.from_dict({"model": {"kind": kind}}))
    x, y = repeated(*digits_at(size), DEFAULT_TIMED_IMAGES[kind, size])
    keras.utils.set_random_seed(0)
    model = build_model(config, (size, size, 1), 10)
    compile_model(model, config, jit, genaug_compile_kwargs(len(y))["steps_per_execution"])
    data = genaug_dataset(x, y)
    model.fit(data.take(model.steps_per_execution), epochs=1, verbose=0)
    seconds = min(timed_fit(model, data) for _ in range(rounds))
    return len(y) // BATCH * BATCH / seconds, step_flops(model, next(iter(data)))


class QualityClock(keras.callbacks.Callback):
    """Every ``every`` training seconds, scores CAS; stops when it beats ``bar`` or after ``budget`` s.

    ``score(model)`` returns ``(CAS, seconds)``: the seconds of any work needed to turn the model into
    a sampler (for genaug's VAE, fitting its latent prior), which count as training time.
    """

    def __init__(self, score, bar: float, every: float, budget: float, name: str):
        super().__init__()
        self.score, self.bar, self.every, self.budget, self.name = score, bar, every, budget, name
        self.reached_at, self.trace = None, []

    def on_train_begin(self, logs=None):
        self.seconds, self.next_check, self.resumed = 0.0, self.every, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += time.perf_counter() - self.resumed
        if self.seconds >= self.next_check or self.seconds >= self.budget:
            self.next_check += self.every
            value, preparation = self.score(self.model)
            self.seconds += preparation
            self.trace.append((round(self.seconds, 1), round(value, 4)))
            print(f"  {self.name:<12} {self.seconds:6.1f} s  epoch {epoch + 1:>4}  CAS {value:.4f}", flush=True)
            if value > self.bar:
                self.reached_at = self.seconds
                self.model.stop_training = True
        if self.seconds >= self.budget:
            self.model.stop_training = True
        self.resumed = time.perf_counter()


def time_to_quality(budget: float, every: float) -> dict:
    train, test = genaug.load_arrays("digits", "train"), genaug.load_arrays("digits", "test")
    bar = cas(*gmm_samples(train), test)
    labels = np.repeat(np.arange(10), PER_CLASS)
    print(f"quality bar: CAS > {bar:.4f} (per-class Gaussian mixture)", flush=True)

    def genaug_score(model):
        start = time.perf_counter()
        if model.latent_prior == "fitted":  # what genaug train does when training ends
            model.fit_latent_prior(models.to_model_range(train.x), train.y)
        preparation = time.perf_counter() - start
        return cas(model.generate(len(labels), labels, seed=0)[0], labels, test), preparation

    def reference_score(model):
        return cas(model.generate(labels, seed=0), labels, test), 0.0

    clocks = {
        "genaug": QualityClock(genaug_score, bar, every, budget, f"genaug {DEFAULTS.model.kind}"),
        "reference": QualityClock(reference_score, bar, every, budget, "reference"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        config = cfg.from_dict(
            {
                "optim": {"epochs": 100_000},
                "run": {"out": tmp, "quiet": True, "sample_every": 100_000, "checkpoint_every": 100_000},
            }
        )
        genaug.train(config, extra_callbacks=[clocks["genaug"]])
    keras.utils.set_random_seed(0)
    reference = ref.compiled_reference_gan(8)
    reference.fit(
        ref.reference_gan_dataset(train.x, train.y, 10, BATCH),
        epochs=100_000,
        verbose=0,
        callbacks=[clocks["reference"]],
    )
    return {
        "bar": bar,
        **{name: clock.reached_at for name, clock in clocks.items()},
        "traces": {name: clock.trace for name, clock in clocks.items()},
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed fits per side")
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per recipe for quality")
    parser.add_argument("--every", type=float, default=15.0, help="training seconds between CAS checks")
    args = parser.parse_args()
    print(
        f"genaug train defaults: steps_per_execution up to {DEFAULTS.run.steps_per_execution}, "
        f"XLA {resolve_jit(DEFAULTS.run.jit)} here; batch {BATCH}",
        flush=True,
    )

    speed = {}
    print(f"{'same architecture':<22} {'reference img/s':>16} {'genaug img/s':>13} {'speedup':>8}")
    for family in ("gan", "vae"):
        for size in (28, 8):
            result = same_architecture(family, size, args.rounds)
            speed[family, size] = result["genaug"] / result["reference"]
            print(
                f"{family} {size}x{size}{'':<14} {result['reference']:>16.0f} {result['genaug']:>13.0f} "
                f"{speed[family, size]:>7.2f}x",
                flush=True,
            )

    peak = matmul_peak()
    print(f"\nmeasured float32 matmul peak: {peak / 1e9:.1f} GFLOP/s")
    fractions, xla = {}, {}
    print(f"{'genaug default':<14} {'GFLOP/step':>11} {'img/s':>8} {'GFLOP/s':>8} {'of peak':>8} {'img/s XLA':>10}")
    for kind in ("cdcgan", "cvae"):
        for size in (28, 8):
            images_per_second, flops = default_model_speed(kind, size, args.rounds, resolve_jit(DEFAULTS.run.jit))
            with_xla, _ = default_model_speed(kind, size, args.rounds, True)
            achieved = flops / BATCH * images_per_second
            fractions[kind, size], xla[kind, size] = achieved / peak, with_xla / images_per_second
            print(
                f"{kind} {size}x{size:<{8 - len(kind)}} {flops / 1e9:>11.3f} {images_per_second:>8.0f} "
                f"{achieved / 1e9:>8.1f} {fractions[kind, size]:>8.1%} {with_xla:>10.0f}",
                flush=True,
            )

    print(f"\ntime to quality on digits (budget {args.budget:.0f} s each, CAS every {args.every:.0f} s)")
    quality = time_to_quality(args.budget, args.every)
    ours, theirs = quality["genaug"], quality["reference"]
    if ours is None:
        ratio, note = None, "genaug's default did not reach the bar within the budget"
    elif theirs is None:
        ratio, note = ours / args.budget, "upper bound: the reference did not reach the bar within the budget"
    else:
        ratio, note = ours / theirs, "both reached the bar"
    print(
        f"genaug {ours if ours is None else round(ours, 1)} s, reference "
        f"{theirs if theirs is None else round(theirs, 1)} s -> ratio {ratio if ratio is None else round(ratio, 3)} "
        f"({note})"
    )
    print(
        json.dumps(
            {
                # The headline figures are the MNIST-shaped (28x28) ones; the 8x8 figures follow.
                "gan_speedup": round(speed["gan", 28], 3),
                "vae_speedup": round(speed["vae", 28], 3),
                "flops_fraction_gan": round(fractions["cdcgan", 28], 4),
                "flops_fraction_vae": round(fractions["cvae", 28], 4),
                "time_to_quality_ratio": None if ratio is None else round(ratio, 3),
                "time_to_quality_note": note,
                "gan_speedup_8x8": round(speed["gan", 8], 3),
                "vae_speedup_8x8": round(speed["vae", 8], 3),
                "flops_fraction_gan_8x8": round(fractions["cdcgan", 8], 4),
                "flops_fraction_vae_8x8": round(fractions["cvae", 8], 4),
                "matmul_peak_gflops": round(peak / 1e9, 1),
                "xla_speedup": {f"{kind}_{size}": round(value, 3) for (kind, size), value in xla.items()},
                "seconds_to_quality": {"genaug": ours, "reference": theirs, "budget": args.budget},
            }
        )
    )


if __name__ == "__main__":
    main()
