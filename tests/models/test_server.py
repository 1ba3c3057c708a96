"""`prox serve`'s request handling in process: each request is checked alone, a model failure fails only
the prompt that caused it, bodies are capped and time out, and every request gets a status line."""

import contextlib
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from proxkit.models.server import MAX_BODY_BYTES, MAX_TOKENS_LIMIT, make_server
from proxkit.models.tokenizers import load_tokenizer
from proxkit.models.writer import Generation, ProgramWriter


class EmbeddingLikeWriter(ProgramWriter):
    """Fails the whole batch, as a model's embedding lookup does, when any prompt holds id 7 or one out of
    range; else answers with the prompt's length."""

    def __init__(self, vocabulary: int) -> None:
        self.vocabulary = vocabulary
        self.batches: list[int] = []

    def generate(self, prompts, max_new_tokens, grammar=None):
        self.batches.append(len(prompts))
        if any(token == 7 or not 0 <= token < self.vocabulary for ids in prompts for token in ids):
            raise IndexError("index out of range in self")
        return [Generation(f" {len(ids)}", 1) for ids in prompts]


@contextlib.contextmanager
def serving(writer_class, tokenizer_directory, max_batch: int, read_timeout: float):
    """`prox serve`'s server on a free loopback port around a `writer_class` writer: (base URL, writer)."""
    tokenizer = load_tokenizer(tokenizer_directory)
    writer = writer_class(tokenizer.vocab_size)
    served = make_server(writer, tokenizer, "stub", port=0, max_batch=max_batch, read_timeout=read_timeout)
    threading.Thread(target=served.serve_forever, daemon=True).start()
    host, port = served.server_address
    try:
        yield f"http://{host}:{port}/v1", writer
    finally:
        served.shutdown()
        served.server_close()


@pytest.fixture(scope="module")
def server(tiny_refiner):
    with serving(EmbeddingLikeWriter, tiny_refiner, max_batch=32, read_timeout=0.5) as (url, writer):
        yield url, writer.vocabulary, writer


def post(url: str, body: object, route: str = "/completions") -> httpx.Response:
    return httpx.post(url + route, json=body, timeout=30)


def test_one_bad_request_among_concurrent_good_ones_fails_alone(server):
    url, _, _ = server
    bodies = [{"prompt": [1, 10 + i, 6], "max_tokens": 2} for i in range(15)] + [{"prompt": [1, -5], "max_tokens": 2}]
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda body: post(url, body), bodies))
    assert [reply.status_code for reply in replies] == [200] * 15 + [400]
    assert all(reply.json()["choices"][0]["text"] == " 3" for reply in replies[:15])


def test_a_prompt_the_model_fails_on_fails_only_its_own_request(server):
    url, _, _ = server
    bodies = [{"prompt": [1, 8, 9], "max_tokens": 3} for _ in range(7)] + [{"prompt": [1, 7], "max_tokens": 3}]
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda body: post(url, body), bodies))
    assert [reply.status_code for reply in replies] == [200] * 7 + [500]
    assert "IndexError" in replies[-1].json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "route", "message"),
    [
        ({"prompt": [1, -1]}, "/completions", "outside the vocabulary"),
        ({"prompt": [1, 10**9]}, "/completions", "outside the vocabulary"),
        ({"prompt": [1, 2], "max_tokens": 0}, "/completions", "max_tokens must be an integer"),
        ({"prompt": [1, 2], "max_tokens": MAX_TOKENS_LIMIT + 1}, "/completions", "max_tokens must be an integer"),
        ({"prompt": [1, 2], "max_tokens": "4"}, "/completions", "max_tokens must be an integer"),
        ({"prompt": [[1, 2], [[3]]]}, "/completions", "prompt must be"),
        ({"prompt": []}, "/completions", "prompt must be"),
        ({"max_tokens": 3}, "/completions", "needs a prompt"),
        ([1, 2], "/completions", "must be a JSON object"),
        ({"messages": [{"role": "user"}]}, "/chat/completions", "messages[0] must be an object with a string content"),
        ({"messages": [{"role": "user", "content": None}]}, "/chat/completions", "string content"),
        ({"messages": []}, "/chat/completions", "non-empty list"),
    ],
)
def test_bad_input_is_answered_400(server, body, route, message):
    url, _, _ = server
    reply = post(url, body, route)
    assert reply.status_code == 400 and message in reply.json()["error"]["message"]


