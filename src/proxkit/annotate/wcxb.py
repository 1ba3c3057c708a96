"""WCXB (web content extraction benchmark, dev split: 1,358 pages of 2025-26 in seven page types) as seed
examples, read straight from `webpages_labelled_more/wcxb-dev.tar.xz`.

Each page gives a chunk example per rendering (its lines aligned with the gold `main_content`, as
`proxkit.annotate.human` does for the older collections) and up to two doc examples: the full page
(`doc_decision`) and the gold text alone, a document already cleaned once (keep when it holds at least
`DOC_KEEP_MIN_WORDS` words). Every example carries `collection` ("wcxb"), `site` (the page's domain) and
`page_type`. The gold's `with` / `without` snippets (text a correct extraction must / must not hold) check
the alignment: `snippet_check`.
"""

from __future__ import annotations

import tarfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from proxkit.annotate.human import (
    DOC_KEEP_MIN_WORDS,
    decode,
    doc_example,
    labelled_page_examples,
    words,
)
from proxkit.annotate.render import DEFAULT_RENDERING, clean_lines
from proxkit.train.seed import SeedExample

ARCHIVE = "wcxb-dev.tar.xz"
COLLECTION = "wcxb"
SUBSET = "wcxb-dev"
LANGUAGE = "en"
GOLD_TEXT = "gold"  # the subset name of the doc examples made of the gold text alone


@dataclass(frozen=True)
class Page:
    """One WCXB page: its id, domain, page type, HTML, gold main content and snippets."""

    file_id: str
    domain: str
    page_type: str
    html: str
    gold: str
    with_snippets: list[str]
    without_snippets: list[str]


def read_pages(archive: Path) -> Iterator[Page]:
    """The pages of the archive, in the order of its ground truth (a row without its HTML is an error naming
    the archive and the file id)."""
    with tarfile.open(archive, "r:xz") as tar:
        members = {member.name.split("/", 1)[-1]: member for member in tar.getmembers() if member.isfile()}
        truth = tar.extractfile(members["ground-truth.jsonl"]).read().splitlines()
        for number, raw in enumerate(truth, start=1):
            if not raw.strip():
                continue
            row = orjson.loads(raw)
            try:
                member = members[f"html/{row['file_id']}.html"]
            except KeyError:
                raise ValueError(f"{archive}: ground-truth.jsonl:{number}: no html/{row.get('file_id')}.html") from None
            yield Page(
                file_id=row["file_id"],
                domain=row["domain"].removeprefix("www."),
                page_type=row["page_type"],
                html=decode(tar.extractfile(member).read()),
                gold=row["main_content"] or "",
                with_snippets=list(row.get("with") or []),
                without_snippets=list(row.get("without") or []),
            )


def page_examples(
    page: Page, doc_keep_min_words: int = DOC_KEEP_MIN_WORDS, renderings: Sequence[str] = (DEFAULT_RENDERING,)
) -> list[SeedExample]:
    """The chunk examples of a page (one per rendering) and its doc examples (the full page in its first
    rendering; the gold text, when it has enough words)."""
    about = {"collection": COLLECTION, "page_type": page.page_type, "language": LANGUAGE}
    source = f"{SUBSET}/{page.file_id}"
    examples = labelled_page_examples(
        source, SUBSET, page.domain, page.html, page.gold, renderings, doc_keep_min_words, **about
    )
    if len(words(page.gold)) >= doc_keep_min_words:
        gold_source = f"{SUBSET}/{page.file_id}/{GOLD_TEXT}"
        gold_text = "\n".join(clean_lines(page.gold))
        examples.append(doc_example(gold_source, f"{SUBSET}-{GOLD_TEXT}", page.domain, gold_text, True, **about))
    return examples


def import_wcxb(
    folder: Path, doc_keep_min_words: int = DOC_KEEP_MIN_WORDS, renderings: Sequence[str] = (DEFAULT_RENDERING,)
) -> Iterator[SeedExample]:
    """Seed examples of every page of `folder/wcxb-dev.tar.xz`."""
    for page in read_pages(folder / ARCHIVE):
        yield from page_examples(page, doc_keep_min_words, renderings)


def snippet_check(lines: Sequence[str], labels: Sequence[int], page: Page) -> Counter[str]:
    """Where the page's snippets land under these line labels: `with_in_content` / `with_in_noise` (on the
    page but only in noise lines) / `with_absent` (not on the page as extracted), and the same for
    `without`. A snippet is in the content when its words run, in order, through the content lines' words."""
    content = _joined(line for line, label in zip(lines, labels, strict=True) if label)
    everything = _joined(lines)
    counts: Counter[str] = Counter()
    for kind, snippets in (("with", page.with_snippets), ("without", page.without_snippets)):
        for snippet in snippets:
            needle = _joined([snippet])
            if not needle.strip():
                continue
            place = "in_content" if needle in content else "in_noise" if needle in everything else "absent"
            counts[f"{kind}_{place}"] += 1
    return counts


def _joined(lines) -> str:
    """The words of the lines, space-separated, with a space at both ends (so `in` matches whole words)."""
    return " " + " ".join(word for line in lines for word in words(line)) + " "
