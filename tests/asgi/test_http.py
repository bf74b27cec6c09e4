"""The ASGI HTTP spec through the bridge, over real sockets, with hand-written apps."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from pathlib import Path

import pytest

from tests.asgi.helpers import (
    WAIT_SECONDS,
    adapter_of,
    echo_scope_app,
    other_tasks,
    read_body,
    reject_lifespan,
    send_text,
)
from tests.httpclient import Connection, request

GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


def read_until(conn: Connection, marker: bytes) -> None:
    """Receive until ``marker`` is in the connection's buffer (it stays there)."""
    while marker not in conn.buffer:
        assert conn._fill(), f"connection closed before {marker!r} arrived"


def chunked(pieces: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


# -- the scope ---------------------------------------------------------------------------


def test_scope_contents(start_server):
    server = start_server(echo_scope_app)
    with Connection(server.address) as conn:
        conn.send(
            b"GET /caf%C3%A9/x%20y?a=1&b=%C3%A9 HTTP/1.1\r\nHost: example.com:8080\r\n"
            b"X-Custom: one\r\nAccept: */*\r\nX-Custom: two\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"
        )
        response = conn.read_response()
        client_port = conn.sock.getsockname()[1]
    scope = json.loads(response.body)
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café/x y"
    assert scope["raw_path"] == "/caf%C3%A9/x%20y"
    assert scope["query_string"] == "a=1&b=%C3%A9"
    assert scope["root_path"] == ""
    # Lower-case names, arrival order; repeats combined as the environ combines them.
    assert scope["headers"] == [
        ["host", "example.com:8080"],
        ["x-custom", "one, two"],
        ["accept", "*/*"],
        ["cookie", "a=1; b=2"],
    ]
    assert scope["client"] == ["127.0.0.1", client_port]
    assert scope["server"] == ["waitress.invalid", server.address[1]]
    assert scope["state"] == {"marker": "from-startup"}


def test_scope_under_a_url_prefix(start_server):
    server = start_server(echo_scope_app, url_prefix="/app")
    response = request(server.address, b"GET /app/items/%E2%9C%93?q HTTP/1.1\r\nHost: h\r\n\r\n")
    scope = json.loads(response.body)
    assert scope["root_path"] == "/app"
    assert scope["path"] == "/app/items/\u2713"  # the full path, root_path included
    assert scope["raw_path"] == "/app/items/%E2%9C%93"
    assert scope["query_string"] == "q"


def test_scope_of_an_http_10_request_with_a_body(start_server):
    server = start_server(echo_scope_app)
    response = request(
        server.address, b"POST /form HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc"
    )
    scope = json.loads(response.body)
    assert scope["http_version"] == "1.0"
    assert scope["method"] == "POST"
    assert scope["headers"] == [["content-type", "text/plain"], ["content-length", "3"]]


def test_each_request_gets_its_own_copy_of_the_lifespan_state(start_server):
    seen = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["shared"] = ["startup"]
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append(dict(scope["state"]))
        scope["state"]["per_request"] = True  # must not leak into the next request
        scope["state"]["shared"].append("request")  # shallow: the same list
        await send_text(send, "ok")

    server = start_server(app)
    request(server.address, GET)
    request(server.address, GET)
    assert seen[0] == {"shared": ["startup", "request", "request"]}
    assert seen[1] == seen[0]
    assert "per_request" not in adapter_of(server).state


# -- request bodies ----------------------------------------------------------------------


def test_chunked_upload_without_content_length_is_streamed_in_blocks(start_server):
    seen = {}

    async def app(scope, receive, send):
        if await reject_lifespan(scope, receive, send):
            return
        body, messages = await read_body(receive)
        seen["headers"] = dict(scope["headers"])
        seen["messages"] = messages
        await send_text(send, f"{len(body)} {body.count(b'x')}")

    server = start_server(app)
    pieces = [b"x" * 10_000] * 30  # 300,000 bytes, sent in 10 kB chunks
    response = request(
        server.address,
        b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(pieces),
    )
    assert response.status == 200
    assert response.body == b"300000 300000"
    messages = seen["messages"]
    assert len(messages) >= 4, messages
    assert all(more for _, more in messages[:-1]) and not messages[-1][1]
    assert all(size <= 65536 for size, _ in messages)
    assert sum(size for size, _ in messages) == 300_000
    # The app sees the decoded body's length, never a Transfer-Encoding that contradicts it.
    assert seen["headers"][b"content-length"] == b"300000"
    assert b"transfer-encoding" not in seen["headers"]


def test_small_body_arrives_in_one_message(start_server):
    seen = []

    async def app(scope, receive, send):
        if await reject_lifespan(scope, receive, send):
            return
        seen.append(await receive())
        await send_text(send, "ok")

    server = start_server(app)
    request(server.address, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
    request(server.address, GET)
    assert seen == [
        {"type": "http.request", "body": b"hello", "more_body": False},
        {"type": "http.request", "body": b"", "more_body": False},
    ]


# -- responses ---------------------------------------------------------------------------


def test_streamed_chunks_reach_the_client_while_the_app_still_runs(start_server):
    holder = {}

    async def app(scope, receive, send):
        if await reject_lifespan(scope, receive, send):
            return
        holder["loop"] = asyncio.get_running_loop()
        holder["release"] = release = asyncio.Event()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"first-part;", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"second-part", "more_body": False})

    server = start_server(app)
    with Connection(server.address) as conn:
        conn.send(GET)
        read_until(conn, b"first-part;")  # while the app waits for the release
        holder["loop"].call_soon_threadsafe(holder["release"].set)
        response = conn.read_response()
    assert response.status == 200
    assert response.header("Transfer-Encoding") == "chunked"
    assert response.body == b"first-part;second-part"


