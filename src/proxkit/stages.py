"""The refining pipeline as datatrove steps: InputGuard → DocRefiner → ChunkRefiner → ProgramExecutor →
OutcomeWriter.

The guard drops empty and over-long documents first. The model steps only *write* programs (into
`metadata.doc_program` / `metadata.chunk_program`); the executor applies them, purely, so a run can be
re-executed with other guards without a model. Each step streams its input in batches of documents, so
memory stays bounded whatever the corpus size. Every document carries its status (kept / dropped /
failed, see `outcome`) and the last step routes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.batching import batched
from loguru import logger

from proxkit.errors import OptionError
from proxkit.models import Generation, ModelSpec, ProgramWriter, resolve
from proxkit.outcome import Status, is_pending, mark_dropped, mark_failed, prox_metadata, status
from proxkit.program import Guards, Mode, Stage, execute, execute_doc
from proxkit.prompts import Tokenizer
from proxkit.records import OUTPUT_FORMATS, SUMMED_EXECUTION_STATS
from proxkit.writing import (
    ChunkPrompts,
    chunk_prompts,
    decode,
    decode_chunks,
    default_max_new_tokens,
    doc_prompt,
    merged_program,
)

DEFAULT_MAX_CHARS = 1_000_000  # longer documents are dropped as "too_long" before any model sees them


def model_failure(stage: Stage, problem: str) -> str:
    """The error of a document a model stage gave no program for (an endpoint down, a malformed reply)."""
    return f"{stage} stage: {problem}"


MODEL_FAILURES = tuple(model_failure(stage, "") for stage in Stage)  # the prefixes of those errors


def document_key(document: Document) -> str:
    """Identifies a document's content for the program cache: its id and a hash of its text."""
    return hashlib.sha1(f"{document.id}\0{document.text}".encode(errors="surrogatepass")).hexdigest()


class ProgramCache:
    """Programs already written for this task, appended to `folder/{rank:05d}.jsonl` after every batch, so a
    rerun after a crash does not run the model again on the documents it already did. A line cut off by
    the crash is ignored. Local folders only."""

    def __init__(self, folder: str | Path, rank: int) -> None:
        path = Path(folder) / f"{rank:05d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.entries: dict[str, dict] = {}
        content = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        for line in content.split("\n"):
            try:
                entry = json.loads(line)
                self.entries[entry["key"]] = entry
            except (ValueError, KeyError, TypeError):
                continue
        self._file = path.open("a", encoding="utf-8")
        if content and not content.endswith("\n"):
            self._file.write("\n")  # end the line a crash cut off, so the next entry starts clean

    def get(self, key: str) -> dict | None:
        """The entry an earlier run wrote for this document, handed out once: memory holds only what is
        still to be reused, never the programs of this run (a task's memory does not grow with its input)."""
        return self.entries.pop(key, None)

    def put(self, entries: list[dict]) -> None:
        for entry in entries:
            self._file.write(json.dumps(entry) + "\n")  # ASCII: no character of the text can split a line
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


