"""Seed examples for training and evaluating refiners: pages with per-line labels (chunk stage) and
documents with a keep/drop label (doc stage), read from the JSONL the importers write."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from proxkit.layout import content_lines

MAX_LINES = 300  # lines of a page read (the rest is rare and costly)


@dataclass
class Example:
    """One seed example: a page's lines with per-line labels (chunk stage) and/or a doc label."""

    source: str
    site: str
    stage: str
    lines: list[str]
    remove: list[bool] | None = None  # chunk stage: True = noise line
    drop: bool | None = None  # doc stage: True = drop the document
    gold: str | None = None  # chunk stage: the gold main content
    collection: str = ""  # the labelled collection (default: the source's first part)
    page_type: str | None = None  # article, forum, product…, where the collection says
    rendering: str | None = None  # the HTML-to-text tool that wrote the text (None: it came as text)
    language: str | None = None  # where the collection says


def load_seed(path: str | Path) -> list[Example]:
    """Examples from a seed JSONL (fields `source`, `site`, `stage`, `text`, `labels` or `label`, `gold`;
    labels are 1 = keep), each holding the content lines of its text (`proxkit.layout.content_lines`)."""
    examples = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                raw = record["text"].split("\n")
                if record["stage"] == "chunk" and len(record["labels"]) != len(raw):
                    raise ValueError(f"{len(record['labels'])} labels for {len(raw)} lines")
                content = content_lines(raw)  # what a tagger reads of them at run time
                lines = content.lines[:MAX_LINES]
                site = record.get("site", record["source"])
                if record["stage"] == "chunk":
                    remove = [not record["labels"][position] for position in content.positions[:MAX_LINES]]
                    example = Example(record["source"], site, "chunk", lines, remove, gold=record.get("gold"))
                else:
                    example = Example(record["source"], site, "doc", lines, drop=not record["label"])
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{number}: not a seed example ({error!r})") from None
            example.collection = record.get("collection") or record["source"].split("/")[0]
            example.page_type = record.get("page_type")
            example.rendering = record.get("rendering")
            example.language = record.get("language")
            examples.append(example)
    return examples