def test_single_body_message_gets_a_content_length(start_server):
    async def app(scope, receive, send):
        if await reject_lifespan(scope, receive, send):
            return
        await send({"type": "http.response.start", "status": 201, "headers": [(b"X-Thing", b"caf\xe9")]})
        await send({"type": "http.response.body", "body": b"made", "more_body": False})

    server = start_server(app)
    response = request(server.address, GET)
    assert (response.status, response.reason) == (201, "Created")
    assert response.header("Content-Length") == "4"
    assert response.header("X-Thing") == "caf\xe9"  # header bytes pass through as latin-1
    assert response.body == b"made"


def test_empty_and_memoryview_chunks(start_server):
    async def app(scope, receive, send):
        if await reject_lifespan(scope, receive, send):
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await send({"type": "http.response.body", "body": memoryview(b"view;"), "more_body": True})
        await send({"type": "http.response.body", "body": bytearray(b"array"), "more_body": True})
        await send({"type": "http.response.body"})

    server = start_server(app)
    response = request(server.address, GET)
    assert response.body == b"view;array"


def test_hop_by_hop_headers_from_the_app_are_dropped(start_server):
    async def app(scope, receive, send):
        if await reject_lifespan(scope, receive, send):
            return
        headers = [
            (b"connection", b"close"),
            (b"transfer-encoding", b"chunked"),
            (b"keep-alive", b"timeout=5"),
            (b"content-length", b"2"),
            (b"x-kept", b"yes"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    server = start_server(app)
    with Connection(server.address) as conn:
        for _ in range(2):  # the app's "Connection: close" did not close the connection
            conn.send(GET)
            response = conn.read_response()
            assert response.status == 200 and response.body == b"ok"
            assert response.header("X-Kept") == "yes"
            assert response.header("Transfer-Encoding") is None
            assert response.header("Keep-Alive") is None
            assert not response.closes


def test_head_request_and_no_content_status(start_server):
    async def app(scope, receive, send):
        if await reject_lifespan(scope, receive, send):
            return
        status = 204 if scope["path"] == "/nothing" else 200
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"" if status == 204 else b"hello"})

    server = start_server(app)
    with Connection(server.address) as conn:
        conn.send(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
        head = conn.read_response("HEAD")
        conn.send(b"GET /nothing HTTP/1.1\r\nHost: h\r\n\r\n")
        nothing = conn.read_response()
        conn.send(GET)
        full = conn.read_response()
    assert head.status == 200 and head.header("Content-Length") == "5"
    assert nothing.status == 204 and nothing.body == b""
    assert full.body == b"hello"


def test_trailers_are_ignored(start_server):
    async def app(scope, receive, send):
        if await reject_lifespan(scope, receive, send):
            return
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"data", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send(
            {"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")], "more_trailers": False}
        )

    server = start_server(app)
    with Connection(server.address) as conn:
        conn.send(GET)
        assert conn.read_response().body == b"data"
        conn.send(GET)  # and the connection is still good
        assert conn.read_response().body == b"data"


