"""`prox serve`: an OpenAI-compatible completions server in front of any ProgramWriter.

Concurrent requests are gathered into batches for the model. Prompts may be strings or token-id arrays
(one prompt, or a list of them). Chat requests are rendered with the tokenizer's chat template, or the
Llama-2 chat string of the ProX prompts when it has none. Endpoints: POST /v1/completions,
POST /v1/chat/completions, GET /v1/models, GET /health.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from proxkit.models.base import Generation, ProgramWriter
from proxkit.prompts import BOS, Tokenizer, chat_prompt


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
                group = [item for item in batch if item[1] == max_tokens]
                try:
                    generations = self.writer.generate([item[0] for item in group], max_tokens)
                    answered = list(zip(group, generations, strict=True))
                except Exception as error:  # the server keeps serving; each waiting client gets the error
                    for *_, future in group:
                        future.set_exception(error)
                    continue
                for (*_, future), generation in answered:
                    future.set_result(generation)


def make_server(
    writer: ProgramWriter,
    tokenizer: Tokenizer,
    model_name: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 16,
) -> ThreadingHTTPServer:
    """A server ready to `serve_forever()`; port 0 picks a free port (see `server.server_address`)."""
    batcher = _Batcher(writer, max_batch)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args) -> None:  # quiet: the client logs what matters
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
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
            route = self.path.rstrip("/").removeprefix("/v1")
            if route not in ("/completions", "/chat/completions"):
                self._reply(404, {"error": {"message": f"no route {self.path}"}})
                return
            chat = route == "/chat/completions"
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompts = (
                    [_chat_ids(request["messages"], tokenizer)] if chat else _prompt_ids(request["prompt"], tokenizer)
                )
                max_tokens = int(request.get("max_tokens", 16))
            except (ValueError, KeyError, TypeError) as error:
                self._reply(400, {"error": {"message": f"bad request: {error}"}})
                return
            try:
                futures = [batcher.submit(ids, max_tokens) for ids in prompts]  # all queued, so they batch
                generations: list[Generation] = [future.result() for future in futures]
            except Exception as error:
                self._reply(500, {"error": {"message": f"generation failed: {error}"}})
                return
            choices = []
            for index, generation in enumerate(generations):
                finish = "length" if generation.new_tokens >= max_tokens else "stop"
                answer = (
                    {"message": {"role": "assistant", "content": generation.text}}
                    if chat
                    else {"text": generation.text}
                )
                choices.append({"index": index, "finish_reason": finish, **answer})
            usage = {
                "prompt_tokens": sum(map(len, prompts)),
                "completion_tokens": sum(g.new_tokens for g in generations),
            }
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            kind = "chat.completion" if chat else "text_completion"
            body = {"id": f"cmpl-{time.time_ns()}", "object": kind, "created": int(time.time()), "model": model_name}
            self._reply(200, body | {"choices": choices, "usage": usage})

    return ThreadingHTTPServer((host, port), Handler)


def _prompt_ids(prompt: object, tokenizer: Tokenizer) -> list[list[int]]:
    """The completions API's prompt forms: a string, a token-id array, or a list of either."""
    if isinstance(prompt, str):  # a leading literal "<s>" is the BOS, as in the ProX prompt strings
        return [[tokenizer.bos_id, *tokenizer.encode(prompt.removeprefix(BOS))]]
    if isinstance(prompt, list) and prompt and all(isinstance(token, int) for token in prompt):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        return [ids for item in prompt for ids in _prompt_ids(item, tokenizer)]
    raise ValueError("prompt must be a string, a token-id array, or a non-empty list of them")


def _chat_ids(messages: list[dict], tokenizer: Tokenizer) -> list[int]:
    """A chat request as prompt ids: the tokenizer's own chat template, else the Llama-2 chat string."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    template_owner = getattr(tokenizer, "_tokenizer", None)
    if template_owner is not None and getattr(template_owner, "chat_template", None):
        text = template_owner.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer.encode(text)
    content = "\n\n".join(str(message["content"]) for message in messages)
    return _prompt_ids(chat_prompt(content), tokenizer)[0]