def raw_exchange(url: str, request: bytes, wait: float = 5.0) -> bytes:
    host, port = url.removeprefix("http://").removesuffix("/v1").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def test_a_body_over_the_cap_is_refused_without_being_read(server):
    url, _, _ = server
    head = f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
    assert raw_exchange(url, head + b"{}").startswith(b"HTTP/1.0 413")


def test_a_body_that_never_arrives_times_out_with_a_status_line(server):
    url, _, _ = server
    head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
    assert raw_exchange(url, head).startswith(b"HTTP/1.0 408")


def test_invalid_json_and_a_missing_length_are_client_errors(server):
    url, _, _ = server
    head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{nope"
    assert raw_exchange(url, head).startswith(b"HTTP/1.0 400")
    assert raw_exchange(url, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.0 411")


def test_many_concurrent_clients_are_all_answered(server):
    url, _, _ = server
    with ThreadPoolExecutor(64) as pool:
        replies = list(pool.map(lambda i: post(url, {"prompt": [1, 2 + i % 5], "max_tokens": 1}), range(64)))
    assert all(reply.status_code == 200 for reply in replies)
    assert json.loads(replies[0].text)["usage"]["completion_tokens"] == 1


def test_the_model_list_and_health_routes_answer_and_others_are_404(server):
    url, _, _ = server
    assert httpx.get(url + "/models", timeout=30).json()["data"][0]["id"] == "stub"
    root = url.removesuffix("/v1")
    assert httpx.get(root + "/models/", timeout=30).json()["object"] == "list"
    assert httpx.get(root + "/health", timeout=30).json() == {"status": "ok"}
    missing = httpx.get(root + "/metrics", timeout=30)
    assert missing.status_code == 404 and "no route /metrics" in missing.json()["error"]["message"]


def test_the_model_runs_on_at_most_max_batch_waiting_requests_at_a_time(tiny_refiner):
    import time

    class SlowWriter(EmbeddingLikeWriter):
        def generate(self, prompts, max_new_tokens, grammar=None):
            time.sleep(0.2)  # the other requests queue meanwhile
            return super().generate(prompts, max_new_tokens, grammar)

    with serving(SlowWriter, tiny_refiner, max_batch=2, read_timeout=5) as (url, writer), ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: post(url, {"prompt": [1, 2], "max_tokens": 1}), range(8)))
    assert all(reply.status_code == 200 for reply in replies)
    assert sum(writer.batches) == 8 and max(writer.batches) == 2


def test_prox_serve_listens_where_told_with_the_backbone_built_as_asked(
    tmp_path, tiny_backbone, built_backbones, monkeypatch
):
    from train.test_evaluate import tagger_dir
    from typer.testing import CliRunner

    from proxkit import cli
    from proxkit.models import server as server_module

    answers, make = [], server_module.make_server

    def answering_once(*args):
        made = make(*args)
        serve = made.serve_forever

        def serve_one_request() -> None:
            thread = threading.Thread(target=serve, daemon=True)
            thread.start()
            host, port = made.server_address
            answers.append((host, httpx.get(f"http://{host}:{port}/v1/models", timeout=30).json()))
            made.shutdown()
            thread.join(30)
            raise KeyboardInterrupt

        made.serve_forever = serve_one_request
        return made

    monkeypatch.setattr(server_module, "make_server", answering_once)
    model = str(tagger_dir(tmp_path, tiny_backbone, -10.0, -10.0))
    options = ["--host", "127.0.0.2", "--port", "0", "--device", "cpu", "--dtype", "bfloat16"]
    result = CliRunner().invoke(cli.app, ["serve", "--model", model, *options])
    assert result.exit_code == 0, result.output
    ((host, models),) = answers
    assert host == "127.0.0.2" and models["data"][0]["id"] == model
    assert built_backbones == [("cpu", "bfloat16")]
