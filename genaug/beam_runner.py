"""``genaug sample --runner beam``: the same shards, written by an Apache Beam pipeline.

One element per shard index. Each worker builds the sampler's candidate function once (``DoFn.setup``)
and writes its shards with the in-process code (:func:`genaug.shard_writer.write_shard`), so every shard is
byte-identical to the local runner's. After every shard exists, one last step writes the TFDS metadata
and ``manifest.json``. Shards whose checksum is already right are skipped, so a killed pipeline resumes.

Beam is the optional extra ``genaug[beam]``: the sampler imports this module only for ``runner="beam"``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import tempfile
from pathlib import Path

from genaug import shard_writer, storage
from genaug.errors import ArgumentError, GenaugError
from genaug.outputs import STATE_DIR
from genaug.runs import RunDirectory
from genaug.startup import stderr_to

_ROOT_LEVEL = logging.getLogger().level
logging.getLogger().setLevel(logging.ERROR)  # Beam warns "apitools not found" about its optional GCP modules
try:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
finally:
    logging.getLogger().setLevel(_ROOT_LEVEL)

DEFAULT_OPTIONS = "--runner=DirectRunner"
LOG = "beam.log"  # in OUT/.genaug/: Beam's and its workers' log lines, kept off the terminal
_ERROR_MARK = "genaug-error:"  # a worker's genaug error crosses the runner's wrapping as marked JSON


def pipeline_options(options: str | None):
    """``--beam-options`` (a command-line string) as Beam ``PipelineOptions``; unknown flags are an error."""
    flags = shlex.split(options or DEFAULT_OPTIONS)
    parsed = PipelineOptions(flags)
    unknown = parsed.get_all_options(retain_unknown_options=True).keys() - PipelineOptions([]).get_all_options().keys()
    if unknown:
        raise GenaugError(f"--beam-options: unknown Beam option --{sorted(unknown)[0]}")
    return parsed


class WriteShards(beam.DoFn):
    """Writes shards by index; builds the candidate function once per worker (``setup``)."""

    def __init__(self, run: str, out: str, settings, num_classes: int):
        self.run, self.out, self.settings, self.num_classes = run, out, settings, num_classes

    def setup(self) -> None:
        from genaug.startup import start_tensorflow

        start_tensorflow(show_native_log=False)
        run = RunDirectory.open(self.run)
        self.filters = shard_writer.filters_for(run, self.settings)
        self.plan = shard_writer.label_plan(
            self.settings.counts_per_class, self.settings.seed, self.settings.num_shards
        )

    def process(self, k: int):
        try:
            shard_writer.write_shard(
                storage.path(self.out), k, self.plan[k], self.filters, self.settings, self.num_classes
            )
        except ArgumentError as err:
            raise RuntimeError(_ERROR_MARK + json.dumps([err.template, *err.arguments])) from None
        except GenaugError as err:
            raise RuntimeError(_ERROR_MARK + json.dumps([str(err)])) from None
        yield k


def _finish(written: list[int], run: str, out: str, settings) -> None:
    if len(written) != settings.num_shards:  # every element must have passed through the writer
        raise GenaugError(f"beam wrote {len(written)} of {settings.num_shards} shards")
    shard_writer.finalize(storage.path(out), run=RunDirectory.open(run), settings=settings)


def write_dataset(run: Path, out: Path, settings, num_classes: int, options: str | None) -> None:
    """Runs the pipeline: every shard of ``settings``, then the metadata and manifest."""
    parsed = pipeline_options(options)
    log = _local_log(out)
    try:
        with stderr_to(log), beam.Pipeline(options=parsed) as pipeline:
            _ = (
                pipeline
                | "shard indices" >> beam.Create(range(settings.num_shards))
                | "spread over workers" >> beam.Reshuffle()
                | "write shards" >> beam.ParDo(WriteShards(str(run), str(out), settings, num_classes))
                | "wait for all" >> beam.combiners.ToList()
                | "write metadata" >> beam.Map(_finish, str(run), str(out), settings)
            )
    except Exception as err:  # a worker's error arrives wrapped in the runner's traceback
        raise _worker_error(err, log) from None  # names the local log, which stays
    finally:
        if storage.is_remote(out):
            (out / STATE_DIR / LOG).write_bytes(log.read_bytes())
    if storage.is_remote(out):
        log.unlink()  # copied beside the shards


def _local_log(out) -> Path:
    """Where Beam's stderr goes: ``.genaug/beam.log`` in a local ``out``; for object storage, a new local
    file (a process's stderr cannot point at an object), copied beside the shards when the pipeline ends and
    removed if it succeeded."""
    if not storage.is_remote(out):
        return out / STATE_DIR / LOG
    handle, name = tempfile.mkstemp(prefix="genaug-beam-", suffix=".log")
    os.close(handle)
    return Path(name)


def _worker_error(err: Exception, log: Path) -> GenaugError:
    """The genaug error a worker raised, rebuilt; any other failure as one line pointing at the log."""
    text = str(err)
    at = text.find(_ERROR_MARK)
    if at >= 0:
        parts, _ = json.JSONDecoder().raw_decode(text, at + len(_ERROR_MARK))
        return ArgumentError(*parts) if len(parts) > 1 else GenaugError(parts[0])
    if isinstance(err, GenaugError):
        return err
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return GenaugError(f"the beam pipeline failed: {first} (Beam's log: {log})")