# -- back-pressure -----------------------------------------------------------------------


def _send_buffer_limit() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return 4 * 1024 * 1024


def test_a_client_that_reads_slowly_holds_the_app_back(start_server):
    chunk = b"x" * 65536
    chunk_count = 256  # 16 MiB
    produced = [0]

    async def app(scope, receive, send):
        if await reject_lifespan(scope, receive, send):
            return
        await send({"type": "http.response.start", "status": 200})
        for _ in range(chunk_count):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            produced[0] += len(chunk)
        await send({"type": "http.response.body"})

    high_watermark = 65536
    server = start_server(app, outbuf_high_watermark=high_watermark)
    receive_buffer = 65536
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(3.0)  # the whole response takes well under a second
    # Whatever the kernel buffers on both sides, plus the pipe, plus a chunk or two in
    # flight between the app and the worker: the app can never be further ahead.
    bound = _send_buffer_limit() + 2 * sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) + high_watermark
    bound += 3 * len(chunk)
    received = 0
    largest_lead = 0
    tail = b""
    with sock:
        sock.connect(server.address)
        sock.sendall(GET)
        while not tail.endswith(b"\r\n0\r\n\r\n"):  # the last chunk
            data = sock.recv(16384)
            assert data, "the connection closed before the response was complete"
            received += len(data)
            largest_lead = max(largest_lead, produced[0] - received)
            tail = (tail + data)[-16:]
    assert produced[0] == chunk_count * len(chunk)
    assert received > produced[0]
    assert largest_lead <= bound, (largest_lead, bound)


# -- the client going away ---------------------------------------------------------------


def test_client_gone_while_streaming(start_server):
    seen = {}
    finished = threading.Event()

    async def app(scope, receive, send):
        if await reject_lifespan(scope, receive, send):
            return
        try:
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"first;", "more_body": True})
            assert (await receive())["more_body"] is False  # the (empty) request body
            seen["message"] = await receive()
            await send({"type": "http.response.body", "body": b"lost", "more_body": True})  # a no-op
            seen["sent after"] = True
            await asyncio.Event().wait()  # only cancellation ends this
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise
        finally:
            finished.set()

    server = start_server(app, lifespan="off")
    with Connection(server.address) as conn:
        conn.send(GET)
        read_until(conn, b"first;")
    assert finished.wait(WAIT_SECONDS)
    assert seen == {"message": {"type": "http.disconnect"}, "sent after": True, "cancelled": True}
    assert other_tasks(adapter_of(server).loop) == []


def test_client_gone_before_the_response_starts(start_server):
    seen = []
    started = threading.Event()
    finished = threading.Event()

    async def app(scope, receive, send):
        try:
            seen.append(await receive())
            started.set()
            seen.append(await receive())  # waits for the disconnect
        finally:
            finished.set()

    server = start_server(app, lifespan="off")
    with Connection(server.address) as conn:
        conn.send(GET)
        assert started.wait(WAIT_SECONDS)
    assert finished.wait(WAIT_SECONDS)
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}]
    assert other_tasks(adapter_of(server).loop) == []


def test_app_that_keeps_sending_after_the_client_left_is_cancelled(start_server):
    finished = threading.Event()
    outcome = []

    async def app(scope, receive, send):
        try:
            await send({"type": "http.response.start", "status": 200})
            while True:
                await send({"type": "http.response.body", "body": b"tick;" * 1000, "more_body": True})
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        finally:
            finished.set()

    server = start_server(app, lifespan="off")
    with Connection(server.address) as conn:
        conn.send(GET)
        read_until(conn, b"tick;")
    assert finished.wait(WAIT_SECONDS)
    assert outcome == ["cancelled"]
    assert other_tasks(adapter_of(server).loop) == []


# -- errors ------------------------------------------------------------------------------


def test_exception_before_the_response_starts_is_a_500(start_server, caplog):
    async def app(scope, receive, send):
        raise KeyError("no such thing")

    server = start_server(app, lifespan="off")
    with caplog.at_level(logging.ERROR, logger="waitress_like"):
        response = request(server.address, GET)
    assert response.status == 500
    assert response.closes
    assert any("KeyError" in (record.exc_text or "") for record in caplog.records)