class _ModelStep(PipelineStep):
    """Shared by the two model stages: batching, lazy model loading, the program cache."""

    type = "🧠 - PROX"
    stage: Stage

    def __init__(
        self,
        model: ModelSpec | str,
        *,
        mode: Mode = Mode.STRICT,
        batch_size: int = 64,
        max_new_tokens: int | None = None,
        cache_folder: str | None = None,
        threads: int | None = None,
    ) -> None:
        """model: a spec, or any model name (bundled, hub id, directory; transformers backend).
        threads: torch threads of this step's process (None: torch's default, every core it may use)."""
        super().__init__()
        self.threads = threads
        self.model = resolve(model, self.stage) if isinstance(model, str) else model
        self.mode = Mode(mode)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens or default_max_new_tokens(self.stage, self.mode)
        self.cache_folder = cache_folder

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        self.tokenizer: Tokenizer = self.model.load_tokenizer()
        self._writer: ProgramWriter | None = None
        self._rank = rank
        cache = self._open_cache(rank)
        try:
            for batch in batched(data or [], self.batch_size):
                with self.track_time(unit="batch"):
                    pending = [doc for doc in batch if is_pending(doc)]
                    for document in pending:
                        self.claim(document)
                    self.refine(pending, cache)
                yield from batch
        finally:
            if self._writer is not None:
                self._writer.close()
            if cache is not None:
                cache.close()

    def refine(self, documents: list[Document], cache: ProgramCache | None) -> None:
        raise NotImplementedError

    def settings(self) -> dict:
        """What decides the programs this step writes, the dtype it computes in on this machine included: a
        cache written under other settings is not reused."""
        decoding = "free" if self.mode is Mode.REFERENCE else "constrained"
        return (
            {"model": self.model.source, "mode": str(self.mode), "max_new_tokens": self.max_new_tokens}
            | {"decoding": decoding, "dtype": self.model.compute_dtype()}
            | self.model.tagger_thresholds
        )

    def _open_cache(self, rank: int) -> ProgramCache | None:
        if not self.cache_folder:
            return None
        if "://" in self.cache_folder and not self.cache_folder.startswith("file://"):
            logger.warning(f"no program cache on {self.cache_folder}: a rerun after a crash redoes its model calls")
            return None
        fingerprint = hashlib.sha1(json.dumps(self.settings(), sort_keys=True).encode()).hexdigest()[:12]
        return ProgramCache(Path(self.cache_folder.removeprefix("file://")) / str(self.stage) / fingerprint, rank)

    def claim(self, document: Document) -> None:
        """The first model step of a run owns what it will write: programs that came with the input (an
        earlier run's output, a published ProX corpus) are dropped and `raw_content` is this text."""
        if self.stage is Stage.CHUNK and "doc_stage" in prox_metadata(document):
            return  # the doc stage of this run has claimed it already
        for field in ("doc_program", "chunk_program", "doc_content"):
            document.metadata.pop(field, None)
        document.metadata["raw_content"] = document.text

    def writer(self) -> ProgramWriter:
        """The model, loaded on first use (a task with nothing to refine never loads it)."""
        if self._writer is None:
            logger.info(f"loading the {self.stage} model {self.model.name} ({self.model.backend})")
            self._writer = self.model.load_writer(self.tokenizer, rank=self._rank)
        return self._writer

    def generate(self, prompts: list[list[int]]) -> list[Generation]:
        """The programs of the prompts (`writing.decode`)."""
        return decode(self.writer(), self.stage, self.mode, prompts, self.max_new_tokens) if prompts else []


