"""What the model steps share: the program cache (programs by document text and model settings) and
the error text of a model failure (`--retry-failed` looks for it)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from datatrove.data import Document

from proxkit.program import Stage


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
