"""A small round-robin HTTP load balancer for tests: each request goes to the next backend in turn.

It stands in for the load balancer in front of several `sapa serve` replicas (tests/scale/test_replicas.py).
Requests, not connections, are balanced: a client that keeps its connection open still reaches every replica,
so a webhook re-delivery or a web chat retry usually lands on another replica than the first attempt. A backend
that cannot be reached answers 502, as a real balancer would, and the sender retries.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

# Per-connection headers (RFC 9110 7.6.1) are not forwarded; the length is set again for the body sent on.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "content-length", "host"})


class RoundRobinProxy:
    """`with RoundRobinProxy([url1, url2, url3]) as proxy:` then send to `proxy.url`."""

    def __init__(self, backends: list[str], *, timeout_s: float = 30.0) -> None:
        self.backends = list(backends)
        self.served: Counter[str] = Counter()  # backend -> requests it answered
        self._next = itertools.cycle(range(len(self.backends)))
        self._lock = threading.Lock()
        self._clients = [httpx.Client(base_url=url, trust_env=False, timeout=timeout_s) for url in self.backends]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="round-robin-proxy", daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RoundRobinProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        for client in self._clients:
            client.close()

    def _pick(self) -> int:
        with self._lock:
            return next(self._next)

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes
                 ) -> tuple[int, list[tuple[str, str]], bytes]:
        index = self._pick()
        try:
            response = self._clients[index].request(method, path, headers=headers, content=body)
        except httpx.HTTPError as exc:
            return 502, [("content-type", "text/plain")], f"backend {index}: {type(exc).__name__}".encode()
        with self._lock:
            self.served[self.backends[index]] += 1
        kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in HOP_BY_HOP
                and k.lower() != "content-encoding"]  # httpx hands over the decoded body
        return response.status_code, kept, response.content

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as providers' and browsers' clients use

            def _relay(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                status, response_headers, content = proxy._forward(self.command, self.path, headers, body)
                self.send_response(status)
                for key, value in response_headers:
                    self.send_header(key, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

            def log_message(self, format: str, *args: object) -> None:
                return None  # request lines carry session ids and phone numbers: not logged

        return Handler