class InputGuard(PipelineStep):
    """Drops empty documents ("empty") and documents over `max_chars` characters ("too_long") before any
    other step sees them, whatever stages run."""

    type = "🛡️ - PROX"
    name = "🛡️ InputGuard"

    def __init__(self, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        super().__init__()
        if max_chars < 1:
            raise OptionError(f"max_chars must be >= 1, got {max_chars}")
        self.max_chars = max_chars

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for document in data or []:
            if is_pending(document):
                if not document.text.strip():
                    mark_dropped(document, "empty")
                elif len(document.text) > self.max_chars:
                    mark_dropped(document, "too_long")
            yield document


class DocRefiner(_ModelStep):
    """Writes each document's doc program (`metadata.doc_program`) and drops the documents it drops."""

    name = "📄 DocRefiner"
    stage = Stage.DOC

    def refine(self, documents: list[Document], cache: ProgramCache | None) -> None:
        todo = []
        for document in documents:
            if cache and (entry := cache.get(document_key(document))):
                self._decide(document, entry)
            else:
                todo.append(document)
        prompts = [doc_prompt(document.text, self.model, self.tokenizer, self.mode) for document in todo]
        written = []
        for document, prompt, generation in zip(todo, prompts, self.generate([p.ids for p in prompts]), strict=True):
            if generation.error:
                mark_failed(document, model_failure(Stage.DOC, generation.error))
                continue
            entry = {
                "key": document_key(document),
                "program": generation.text.strip(" "),
                "prompt_tokens": len(prompt.ids),
                "raw_tokens": prompt.content_tokens,
                "new_tokens": generation.new_tokens,
                "truncated": prompt.truncated,
            }
            if generation.score is not None:
                entry["score"] = generation.score
            written.append(entry)
            self._decide(document, entry)
        if cache and written:
            cache.put(written)

    def _decide(self, document: Document, entry: dict) -> None:
        document.metadata["doc_program"] = entry["program"]
        prox = prox_metadata(document)
        fields = ("prompt_tokens", "raw_tokens", "new_tokens", "truncated")
        prox["doc_stage"] = {k: entry[k] for k in fields if k in entry}
        if "score" in entry:  # P(drop) of a scoring writer: a user re-cuts at another threshold without re-running
            prox["doc_score"] = entry["score"]
        prox["doc_model"] = self.model.name
        if execute_doc(document.text, entry["program"], mode=self.mode).dropped:
            mark_dropped(document, "doc_program")


class ChunkRefiner(_ModelStep):
    """Writes each kept document's chunk program (`metadata.chunk_program`): the document is cut into
    chunks of numbered lines (global numbers), the model writes a program per chunk, and the programs are
    joined with newlines. Skips documents already dropped."""

    name = "🧩 ChunkRefiner"
    stage = Stage.CHUNK

    def __init__(
        self, model: ModelSpec | str, *, budget: int | None = None, context: int | None = None, **settings
    ) -> None:
        """budget / context: tokens of a page per chunk and per prompt (default: the model's
        `chunk_limits`)."""
        super().__init__(model, **settings)
        default_budget, default_context = self.model.chunk_limits
        self.budget = budget or default_budget
        self.context = context or default_context

    def settings(self) -> dict:
        return super().settings() | {"budget": self.budget, "context": self.context}

    def refine(self, documents: list[Document], cache: ProgramCache | None) -> None:
        todo, prompts = [], []
        for document in documents:
            if cache and (entry := cache.get(document_key(document))):
                self._set(document, entry)
                continue
            todo.append(document)
            prompts.append(
                chunk_prompts(document.text, self.tokenizer, self.mode, self.budget, self.context, self.max_new_tokens)
            )
        written = []
        for document, chunks, generations in zip(todo, prompts, self._decode_chunks(prompts), strict=True):
            failures = [f"chunk {i}: {g.error}" for i, g in enumerate(generations) if g.error]
            if failures:
                mark_failed(document, model_failure(Stage.CHUNK, "; ".join(failures)))
                continue
            entry = {
                "key": document_key(document),
                "program": merged_program(generations),
                "chunks": len(generations),
                "prompt_tokens": sum(len(prompt.ids) for prompt in chunks.prompts),
                "content_tokens": sum(prompt.content_tokens for prompt in chunks.prompts),
                "new_tokens": sum(generation.new_tokens for generation in generations),
                "truncated_chunks": sum(prompt.truncated for prompt in chunks.prompts),
                "unanswered_chunks": chunks.fits.count(False),
                "fallback_chunks": sum(generation.note is not None for generation in generations),
            }
            written.append(entry)
            self._set(document, entry)
        if cache and written:
            cache.put(written)

    def _decode_chunks(self, prompts: list[ChunkPrompts]) -> list[list[Generation]]:
        if not any(chunks.prompts for chunks in prompts):
            return [[] for _ in prompts]
        return decode_chunks(self.writer(), self.mode, prompts, self.max_new_tokens)

    def _set(self, document: Document, entry: dict) -> None:
        document.metadata["chunk_program"] = entry["program"]
        prox = prox_metadata(document)
        prox["chunk_stage"] = {k: v for k, v in entry.items() if k not in ("key", "program")}
        prox["chunk_model"] = self.model.name


class PendingStep(PipelineStep):
    """A step that changes pending documents one at a time (`apply_pending`) and passes the others on; every
    document leaves it with its source text in `metadata.raw_content`."""

    def prepare(self) -> None:
        """Called once per task before the first document."""

    def apply_pending(self, document: Document, source: str) -> None:
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self.prepare()
        for document in data or []:
            with self.track_time():
                source = document.metadata.setdefault("raw_content", document.text)
                if is_pending(document):  # not failed, nor dropped before (empty, too long, a model stage)
                    self.apply_pending(document, source)
            yield document


class ProgramExecutor(PendingStep):
    """Applies `metadata.doc_program` and `metadata.chunk_program` to each document (pure; no model).

    Runs alone too: on records of an earlier run it executes the programs again on `raw_content`, so other
    guards or another mode can be tried without running a model.
    """

    type = "⚙️ - PROX"
    name = "⚙️ ProgramExecutor"

    def __init__(
        self, *, mode: Mode = Mode.STRICT, guards: Guards | None = None, token_counter: ModelSpec | None = None
    ) -> None:
        """token_counter: the model whose tokenizer counts the tokens of each kept text (stats.json's
        tokens out, in the same units as the raw tokens of the doc stage); None counts none."""
        super().__init__()
        self.mode = Mode(mode)
        self.guards = guards or Guards()
        self.token_counter = token_counter
        self._tokenizer: Tokenizer | None = None

    def prepare(self) -> None:
        if self.token_counter is not None and self._tokenizer is None:
            self._tokenizer = self.token_counter.load_tokenizer()

    def apply_pending(self, document: Document, source: str) -> None:
        metadata = document.metadata
        doc_program, chunk_program = metadata.get("doc_program"), metadata.get("chunk_program")
        if doc_program is None and chunk_program is None:
            mark_failed(document, "no metadata.doc_program or metadata.chunk_program to execute: run a model stage")
            return
        result = execute(source, doc_program, chunk_program, mode=self.mode, guards=self.guards)
        metadata["doc_content"] = "" if result.reason == "doc_program" else source
        prox = prox_metadata(document)
        prox["mode"] = str(self.mode)
        prox["errors"] = [error.to_dict() for error in result.errors]
        prox["stats"] = result.to_dict()["stats"]
        if result.dropped:
            mark_dropped(document, str(result.reason))
            document.text = source
        else:
            document.text = result.text
            if self._tokenizer is not None:
                prox["stats"]["tokens_after"] = len(self._tokenizer.encode(result.text))
        self.stat_update(status(document))


class OutcomeWriter(PipelineStep):
    """Writes each document where its status says — `folder/data`, `folder/dropped`, `folder/failed` — and
    this task's totals to `folder/logs/prox/{rank:05d}.json`. A task that runs again (after a crash)
    first removes the files an earlier attempt of it left, so none of its records is written twice."""

    type = "💾 - WRITER"
    name = "💾 OutcomeWriter"

    def __init__(
        self, folder: str, *, compression: str | None = "gzip", progress: bool = True, output_format: str = "jsonl"
    ) -> None:
        """output_format: "jsonl" (gzip-compressed by default) or "parquet" (one string column per field,
        `metadata` as JSON text, so records with different metadata share one schema)."""
        super().__init__()
        if output_format not in OUTPUT_FORMATS:
            raise OptionError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
        self.folder = folder.rstrip("/")
        self.compression = compression
        self.progress = progress
        self.output_format = output_format

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from tqdm import tqdm

        self.remove_earlier_files(rank)
        writers = {
            status: self._writer(f"{self.folder}/{place}")
            for status, place in ((Status.KEPT, "data"), (Status.DROPPED, "dropped"), (Status.FAILED, "failed"))
        }
        totals = Totals()
        started = time.monotonic()
        with tqdm(desc=f"refine task {rank}", unit="doc", disable=not self.progress, mininterval=1) as progress:
            for document in data or []:
                totals.add(document)
                writers[status(document)].write(document, rank)
                progress.update()
        for writer in writers.values():
            writer.close()
        totals.counts["task_seconds"] = round(time.monotonic() - started, 3)
        totals.save(f"{self.folder}/logs/prox/{rank:05d}.json")
        return
        yield  # a generator that yields nothing: the end of the pipeline

    def _writer(self, folder: str):
        if self.output_format == "jsonl":
            return JsonlWriter(folder, compression=self.compression, adapter=_output_record)
        import pyarrow as pa
        from datatrove.pipeline.writers import ParquetWriter

        schema = pa.schema([(name, pa.string()) for name in PARQUET_COLUMNS])
        return ParquetWriter(folder, adapter=_parquet_record, schema=schema)

    def remove_earlier_files(self, rank: int) -> None:
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.folder)
        for place in ("data", "dropped", "failed"):
            for path in fs.glob(f"{root}/{place}/{rank:05d}.*"):
                fs.rm(path)


