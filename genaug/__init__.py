"""genaug: train a generator on a small labelled image dataset, sample labelled synthetic shards,
mix them into tf.data pipelines and measure whether they helped.

The public API is imported lazily so that ``genaug --help`` does not start TensorFlow.
"""

from genaug.errors import GenaugError
from genaug.version import __version__

_LAZY = {
    "DatasetInfo": "genaug.data",
    "LabelledArrays": "genaug.data",
    "load_arrays": "genaug.data",
    "load_dataset": "genaug.data",
    "labelled_subset": "genaug.data",
    "train": "trainers",
    "sample": "genaug.sampler",
    "load_synthetic": "genaug.shards",
    "verify": "genaug.shards",
    "mix": "genaug.mixing",
    "as_supervised": "genaug.mixing",
    "evaluate": "genaug.evaluation",
    "tune": "genaug.tuning",
    "Policy": "genaug.policy",
    "Manifest": "genaug.manifest",
    "Report": "genaug.report",
    "TuningReport": "genaug.tuning_report",
}

__all__ = ["GenaugError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'genaug' has no attribute {name!r}")
