"""Seed examples for training and evaluating refiners: pages with per-line labels (chunk stage) and
documents with a keep/drop label (doc stage), read from the JSONL the importers write."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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


def load_seed(path: str | Path) -> list[Example]:
    """Examples from a seed JSONL (fields `source`, `site`, `stage`, `text`, `labels` or `label`, `gold`;
    labels are 1 = keep)."""
    examples = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                lines = record["text"].split("\n")[:MAX_LINES]
                if record["stage"] == "chunk" and len(record["labels"]) != len(record["text"].split("\n")):
                    raise ValueError(f"{len(record['labels'])} labels for {len(record['text'].split(chr(10)))} lines")
                if record["stage"] == "chunk":
                    remove = [not keep for keep in record["labels"][:MAX_LINES]]
                    example = Example(record["source"], record.get("site", record["source"]), "chunk", lines, remove)
                    example.gold = record.get("gold")
                else:
                    example = Example(record["source"], record.get("site", record["source"]), "doc", lines)
                    example.drop = not record["label"]
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{number}: not a seed example ({error!r})") from None
            examples.append(example)
    return examples
