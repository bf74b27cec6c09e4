"""The loop side of a WebSocket on a fake loop and clock: handshake refusals, queue and
output bounds, pings and their timeout, the send and close timeouts, and the drain.

See :mod:`tests.websocket.harness`: the test plays both the client (raw frames over a
socket pair) and the application (the ``app_*`` calls a session would schedule).
"""

from __future__ import annotations

import struct

import pytest

from tests.protocol.test_websocket import client_frame, close_frame, parse_server_frames, text
from tests.websocket.harness import HANDSHAKE, WebSocketHarness
from waitress_like.asgi.websocket import OUTPUT_HIGH_WATER_BYTES
from waitress_like.loop import EVENT_READ, EVENT_WRITE
from waitress_like.wschannel import CLOSE_TIMEOUT_SECONDS, WebSocketPhase

PING, PONG, CLOSE = 0x9, 0xA, 0x8


@pytest.fixture
def make():
    made: list[WebSocketHarness] = []

    def make(**options) -> WebSocketHarness:
        harness = WebSocketHarness(**options)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def close_code(payload: bytes) -> int:
    return struct.unpack("!H", payload[:2])[0]


def test_an_echo_exchange_and_the_closing_handshake(make) -> None:
    ws = make()
    assert ws.told_names() == ["start"]
    ws.accept()
    ws.send(text("hello"))
    assert ws.delivered() == [{"type": "websocket.receive", "text": "hello"}]
    ws.channel.app_sent("hello back")
    frames, closed = ws.frames()
    assert [(f.opcode, f.payload) for f in frames] == [(0x1, b"hello back")] and not closed
    ws.send(close_frame(4000, b"bye"))
    frames, closed = ws.frames()
    assert [(f.opcode, close_code(f.payload)) for f in frames] == [(CLOSE, 4000)]
    assert closed  # the server closes the TCP connection first (RFC 6455 7.1.1)
    assert ("disconnected", (4000, "bye")) in ws.told
    assert ws.service.logged == [101]  # the access log has the handshake's answer
    assert ws.owner.closed == []  # the application still runs
    ws.channel.app_ended(False)
    assert ws.owner.closed == [ws.channel]


def test_bytes_sent_before_the_accept_are_kept_for_the_application(make) -> None:
    ws = make(leftover=text("early"))
    ws.send(text("second"))
    assert ws.delivered() == []
    ws.accept()
    assert [m["text"] for m in ws.delivered()] == ["early", "second"]


@pytest.mark.parametrize(
    ("header", "status", "extra"),
    [
        ("Sec-WebSocket-Version: 13", 400, None),  # the key is missing
        (
            "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: " + "A" * 22 + "==",
            426,
            b"Sec-WebSocket-Version: 13",
        ),
    ],
)
def test_a_bad_handshake_is_refused_without_the_application(make, header, status, extra) -> None:
    raw = f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n{header}\r\n\r\n"
    ws = make(handshake=raw.encode())
    ws.pump()
    data = ws.received()
    assert data.startswith(b"HTTP/1.1 %d " % status)
    assert b"Connection: close" in data
    if extra:
        assert extra in data
    assert ws.told == []  # no session, no application
    assert ws.service.logged == [status]
    ws.client.shutdown(1)  # the client closes its side; the lingering server closes
    ws.pump()
    assert ws.channel.phase is WebSocketPhase.CLOSED and ws.owner.closed == [ws.channel]


def test_an_application_that_ends_without_answering_gets_a_500(make) -> None:
    ws = make()
    ws.channel.app_ended(False)
    assert ws.received().startswith(b"HTTP/1.1 500 ")


def test_the_application_queue_bounds_what_the_server_reads(make) -> None:
    ws = make(ws_max_queue=2)
    ws.accept()
    ws.send(b"".join(text(str(n)) for n in range(5)))
    assert [m["text"] for m in ws.delivered()] == ["0", "1"]
    assert not ws.loop.events_for(ws.channel.socket) & EVENT_READ  # stopped reading
    ws.channel.messages_taken(1)
    assert [m["text"] for m in ws.delivered()] == ["0", "1", "2"]
    ws.channel.messages_taken(2)
    assert [m["text"] for m in ws.delivered()] == ["0", "1", "2", "3", "4"]
    assert not ws.loop.events_for(ws.channel.socket) & EVENT_READ  # full again
    ws.channel.messages_taken(2)
    assert ws.loop.events_for(ws.channel.socket) & EVENT_READ  # room again: reading


def test_pings_keep_an_answering_client(make) -> None:
    ws = make(ws_ping_interval=20, ws_ping_timeout=5)
    ws.accept()
    ws.loop.advance(19.9)
    assert ws.frames() == ([], False)
    ws.loop.advance(0.2)
    frames, _ = ws.frames()
    assert [f.opcode for f in frames] == [PING]
    ws.send(client_frame(PONG, frames[0].payload))
    ws.loop.advance(10)  # past the ping timeout: answered, so nothing happens
    assert ws.channel.phase is WebSocketPhase.OPEN
    ws.loop.advance(10)
    frames, _ = ws.frames()
    assert [f.opcode for f in frames] == [PING]  # the next one, an interval after the last


def test_a_client_that_does_not_answer_a_ping_is_closed(make) -> None:
    ws = make(ws_ping_interval=20, ws_ping_timeout=5)
    ws.accept()
    ws.loop.advance(20)
    frames, _ = ws.frames()
    ws.send(client_frame(PONG, b"not the payload we sent"))
    ws.loop.advance(4.9)
    assert ws.channel.phase is WebSocketPhase.OPEN
    ws.loop.advance(0.2)
    frames, closed = ws.frames()
    assert [(f.opcode, close_code(f.payload)) for f in frames] == [(CLOSE, 1011)] and closed
    assert ("disconnected", (1006, "")) in ws.told


