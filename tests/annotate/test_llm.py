"""LLM seed annotation: scores, the keep rule, reading and merging programs, the cache, and real servers."""

import json
import re
import subprocess
import sys
import time

import pytest
from servers import ScriptedChatServer
from typer.testing import CliRunner

from proxkit.annotate.llm import (
    AnnotateConfig,
    Annotator,
    keep_by_scores,
    merge_programs,
    parse_score,
    program_from_answer,
    rewritten_text,
)
from proxkit.cli import app
from proxkit.program import KeepChunk, Normalize, Program, RemoveLines

PAGE = "\n".join(["Home | Shop | Blog", "Tulips need cold winters to flower well.", "© 2024 Garden Co."])


def test_scores_are_read_from_the_last_score_line():
    assert parse_score("It is fine.\nEducational score: 2\n...\nEducational score: 4", "edu") == 4
    assert parse_score("Extraction Quality Score: 9", "format") == 5
    assert parse_score("no score here", "edu") is None


@pytest.mark.parametrize(
    ("edu", "fmt", "keep"), [(3, 0, True), (2, 4, True), (2, 3, False), (1, 5, False), (None, 5, False)]
)
def test_the_paper_keep_rule(edu, fmt, keep):
    assert keep_by_scores(edu, fmt) is keep


def test_a_fenced_answer_with_comments_is_read_by_the_strict_parser():
    answer = "Here you go:\n```python\n# menu\nremove_lines(0, 1)  # nav\nuntouch_doc()\n```\nDone."
    assert program_from_answer(answer).calls == (RemoveLines(0, 1), KeepChunk())


def test_merging_unions_ranges_within_the_chunk_and_caps_removal():
    programs = [
        Program((RemoveLines(10, 11),)),
        Program((RemoveLines(11, 12), Normalize("Click", ""))),
        Program((RemoveLines(30, 40), Normalize("Click", ""))),
    ]
    merged = merge_programs(programs, 10, 19, max_removed=0.5)
    assert merged.calls == (RemoveLines(10, 12), Normalize("Click", ""))
    capped = merge_programs(programs, 10, 13, max_removed=0.5)  # 3 of 4 lines would go
    assert capped.calls == (Normalize("Click", ""),)


def test_annotation_labels_documents_and_lines_and_resumes_from_its_cache(tmp_path):
    server = ScriptedChatServer(scores=(3, 4))
    try:
        config = AnnotateConfig(server.url, "annotator", chunk_lines=3)
        annotator = Annotator(config, tmp_path / "cache.jsonl")
        doc, chunk = annotator.annotate("page-1", PAGE)
        annotator.close()
        assert (doc["label"], doc["program"], doc["scores"]) == (1, "keep_doc()", {"edu": 3, "format": 4})
        assert chunk["labels"] == [0, 1, 0]
        assert chunk["program"] == "remove_lines(line_start=0, line_end=0)\nremove_lines(line_start=2, line_end=2)"
        asked = server.requests
        assert asked == 2 + 3  # two scores, three chunk prompts
        again = Annotator(config, tmp_path / "cache.jsonl")
        assert again.annotate("page-1", PAGE) == [doc, chunk]
        assert server.requests == asked  # everything came from the cache
    finally:
        server.close()


ARTICLE = "Tulips need cold winters to flower well, so gardeners in warm places chill the bulbs first."
REWRITE_PAGE = "\n".join(
    ["Home | Shop | Blog", f"{ARTICLE} Share this: Facebook", "Plant them in autumn, a hand deep.", "© 2024 Garden Co."]
)


def test_a_rewrite_gives_a_program_of_the_deletions_it_implies(tmp_path):
    server = ScriptedChatServer(scores=(3, 4))
    try:
        config = AnnotateConfig(server.url, "annotator", chunk_lines=3, rewrite=True)
        annotator = Annotator(config, tmp_path / "cache.jsonl")
        doc, chunk = annotator.annotate("page-1", REWRITE_PAGE)
        annotator.close()
        assert doc["label"] == 1
        assert chunk["labels"] == [0, 1, 1, 0]
        assert chunk["program"].splitlines() == [
            "remove_lines(line_start=0, line_end=0)",
            "remove_lines(line_start=3, line_end=3)",
            'normalize(source_str=" Share this: Facebook", target_str="")',
        ]
        assert chunk["scores"] == {"rewrite_words": 23, "rewrite_words_not_deleted": 0}
        assert server.requests == 2 + 2  # two scores, one rewrite per chunk of 3 lines
        assert rewritten_text("```\nkept text\n```") == "kept text"
    finally:
        server.close()


