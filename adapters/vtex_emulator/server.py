"""The emulator's HTTP server: stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 keep-alive.

Invariant: a request reaches the emulator with its path exactly as it arrived (still
percent-encoded), so routing sees an encoded '/' inside an id as part of that id and the
request log keeps the raw path for tests; and every request gets an answer, except the ones
the "drop" fault and a stopped server cut on purpose. An emulator bug answers 500
``emulator.bug`` with a traceback on stderr, so it never passes for an injected fault.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

MAX_BODY = 10 * 1024 * 1024
JSON = "application/json; charset=utf-8"


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False


def json_reply(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Reply(status, body, JSON, headers or {})


def error_reply(
    status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None
) -> Reply:
    # VTEX's own error envelope, plus the validation details when there are some.
    data: dict[str, Any] = {"error": {"code": code, "message": message, "exception": None}}
    if errors is not None:
        data["errors"] = errors
    return json_reply(status, data)


class Application(Protocol):
    """What the server needs from the emulator."""

    def serving(self, server: EmulatorServer) -> bool: ...

    def opened(self, conn: socket.socket) -> None: ...

    def closed(self, conn: socket.socket) -> None: ...

    def control(
        self, method: str, path: str, query: str, body: bytes, conn: socket.socket
    ) -> Reply: ...

    def api(
        self, method: str, path: str, query: str, headers: Message, body: bytes, received: float
    ) -> Reply | None: ...


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    # A benchmark opens many connections at once; the default backlog of 5 would stall them.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], application: Application) -> None:
        self.application = application
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up, and stop() and the "down" fault cut connections on purpose.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "VtexEmulator/1.0"
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK would add
    # ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: EmulatorServer

    def setup(self) -> None:
        super().setup()
        self.server.application.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.application.closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        received = time.time()
        application = self.server.application
        url = urlsplit(self.path)
        control = url.path == "/_emulator" or url.path.startswith("/_emulator/")
        if not application.serving(self.server) and not control:
            # A connection accepted just before stop() escaped the cut; while down, nothing
            # is answered.
            self.close_connection = True
            return
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True
            self._send(error_reply(400, "emulator.unreadable-body", str(exc)))
            return
        try:
            if control:
                reply: Reply | None = application.control(
                    self.command, url.path, url.query, body, self.connection
                )
            else:
                reply = application.api(
                    self.command, url.path, url.query, self.headers, body, received
                )
        except Exception as exc:
            traceback.print_exc()
            reply = error_reply(500, "emulator.bug", f"{type(exc).__name__}: {exc}")
        if reply is None:
            # The "drop" fault: the request was read, no answer will ever come.
            self.close_connection = True
            return
        self._send(reply)

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise ValueError(f"Content-Length {length!r} is not a number") from None
        if not 0 <= size <= MAX_BODY:
            raise ValueError(f"Content-Length {size} is out of range")
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537).split(b";")[0].strip() or b"0"
            try:
                size = int(line, 16)
            except ValueError:
                raise ValueError(f"bad chunk size {line[:20]!r}") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise ValueError("chunked body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if reply.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(reply.body)
