"""`prox serve`: an OpenAI-compatible completions server in front of any ProgramWriter.

Concurrent requests are gathered into batches for the model. Prompts may be strings or token-id arrays
(one prompt, or a list of them). Chat requests are rendered with the tokenizer's chat template, or the
Llama-2 chat string of the ProX prompts when it has none. Endpoints: POST /v1/completions,
POST /v1/chat/completions, GET /v1/models, GET /health.

Each request is checked alone before it reaches the model (400 for bad input, 413 for a body over
MAX_BODY_BYTES, 408 when the body does not arrive within the read timeout), and a batch the model fails on
is retried prompt by prompt, so one bad request never fails the others. Every request gets a status line.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from proxkit.models.writer import Generation, ProgramWriter
from proxkit.prompts import BOS, Tokenizer, chat_prompt

MAX_BODY_BYTES = 16 * 2**20
MAX_TOKENS_LIMIT = 8192  # the most new tokens one request may ask for
MAX_PROMPTS = 256  # prompts in one request
READ_TIMEOUT = 30.0  # seconds for a request's headers and body to arrive
LISTEN_BACKLOG = 256  # connections waiting to be accepted


class BadRequest(ValueError):
    """A request the server refuses, with the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _Batcher:
    """One thread that runs the model on whatever requests are waiting, up to `max_batch` at a time."""

    def __init__(self, writer: ProgramWriter, max_batch: int) -> None:
        self.writer = writer
        self.max_batch = max_batch
        self.waiting: queue.Queue[tuple[list[int], int, Future]] = queue.Queue()
        threading.Thread(target=self._loop, daemon=True).start()

    def submit(self, prompt: list[int], max_tokens: int) -> Future:
        future: Future = Future()
        self.waiting.put((prompt, max_tokens, future))
        return future

    def _loop(self) -> None:
        while True:
            batch = [self.waiting.get()]
            while len(batch) < self.max_batch and not self.waiting.empty():
                batch.append(self.waiting.get_nowait())
            for max_tokens in {item[1] for item in batch}:
                self._run([item for item in batch if item[1] == max_tokens], max_tokens)

    def _run(self, group: list[tuple[list[int], int, Future]], max_tokens: int) -> None:
        """Answer a group in one call; when the model fails on it, prompt by prompt, so only the prompt that
        caused the failure gets the error (the server keeps serving)."""
        try:
            generations = self.writer.generate([item[0] for item in group], max_tokens)
            answered = list(zip(group, generations, strict=True))
        except Exception as error:
            if len(group) > 1:
                for item in group:
                    self._run([item], max_tokens)
            else:
                group[0][2].set_exception(error)
            return
        for (*_, future), generation in answered:
            future.set_result(generation)


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def make_server(
    writer: ProgramWriter,
    tokenizer: Tokenizer,
    model_name: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 16,
    read_timeout: float = READ_TIMEOUT,
) -> ThreadingHTTPServer:
    """A server ready to `serve_forever()`; port 0 picks a free port (see `server.server_address`)."""
    batcher = _Batcher(writer, max_batch)
    vocabulary = _vocabulary_size(tokenizer)

    class Handler(BaseHTTPRequestHandler):
        timeout = read_timeout  # a client that stops sending is cut off, never holds a thread for ever

        def log_message(self, format: str, *args) -> None:  # quiet: the client logs what matters
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status >= 400:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._reply(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            elif self.path == "/health":
                self._reply(200, {"status": "ok"})
            else:
                self._reply(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            try:
                self._post()
            except BadRequest as error:
                self._reply(error.status, {"error": {"message": f"bad request: {error}"}})
            except TimeoutError:
                self._reply(408, {"error": {"message": f"the request body did not arrive within {read_timeout}s"}})
            except Exception as error:  # never a closed connection without a status line
                self._reply(500, {"error": {"message": f"generation failed: {type(error).__name__}: {error}"}})

        def _post(self) -> None:
            route = self.path.rstrip("/").removeprefix("/v1")
            if route not in ("/completions", "/chat/completions"):
                raise BadRequest(f"no route {self.path}", 404)
            chat = route == "/chat/completions"
            request = self._body()
            prompts = [_chat_ids(request.get("messages"), tokenizer)] if chat else _prompt_ids(request, tokenizer)
            for ids in prompts:
                _check_ids(ids, vocabulary)
            max_tokens = _max_tokens(request)
            futures = [batcher.submit(ids, max_tokens) for ids in prompts]  # all queued, so they batch
            generations: list[Generation] = [future.result() for future in futures]
            self._reply(200, _completion_body(generations, prompts, max_tokens, chat, model_name))

        def _body(self) -> dict:
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                raise BadRequest("a Content-Length header is required", 411) from None
            if not 0 <= length <= MAX_BODY_BYTES:
                raise BadRequest(f"the body must be 0..{MAX_BODY_BYTES} bytes, got {length}", 413)
            try:
                request = json.loads(self.rfile.read(length))
            except (ValueError, UnicodeDecodeError) as error:
                raise BadRequest(f"the body is not JSON ({error})") from None
            if not isinstance(request, dict):
                raise BadRequest("the body must be a JSON object")
            return request

    return _Server((host, port), Handler)


def _completion_body(
    generations: list[Generation], prompts: list[list[int]], max_tokens: int, chat: bool, model_name: str
) -> dict:
    choices = []
    for index, generation in enumerate(generations):
        finish = "length" if generation.new_tokens >= max_tokens else "stop"
        answer = {"message": {"role": "assistant", "content": generation.text}} if chat else {"text": generation.text}
        choices.append({"index": index, "finish_reason": finish, **answer})
    usage = {"prompt_tokens": sum(map(len, prompts)), "completion_tokens": sum(g.new_tokens for g in generations)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    kind = "chat.completion" if chat else "text_completion"
    body = {"id": f"cmpl-{time.time_ns()}", "object": kind, "created": int(time.time()), "model": model_name}
    return body | {"choices": choices, "usage": usage}


def _vocabulary_size(tokenizer: Tokenizer) -> int | None:
    size = getattr(tokenizer, "vocab_size", None)
    return size if isinstance(size, int) else None


def _max_tokens(request: dict) -> int:
    value = request.get("max_tokens", 16)
    if type(value) is not int or not 1 <= value <= MAX_TOKENS_LIMIT:
        raise BadRequest(f"max_tokens must be an integer in 1..{MAX_TOKENS_LIMIT}, got {value!r}")
    return value


def _check_ids(ids: list[int], vocabulary: int | None) -> None:
    if not ids:
        raise BadRequest("a prompt is empty")
    for token in ids:
        if token < 0 or (vocabulary is not None and token >= vocabulary):
            raise BadRequest(f"token id {token} is outside the vocabulary (0..{vocabulary})")


def _prompt_ids(request: dict, tokenizer: Tokenizer) -> list[list[int]]:
    if "prompt" not in request:
        raise BadRequest("a completions request needs a prompt")
    prompts = _prompt_forms(request["prompt"], tokenizer)
    if len(prompts) > MAX_PROMPTS:
        raise BadRequest(f"at most {MAX_PROMPTS} prompts per request, got {len(prompts)}")
    return prompts


def _prompt_forms(prompt: object, tokenizer: Tokenizer, nested: bool = False) -> list[list[int]]:
    """The completions API's prompt forms: a string, a token-id array, or a list of either."""
    if isinstance(prompt, str):  # a leading literal "<s>" is the BOS, as in the ProX prompt strings
        return [[tokenizer.bos_id, *tokenizer.encode(prompt.removeprefix(BOS))]]
    if isinstance(prompt, list) and prompt and all(type(token) is int for token in prompt):
        return [prompt]
    if isinstance(prompt, list) and prompt and not nested:
        return [ids for item in prompt for ids in _prompt_forms(item, tokenizer, nested=True)]
    raise BadRequest("prompt must be a string, a token-id array, or a non-empty list of them")


def _chat_ids(messages: object, tokenizer: Tokenizer) -> list[int]:
    """A chat request as prompt ids: the tokenizer's own chat template, else the Llama-2 chat string."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise BadRequest(f"messages[{index}] must be an object with a string content")
        if not isinstance(message.get("role", "user"), str):
            raise BadRequest(f"messages[{index}].role must be a string")
    template_owner = getattr(tokenizer, "_tokenizer", None)
    if template_owner is not None and getattr(template_owner, "chat_template", None):
        text = template_owner.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer.encode(text)
    content = "\n\n".join(message["content"] for message in messages)
    return _prompt_forms(chat_prompt(content), tokenizer)[0]
