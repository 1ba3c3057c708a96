"""Completions servers on loopback that misbehave on purpose, for testing clients."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """Start `handler` on a free loopback port in a daemon thread: (server, base URL ending in /v1)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def reply(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200) -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class FlakyServer:
    """A loopback completions server that fails the first `failures` requests with `status`, or sleeps."""

    def __init__(
        self,
        failures: int,
        status: int = 500,
        delay: float = 0.0,
        hold: float = 0.0,
        body: bytes = b'{"choices": [{"text": " keep_doc()"}], "usage": {"completion_tokens": 4}}',
        retry_after: str | None = None,
    ) -> None:
        self.requests = 0
        self.authorizations: list[str | None] = []  # each request's Authorization header
        self.payloads: list[bytes] = []  # and its body
        self.in_flight = self.max_in_flight = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                outer.payloads.append(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests += 1
                outer.authorizations.append(self.headers.get("Authorization"))
                if outer.requests <= failures:
                    time.sleep(delay)
                    self.send_response(status)
                    if retry_after is not None:
                        self.send_header("Retry-After", retry_after)
                    self.end_headers()
                    self.wfile.write(b"overloaded")
                    return
                with lock:
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                time.sleep(hold)
                with lock:
                    outer.in_flight -= 1
                reply(self, body)

        self.server, self.url = serve(Handler)

    def close(self):
        self.server.shutdown()


class ScriptedChatServer:
    """A loopback chat-completions server answering like a careful annotator: scores from `scores`, for
    chunk prompts a python block removing every line that contains "Home |" or "©", and for rewrite prompts
    the document without those lines and without " Share this: Facebook", followed by `invented` (text a
    model adds)."""

    def __init__(self, scores: tuple[int, int] = (3, 4), invented: str = "") -> None:
        import json
        import re

        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests += 1
                prompt = request["messages"][0]["content"]
                if "Educational score" in prompt:
                    answer = f"Clear and useful.\nEducational score: {scores[0]}"
                elif "Extraction Quality Score" in prompt:
                    answer = f"Mostly clean.\nExtraction Quality Score: {scores[1]}"
                elif "<clean>" in prompt:
                    document = prompt.split("<document>\n", 1)[1].rsplit("\n</document>", 1)[0]
                    kept = [line for line in document.split("\n") if "Home |" not in line and "©" not in line]
                    copy = "\n".join(kept).replace(" Share this: Facebook", "") + invented
                    answer = f"Here it is.\n<clean>\n{copy}\n</clean>"
                else:
                    text = prompt.rsplit("[doc]\n", 1)[1]
                    calls = [
                        f"remove_lines({n}, {n})  # boilerplate"
                        for n, line in re.findall(r"\[(\d+)\](.*)", text)
                        if "Home |" in line or "©" in line
                    ]
                    answer = "```python\n" + ("\n".join(calls) or "untouch_doc()") + "\n```"
                reply(self, json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode())

        self.server, self.url = serve(Handler)

    def close(self):
        self.server.shutdown()