def test_a_client_that_does_not_read_is_cut_by_send_timeout(make) -> None:
    ws = make(send_timeout=30, ws_ping_interval=0)
    ws.accept()
    message = b"x" * 65536
    sent = 0
    while not ws.loop.events_for(ws.channel.socket) & EVENT_WRITE:  # until the socket is full
        ws.channel.app_sent(message)
        sent += len(message)
    acknowledged = ws.told_names().count("acknowledge")
    ws.channel.app_sent(message)
    ws.channel.app_sent(message)
    sent += 2 * len(message)
    # Output piles up: no credit goes back to the application, so its send() waits.
    assert ws.told_names().count("acknowledge") == acknowledged
    credited = sum(args[0] for name, args in ws.told if name == "acknowledge")
    assert sent - credited > OUTPUT_HIGH_WATER_BYTES
    ws.loop.advance(29.9)
    assert ws.channel.phase is WebSocketPhase.OPEN
    ws.loop.advance(0.2)
    assert ws.channel.phase is WebSocketPhase.CLOSED
    assert ("disconnected", (1006, "")) in ws.told


def test_output_credit_goes_back_in_batches_once_written(make) -> None:
    ws = make()
    ws.accept()
    half = OUTPUT_HIGH_WATER_BYTES // 2
    for _ in range(3):
        ws.channel.app_sent(b"y" * half)
        assert ws.received()  # the client reads everything at once
    # Credit goes back only past half the high-water mark: one call per batch.
    assert [args for name, args in ws.told if name == "acknowledge"] == [(2 * half,)]


def test_an_unanswered_close_times_out(make) -> None:
    ws = make()
    ws.accept()
    ws.channel.app_closed(1000, "done")
    frames, closed = ws.frames()
    assert [(f.opcode, f.payload) for f in frames] == [(CLOSE, b"\x03\xe8done")] and not closed
    ws.loop.advance(CLOSE_TIMEOUT_SECONDS - 0.1)
    assert ws.channel.phase is WebSocketPhase.CLOSING
    ws.loop.advance(0.2)
    assert ws.channel.phase is WebSocketPhase.CLOSED
    assert ("disconnected", (1006, "")) in ws.told


def test_a_protocol_error_fails_the_connection(make) -> None:
    ws = make()
    ws.accept()
    ws.send(client_frame(0x1, b"unmasked", mask=None))
    frames, closed = ws.frames()
    assert [(f.opcode, close_code(f.payload)) for f in frames] == [(CLOSE, 1002)] and closed
    assert ("disconnected", (1002, "client frames must be masked")) in ws.told


def test_drain_closes_with_1001_and_waits_for_the_application(make) -> None:
    ws = make()
    ws.accept()
    assert ws.channel.drain() is False
    frames, _ = ws.frames()
    assert [(f.opcode, close_code(f.payload)) for f in frames] == [(CLOSE, 1001)]
    assert ("disconnected", (1001, "server shutting down")) in ws.told
    ws.send(close_frame(1001))
    assert ws.channel.phase is WebSocketPhase.CLOSED
    assert ws.owner.closed == []
    ws.channel.app_ended(False)
    assert ws.owner.closed == [ws.channel]


def test_drain_refuses_a_handshake_in_progress(make) -> None:
    ws = make()
    assert ws.channel.drain() is False
    assert ws.received().startswith(b"HTTP/1.1 503 ")
    ws.channel.app_accepted(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")  # too late: ignored
    assert b"101" not in ws.received()


def test_close_stops_waiting_for_the_application(make) -> None:
    ws = make()
    ws.accept()
    ws.channel.close()
    assert ws.told_names()[-2:] == ["disconnected", "cancel"]
    assert ws.owner.closed == [ws.channel]
    ws.channel.app_ended(False)  # the cancelled task ends later: nothing more happens
    assert ws.owner.closed == [ws.channel]


def test_the_handshake_request_is_the_one_handed_over() -> None:
    assert b"Sec-WebSocket-Key" in HANDSHAKE


def test_a_busy_connection_reuses_its_timer(make) -> None:
    ws = make()
    ws.accept()
    for number in range(100):
        ws.loop.now += 0.000001  # a real clock moves between messages
        ws.send(text(str(number)))
        ws.channel.app_sent(str(number))
    assert len(ws.loop._timers) <= 2  # not one per message (cancelled ones included)


def test_no_ping_waits_behind_output_the_client_has_not_read(make) -> None:
    ws = make(ws_ping_interval=5, ws_ping_timeout=5, send_timeout=30)
    ws.accept()
    while not ws.loop.events_for(ws.channel.socket) & EVENT_WRITE:  # until the socket is full
        ws.channel.app_sent(b"x" * 65536)
    ws.loop.advance(5.1)
    ws.client.setblocking(False)
    drained = b""
    try:
        while chunk := ws.client.recv(1 << 20):
            drained += chunk
            ws.pump()  # the server sends the rest as the client reads
    except BlockingIOError:
        pass
    assert PING not in {frame.opcode for frame in parse_server_frames(drained)}
    assert ws.channel.phase is WebSocketPhase.OPEN
    ws.loop.advance(5)  # an interval after the skipped one
    frames, _ = ws.frames()
    assert [f.opcode for f in frames] == [PING]