def test_text_a_rewrite_invents_is_never_taken_and_is_counted(tmp_path):
    invented = " In short, tulips are easy to grow if you follow these simple rules every single year."
    server = ScriptedChatServer(scores=(3, 4), invented=invented)
    try:
        source = tmp_path / "docs.jsonl"
        source.write_text(json.dumps({"id": "d1", "text": REWRITE_PAGE}) + "\n")
        out = tmp_path / "seed.jsonl"
        args = ["annotate", str(source), "-o", str(out), "--base-url", server.url, "--model", "m", "--rewrite"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        counts = json.loads(result.stdout)
        assert counts["chunk_examples"] == 1 and counts["normalize_calls"] == 1
        assert counts["rewrite_words_not_deleted"] == 16  # the invented sentence, once (one chunk)
        assert counts["rewrite_share_not_deleted"] == round(16 / 39, 4)
        chunk = json.loads(out.read_text().splitlines()[1])
        assert "tulips are easy" not in chunk["program"] and chunk["labels"] == [0, 1, 1, 0]
    finally:
        server.close()


def test_a_dropped_document_gets_no_chunk_annotation(tmp_path):
    server = ScriptedChatServer(scores=(1, 5))
    try:
        [doc] = Annotator(AnnotateConfig(server.url, "m"), tmp_path / "c.jsonl").annotate("p", PAGE)
        assert (doc["label"], doc["program"]) == (0, "drop_doc()")
    finally:
        server.close()


def test_prox_annotate_against_prox_serve_running_a_small_model(tiny_refiner, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "proxkit", "serve", "--model", str(tiny_refiner), "--port", "0"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            if match := re.search(r"on (http://\S+)", process.stderr.readline()):
                url = match.group(1)
        source = tmp_path / "docs.jsonl"
        source.write_text(json.dumps({"id": "d1", "text": PAGE}) + "\n" + json.dumps({"id": "d2", "text": ""}) + "\n")
        out = tmp_path / "seed.jsonl"
        args = ["annotate", str(source), "-o", str(out), "--base-url", url, "--model", "tiny"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        counts = json.loads(result.stdout)
        # a random model writes no score line: nothing is labelled, and no answer is taken for a label
        assert counts == {"documents": 2, "doc_examples": 0, "chunk_examples": 0, "unanswered": 2}
        assert out.read_text() == ""
        assert len((tmp_path / "seed.cache.jsonl").read_text().splitlines()) == 2  # both answers cached
        assert CliRunner().invoke(app, args).stdout == result.stdout  # resumed from the cache, same output
        # a random model's "copy" shares no run of words with the page: every line goes, no word is taken
        rewriter = Annotator(AnnotateConfig(url, "tiny", rewrite=True, max_tokens=8), tmp_path / "rewrite.jsonl")
        chunk = rewriter.rewrite_example("d1", PAGE.split("\n"))
        rewriter.close()
        assert chunk["labels"] == [0, 0, 0] and chunk["program"] == "remove_lines(line_start=0, line_end=2)"
        assert chunk["scores"]["rewrite_words"] == chunk["scores"]["rewrite_words_not_deleted"] > 0
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_limit_caps_the_documents_sent_to_a_paid_annotator_and_the_keys_name_the_fields(tmp_path):
    server = ScriptedChatServer(scores=(3, 4))
    try:
        source = tmp_path / "docs.jsonl"
        records = [{"key": f"d{i}", "body": f"{PAGE}\nPage {i} ends here."} for i in range(3)]
        source.write_text("".join(json.dumps(record) + "\n" for record in records))
        out = tmp_path / "seed.jsonl"
        args = ["annotate", str(source), "-o", str(out), "--base-url", server.url, "--model", "m"]
        result = CliRunner().invoke(app, [*args, "--limit", "1", "--text-key", "body", "--id-key", "key"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["documents"] == 1
        assert [json.loads(line)["source"] for line in out.read_text().splitlines()] == ["d0", "d0"]  # doc, chunk
        asked = server.requests
        assert CliRunner().invoke(app, [*args, "--text-key", "body", "--id-key", "key"]).exit_code == 0
        assert server.requests > asked
        sources = [json.loads(line)["source"] for line in out.read_text().splitlines()]
        assert sources == ["d0", "d0", "d1", "d1", "d2", "d2"]
    finally:
        server.close()
