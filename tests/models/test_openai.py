"""The OpenAI-compatible backend against real servers on loopback: `prox serve` with a tiny model, and
servers that fail on purpose (500s, timeouts)."""

import re
import subprocess
import sys
import time

import httpx
import pytest
from servers import FlakyServer

from proxkit.models.hf import TransformersWriter
from proxkit.models.openai import OpenAIWriter
from proxkit.models.tokenizers import load_tokenizer
from proxkit.prompts import chunk_prompt_ids, doc_prompt_ids


@pytest.fixture(scope="module")
def served(tiny_refiner):
    """`prox serve` in its own process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "proxkit", "serve", "--model", str(tiny_refiner), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if match := re.search(r"serving .* on (http://\S+)", line):
                url = match.group(1)
            assert line or process.poll() is None, "prox serve exited before serving"
        assert url, "prox serve did not start"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def prompts(tokenizer):
    pages = ["A page about trains.", "Home | About\nThe council met.", "x " * 40]
    return [doc_prompt_ids(page, tokenizer).ids for page in pages] + [chunk_prompt_ids("[000]Hi", tokenizer).ids]


def test_the_endpoint_writes_what_the_model_writes_in_process(served, tiny_refiner):
    tokenizer = load_tokenizer(tiny_refiner)
    remote = OpenAIWriter(served, "tiny", concurrency=3).generate(prompts(tokenizer), max_new_tokens=6)
    local = TransformersWriter(tiny_refiner, tokenizer).generate(prompts(tokenizer), max_new_tokens=6)
    assert [g.text for g in remote] == [g.text for g in local]
    assert [g.new_tokens for g in remote] == [6, 6, 6, 6]
    assert all(g.error is None for g in remote)


def test_the_server_speaks_the_completions_api(served):
    models = httpx.get(f"{served}/models").json()
    assert models["data"][0]["object"] == "model"
    reply = httpx.post(f"{served}/completions", json={"prompt": ["<s>[INST] hi [/INST]", [1, 5, 6]], "max_tokens": 3})
    body = reply.json()
    assert reply.status_code == 200
    assert [choice["index"] for choice in body["choices"]] == [0, 1]
    assert body["usage"]["completion_tokens"] == 6
    bad = httpx.post(f"{served}/completions", json={"max_tokens": 3})
    assert bad.status_code == 400


def test_server_errors_are_retried_with_backoff():
    server = FlakyServer(failures=2, status=500)
    try:
        started = time.monotonic()
        [generation] = OpenAIWriter(server.url, "m", retries=3, backoff=0.1).generate([[1, 2, 3]], 8)
        assert generation.text == " keep_doc()" and generation.new_tokens == 4 and generation.error is None
        assert server.requests == 3
        assert time.monotonic() - started >= 0.1 + 0.2  # two waits: 0.1 s then 0.2 s
    finally:
        server.close()


def test_a_server_that_keeps_failing_gives_an_error_not_an_exception():
    server = FlakyServer(failures=100, status=503)
    try:
        [generation] = OpenAIWriter(server.url, "m", retries=2, backoff=0.01).generate([[1, 2]], 8)
        assert generation.text == ""
        assert "gave up after 3 attempts: HTTP 503" in generation.error
        assert server.requests == 3
    finally:
        server.close()


def test_a_client_error_is_not_retried():
    server = FlakyServer(failures=100, status=400)
    try:
        [generation] = OpenAIWriter(server.url, "m", retries=3, backoff=0.01).generate([[1]], 8)
        assert "HTTP 400" in generation.error
        assert server.requests == 1
    finally:
        server.close()


def test_a_server_that_times_out_gives_an_error():
    server = FlakyServer(failures=100, status=200, delay=1.0)
    try:
        [generation] = OpenAIWriter(server.url, "m", timeout=0.2, retries=1, backoff=0.01).generate([[1]], 8)
        assert "timed out after 0.2s" in generation.error
    finally:
        server.close()


def test_nothing_listening_gives_an_error():
    [generation] = OpenAIWriter("http://127.0.0.1:9/v1", "m", retries=1, backoff=0.01).generate([[1]], 8)
    assert "gave up after 2 attempts" in generation.error


def test_concurrency_is_bounded():
    server = FlakyServer(failures=0, hold=0.05)
    try:
        generations = OpenAIWriter(server.url, "m", concurrency=3).generate([[i] for i in range(12)], 4)
        assert [g.text for g in generations] == [" keep_doc()"] * 12
        assert 2 <= server.max_in_flight <= 3
    finally:
        server.close()
    with pytest.raises(ValueError):
        OpenAIWriter(server.url, "m", concurrency=0)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"choices": [{"text": null}]}', "choices[0].text is NoneType"),
        (b'{"choices": [{"text": 5}]}', "choices[0].text is int"),
        (b'{"choices": []}', "no choices[0]"),
        (b'{"choices": [{"text": "x"}], "usage": {"completion_tokens": "4"}}', "usage.completion_tokens is '4'"),
        (b'{"choices": [{"text": "x"}], "usage": {"completion_tokens": 900}}', "900 tokens, over max_tokens=8"),
        (b'{"choices": [{"text": "' + b"x" * 10_000 + b'"}]}', "10000 characters, over max_tokens=8"),
        (b"[1, 2]", "no choices[0]"),
        (b"not json", "unreadable completion"),
    ],
)
def test_a_malformed_completion_fails_its_prompt_only(body, problem):
    server = FlakyServer(failures=0, body=body)
    try:
        [generation] = OpenAIWriter(server.url, "m", retries=0).generate([[1, 2]], 8)
        assert generation.text == "" and problem in generation.error
    finally:
        server.close()


def test_a_null_usage_is_read_as_no_count():
    server = FlakyServer(failures=0, body=b'{"choices": [{"text": " keep_doc()"}], "usage": null}')
    try:
        [generation] = OpenAIWriter(server.url, "m").generate([[1, 2]], 8)
        assert generation.text == " keep_doc()" and generation.error is None and generation.new_tokens == 0
    finally:
        server.close()


def test_retry_after_is_honoured():
    server = FlakyServer(failures=1, status=429, retry_after="0.5")
    try:
        started = time.monotonic()
        [generation] = OpenAIWriter(server.url, "m", retries=2, backoff=0.01).generate([[1]], 8)
        assert generation.error is None and time.monotonic() - started >= 0.5
    finally:
        server.close()


def test_an_api_key_is_masked_in_reprs_and_one_from_the_environment_pickles_as_its_name(monkeypatch):
    import pickle

    from proxkit.models.openai import Secret, masked
    from proxkit.run import forwarded_environment

    writer = OpenAIWriter("http://127.0.0.1:1/v1", "m", api_key="sk-hidden")
    assert "sk-hidden" not in repr(vars(writer)) and "sk-hidden" not in str(writer.api_key)
    assert b"sk-hidden" in pickle.dumps(writer)  # a key given as an option travels with the task
    assert pickle.loads(pickle.dumps(writer)).api_key == Secret("sk-hidden")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert forwarded_environment() == {"env_vars": {"OPENAI_API_KEY": "sk-from-env"}}
    pickled = pickle.dumps(masked("sk-from-env"))
    assert b"sk-from-env" not in pickled
    monkeypatch.setenv("OPENAI_API_KEY", "sk-on-the-node")
    assert pickle.loads(pickled).value == "sk-on-the-node"  # read where the task runs
    assert masked("") is None and not OpenAIWriter("http://127.0.0.1:1/v1", "m", api_key="").api_key
    monkeypatch.delenv("OPENAI_API_KEY")
    assert forwarded_environment() is None
