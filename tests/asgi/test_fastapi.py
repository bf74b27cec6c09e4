"""FastAPI through the ASGI bridge over real sockets: routing with path and query
parameters, JSON with a pydantic model, forms and uploads, streaming, lifespan, a
background task."""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import asynccontextmanager
from typing import Annotated, Any, AsyncIterator, List

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi import BackgroundTasks, FastAPI, File, Form, Request, UploadFile  # noqa: E402
from fastapi.responses import PlainTextResponse, StreamingResponse  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from tests.asgi.helpers import WAIT_SECONDS  # noqa: E402
from tests.frameworks import contract  # noqa: E402
from tests.httpclient import Connection, request  # noqa: E402

pytestmark = pytest.mark.frameworks


class Item(BaseModel):
    name: str
    price: float
    tags: List[str] = []


class Probe:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.release: asyncio.Event | None = None
        self.background_started = threading.Event()
        self.background_done = threading.Event()


def make_app(probe: Probe) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        probe.events.append("startup")
        yield {"currency": "EUR"}
        probe.events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id:int}/{name}", response_class=PlainTextResponse)
    async def item(item_id: int, name: str, q: str) -> str:
        return contract.describe_item(item_id, name, q)

    @app.post("/form", response_class=PlainTextResponse)
    async def form(name: Annotated[str, Form()], tags: Annotated[List[str], Form()]) -> str:
        return contract.describe_form(name, tags)

    @app.post("/upload", response_class=PlainTextResponse)
    async def upload(note: Annotated[str, Form()], upload: Annotated[UploadFile, File()]) -> str:
        return contract.describe_upload(note, upload.filename or "", await upload.read())

    @app.get("/stream")
    def stream(gate: str) -> StreamingResponse:  # a sync endpoint: FastAPI runs it in a thread
        return StreamingResponse(contract.stream_parts(gate), media_type="text/plain")

    @app.post("/items")
    async def create_item(item: Item, request: Request, discount: float = 0.0) -> dict[str, Any]:
        return {
            "name": item.name,
            "total": round(item.price * (1 - discount), 2),
            "tags": item.tags,
            "currency": request.state.currency,
        }

    async def background_work(label: str) -> None:
        probe.loop = asyncio.get_running_loop()
        probe.release = asyncio.Event()
        probe.background_started.set()
        await probe.release.wait()
        probe.events.append(f"background {label}")
        probe.background_done.set()

    @app.post("/orders/{order_id}")
    async def order(order_id: str, tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(background_work, order_id)
        return {"order": order_id, "status": "accepted"}

    return app


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def running(start_server, probe):
    return start_server(make_app(probe))


@pytest.fixture
def address(running):
    return running.address


def post_json(address: tuple[str, int], target: str, document: Any) -> Any:
    body = json.dumps(document).encode()
    head = f"POST {target} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return request(address, head.encode() + body)


def test_routing_with_path_and_query_parameters(address):
    contract.check_routing(address)


def test_urlencoded_form_post(address):
    contract.check_form_post(address)


def test_multipart_file_upload(address):
    contract.check_upload(address)


def test_multipart_file_upload_sent_chunked(address):
    contract.check_chunked_upload(address)


def test_streamed_response_arrives_chunked_and_complete(address):
    contract.check_streaming(address)


def test_json_body_validation_and_lifespan_state(address):
    response = post_json(address, "/items?discount=0.25", {"name": "lamp", "price": 40, "tags": ["a"]})
    assert response.status == 200
    assert json.loads(response.body) == {"name": "lamp", "total": 30.0, "tags": ["a"], "currency": "EUR"}
    invalid = post_json(address, "/items", {"name": "lamp"})
    assert invalid.status == 422
    assert json.loads(invalid.body)["detail"][0]["loc"] == ["body", "price"]


def test_background_task_runs_after_the_response_was_delivered(address, probe):
    with Connection(address) as conn:
        conn.send(b"POST /orders/A-1 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
        response = conn.read_response()
    assert json.loads(response.body) == {"order": "A-1", "status": "accepted"}
    assert probe.background_started.wait(WAIT_SECONDS)
    assert not probe.background_done.is_set()
    assert probe.loop is not None and probe.release is not None
    probe.loop.call_soon_threadsafe(probe.release.set)
    assert probe.background_done.wait(WAIT_SECONDS)
    assert probe.events == ["startup", "background A-1"]


def test_lifespan_startup_and_shutdown(running, probe):
    assert request(running.address, b"GET /items/1/a?q=b HTTP/1.1\r\nHost: h\r\n\r\n").status == 200
    assert probe.events == ["startup"]
    running.close()
    assert probe.events == ["startup", "shutdown"]


def test_openapi_document(address):
    response = request(address, b"GET /openapi.json HTTP/1.1\r\nHost: h\r\n\r\n")
    assert response.status == 200
    assert "/items/{item_id}/{name}" in json.loads(response.body)["paths"]
