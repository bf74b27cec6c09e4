"""Starlette and FastAPI WebSocket routes next to HTTP routes, on the real server, with
the ``websockets`` client: echo, a broadcast to several clients, close codes, a rejected
handshake and a denial response, and an HTTP route served on the same server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

import pytest

pytest.importorskip("websockets")
pytest.importorskip("starlette")
pytest.importorskip("fastapi")

from fastapi import FastAPI, WebSocket, WebSocketDisconnect, WebSocketException  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route, WebSocketRoute  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from tests.asgi.helpers import WAIT_SECONDS  # noqa: E402
from tests.httpclient import request  # noqa: E402

pytestmark = pytest.mark.frameworks


class Room:
    """The broadcast route's members, and an event per member count reached."""

    def __init__(self) -> None:
        self.members: set[WebSocket] = set()
        self.lock = threading.Lock()
        self.joined = threading.Condition(self.lock)
        self.disconnect_codes: list[int] = []
        self.left = threading.Event()

    def wait_for(self, count: int) -> bool:
        with self.joined:
            return self.joined.wait_for(lambda: len(self.members) >= count, WAIT_SECONDS)


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


def broadcaster(room: Room):
    async def broadcast(websocket: WebSocket) -> None:
        await websocket.accept()
        with room.joined:
            room.members.add(websocket)
            room.joined.notify_all()
        try:
            while True:
                text = await websocket.receive_text()
                with room.lock:
                    members = list(room.members)
                await asyncio.gather(*(member.send_text(text) for member in members))
        except WebSocketDisconnect as disconnect:
            room.disconnect_codes.append(disconnect.code)
        finally:
            with room.lock:
                room.members.discard(websocket)
            room.left.set()

    return broadcast


async def close_with_code(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("closing")
    await websocket.close(code=4401, reason="not allowed any more")


async def reject(websocket: WebSocket) -> None:
    await websocket.close(code=1008)  # before accept: the server answers 403


async def deny(websocket: WebSocket) -> None:
    await websocket.send_denial_response(PlainTextResponse("members only", status_code=401))


def starlette_app(room: Room) -> Any:
    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("home page")

    return Starlette(
        routes=[
            Route("/", home),
            WebSocketRoute("/ws/echo", echo),
            WebSocketRoute("/ws/broadcast", broadcaster(room)),
            WebSocketRoute("/ws/close", close_with_code),
            WebSocketRoute("/ws/reject", reject),
            WebSocketRoute("/ws/deny", deny),
        ]
    )


def fastapi_app(room: Room) -> Any:
    app = FastAPI()

    @app.get("/")
    async def home() -> PlainTextResponse:
        return PlainTextResponse("home page")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.websocket("/ws/items/{item_id}")
    async def item_updates(websocket: WebSocket, item_id: int) -> None:
        if item_id == 0:
            raise WebSocketException(code=1008, reason="no item 0")
        await websocket.accept()
        await websocket.send_json({"item_id": item_id, "query": websocket.query_params.get("q")})
        await websocket.close()

    app.add_api_websocket_route("/ws/echo", echo)
    app.add_api_websocket_route("/ws/broadcast", broadcaster(room))
    app.add_api_websocket_route("/ws/close", close_with_code)
    app.add_api_websocket_route("/ws/reject", reject)
    app.add_api_websocket_route("/ws/deny", deny)
    return app


@pytest.fixture(params=["starlette", "fastapi"])
def site(request: pytest.FixtureRequest, start_server):
    room = Room()
    app = starlette_app(room) if request.param == "starlette" else fastapi_app(room)
    running = start_server(app)
    host, port = running.address
    return request.param, f"ws://{host}:{port}", running, room


def test_http_and_websocket_routes_side_by_side(site) -> None:
    name, url, running, _ = site
    assert request(running.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").body == b"home page"
    with connect(url + "/ws/echo", max_size=None) as ws:
        ws.send("hello")
        assert ws.recv(timeout=WAIT_SECONDS) == "hello"
        ws.send(b"\x01" * 300000)
        assert ws.recv(timeout=WAIT_SECONDS) == b"\x01" * 300000


def test_broadcast_to_several_clients(site) -> None:
    _, url, _, room = site
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(url + "/ws/broadcast")) for _ in range(3)]
        assert room.wait_for(3)
        clients[1].send("to everyone")
        assert [client.recv(timeout=WAIT_SECONDS) for client in clients] == ["to everyone"] * 3
        clients[0].close(code=4000)
    assert room.left.wait(WAIT_SECONDS)
    assert 4000 in room.disconnect_codes


def test_a_close_code_and_reason_from_the_route(site) -> None:
    _, url, _, _ = site
    with connect(url + "/ws/close") as ws:
        assert ws.recv(timeout=WAIT_SECONDS) == "closing"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_SECONDS)
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "not allowed any more")


def test_a_rejected_handshake_and_a_denial_response(site) -> None:
    _, url, _, _ = site
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "/ws/reject")
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as denied:
        connect(url + "/ws/deny")
    assert denied.value.response.status_code == 401
    assert denied.value.response.body == b"members only"


def test_fastapi_path_parameters_and_websocket_exception(start_server) -> None:
    running = start_server(fastapi_app(Room()))
    host, port = running.address
    url = f"ws://{host}:{port}"
    assert request(running.address, b"GET /items/7 HTTP/1.1\r\nHost: x\r\n\r\n").body == b'{"item_id":7}'
    with connect(url + "/ws/items/5?q=fresh") as ws:
        assert json.loads(ws.recv(timeout=WAIT_SECONDS)) == {"item_id": 5, "query": "fresh"}
    with pytest.raises(InvalidStatus) as refused:
        connect(url + "/ws/items/0")
    assert refused.value.response.status_code == 403
