"""Human line labels on text already through boilerplate removal (`line_quality_labels/LANG/SPLIT.json`:
OSCAR documents in six languages, each `{"text": [line, ...], "labels": ["1" | "0", ...]}`, "1" = keep) as
chunk-stage seed examples: the text a corpus hands `prox refine` after an earlier cleaning pass, where a
refiner must keep the clean lines. Collection `line-quality`, `language` per folder, each document its own
site (the files carry no URLs); no rendering (the text came as text)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from proxkit.annotate.human import program_for
from proxkit.layout import canonical_line
from proxkit.program import Stage
from proxkit.train.seed import SeedExample

COLLECTION = "line-quality"


def read_documents(path: Path) -> list[tuple[list[str], list[bool]]]:
    """(lines, keep flags) of each document of one split file; a malformed document is a ValueError naming
    the file, the document's index and the field."""
    try:
        documents = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    if not isinstance(documents, list):
        raise ValueError(f"{path}: expected a list of documents, got {type(documents).__name__}")
    read = []
    for index, document in enumerate(documents):
        where = f"{path}: document {index}"
        lines, labels = (document.get("text"), document.get("labels")) if isinstance(document, dict) else (None, None)
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise ValueError(f"{where}: `text` must be a list of strings")
        if not isinstance(labels, list) or len(labels) != len(lines) or not set(map(str, labels)) <= {"0", "1"}:
            raise ValueError(f'{where}: `labels` must hold one "0" or "1" per line of `text`')
        cleaned = [canonical_line(line) for line in lines]  # a line's own breaks would add lines
        read.append((cleaned, [str(label) == "1" for label in labels]))
    return read


def import_line_labels(root: Path) -> Iterator[SeedExample]:
    """Chunk examples of every `LANG/SPLIT.json` under `root` (languages and splits in name order)."""
    for path in sorted(root.glob("*/*.json")):
        language, split = path.parent.name, path.stem
        for index, (lines, keep) in enumerate(read_documents(path)):
            if not any(lines):
                continue
            source = f"{COLLECTION}/{language}/{split}/{index}"
            gold = "\n".join(line for line, kept in zip(lines, keep, strict=True) if kept)
            yield SeedExample(
                source=source,
                subset=f"{COLLECTION}-{language}",
                site=source,
                stage=str(Stage.CHUNK),
                text="\n".join(lines),
                program=program_for(lines, keep).render(),
                labels=[int(kept) for kept in keep],
                gold=gold,
                collection=COLLECTION,
                language=language,
            )
