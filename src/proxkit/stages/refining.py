"""The steps that write programs: InputGuard (empty and over-long documents dropped first), DocRefiner and
ChunkRefiner (a model writes `metadata.doc_program` / `metadata.chunk_program`; nothing is executed here)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.batching import batched
from loguru import logger

from proxkit import layout
from proxkit.errors import OptionError
from proxkit.layout import has_visible_text
from proxkit.models import Generation, ModelSpec, ProgramWriter, resolve
from proxkit.outcome import DEFAULT_MAX_CHARS, is_pending, mark_dropped, mark_failed, prox_metadata
from proxkit.program import Mode, Stage, execute_doc
from proxkit.prompts import Tokenizer
from proxkit.stages.cache import ProgramCache, document_key, model_failure
from proxkit.writing import (
    ChunkPrompts,
    chunk_prompts,
    decode,
    decode_chunks,
    default_max_new_tokens,
    doc_prompts,
    document_program,
)


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
        """What decides the programs this step writes, the dtype it computes in on this machine and a tagger's
        files included: a cache written under other settings is not reused."""
        decoding = "free" if self.mode is Mode.REFERENCE else "constrained"
        tagger = self.model.tagger_digest()
        return (
            {"model": self.model.source, "mode": str(self.mode), "max_new_tokens": self.max_new_tokens}
            | {"decoding": decoding, "dtype": self.model.compute_dtype()}
            | self.model.tagger_thresholds
            | ({"tagger": tagger} if tagger else {})
            | ({"layout": layout.READER_VERSION} if self.model.reads_content_only else {})
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
                if not has_visible_text(document.text):  # blank, or only zero-width characters
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
        prompts = doc_prompts([document.text for document in todo], self.model, self.tokenizer, self.mode)
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
            if generation.note is not None:  # a fallback program (a tagger's language check): not judged
                entry["fallback"] = 1
            written.append(entry)
            self._decide(document, entry)
        if cache and written:
            cache.put(written)

    def _decide(self, document: Document, entry: dict) -> None:
        document.metadata["doc_program"] = entry["program"]
        prox = prox_metadata(document)
        fields = ("prompt_tokens", "raw_tokens", "new_tokens", "truncated")
        prox["doc_stage"] = {k: entry[k] for k in fields if k in entry} | {"fallback": entry.get("fallback", 0)}
        if "score" in entry:  # P(drop) of a scoring writer: a user re-cuts at another threshold without re-running
            prox["doc_score"] = entry["score"]
        prox["doc_model"] = self.model.name
        prox["mode"] = str(self.mode)  # how the program was read, on the records this stage drops too
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
                chunk_prompts(
                    document.text,
                    self.tokenizer,
                    self.mode,
                    self.budget,
                    self.context,
                    self.max_new_tokens,
                    self.model.reads_content_only,
                )
            )
        written = []
        for document, chunks, generations in zip(todo, prompts, self._decode_chunks(prompts), strict=True):
            failures = [f"chunk {i}: {g.error}" for i, g in enumerate(generations) if g.error]
            if failures:
                mark_failed(document, model_failure(Stage.CHUNK, "; ".join(failures)))
                continue
            entry = {
                "key": document_key(document),
                "program": document_program(document.text, generations, self.model.reads_content_only),
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
