"""`prox refine` as a function: a validated config → a datatrove pipeline → an executor (local, Ray or
Slurm) → OUT/data, OUT/dropped, OUT/failed, OUT/stats.json and OUT/logs.

A rerun of the same config resumes: tasks that completed are skipped (datatrove's completion markers), an
interrupted task starts again and rewrites its output files, and the program cache spares it the model
calls it had already made. A run records what it read and what decides its outcomes (`logs/prox/run.json`);
a rerun whose inputs or deciding options differ is refused (or, with `restart`, starts over), so one
output never mixes two runs. One run at a time holds an output folder (a lock file, local folders).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from proxkit.errors import MissingExtraError, OptionError
from proxkit.flops import refining_flops
from proxkit.models import Backend, ModelSpec, resolve
from proxkit.models.options import check_thresholds
from proxkit.models.registry import DEFAULT_MODELS
from proxkit.outcome import DEFAULT_MAX_CHARS
from proxkit.program import Guards, Mode, Stage
from proxkit.records import OUTPUT_FORMATS, Stats


class ExecutorKind(StrEnum):
    LOCAL = "local"
    RAY = "ray"
    SLURM = "slurm"


@dataclass
class RunConfig:
    """What every run over a corpus shares (`prox refine`, `prox baseline`): where the records come from,
    where they go, and how the work is spread. Validated on creation."""

    inputs: list[str]
    output: str
    text_key: str = "text"
    id_key: str = "id"
    limit: int = -1
    executor: ExecutorKind = ExecutorKind.LOCAL
    tasks: int = 1
    workers: int | None = None  # tasks at the same time; None: 1 locally, all of them on Ray or Slurm
    slurm: dict = field(default_factory=dict)  # partition, time, cpus_per_task, gpus_per_task, ...
    progress: bool = True
    output_format: str = "jsonl"  # one of records.OUTPUT_FORMATS
    restart: bool = False  # start over when the output folder holds another run (else such a rerun is refused)
    retry_failed: bool = False  # redo the finished tasks whose documents failed in a model stage

    def __post_init__(self) -> None:
        if not self.inputs:
            raise OptionError("give at least one input file or folder")
        self.executor = ExecutorKind(self.executor)
        for name in ("tasks", "workers"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise OptionError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.output_format not in OUTPUT_FORMATS:
            raise OptionError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}, got {self.output_format!r}")
        if self.limit < -1 or self.limit == 0:
            raise OptionError(f"limit must be a positive number of documents, got {self.limit}")

    def input_files(self) -> list[str]:
        """Every input file, listed once per config."""
        if not hasattr(self, "_files"):
            from proxkit.readers import expand_inputs

            self._files = expand_inputs(self.inputs)
        return self._files

    def reader(self):
        from proxkit.readers import RecordReader

        return RecordReader(self.input_files(), self.text_key, self.id_key, self.limit)

    def describe(self) -> dict:
        """The `config` section of stats.json."""
        return {}

    def deciding(self) -> dict:
        """What decides each document's outcome: a rerun into the same folder must have the same."""
        keys = {"text_key": self.text_key, "id_key": self.id_key, "limit": self.limit}
        return keys | {"output_format": self.output_format} | self.describe()

    def flops(self, raw_tokens: int, doc_tokens: int) -> dict:
        """The `flops` section of stats.json: no model, no refining compute."""
        return {"refining": 0.0}


