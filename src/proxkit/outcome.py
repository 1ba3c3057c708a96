"""Where a document stands: kept, dropped (with a reason) or failed (with an error).

The status lives in `metadata.prox` so it travels with the document through every pipeline step and into
the output; the last step routes the document to OUT/data, OUT/dropped or OUT/failed by it.
"""

from __future__ import annotations

from enum import StrEnum

from datatrove.data import Document

DEFAULT_MAX_CHARS = 1_000_000  # longer documents are dropped as "too_long" before any model sees them


class Status(StrEnum):
    KEPT = "kept"
    DROPPED = "dropped"
    FAILED = "failed"


def prox_metadata(document: Document) -> dict:
    """The document's `metadata.prox` record, created on first use."""
    return document.metadata.setdefault("prox", {})


def status(document: Document) -> Status:
    return Status(document.metadata.get("prox", {}).get("status", Status.KEPT))


def is_pending(document: Document) -> bool:
    """Not dropped or failed yet: later steps still work on it."""
    return status(document) is Status.KEPT


def mark_failed(document: Document, error: str) -> Document:
    prox = prox_metadata(document)
    prox["status"], prox["error"] = str(Status.FAILED), error
    prox.pop("drop_reason", None)
    return document


def mark_dropped(document: Document, reason: str) -> Document:
    prox = prox_metadata(document)
    prox["status"], prox["drop_reason"] = str(Status.DROPPED), reason
    return document
