"""`prox refine` options a corpus builder sets, each checked by its effect on the run's output: the input
keys, the length cap, the reference mode, the API key, and the executor's guards."""

import json

import pytest
from servers import FlakyServer
from test_refine import FAST, invoke, outputs, prox, write_jsonl
from train.test_evaluate import tagger_dir
from typer.testing import CliRunner

from proxkit.cli import app

PAGE = [f"Line {i} of the article holds seven plain words." for i in range(8)]


@pytest.fixture
def doc_server():
    """A completions server whose every answer is a doc program that keeps, with a comment naming drop."""
    server = FlakyServer(failures=0, body=b'{"choices": [{"text": " keep_doc()  # never drop"}]}')
    yield server
    server.close()


def served(server: FlakyServer, tokenizer, *extra: str) -> list[str]:
    return [
        "--backend", "openai", "--base-url", server.url, "--tokenizer", str(tokenizer), "--doc-model", "served",
        "--stages", "doc", *FAST, *extra,
    ]  # fmt: skip


def test_text_and_id_keys_name_the_fields_of_the_input(doc_server, tiny_refiner, tmp_path):
    path = write_jsonl(
        tmp_path / "in.jsonl",
        [{"doc_id": "a", "content": "First page."}, {"doc_id": "b", "content": "Second page."}, {"text": "no content"}],
    )
    out = tmp_path / "out"
    prox(
        "refine",
        str(path),
        "-o",
        str(out),
        *served(doc_server, tiny_refiner, "--text-key", "content", "--id-key", "doc_id"),
    )
    results = outputs(out)
    assert sorted((r["id"], r["text"]) for r in results["data"]) == [("a", "First page."), ("b", "Second page.")]
    [failed] = results["failed"]
    assert "no 'content' field" in failed["metadata"]["prox"]["error"]


def test_max_chars_drops_longer_documents_before_any_model_reads_them(doc_server, tiny_refiner, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "short", "text": "x" * 100}, {"id": "long", "text": "y" * 101}])
    out = tmp_path / "out"
    prox("refine", str(path), "-o", str(out), *served(doc_server, tiny_refiner, "--max-chars", "100"))
    results = outputs(out)
    assert [r["id"] for r in results["data"]] == ["short"]
    [dropped] = results["dropped"]
    assert dropped["id"] == "long" and dropped["metadata"]["prox"]["drop_reason"] == "too_long"
    assert doc_server.requests == 1


def test_reference_mode_reads_programs_as_the_authors_did(doc_server, tiny_refiner, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "p", "text": "\n".join(PAGE)}])
    for mode, place in (("strict", "data"), ("reference", "dropped")):
        out = tmp_path / mode
        prox("refine", str(path), "-o", str(out), *served(doc_server, tiny_refiner, "--mode", mode))
        [record] = outputs(out)[place]  # the reference drops any answer that contains "drop"
        assert record["metadata"]["prox"]["mode"] == mode


def test_the_api_key_reaches_the_endpoint_and_no_output(doc_server, tiny_refiner, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "p", "text": "A page."}])
    prox("refine", str(path), "-o", str(tmp_path / "flag"), *served(doc_server, tiny_refiner, "--api-key", "sk-flag"))
    environment = {"COLUMNS": "1000", "NO_COLOR": "1", "OPENAI_API_KEY": "sk-env"}
    result = CliRunner().invoke(
        app, ["refine", str(path), "-o", str(tmp_path / "env"), *served(doc_server, tiny_refiner)], env=environment
    )
    assert result.exit_code == 0, result.output
    assert doc_server.authorizations == ["Bearer sk-flag", "Bearer sk-env"]
    for run in ("flag", "env"):
        for written in (tmp_path / run).rglob("*"):
            if written.is_file():
                assert b"sk-flag" not in written.read_bytes() and b"sk-env" not in written.read_bytes(), written


def test_max_new_tokens_and_request_timeout_reach_the_requests(tiny_refiner, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "p", "text": "A page."}])
    answers = FlakyServer(failures=0, body=b'{"choices": [{"text": " keep_doc()"}]}')
    slow = FlakyServer(failures=0, hold=3.0)
    try:
        limited = served(answers, tiny_refiner, "--doc-max-new-tokens", "7")
        prox("refine", str(path), "-o", str(tmp_path / "a"), *limited)
        timeout = ("--request-timeout", "0.5", "--retries", "0")
        prox("refine", str(path), "-o", str(tmp_path / "slow"), *served(slow, tiny_refiner, *timeout))
    finally:
        answers.close()
        slow.close()
    assert [json.loads(payload)["max_tokens"] for payload in answers.payloads] == [7]
    [failed] = outputs(tmp_path / "slow")["failed"]
    assert "gave up after 1 attempts: timed out after 0.5s" in failed["metadata"]["prox"]["error"]