@dataclass
class RefineConfig(RunConfig):
    """Everything `prox refine` needs. Model names are resolved to specs."""

    stages: tuple[Stage, ...] = (Stage.DOC, Stage.CHUNK)
    mode: Mode = Mode.STRICT
    doc_model: str = DEFAULT_MODELS[Stage.DOC]
    chunk_model: str = DEFAULT_MODELS[Stage.CHUNK]
    backend: Backend = Backend.TRANSFORMERS
    backend_options: dict = field(default_factory=dict)
    batch_size: int = 64
    doc_max_new_tokens: int | None = None  # None: the stage's default (mode-dependent for the doc stage)
    chunk_max_new_tokens: int | None = None
    guards: Guards = field(default_factory=Guards)
    max_chars: int = DEFAULT_MAX_CHARS
    doc_threshold: float | None = None  # tagger refiners: drop a document at P(drop) >= this (None: the model's)
    line_threshold: float | None = None  # tagger refiners: remove a line at P(remove) >= this (None: the model's)
    threads: int | None = None  # torch threads per task (None: this machine's cores shared by the local workers)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.stages = tuple(Stage(stage) for stage in self.stages)
        self.mode, self.backend = Mode(self.mode), Backend(self.backend)
        if self.threads is not None and self.threads < 1:
            raise OptionError(f"threads must be >= 1, got {self.threads}")
        for name in ("batch_size", "max_chars"):
            if getattr(self, name) < 1:
                raise OptionError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_thresholds(self)

    def describe(self) -> dict:
        return {
            "mode": str(self.mode),
            "stages": [str(stage) for stage in self.stages],
            "doc_model": self.doc_model if Stage.DOC in self.stages else None,
            "chunk_model": self.chunk_model if Stage.CHUNK in self.stages else None,
            "backend": str(self.backend),
            "doc_threshold": self.doc_threshold,
            "line_threshold": self.line_threshold,
        }

    def threads_per_task(self) -> int | None:
        """Torch threads for each task: as given, or locally the cores this process may use divided among the
        tasks running at once (so workers never oversubscribe the machine); elsewhere the node's default."""
        if self.threads or self.executor is not ExecutorKind.LOCAL:
            return self.threads
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cores // min(self.workers or 1, self.tasks))

    def deciding(self) -> dict:
        backend = {k: v for k, v in self.backend_options.items() if k in ("dtype", "tokenizer", "served_model")}
        return super().deciding() | {
            "guards": asdict(self.guards),
            "max_chars": self.max_chars,
            "doc_max_new_tokens": self.doc_max_new_tokens,
            "chunk_max_new_tokens": self.chunk_max_new_tokens,
            "backend_options": backend,
        }

    def flops(self, raw_tokens: int, doc_tokens: int) -> dict:
        """2·N_doc·D_raw + 2·N_chunk·D_doc, N read from each stage's model config (PROX_SPEC §6)."""
        parameters = {stage: self.model(stage).non_embedding_parameters() for stage in self.stages}
        doc, chunk = parameters.get(Stage.DOC), parameters.get(Stage.CHUNK)
        return {
            "formula": "2*N_doc*D_raw + 2*N_chunk*D_doc",
            "doc_model_parameters": doc,
            "chunk_model_parameters": chunk,
            "refining": refining_flops(doc, chunk, raw_tokens if Stage.DOC in self.stages else 0, doc_tokens),
        }

    def model(self, stage: Stage) -> ModelSpec:
        name = self.doc_model if stage is Stage.DOC else self.chunk_model
        option = "doc_threshold" if stage is Stage.DOC else "line_threshold"
        threshold = getattr(self, option)
        options = self.backend_options | ({option: threshold} if threshold is not None else {})
        if self.backend is Backend.VLLM and len(self.stages) == 2 and self.doc_model != self.chunk_model:
            options.setdefault("gpu_memory_utilization", 0.45)  # two engines share the GPU of a task
        return resolve(name, stage, self.backend, **options)


def build_pipeline(config: RefineConfig) -> list:
    """reader → InputGuard → DocRefiner → ChunkRefiner → ProgramExecutor → OutcomeWriter (model stages as
    configured; the guard whatever they are)."""
    from proxkit.stages import ChunkRefiner, DocRefiner, InputGuard, OutcomeWriter, ProgramExecutor

    output = config.output.rstrip("/")
    settings = {"mode": config.mode, "batch_size": config.batch_size, "cache_folder": f"{output}/cache"}
    settings["threads"] = config.threads_per_task()
    pipeline: list = [config.reader(), InputGuard(config.max_chars)]
    if Stage.DOC in config.stages:
        pipeline.append(DocRefiner(config.model(Stage.DOC), max_new_tokens=config.doc_max_new_tokens, **settings))
    if Stage.CHUNK in config.stages:
        pipeline.append(ChunkRefiner(config.model(Stage.CHUNK), max_new_tokens=config.chunk_max_new_tokens, **settings))
    counter = config.model(config.stages[0]) if config.stages else None  # the tokenizer of the raw token count
    pipeline.append(ProgramExecutor(mode=config.mode, guards=config.guards, token_counter=counter))
    pipeline.append(OutcomeWriter(output, progress=config.progress, output_format=config.output_format))
    return pipeline


def forwarded_environment() -> dict | None:
    """The Ray runtime environment that gives every task this process's `OPENAI_API_KEY` (a key from the
    environment is pickled as the variable's name, never as the key: `proxkit.models.openai.Secret`)."""
    from proxkit.models.openai import KEY_VARIABLE

    key = os.environ.get(KEY_VARIABLE)
    return {"env_vars": {KEY_VARIABLE: key}} if key else None


