"""Starting TensorFlow quietly: the CLI, and the worker processes of the demo and the benchmarks."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


def start_tensorflow(show_native_log: bool) -> None:
    """Imports TensorFlow with its native start-up lines (oneDNN, CUDA stub, CPU features) off the terminal.

    TensorFlow 2.19+ writes them through absl before ``TF_CPP_MIN_LOG_LEVEL`` applies (tensorflow#100442),
    so the import runs with file descriptor 2 pointed at /dev/null; Python errors still raise.
    """
    if show_native_log or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401

        return
    with stderr_to(os.devnull):
        import tensorflow  # noqa: F401
    # TFDS 4.9 decodes its own Tensor features through a property it deprecated, and says so on every
    # read of a synthetic set (tensor_feature.py: `self.dtype == tf.uint64`); that is not the user's to fix.
    logging.getLogger("absl").addFilter(lambda record: "FeatureConnector.dtype` is deprecated" not in str(record.msg))


@contextlib.contextmanager
def stderr_to(path: str | os.PathLike) -> Iterator[None]:
    """Points file descriptor 2 (this process's, and that of processes it starts) at ``path`` (appending)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as target:
        os.dup2(target.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def start_worker() -> None:
    """A worker process (``multiprocessing`` initializer): TensorFlow on one thread, started as quietly as in
    the parent (:func:`single_threaded_tensorflow`); Ctrl-C is the parent's to handle, and the worker ends
    itself within a second of its parent's death (a SIGKILLed demo left its ~800 MB workers running)."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="genaug-parent-watch", daemon=True).start()
    single_threaded_tensorflow()


def _exit_with_parent(parent: int) -> None:
    """Polls for the parent's death (this process is then re-parented) and exits at once."""
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def single_threaded_tensorflow() -> None:
    """Starts TensorFlow with one intra-op and one inter-op thread, its native log shown only if the CLI
    did not silence it (it sets TF_CPP_MIN_LOG_LEVEL unless --debug). Small models gain nothing from a
    second thread, and single-threaded results do not depend on the machine's core count."""
    start_tensorflow(show_native_log="TF_CPP_MIN_LOG_LEVEL" not in os.environ)
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already ran in this process (a test calling the CLI): keep its threads
        pass


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)`` (Python's, NumPy's, Keras's and TensorFlow's global seeds) without
    the clearing of TensorFlow's caches that ``tf.random.set_seed`` adds, so that a compiled training step
    stays instantiated for the next seed.

    Clearing them made each classifier fit instantiate and optimise its step again: 0.3 s per fit, more than
    the 50 steps of a test's fit (docs/performance.md). The cache holds no random state genaug relies on:
    Keras draws stateless from its own seeds, and tf.data's ops take TensorFlow's global seed when they are
    built, so the same seeds give the same weights, order and figures. A concurrent clear in another thread
    during the call is skipped, nothing more.
    """
    import keras
    from tensorflow.python import pywrap_tfe

    clear = pywrap_tfe.TFE_ContextClearCaches
    pywrap_tfe.TFE_ContextClearCaches = lambda handle: None
    try:
        keras.utils.set_random_seed(seed)
    finally:
        pywrap_tfe.TFE_ContextClearCaches = clear


def input_pipeline_options():
    """``tf.data.Options`` within this process's thread budget: after :func:`single_threaded_tensorflow`
    (a worker beside others, one per core), one thread and no autotuning; otherwise tf.data's defaults.

    tf.data's autotuner and thread pool assume the cores are free; beside a second worker they are not.
    Two workers side by side trained four 600-step CNNs in 13.5-14 s each this way, 20-21 s with the
    defaults; one process alone is faster with the defaults (12.4-13.7 s against 15-15.8 s). Element order
    is unchanged (deterministic pipelines), so results are too.
    """
    import tensorflow as tf

    options = tf.data.Options()
    if tf.config.threading.get_intra_op_parallelism_threads() == 1:
        options.threading.private_threadpool_size = 1
        options.threading.max_intra_op_parallelism = 1
        options.autotune.enabled = False
    return options


def keras_verbosity(quiet: bool = False) -> int:
    """Keras's progress bar on a terminal; one plain line per epoch or per bar elsewhere (a log file, a
    pipe), where the bar's carriage returns, backspaces and colour codes would be noise (Keras takes any
    POSIX stdout for a terminal)."""
    return 0 if quiet else 1 if sys.stdout.isatty() else 2