def re_execute(tmp_path, program: str, *options: str) -> dict[str, list[dict]]:
    """`prox refine --stages none` on one page carrying `program` as its chunk program."""
    record = {"id": "p", "text": "\n".join(PAGE), "metadata": {"doc_program": "keep_doc()", "chunk_program": program}}
    path = write_jsonl(tmp_path / "in.jsonl", [record])
    out = tmp_path / "-".join(["out", *options]).replace("--", "")
    prox("refine", str(path), "-o", str(out), "--stages", "none", "--no-progress", *options)
    return outputs(out)


def test_max_errors_sets_how_many_errors_void_a_program(tmp_path):
    program = "remove_lines(line_start=0, line_end=0)\n" + "remove_lines(line_start=90, line_end=99)\n" * 2
    voided = re_execute(tmp_path, program)["data"][0]
    assert voided["text"] == "\n".join(PAGE) and len(voided["metadata"]["prox"]["errors"]) == 2
    for options in (("--max-errors", "3"), ("--max-errors", "0")):  # 0: never void
        [record] = re_execute(tmp_path, program, *options)["data"]
        assert record["text"] == "\n".join(PAGE[1:])
    assert invoke("refine", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "x"), "--max-errors", "-1").exit_code == 2


def test_min_word_ratio_drops_a_document_refined_to_too_small_a_share(tmp_path):
    program = "remove_lines(line_start=0, line_end=5)"  # 2 of 8 lines stay: a quarter of the words
    [kept] = re_execute(tmp_path, program, "--min-words", "1")["data"]
    assert kept["text"] == "\n".join(PAGE[6:])
    [dropped] = re_execute(tmp_path, program, "--min-words", "1", "--min-word-ratio", "0.25")["dropped"]
    assert dropped["metadata"]["prox"]["drop_reason"] == "low_word_ratio"
    assert re_execute(tmp_path, program, "--min-words", "1", "--min-word-ratio", "0.24")["data"]


def test_the_thresholds_move_a_taggers_decisions(tiny_backbone, tmp_path):
    undecided = tagger_dir(tmp_path, tiny_backbone, 0.0, 0.0)  # P(remove) = P(drop) = 0.5 everywhere
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "p", "text": "\n".join(PAGE)}])
    model = ["--doc-model", str(undecided), "--chunk-model", str(undecided), "--no-progress"]

    def refined(*thresholds: str) -> dict[str, list[dict]]:
        out = tmp_path / "-".join(thresholds)
        prox("refine", str(path), "-o", str(out), *model, *thresholds)
        return outputs(out)

    [kept] = refined("--doc-threshold", "0.6", "--line-threshold", "0.6")["data"]
    assert kept["text"] == "\n".join(PAGE) and kept["metadata"]["prox"]["doc_score"] == 0.5
    [no_lines] = refined("--doc-threshold", "0.6", "--line-threshold", "0.4")["dropped"]
    assert no_lines["metadata"]["prox"]["drop_reason"] == "low_word_ratio"  # every line removed
    [dropped] = refined("--doc-threshold", "0.4", "--line-threshold", "0.6")["dropped"]
    assert dropped["metadata"]["prox"]["drop_reason"] == "doc_program"


def test_threads_sets_the_torch_threads_of_each_model_step(doc_server, tiny_refiner, tmp_path, monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)  # not this test process's own threads
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "p", "text": "A page."}])
    prox("refine", str(path), "-o", str(tmp_path / "out"), *served(doc_server, tiny_refiner, "--threads", "3"))
    assert calls == [3]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_device_and_dtype_reach_a_taggers_backbone(dtype, tiny_backbone, tmp_path, built_backbones):
    model = tagger_dir(tmp_path, tiny_backbone, -10.0, -10.0)
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "p", "text": "\n".join(PAGE)}])
    options = ["--doc-model", str(model), "--chunk-model", str(model), "--device", "cpu", "--dtype", dtype]
    prox("refine", str(path), "-o", str(tmp_path / "out"), *options, "--no-progress")
    assert built_backbones and set(built_backbones) == {("cpu", dtype)}


def test_batch_size_is_how_many_documents_each_model_call_gets(doc_server, tiny_refiner, tmp_path, monkeypatch):
    from proxkit.stages.refining import DocRefiner

    batches, refine = [], DocRefiner.refine

    def counting(self, documents, cache):
        batches.append(len(documents))
        refine(self, documents, cache)

    monkeypatch.setattr(DocRefiner, "refine", counting)
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": f"Page {i}."} for i in range(5)])
    prox("refine", str(path), "-o", str(tmp_path / "out"), *served(doc_server, tiny_refiner, "--batch-size", "2"))
    assert batches == [2, 2, 1]
    assert len(outputs(tmp_path / "out")["data"]) == 5
