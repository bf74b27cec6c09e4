"""Starlette through the ASGI bridge over real sockets: the shared HTTP contract, JSON,
lifespan state, an async streaming response and a background task."""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")

from starlette.applications import Starlette  # noqa: E402
from starlette.background import BackgroundTask  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from tests.asgi.helpers import WAIT_SECONDS  # noqa: E402
from tests.frameworks import contract  # noqa: E402
from tests.httpclient import Connection, request  # noqa: E402

pytestmark = pytest.mark.frameworks


class Probe:
    """What the app tells the test: lifespan events, and the background task's progress."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.release: asyncio.Event | None = None
        self.background_started = threading.Event()
        self.background_done = threading.Event()


def make_app(probe: Probe) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        probe.events.append("startup")
        yield {"greeting": "hello from lifespan"}
        probe.events.append("shutdown")

    async def item(request: Request) -> Response:
        params = request.path_params
        return PlainTextResponse(
            contract.describe_item(params["item_id"], params["name"], request.query_params["q"])
        )

    async def form(request: Request) -> Response:
        async with request.form() as fields:
            return PlainTextResponse(contract.describe_form(fields["name"], fields.getlist("tags")))

    async def upload(request: Request) -> Response:
        async with request.form() as fields:
            uploaded = fields["upload"]
            data = await uploaded.read()
            return PlainTextResponse(contract.describe_upload(fields["note"], uploaded.filename, data))

    async def set_cookies(request: Request) -> Response:
        response = PlainTextResponse("cookies set")
        response.set_cookie("flavour", contract.COOKIE_FLAVOUR, path="/", httponly=True)
        response.set_cookie("visits", contract.COOKIE_VISITS, path="/")
        return response

    async def get_cookies(request: Request) -> Response:
        cookies = request.cookies
        return PlainTextResponse(contract.describe_cookies(cookies.get("flavour"), cookies.get("visits")))

    async def stream(request: Request) -> Response:
        return StreamingResponse(contract.stream_parts(request.query_params["gate"]), media_type="text/plain")

    async def echo_json(request: Request) -> Response:
        document = await request.json()
        return JSONResponse(
            {"got": document, "state": request.state.greeting, "root": request.scope["root_path"]}
        )

    async def count_down(request: Request) -> Response:
        async def numbers() -> AsyncIterator[bytes]:
            for number in range(int(request.path_params["start"]), 0, -1):
                yield b"%d\n" % number

        return StreamingResponse(numbers(), media_type="text/plain")

    async def background_work() -> None:
        probe.loop = asyncio.get_running_loop()
        probe.release = asyncio.Event()
        probe.background_started.set()
        await probe.release.wait()  # the test lets it finish once it has the response
        probe.background_done.set()

    async def with_background(request: Request) -> Response:
        return PlainTextResponse("queued", background=BackgroundTask(background_work))

    routes = [
        Route("/items/{item_id:int}/{name}", item),
        Route("/form", form, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/cookies/set", set_cookies),
        Route("/cookies/get", get_cookies),
        Route("/stream", stream),
        Route("/json", echo_json, methods=["POST"]),
        Route("/count/{start:int}", count_down),
        Route("/background", with_background),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def running(start_server, probe):
    return start_server(make_app(probe))


@pytest.fixture
def address(running):
    return running.address


def test_routing_with_path_parameters(address):
    contract.check_routing(address)


def test_urlencoded_form_post(address):
    contract.check_form_post(address)


def test_multipart_file_upload(address):
    contract.check_upload(address)


def test_multipart_file_upload_sent_chunked(address):
    contract.check_chunked_upload(address)


def test_cookies_round_trip(address):
    contract.check_cookies(address)


def test_streamed_response_arrives_chunked_and_complete(address):
    contract.check_streaming(address)


def test_json_and_lifespan_state(address):
    body = json.dumps({"name": "ünïcode", "n": [1, 2]}).encode("utf-8")
    response = request(
        address,
        b"POST /json HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), body),
    )
    assert response.status == 200
    assert json.loads(response.body) == {
        "got": {"name": "ünïcode", "n": [1, 2]},
        "state": "hello from lifespan",
        "root": "",
    }


def test_async_generator_streaming(address):
    response = request(address, b"GET /count/3 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert response.header("Transfer-Encoding") == "chunked"
    assert response.body == b"3\n2\n1\n"


def test_background_task_runs_after_the_response_was_delivered(address, probe):
    with Connection(address) as conn:
        conn.send(b"GET /background HTTP/1.1\r\nHost: h\r\n\r\n")
        response = conn.read_response()
        assert response.body == b"queued"
        # While the background task waits, the same connection is served again.
        conn.send(b"GET /count/1 HTTP/1.1\r\nHost: h\r\n\r\n")
        assert conn.read_response().body == b"1\n"
    assert probe.background_started.wait(WAIT_SECONDS)
    assert not probe.background_done.is_set()
    assert probe.loop is not None and probe.release is not None
    probe.loop.call_soon_threadsafe(probe.release.set)
    assert probe.background_done.wait(WAIT_SECONDS)


def test_lifespan_startup_and_shutdown(running, probe):
    request(running.address, b"GET /count/1 HTTP/1.1\r\nHost: h\r\n\r\n")  # served only after startup
    assert probe.events == ["startup"]
    running.close()
    assert probe.events == ["startup", "shutdown"]


def test_mounted_under_a_url_prefix(start_server, probe):
    address = start_server(make_app(probe), url_prefix="/api").address
    response = request(address, b"GET /api/items/7/x?q=y HTTP/1.1\r\nHost: h\r\n\r\n")
    assert response.body == contract.describe_item(7, "x", "y").encode()
    body = b"{}"
    response = request(
        address,
        b"POST /api/json HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
        + body,
    )
    assert json.loads(response.body)["root"] == "/api"
