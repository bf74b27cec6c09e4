"""WebSockets through the real server, with the ``websockets`` client library: the ASGI
events, the scope, refusals, close codes, limits, the drain, and the plain-HTTP paths
(a WSGI application, ``ws=none``)."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading

import pytest

websockets = pytest.importorskip("websockets")

from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from tests.asgi.helpers import WAIT_SECONDS  # noqa: E402
from tests.httpclient import request  # noqa: E402
from tests.websocket.apps import Probe, make_app  # noqa: E402
from waitress_like.wschannel import WebSocketChannel  # noqa: E402

UPGRADE = (
    b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.fixture
def serve(start_server):
    """``serve(**settings)``: (probe, url) of a running server with the test application."""

    def serve(**settings):
        probe = Probe()
        running = start_server(make_app(probe), **settings)
        host, port = running.address
        return probe, f"ws://{host}:{port}", running

    return serve


def test_echo_text_bytes_and_a_large_message(serve) -> None:
    probe, url, _ = serve()
    big = bytes(range(256)) * 12288  # 3 MiB
    with connect(url + "/echo", max_size=None) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=WAIT_SECONDS) == "héllo"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=WAIT_SECONDS) == b"\x00\xff"
        ws.send(big)
        assert ws.recv(timeout=WAIT_SECONDS) == big
        for number in range(200):
            ws.send(str(number))
        assert [ws.recv(timeout=WAIT_SECONDS) for _ in range(200)] == [str(n) for n in range(200)]
        ws.close(4123, "client done")
    assert probe.ended.wait(WAIT_SECONDS)
    assert probe.disconnects == [{"type": "websocket.disconnect", "code": 4123, "reason": "client done"}]


def test_the_websocket_scope(serve) -> None:
    probe, url, running = serve(url_prefix="/app")
    with connect(
        url + "/app/scope?x=1", subprotocols=["other", "chat"], additional_headers={"X-Test": "1"}
    ) as ws:
        assert ws.subprotocol == "chat"
        assert ws.response.headers["x-accepted"] == "yes"
        assert ws.response.headers["server"] == "waitress_like"
        assert "date" in ws.response.headers
        scope = json.loads(ws.recv(timeout=WAIT_SECONDS))
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["scheme"] == "ws" and scope["http_version"] == "1.1"
    assert scope["path"] == "/app/scope" and scope["root_path"] == "/app"
    assert scope["query_string"] == "x=1"
    assert scope["subprotocols"] == ["other", "chat"]
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert ["x-test", "1"] in scope["headers"] and ["upgrade", "websocket"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"][1] == running.address[1]  # SERVER_NAME/SERVER_PORT, as for HTTP
    assert "method" not in scope


def test_close_before_accept_answers_403(serve) -> None:
    probe, url, _ = serve()
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "/reject")
    assert refused.value.response.status_code == 403
    assert probe.ended.wait(WAIT_SECONDS)
    assert probe.disconnects == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]


def test_a_denial_response(serve) -> None:
    _, url, _ = serve()
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "/deny")
    response = refused.value.response
    assert response.status_code == 418
    assert response.headers["x-why"] == "teapot"
    assert response.body == b"no tea"


def test_the_application_closes_with_a_code_and_reason(serve) -> None:
    probe, url, _ = serve()
    with connect(url + "/close") as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=WAIT_SECONDS)
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "go away")
    assert probe.ended.wait(WAIT_SECONDS)
    assert probe.disconnects[0]["code"] == 4001  # the client echoed it
    assert len(probe.errors) == 1 and isinstance(probe.errors[0], OSError)


@pytest.mark.parametrize(("path", "code"), [("/fail-after", 1011), ("/return", 1000)])
def test_the_application_ending_after_accept_closes(serve, path: str, code: int) -> None:
    _, url, _ = serve()
    with connect(url + path) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=WAIT_SECONDS)
    assert closed.value.rcvd.code == code


def test_the_application_failing_before_accept_answers_500(serve) -> None:
    _, url, _ = serve()
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "/fail-before")
    assert refused.value.response.status_code == 500


def test_a_bad_handshake_never_reaches_the_application(serve) -> None:
    probe, url, running = serve()
    response = request(running.address, UPGRADE.replace(b"Version: 13", b"Version: 7"))
    assert response.status == 426
    assert response.header("Sec-WebSocket-Version") == "13"
    response = request(
        running.address, UPGRADE.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"")
    )
    assert response.status == 400
    assert probe.scopes == []


def test_a_message_over_ws_max_size_closes_with_1009(serve) -> None:
    probe, url, _ = serve(ws_max_size=1000)
    with connect(url + "/echo") as ws:
        ws.send("x" * 1000)
        assert ws.recv(timeout=WAIT_SECONDS) == "x" * 1000
        ws.send("x" * 1001)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_SECONDS)
    assert closed.value.rcvd.code == 1009
    assert probe.ended.wait(WAIT_SECONDS)


def test_compression_is_negotiated_unless_turned_off(serve) -> None:
    _, url, _ = serve()
    with connect(url + "/echo") as ws:
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        ws.send("z" * 10000)
        assert ws.recv(timeout=WAIT_SECONDS) == "z" * 10000
    _, url, _ = serve(ws_per_message_deflate=False)
    with connect(url + "/echo") as ws:
        assert "sec-websocket-extensions" not in ws.response.headers


def test_pipelined_requests_before_the_upgrade_are_answered_first(serve) -> None:
    _, url, running = serve()
    with socket.create_connection(running.address, timeout=WAIT_SECONDS) as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + UPGRADE)
        data = b""
        while b"101 Switching Protocols" not in data or not data.endswith(b"\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    assert data.index(b"plain HTTP") < data.index(b"101 Switching Protocols")


def test_an_open_websocket_holds_a_connection_slot_and_is_never_evicted(serve) -> None:
    probe, url, running = serve(connection_limit=1)
    with connect(url + "/wait"):
        assert probe.connected.wait(WAIT_SECONDS)
        table = running.server.channels
        (connection,) = list(table)
        assert isinstance(connection, WebSocketChannel)
        assert table.full and table.victim(0.0) is None
    assert probe.ended.wait(WAIT_SECONDS)
    assert request(running.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").body == b"plain HTTP"


def test_a_graceful_close_sends_1001_and_waits_for_the_application(serve) -> None:
    probe, url, running = serve()
    with connect(url + "/wait") as ws:
        assert probe.connected.wait(WAIT_SECONDS)
        closer = threading.Thread(target=running.server.close, args=(WAIT_SECONDS,))
        closer.start()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_SECONDS)
        closer.join(WAIT_SECONDS)
        assert not closer.is_alive()
    assert closed.value.rcvd.code == 1001
    assert probe.disconnects == [
        {"type": "websocket.disconnect", "code": 1001, "reason": "server shutting down"}
    ]
    assert running.server.drained_cleanly


def test_ws_none_passes_the_upgrade_to_the_application_as_http(serve) -> None:
    probe, url, running = serve(ws="none")
    response = request(running.address, UPGRADE)
    assert response.status == 200 and response.body == b"plain HTTP"
    assert probe.http_scopes[0]["path"] == "/echo" and probe.scopes == []


def test_a_wsgi_application_gets_the_upgrade_as_http_and_the_server_says_so(start_server, caplog) -> None:
    def wsgi_app(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no websockets here"]

    running = start_server(wsgi_app)
    with caplog.at_level(logging.DEBUG, logger="waitress_like"):
        response = request(running.address, UPGRADE)
    assert response.status == 404
    assert any("WebSockets are not available" in record.getMessage() for record in caplog.records)


def test_handshakes_are_in_the_access_log(serve, tmp_path) -> None:
    log_path = tmp_path / "access.log"
    probe, url, running = serve(access_log=str(log_path))
    with connect(url + "/echo?x=1") as ws:
        ws.send("hi")
        assert ws.recv(timeout=WAIT_SECONDS) == "hi"
    with pytest.raises(InvalidStatus):
        connect(url + "/reject")
    running.close()
    lines = log_path.read_text().splitlines()
    assert '"GET /echo?x=1 HTTP/1.1" 101' in lines[0]
    assert '"GET /reject HTTP/1.1" 403' in lines[1]


def test_echo_over_tls_with_the_tls_extension_in_the_scope(start_server, https_certificates) -> None:
    import ssl

    probe = Probe()
    running = start_server(
        make_app(probe), certfile=https_certificates.certfile, keyfile=https_certificates.keyfile
    )
    port = running.address[1]
    context = ssl.create_default_context(cafile=https_certificates.cafile)
    big = bytes(range(256)) * 8192  # 2 MiB: many TLS records each way
    with connect(f"wss://localhost:{port}/echo", ssl=context, max_size=None) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=WAIT_SECONDS) == "héllo"
        ws.send(big)
        assert ws.recv(timeout=WAIT_SECONDS) == big
        ws.close(1000, "done")
    assert probe.ended.wait(WAIT_SECONDS)
    scope = probe.scopes[0]
    assert scope["scheme"] == "wss"
    assert scope["extensions"]["tls"]["tls_version"] in (0x0303, 0x0304)
    assert "websocket.http.response" in scope["extensions"]


def test_websocket_frames_count_in_the_byte_metrics(serve) -> None:
    from tests.metrics.test_prometheus import scrape, value

    _, url, running = serve(metrics_listen="127.0.0.1:0")
    big = os.urandom(1 << 20)  # does not shrink under permessage-deflate
    with connect(url + "/echo", max_size=None) as ws:
        ws.send(big)
        assert ws.recv(timeout=WAIT_SECONDS) == big
        samples = scrape(running)  # while the connection is open
    assert value(samples, "waitress_like_connections", state="websocket") == 1
    assert value(samples, "waitress_like_received_bytes_total") > len(big)
    assert value(samples, "waitress_like_sent_bytes_total") > len(big)
