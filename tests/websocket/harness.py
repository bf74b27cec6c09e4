"""One real :class:`~waitress_like.wschannel.WebSocketChannel` on a fake loop and clock.

The connection gets the server side of a socket pair (the test holds the client side) and
a handshake request already parsed, as the HTTP channel hands it over. Its session is a
recorder: what the loop side tells the application is kept in :attr:`WebSocketHarness.told`
as ``(method name, arguments)``, and the test plays the application by calling the
connection's ``app_*`` methods, as the session's scheduled calls would on the loop thread.
Nothing runs by itself: readiness (:meth:`WebSocketHarness.pump`) and time
(``harness.loop.advance``) are the test's to give, so every deadline is a script.
"""

from __future__ import annotations

import io
import socket
from typing import Any, Callable, Optional

from tests.fakeloop import FakeLoop
from tests.protocol.test_websocket import ServerFrame, parse_server_frames
from waitress_like.config import Settings
from waitress_like.loop import EVENT_READ, EVENT_WRITE
from waitress_like.protocol import ParserLimits, RequestHead, RequestParser
from waitress_like.protocol.ws_handshake import WebSocketUpgrade, upgrade_response
from waitress_like.wschannel import WebSocketChannel, WebSocketPhase, WebSocketPolicy
from waitress_like.wsgi import WSGIRequest

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
HANDSHAKE = (
    "GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
    f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode("latin-1")


def parse_head(raw: bytes) -> RequestHead:
    parser = RequestParser(ParserLimits(max_header_bytes=65536, max_body_bytes=1024))
    parser.feed(raw)
    head = parser.next_event()
    assert isinstance(head, RequestHead)
    return head


class _Listener:
    is_unix = False
    server_port = "80"


class _Session:
    """Stands for the WebSocketSession: records what the loop side tells it."""

    def __init__(self, told: list[tuple[str, tuple[Any, ...]]]) -> None:
        self._told = told

    def __getattr__(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self._told.append((name, args))

        return record


class _Service:
    def __init__(self, policy: WebSocketPolicy, session: _Session) -> None:
        self.policy = policy
        self.session = session
        self.upgrade: Optional[WebSocketUpgrade] = None
        self.logged: list[int] = []  # access-log statuses

    def environ(self, request: WSGIRequest) -> dict[str, Any]:
        return {"REQUEST_METHOD": request.head.method}

    def open_session(self, channel: Any, environ: dict[str, Any], upgrade: WebSocketUpgrade) -> _Session:
        self.upgrade = upgrade
        return self.session

    def log_handshake(self, request: WSGIRequest, environ: Any, status: int, started: float) -> None:
        self.logged.append(status)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> bool:
        callback(*args)
        return True


class _Owner:
    def __init__(self, loop: FakeLoop) -> None:
        self.loop = loop
        self.closed: list[Any] = []

    def channel_closed(self, channel: Any) -> None:
        self.closed.append(channel)


class WebSocketHarness:
    def __init__(self, handshake: bytes = HANDSHAKE, leftover: bytes = b"", **settings: Any) -> None:
        self.loop = FakeLoop()
        self.settings = Settings.from_mapping({"host": "127.0.0.1", "port": 0, **settings})
        self.told: list[tuple[str, tuple[Any, ...]]] = []
        self.service = _Service(WebSocketPolicy.from_settings(self.settings), _Session(self.told))
        self.owner = _Owner(self.loop)
        self.client, server_side = socket.socketpair()
        server_side.setblocking(False)
        self.client.settimeout(5)
        request = WSGIRequest(
            parse_head(handshake), io.BytesIO(), 0, "192.0.2.10", "40000", _Listener(), lambda: False
        )
        self.channel = WebSocketChannel(self.service, self.owner, server_side, request, leftover)  # type: ignore[arg-type]
        self.channel.start()
        self._pending = b""

    def close(self) -> None:
        self.channel.close()
        self.client.close()

    # -- playing the application -----------------------------------------------------------

    def accept(self) -> None:
        assert self.service.upgrade is not None
        self.channel.app_accepted(upgrade_response(self.service.upgrade))
        head = self.read_head()
        assert head.startswith(b"HTTP/1.1 101 "), head

    def told_names(self) -> list[str]:
        return [name for name, _ in self.told]

    def delivered(self) -> list[dict[str, Any]]:
        return [args[0] for name, args in self.told if name == "deliver"]

    # -- playing the client ----------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.client.sendall(data)
        self.pump()

    def pump(self) -> None:
        """Report the socket ready for what the connection waits on, until it stops."""
        sock = self.channel.socket
        for _ in range(1000):
            if self.channel.phase is WebSocketPhase.CLOSED:
                return
            mask = self.loop.events_for(sock) & (EVENT_READ | EVENT_WRITE)
            if mask & EVENT_READ and not _readable(sock):
                mask &= ~EVENT_READ
            if not mask or not self.loop.deliver(sock, mask):
                return

    def received(self) -> bytes:
        """What the client can read now without waiting, plus b"<EOF>" once closed."""
        data = self._pending
        self._pending = b""
        self.client.setblocking(False)
        try:
            while True:
                chunk = self.client.recv(65536)
                if not chunk:
                    return data + b"<EOF>"
                data += chunk
        except BlockingIOError:
            return data
        finally:
            self.client.settimeout(5)

    def read_head(self) -> bytes:
        data = self.received()
        end = data.index(b"\r\n\r\n") + 4
        self._pending = data[end:]
        return data[:end]

    def frames(self) -> tuple[list[ServerFrame], bool]:
        """The frames the client can read now, and whether the connection has closed."""
        data = self.received()
        closed = data.endswith(b"<EOF>")
        return parse_server_frames(data[:-5] if closed else data), closed


def _readable(sock: socket.socket) -> bool:
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True