def test_exception_after_start_but_before_any_body_is_still_a_500(start_server):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
        raise RuntimeError("boom")

    server = start_server(app, lifespan="off")
    response = request(server.address, GET)
    assert response.status == 500  # nothing had gone out yet
    assert response.header("X-App") is None


def test_exception_after_the_first_chunk_cuts_the_connection(start_server):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"partial;", "more_body": True})
        raise RuntimeError("boom")

    server = start_server(app, lifespan="off")
    with Connection(server.address) as conn:
        conn.send(GET)
        with pytest.raises(EOFError):
            conn.read_response()  # a chunked body without its last chunk
        assert b"partial;" in conn.buffer or conn.is_closed_by_peer()


@pytest.mark.parametrize(
    "messages, status",
    [
        ([], 500),  # returned without a response
        ([{"type": "http.response.start", "status": 200}], 500),  # without a body
        ([{"type": "http.response.body", "body": b"x"}], 500),  # body before start
        ([{"type": "http.response.start", "status": "200"}], 500),  # status not an int
        ([{"type": "websocket.accept"}], 500),
        ([{"type": "http.response.zerocopysend", "file": 0}], 500),  # extension not offered
    ],
)
def test_broken_responses_are_a_500(start_server, messages, status):
    async def app(scope, receive, send):
        for message in messages:
            await send(message)

    server = start_server(app, lifespan="off")
    assert request(server.address, GET).status == status


def test_returning_mid_stream_cuts_the_connection(start_server):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})

    server = start_server(app, lifespan="off")
    with Connection(server.address) as conn:
        conn.send(GET)
        with pytest.raises(EOFError):
            conn.read_response()


def test_response_start_twice_is_an_error(start_server):
    errors = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200})
        try:
            await send({"type": "http.response.start", "status": 404})
        except RuntimeError as error:
            errors.append(str(error))
        await send({"type": "http.response.body", "body": b"first wins"})

    server = start_server(app, lifespan="off")
    response = request(server.address, GET)
    assert (response.status, response.body) == (200, b"first wins")
    assert errors and "http.response.start" in errors[0]


# -- work after the response -------------------------------------------------------------


def test_work_after_the_final_body_does_not_hold_the_response(start_server):
    holder = {}
    background_done = threading.Event()

    async def app(scope, receive, send):
        await send_text(send, "response for " + scope["path"])
        if scope["path"] == "/background":
            holder["loop"] = asyncio.get_running_loop()
            holder["release"] = release = asyncio.Event()
            assert (await receive())["type"] == "http.request"  # the body, still there to read
            assert (await receive())["type"] == "http.disconnect"  # the response is complete
            await release.wait()  # "background work", after the response
            background_done.set()

    server = start_server(app, lifespan="off")
    with Connection(server.address) as conn:
        conn.send(b"GET /background HTTP/1.1\r\nHost: h\r\n\r\n")
        assert conn.read_response().body == b"response for /background"
        conn.send(GET)  # the same connection serves the next request meanwhile
        assert conn.read_response().body == b"response for /"
    assert not background_done.is_set()
    assert len(other_tasks(holder["loop"])) == 1  # the background work still runs
    holder["loop"].call_soon_threadsafe(holder["release"].set)
    assert background_done.wait(WAIT_SECONDS)


def test_close_waits_for_background_work_before_lifespan_shutdown(start_server, monkeypatch):
    events = []
    holder = {}
    background_started = threading.Event()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            events.append("lifespan shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send_text(send, "ok")
        holder["loop"] = asyncio.get_running_loop()
        holder["release"] = release = asyncio.Event()
        background_started.set()
        try:
            await release.wait()
            for _ in range(5):  # a few more turns of the loop: lifespan shutdown must wait
                await asyncio.sleep(0)
            events.append("background done")
        except asyncio.CancelledError:
            events.append("background cancelled")
            raise

    running = start_server(app)
    assert request(running.address, GET).body == b"ok"
    assert background_started.wait(WAIT_SECONDS)
    bridge = adapter_of(running)._bridge
    wait_for_tasks = bridge.wait_for_tasks

    def release_then_wait(timeout_seconds):
        # The workers have stopped; only now does the background work get to finish.
        holder["loop"].call_soon_threadsafe(holder["release"].set)
        return wait_for_tasks(timeout_seconds)

    monkeypatch.setattr(bridge, "wait_for_tasks", release_then_wait)
    running.server.close()
    assert events == ["background done", "lifespan shutdown"]