PARQUET_COLUMNS = ("id", "text", "raw_content", "doc_content", "metadata")


def _parquet_record(writer, document: Document) -> dict:
    record = _output_record(writer, document)
    return {name: record.get(name) for name in PARQUET_COLUMNS} | {"metadata": json.dumps(record["metadata"])}


def iter_output_records(folder: Path) -> Iterator[dict]:
    """The records of every output file in a local output subfolder (data, dropped or failed), in file order."""
    for path in sorted([*folder.glob("*.jsonl*"), *folder.glob("*.parquet")]):
        yield from read_output_file(str(path))


def read_output_file(path: str) -> Iterator[dict]:
    """The records of one output file (JSONL, gzip-compressed or not, or Parquet), as written."""
    import fsspec

    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        with fsspec.open(path, "rb") as file:
            rows = pq.read_table(file).to_pylist()
        for row in rows:
            row["metadata"] = json.loads(row["metadata"])
            yield {key: value for key, value in row.items() if value is not None}
        return
    with fsspec.open(path, "rt", compression="infer", encoding="utf-8") as file:
        for line in file:
            if line.strip():
                yield json.loads(line)


def _output_record(_writer, document: Document) -> dict:
    """The published ProX record: `id`, `text`, `raw_content`, `doc_content`, then `metadata` (with both
    program fields, None where a stage did not run). Values JSON cannot hold are written as text."""
    metadata = {"doc_program": None, "chunk_program": None} | _json_safe(document.metadata)
    record = {"id": document.id, "text": document.text}
    for field in ("raw_content", "doc_content"):
        if field in metadata:
            record[field] = metadata.pop(field)
    record["metadata"] = metadata
    return record


