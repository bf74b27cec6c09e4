"""ASGIAdapter as a plain WSGI callable: driven by hand, by WebTest, by another server."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import threading
import warnings
import wsgiref.simple_server
from typing import Any

import pytest

from tests.asgi.helpers import WAIT_SECONDS, read_body, run_on, send_text
from waitress_like.asgi import ASGIAdapter, LifespanError
from waitress_like.asgi.scope import build_http_scope


def make_environ(method: str = "GET", path: str = "/", body: bytes = b"", **extra: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.1",
        "REMOTE_PORT": "50000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    environ.update(extra)
    return environ


class StartResponse:
    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status, self.headers = status, headers
        return lambda data: None


@pytest.fixture
def adapters():
    """Adapters made by a test are shut down after it, so their loop threads stop."""
    made: list[ASGIAdapter] = []
    yield made
    for adapter in made:
        adapter.shutdown()


def test_send_returns_only_after_the_worker_took_the_chunk(adapters):
    attempted: list[int] = []
    completed: list[int] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200})
        for index in range(4):
            attempted.append(index)
            await send({"type": "http.response.body", "body": b"%d" % index, "more_body": True})
            completed.append(index)
        await send({"type": "http.response.body", "body": b"end"})

    adapter = ASGIAdapter(app, lifespan="off")
    adapters.append(adapter)
    chunks = iter(adapter(make_environ(), StartResponse()))
    assert next(chunks) == b"0"  # taken by this thread, the "worker"
    for index in range(1, 4):
        # Let everything the loop has queued run (twice: a wake-up queues the task's step).
        run_on(adapter.loop, lambda: None)
        run_on(adapter.loop, lambda: None)
        assert completed == list(range(index))  # send(index) waits for us...
        assert attempted == list(range(index + 1))  # ...and the app has not gone further
        assert next(chunks) == b"%d" % index
    assert list(chunks) == [b"end"]
    run_on(adapter.loop, lambda: None)
    run_on(adapter.loop, lambda: None)
    assert completed == [0, 1, 2, 3]


def test_body_without_length_is_read_to_the_end_when_the_input_is_terminated(adapters):
    seen = []

    async def app(scope, receive, send):
        body, messages = await read_body(receive)
        seen.append(messages)
        await send_text(send, str(len(body)))

    adapter = ASGIAdapter(app, lifespan="off")
    adapters.append(adapter)
    payload = b"y" * 200_000
    terminated = make_environ("POST", **{"wsgi.input": io.BytesIO(payload), "wsgi.input_terminated": True})
    assert b"".join(adapter(terminated, StartResponse())) == b"200000"
    messages = seen[0]
    assert [more for _, more in messages] == [True, True, True, False]
    assert sum(size for size, _ in messages) == 200_000
    # Without wsgi.input_terminated and without CONTENT_LENGTH there is no body (PEP 3333).
    unterminated = make_environ("POST", **{"wsgi.input": io.BytesIO(payload)})
    assert b"".join(adapter(unterminated, StartResponse())) == b"0"
    # CONTENT_LENGTH is never read past.
    limited = make_environ("POST", **{"wsgi.input": io.BytesIO(payload), "CONTENT_LENGTH": "70000"})
    assert b"".join(adapter(limited, StartResponse())) == b"70000"


def test_closing_the_iterator_early_cancels_the_app(adapters):
    outcome = []
    finished = threading.Event()

    async def app(scope, receive, send):
        try:
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"one", "more_body": True})
            outcome.append(await receive())  # the body
            outcome.append(await receive())  # waits for the disconnect
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        finally:
            finished.set()

    adapter = ASGIAdapter(app, lifespan="off")
    adapters.append(adapter)
    body = adapter(make_environ(), StartResponse())
    assert next(iter(body)) == b"one"
    body.close()  # what a WSGI server does when the client has gone
    assert finished.wait(WAIT_SECONDS)
    assert outcome[1:] == [{"type": "http.disconnect"}, "cancelled"]


def test_headers_and_status_reach_start_response(adapters):
    async def app(scope, receive, send):
        await send(
            {
                "type": "http.response.start",
                "status": 299,
                "headers": [
                    (b"Content-Type", b"text/plain"),
                    (b"Upgrade", b"h2c"),
                    (b"X-A", b"1"),
                    (b"X-A", b"2"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"odd"})

    adapter = ASGIAdapter(app, lifespan="off")
    adapters.append(adapter)
    start_response = StartResponse()
    assert adapter(make_environ(), start_response) == [b"odd"]
    assert start_response.status == "299 "  # no standard reason phrase
    assert start_response.headers == [("Content-Type", "text/plain"), ("X-A", "1"), ("X-A", "2")]


def test_lifespan_starts_on_the_first_request_and_stops_on_shutdown():
    events = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            events.append("startup")
            scope["state"]["db"] = "connected"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            events.append("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        events.append(f"request with {scope['state']}")
        await send_text(send, "ok")

    adapter = ASGIAdapter(app)
    assert adapter.loop is None  # nothing runs before it is needed
    assert adapter(make_environ(), StartResponse()) == [b"ok"]
    assert adapter(make_environ(), StartResponse()) == [b"ok"]
    adapter.shutdown()
    assert adapter.loop is None
    assert events == [
        "startup",
        "request with {'db': 'connected'}",
        "request with {'db': 'connected'}",
        "shutdown",
    ]
    adapter.shutdown()  # twice is fine


def test_explicit_startup_failure_is_raised_and_requests_fail_until_shutdown():
    calls = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            calls.append("startup")
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no database"})
            return
        await send_text(send, "never")

    adapter = ASGIAdapter(app)
    with pytest.raises(LifespanError, match="no database"):
        adapter.startup()
    assert adapter.loop is None
    with pytest.raises(LifespanError, match="no database"):
        adapter(make_environ(), StartResponse())  # not retried: the same error
    assert calls == ["startup"]
    adapter.shutdown()
    with pytest.raises(LifespanError):
        adapter.startup()  # after shutdown, startup is tried again
    assert calls == ["startup", "startup"]
    adapter.shutdown()


def test_shutdown_cancels_background_work_after_its_timeout(caplog):
    outcome = []
    background_started = threading.Event()

    async def app(scope, receive, send):
        await send_text(send, "done")
        background_started.set()
        try:
            await asyncio.Event().wait()  # never finishes by itself
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    adapter = ASGIAdapter(app, lifespan="off")
    assert adapter(make_environ(), StartResponse()) == [b"done"]
    assert background_started.wait(WAIT_SECONDS)
    with caplog.at_level(logging.WARNING, logger="waitress_like"):
        adapter.shutdown(timeout_seconds=0.05)
    assert outcome == ["cancelled"]
    assert "1 ASGI task(s) still running" in caplog.text


def test_lifespan_shutdown_that_never_answers_is_bounded(caplog):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await asyncio.Event().wait()  # never completes shutdown

    adapter = ASGIAdapter(app, lifespan="on")
    adapter.startup()
    with caplog.at_level(logging.WARNING, logger="waitress_like"):
        adapter.shutdown(timeout_seconds=0.05)
    assert "lifespan shutdown did not finish" in caplog.text
    assert adapter.loop is None


def test_asgi2_interface(adapters):
    class Asgi2App:
        def __init__(self, scope):
            self.scope = scope

        async def __call__(self, receive, send):
            await send_text(send, "asgi2 " + self.scope["path"])

    adapter = ASGIAdapter(Asgi2App, interface="asgi2", lifespan="off")
    adapters.append(adapter)
    assert adapter(make_environ(path="/x"), StartResponse()) == [b"asgi2 /x"]


def test_constructor_checks_its_arguments():
    with pytest.raises(TypeError):
        ASGIAdapter("not an app")
    with pytest.raises(ValueError):
        ASGIAdapter(send_text, interface="asgi4")
    with pytest.raises(ValueError):
        ASGIAdapter(send_text, lifespan="sometimes")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_starts_its_own_loop(adapters):
    pids = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            pids.append(os.getpid())
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send_text(send, f"{os.getpid()} {pids}")

    adapter = ASGIAdapter(app)
    adapters.append(adapter)
    parent_answer = b"".join(adapter(make_environ(), StartResponse()))
    assert parent_answer == f"{os.getpid()} [{os.getpid()}]".encode()
    reader, writer = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() of a threaded process
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            answer = b"".join(adapter(make_environ(), StartResponse()))
            adapter.shutdown()
            os.write(writer, answer)
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        child_answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0
    # In the child: its own loop thread and its own lifespan startup (pids has both).
    assert child_answer == f"{pid} [{os.getpid()}, {pid}]".encode()
    # The parent's loop is untouched.
    assert b"".join(adapter(make_environ(), StartResponse())) == parent_answer


def test_under_another_wsgi_server():
    """wsgiref: no input_terminated, no client_disconnected; lifespan starts lazily."""
    events = []

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            events.append("startup")
            await send({"type": "lifespan.startup.complete"})
            await receive()
            events.append("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        body, _ = await read_body(receive)
        await send_text(send, f"{scope['method']} {scope['path']} {body.decode()}")

    class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    adapter = ASGIAdapter(app)
    httpd = wsgiref.simple_server.make_server("127.0.0.1", 0, adapter, handler_class=QuietHandler)
    try:
        thread = threading.Thread(target=httpd.handle_request)
        thread.start()
        from tests.httpclient import request

        response = request(httpd.server_address, b"POST /w%C3%BC HTTP/1.0\r\nContent-Length: 4\r\n\r\nbody")
        thread.join(WAIT_SECONDS)
    finally:
        httpd.server_close()
        adapter.shutdown()
    assert response.status == 200
    assert response.body == "POST /wü body".encode()
    assert events == ["startup", "shutdown"]


def test_webtest_drives_the_adapter():
    webtest = pytest.importorskip("webtest")

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            raise ValueError("no lifespan here")
        body, _ = await read_body(receive)
        query = scope["query_string"].decode()
        await send_text(send, f"{scope['method']} {scope['path']}?{query} {body.decode()}")

    adapter = ASGIAdapter(app)
    try:
        client = webtest.TestApp(adapter)
        assert client.get("/hello", params={"a": "1"}).text == "GET /hello?a=1 "
        assert client.post("/form", params={"x": "y"}).text == "POST /form? x=y"
        assert client.get("/missing", status=200).status_int == 200
    finally:
        adapter.shutdown()


def test_scope_fallbacks_without_raw_uri_or_ports():
    environ = make_environ(path="/caf\xc3\xa9 x", SCRIPT_NAME="/root")
    del environ["REMOTE_PORT"]
    environ["SERVER_PORT"] = ""
    scope = build_http_scope(environ, {})
    assert scope["path"] == "/root/café x"
    assert scope["raw_path"] == b"/root/caf%C3%A9%20x"  # rebuilt, percent-encoded
    assert scope["client"] is None
    assert scope["server"] == ("testserver", None)
    absolute = build_http_scope(make_environ(RAW_URI="http://example.com/a%2Fb?q=1"), {})
    assert absolute["raw_path"] == b"/a%2Fb"
    bad_utf8 = build_http_scope(make_environ(path="/\xff"), {})
    assert bad_utf8["path"] == "/\ufffd"


def test_errors_around_the_response_are_reported(adapters):
    class Stop(BaseException):
        pass

    errors = []
    records: list[logging.LogRecord] = []
    logged = threading.Event()

    async def app(scope, receive, send):
        if scope["path"] == "/base-exception":
            raise Stop()  # must not kill the worker thread
        await send_text(send, "sent")
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except RuntimeError as error:
            errors.append(str(error))
        raise ValueError("failed after the response")

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "after its response was sent" in record.getMessage():
                records.append(record)
                logged.set()

    adapter = ASGIAdapter(app, lifespan="off")
    adapters.append(adapter)
    collect = Collect(logging.ERROR)
    logger = logging.getLogger("waitress_like")
    logger.addHandler(collect)
    try:
        assert adapter(make_environ(), StartResponse()) == [b"sent"]
        assert logged.wait(WAIT_SECONDS)
    finally:
        logger.removeHandler(collect)
    assert errors and "http.response.body" in errors[0]
    exc_info = records[0].exc_info
    assert exc_info is not None and str(exc_info[1]) == "failed after the response"
    with pytest.raises(RuntimeError, match="raised Stop before sending a response"):
        adapter(make_environ(path="/base-exception"), StartResponse())


def test_a_body_shorter_than_its_content_length_ends_early(adapters):
    seen = []

    async def app(scope, receive, send):
        body, messages = await read_body(receive)
        seen.append((body, messages))
        await send_text(send, "ok")

    adapter = ASGIAdapter(app, lifespan="off")
    adapters.append(adapter)
    short = make_environ("POST", **{"wsgi.input": io.BytesIO(b"x" * 70_000), "CONTENT_LENGTH": "100000"})
    adapter(short, StartResponse())
    bogus = make_environ("POST", **{"wsgi.input": io.BytesIO(b"abc"), "CONTENT_LENGTH": "three"})
    adapter(bogus, StartResponse())
    assert seen[0] == (b"x" * 70_000, [(65536, True), (4464, True), (0, False)])
    assert seen[1] == (b"", [(0, False)])