def make_executor(config: RunConfig, pipeline: list):
    logs = f"{config.output.rstrip('/')}/logs"
    workers = config.workers or (1 if config.executor is ExecutorKind.LOCAL else -1)
    if config.executor is ExecutorKind.RAY:
        try:
            import ray
            from datatrove.executor import RayPipelineExecutor
        except ImportError as error:
            raise MissingExtraError(f"--executor ray needs Ray: pip install 'proxkit[ray]' ({error})") from None
        if not ray.is_initialized():  # joins the cluster of RAY_ADDRESS when set, else starts a local one
            ray.init(runtime_env=forwarded_environment())
        return RayPipelineExecutor(pipeline, tasks=config.tasks, workers=workers, logging_dir=logs)
    if config.executor is ExecutorKind.SLURM:
        from datatrove.executor import SlurmPipelineExecutor

        options = {"time": "24:00:00", "partition": "default", "job_name": "prox-refine"} | config.slurm
        return SlurmPipelineExecutor(pipeline, tasks=config.tasks, workers=workers, logging_dir=logs, **options)
    from datatrove.executor import LocalPipelineExecutor

    return LocalPipelineExecutor(pipeline, tasks=config.tasks, workers=workers, logging_dir=logs)


def refine(config: RefineConfig) -> dict | None:
    """Run (or resume) the refinement; return the stats written to OUT/stats.json (None when the work was
    only submitted to Slurm: run the same command again once the job is done to write them)."""
    return run_pipeline(config, build_pipeline(config))


def run_pipeline(config: RunConfig, pipeline: list) -> dict | None:
    """Run (or resume) a pipeline that ends in an OutcomeWriter; write and return OUT/stats.json."""
    from proxkit.resume import check_same_run, output_lock, reopen_failed_tasks

    started = time.monotonic()
    with output_lock(config.output):
        check_same_run(config)
        if config.retry_failed:
            reopen_failed_tasks(config.output)
        executor = make_executor(config, pipeline)
        executor.run()
        if config.executor is ExecutorKind.SLURM and executor.job_id != -1:
            return None
        return write_stats(config, time.monotonic() - started)


def write_stats(config: RunConfig, wall_seconds: float) -> Stats:
    """Merge the per-task totals into OUT/stats.json (`records.Stats`), with throughput."""
    import fsspec

    output = config.output.rstrip("/")
    fs, root = fsspec.core.url_to_fs(f"{output}/logs/prox")
    merged: dict[str, dict] = {"counts": {}, "drop_reasons": {}, "calls": {}, "errors": {}}
    task_files = sorted(fs.glob(f"{root}/[0-9]*.json"))
    for path in task_files:
        with fs.open(path) as file:
            task = json.load(file)
        for section, values in task.items():
            for name, value in values.items():
                merged[section][name] = merged[section].get(name, 0) + value
    counts = merged["counts"]
    documents = counts.get("documents_in", 0)
    task_seconds = counts.pop("task_seconds", 0.0)
    raw_tokens = counts.get("doc_stage_raw_tokens", 0)
    stats: Stats = {
        "documents": {
            "in": documents,
            "kept": counts.get("documents_kept", 0),
            "dropped": counts.get("documents_dropped", 0),
            "failed": counts.get("documents_failed", 0),
        },
        "tokens": {
            "raw": raw_tokens,
            "after_doc_stage": counts.get("doc_tokens", 0),
            "out": counts.get("tokens_after", 0),
        },
        # D_doc: what the chunk stage read — the documents the doc stage kept, or every document without it
        "flops": config.flops(raw_tokens, counts.get("doc_tokens") or counts.get("chunk_stage_content_tokens", 0)),
        "words": {"in": counts.get("words_before", 0), "out": counts.get("words_after", 0)},
        "drop_reasons": merged["drop_reasons"],
        "calls": merged["calls"],
        "program_errors": merged["errors"],
        "truncations": {
            "doc_prompts": counts.get("doc_stage_truncated", 0),
            "chunk_prompts": counts.get("chunk_stage_truncated_chunks", 0),
            "unanswered_chunks": counts.get("chunk_stage_unanswered_chunks", 0),
        },
        # chunks outside a tagger's languages, whose program the C4 line rule wrote; documents outside them,
        # kept unjudged
        "fallback_chunks": counts.get("chunk_stage_fallback_chunks", 0),
        "fallback_docs": counts.get("doc_stage_fallback", 0),
        "throughput": {
            "tasks": len(task_files),
            "task_seconds": round(task_seconds, 3),
            "wall_seconds_this_run": round(wall_seconds, 3),
            "documents_per_second": round(documents / task_seconds, 3) if task_seconds else None,
            "raw_tokens_per_second": round(raw_tokens / task_seconds, 1) if task_seconds else None,
        },
        "config": config.describe(),
        "counts": counts,
    }
    with fsspec.open(f"{output}/stats.json", "w") as file:
        json.dump(stats, file, indent=2)
    return stats


def read_records(folder: str | Path) -> list[dict]:
    """Every record written under an output subfolder (data, dropped or failed; JSONL or Parquet)."""
    from proxkit.stages import iter_output_records

    return list(iter_output_records(Path(folder)))