def _json_safe(value):
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class Totals:
    """The counts stats.json reports, gathered from each document's `metadata.prox` (`records.ProxRecord`)."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.drop_reasons: Counter = Counter()
        self.calls: Counter = Counter()
        self.errors: Counter = Counter()

    def add(self, document: Document) -> None:
        prox = prox_metadata(document)
        outcome = status(document)
        self.counts["documents_in"] += 1
        self.counts[f"documents_{outcome}"] += 1
        if outcome is Status.DROPPED:
            self.drop_reasons[prox.get("drop_reason", "unknown")] += 1
        for name, value in prox.get("doc_stage", {}).items():
            self.counts[f"doc_stage_{name}"] += int(value)
        if "doc_stage" in prox and prox.get("drop_reason") != "doc_program":  # D_doc of the FLOPs formula
            self.counts["doc_tokens"] += prox["doc_stage"]["raw_tokens"]
        for name, value in prox.get("chunk_stage", {}).items():
            self.counts[f"chunk_stage_{name}"] += int(value)
        stats = prox.get("stats", {})
        for name in SUMMED_EXECUTION_STATS:
            self.counts[name] += stats.get(name, 0)
        self.counts["programs_ignored"] += int(stats.get("program_ignored", False))
        self.calls.update(stats.get("calls", {}))
        self.errors.update(error["kind"] for error in prox.get("errors", []))

    def as_dict(self) -> dict:
        return {
            "counts": dict(self.counts),
            "drop_reasons": dict(self.drop_reasons),
            "calls": dict(self.calls),
            "errors": dict(self.errors),
        }

    def save(self, path: str) -> None:
        import fsspec

        with fsspec.open(path, "w", auto_mkdir=True) as file:
            json.dump(self.as_dict(), file, indent=2)
