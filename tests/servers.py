"""Completions servers on loopback that misbehave on purpose, for testing clients."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FlakyServer:
    """A loopback completions server that fails the first `failures` requests with `status`, or sleeps."""

    def __init__(self, failures: int, status: int = 500, delay: float = 0.0, hold: float = 0.0) -> None:
        self.requests = 0
        self.in_flight = self.max_in_flight = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                if outer.requests <= failures:
                    time.sleep(delay)
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"overloaded")
                    return
                with lock:
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                time.sleep(hold)
                with lock:
                    outer.in_flight -= 1
                body = b'{"choices": [{"text": " keep_doc()"}], "usage": {"completion_tokens": 4}}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
