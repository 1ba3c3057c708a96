"""Seed examples: the one JSONL schema every importer and annotator writes (`SeedExample`) and the view the
trainers and `prox evaluate` read of it (`Example`: a page's content lines with per-line labels, or a
document with a keep/drop label)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import orjson

from proxkit.layout import content_lines
from proxkit.program import Normalize, Stage, parse_program

MAX_LINES = 300  # lines of a page read (the rest is rare and costly)
DOC_KEEP_MIN_WORDS = 100  # content words for a page to also count as a doc-stage keep example


@dataclass
class SeedExample:
    """One seed example, as a JSONL line. Chunk stage: `labels` (1 = keep, one per line of `text`) and `gold`;
    doc stage: `label` (1 = keep). `subset` the part of a collection it comes from; `site` groups pages of one
    web site, to hold out pages by site; `collection` the labelled collection (default: its subset), to hold
    out a whole collection; `page_type` what kind of page it is, where the collection says (article, forum,
    product…); `rendering` the HTML-to-text tool that wrote `text` (`proxkit.annotate.render`; None: the
    text came as text); `language` where known; `scores` an annotator's scores behind the label."""

    source: str
    subset: str
    site: str
    stage: str
    text: str
    program: str
    labels: list[int] | None = None
    label: int | None = None
    gold: str | None = None
    collection: str | None = None
    page_type: str | None = None
    rendering: str | None = None
    language: str | None = None
    scores: dict[str, int] | None = None

    def __post_init__(self) -> None:
        self.stage = str(Stage(self.stage))
        self.collection = self.collection or self.subset
        if self.stage == Stage.CHUNK and (self.labels is None or len(self.labels) != len(self.text.split("\n"))):
            raise ValueError(f"{self.source}: a chunk example needs one label per line of its text")
        if self.stage == Stage.DOC and self.label not in (0, 1):
            raise ValueError(f"{self.source}: a doc example needs a label 0 or 1, got {self.label!r}")

    def normalizes(self) -> list[Normalize]:
        """The `normalize` calls of a chunk example's program (noise inside kept lines)."""
        if self.stage != Stage.CHUNK:
            return []
        return [call for call in parse_program(self.program, Stage.CHUNK).calls if isinstance(call, Normalize)]

    def to_dict(self) -> dict[str, object]:
        """The fields that are set (the other stage's fields left out)."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, record: dict) -> SeedExample:
        """The example a JSONL record holds (a record without `subset` or `site`: its source's first part, its
        source); ValueError when a field is missing or wrong."""
        if not isinstance(record, dict):
            raise ValueError(f"a seed example is a JSON object, not {type(record).__name__}")
        known = {field.name for field in fields(cls)}
        values = {key: value for key, value in record.items() if key in known}
        missing = [key for key in ("source", "stage", "text") if key not in values]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        values.setdefault("subset", str(values["source"]).split("/")[0])
        values.setdefault("site", values["source"])
        values.setdefault("program", "")
        if not isinstance(values["text"], str):
            raise ValueError("`text` must be a string")
        return cls(**values)


def write_seed(examples: Iterable[SeedExample], path: Path) -> int:
    """Write examples as JSONL (one `to_dict()` a line); return how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb") as out:
        for example in examples:
            out.write(orjson.dumps(example.to_dict()) + b"\n")
            count += 1
    return count


@dataclass
class Example:
    """What a trainer reads of a seed example: its content lines with per-line labels (chunk stage) or a doc
    label, and what it came from."""

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
    normalize: tuple[str, ...] = ()  # chunk stage: sources of the seed's `normalize` calls (noise inside lines)

    @classmethod
    def from_seed(cls, seed: SeedExample) -> Example:
        """The content lines of the seed's text (`proxkit.layout.content_lines`, at most `MAX_LINES`), each
        with its label: what a tagger reads of them at run time."""
        content = content_lines(seed.text.split("\n"))
        lines = content.lines[:MAX_LINES]
        about = {"collection": seed.collection or "", "page_type": seed.page_type}
        about |= {"rendering": seed.rendering, "language": seed.language}
        if seed.stage == Stage.CHUNK:
            remove = [not seed.labels[position] for position in content.positions[:MAX_LINES]]
            sources = tuple(call.source for call in seed.normalizes())
            return cls(seed.source, seed.site, "chunk", lines, remove, gold=seed.gold, normalize=sources, **about)
        return cls(seed.source, seed.site, "doc", lines, drop=not seed.label, **about)


def load_seed(path: str | Path) -> list[Example]:
    """Examples from a seed JSONL (`SeedExample` records), or a ValueError naming the file and line."""
    examples = []
    with open(path, "rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                examples.append(Example.from_seed(SeedExample.from_dict(orjson.loads(line))))
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as error:
                raise ValueError(f"{path}:{number}: not a seed example ({error!r})") from None
    return examples
