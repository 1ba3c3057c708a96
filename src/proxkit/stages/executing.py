"""The step that runs the programs: ProgramExecutor (pure; no model), on the pending-documents loop it
shares with the rule baselines (PendingStep)."""

from __future__ import annotations

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from proxkit.models import ModelSpec
from proxkit.outcome import is_pending, mark_dropped, mark_failed, prox_metadata, status
from proxkit.program import Guards, Mode, execute
from proxkit.prompts import Tokenizer


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
