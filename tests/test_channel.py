"""One channel on a fake loop: the worker/loop hand-off in every order, and its deadlines.

The worker's writes and the loop's sends are interleaved by script (see
:mod:`tests.channelharness`): the application's body iterator lets the loop take its turn
at chosen points, so each ordering real threads could produce is run, deterministically.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import pytest

from tests.channelharness import ChannelHarness
from waitress_like.channel import ChannelState


def _orders(points: int) -> list[frozenset[int]]:
    """Every set of points at which the loop runs between the worker's writes."""
    return [
        frozenset(chosen)
        for size in range(points + 1)
        for chosen in itertools.combinations(range(points), size)
    ]


def _stepping_app(status: str, headers: list[tuple[str, str]], chunks: list[bytes], step: Callable[[], None]):
    """An app whose body iterator calls ``step()`` each time the gateway asks for more."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]):
        start_response(status, headers)

        def body():
            for chunk in chunks:
                yield chunk
                step()

        return body()

    return app


class _Script:
    """Lets the loop run at the chosen step numbers (counted across all requests)."""

    def __init__(self, loop_runs_at: frozenset[int]) -> None:
        self.loop_runs_at = loop_runs_at
        self.count = 0
        self.harness: ChannelHarness | None = None

    def step(self) -> None:
        if self.count in self.loop_runs_at:
            assert self.harness is not None
            self.harness.settle()
        self.count += 1


HEAD_THEN_GET = b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
SCENARIOS = {
    # A load balancer's health check: HEAD, iterable body, then the connection must close.
    "head-close": (b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "200 OK", []),
    # Pipelined HEAD then GET: the HEAD's empty writes must not swallow the wake-up.
    "head-then-get": (HEAD_THEN_GET, "200 OK", []),
    "no-content": (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "204 No Content", []),
    # The second piece is cut to nothing past Content-Length.
    "cut-past-length": (
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "200 OK",
        [("Content-Length", "5")],
    ),
}


@pytest.mark.parametrize("loop_runs_at", _orders(4), ids=lambda s: "loop@" + ",".join(map(str, sorted(s))))
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_no_wakeup_is_lost_whatever_the_order(scenario: str, loop_runs_at: frozenset[int]) -> None:
    raw, status, headers = SCENARIOS[scenario]
    script = _Script(loop_runs_at)
    chunks = [b"hello", b"world"] if scenario != "cut-past-length" else [b"hello", b"extra"]
    harness = ChannelHarness(_stepping_app(status, headers, chunks, script.step))
    script.harness = harness
    try:
        harness.send(raw)
        expected_responses = raw.count(b"HTTP/1.1\r\n")
        for _ in range(expected_responses):
            assert harness.submitted, "the request never reached a worker"
            harness.serve_next()
            harness.settle()
        received = harness.received()
        assert received.count(b"HTTP/1.1 ") == expected_responses, received
        assert received.endswith(b"<EOF>"), f"the connection was never closed: {received!r}"
        assert harness.state in (ChannelState.LINGERING, ChannelState.CLOSED)
        if scenario == "head-then-get":
            assert received.endswith(b"0\r\n\r\n<EOF>")  # the GET's chunked body, complete
    finally:
        harness.close()


# -- the first head's deadline runs from accept -------------------------------------------------


def test_silent_connection_is_cut_at_the_head_deadline_counted_from_accept() -> None:
    harness = ChannelHarness(_never_called, request_head_timeout=30, request_min_rate=0)
    try:
        accepted_at = harness.loop.time()
        assert harness.deadline_timer() == accepted_at + 30
        harness.loop.advance(29.9)
        assert harness.state is ChannelState.OPEN
        harness.loop.advance(0.2)
        harness.pump()
        received = harness.received()
        assert received.startswith(b"HTTP/1.0 408 ")
        assert b"Connection: close" in received
        assert harness.state in (ChannelState.LINGERING, ChannelState.CLOSED)
    finally:
        harness.close()


def test_first_head_deadline_does_not_restart_at_its_first_byte() -> None:
    harness = ChannelHarness(_never_called, request_head_timeout=30, request_min_rate=0)
    try:
        harness.loop.advance(20)
        harness.send(b"GET / HTTP/1.1\r\n")
        harness.loop.advance(10.1)
        harness.pump()
        assert harness.received().startswith(b"HTTP/1.0 408 ")
    finally:
        harness.close()


def test_keep_alive_wait_uses_the_keepalive_timeout_not_the_head_deadline() -> None:
    harness = ChannelHarness(_hello, request_head_timeout=30, keepalive_timeout=5)
    try:
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        harness.serve_next()
        harness.settle()
        assert harness.received().startswith(b"HTTP/1.1 200 ")
        harness.loop.advance(4.9)
        assert harness.state is ChannelState.OPEN
        harness.loop.advance(0.2)
        # Idle keep-alive ends quietly: no 408 for a client that asked for nothing.
        assert harness.state in (ChannelState.LINGERING, ChannelState.CLOSED)
        assert harness.received() in (b"", b"<EOF>")
    finally:
        harness.close()


# -- the minimum data rate -------------------------------------------------------------------


def test_a_trickled_head_is_cut_when_it_falls_below_the_minimum_rate() -> None:
    harness = ChannelHarness(_never_called, request_min_rate=500, request_min_rate_grace=10)
    try:
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # 26 bytes at accept
        for _ in range(3):  # a slowloris: one short field line every 3 s
            harness.loop.advance(3)
            harness.send(b"X-A: b\r\n")
        # 26 + 3 * 8 = 50 bytes: the grace plus 50 / 500 s of credit.
        harness.loop.advance(10.05 - 9)
        assert harness.state is ChannelState.OPEN
        harness.loop.advance(0.1)
        harness.pump()
        assert harness.received().startswith(b"HTTP/1.0 408 ")
    finally:
        harness.close()


def test_a_body_trickled_one_byte_at_a_time_is_cut_despite_each_byte_being_on_time() -> None:
    harness = ChannelHarness(
        _never_called, request_body_timeout=60, request_min_rate=500, request_min_rate_grace=10
    )
    try:
        harness.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        for _ in range(5):  # well within request_body_timeout between bytes
            harness.loop.advance(2)
            harness.send(b"a")
        harness.loop.advance(0.1)
        harness.pump()
        assert harness.received().startswith(b"HTTP/1.1 408 ")
        assert not harness.submitted
    finally:
        harness.close()


def test_a_body_at_the_minimum_rate_is_never_cut() -> None:
    harness = ChannelHarness(_hello, request_min_rate=500, request_min_rate_grace=10)
    try:
        harness.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30000\r\n\r\n")
        for _ in range(60):  # 60 s at exactly 500 bytes a second
            harness.loop.advance(1)
            assert harness.state is ChannelState.OPEN
            harness.send(b"a" * 500)
        assert len(harness.submitted) == 1
    finally:
        harness.close()


# -- whom to close at the connection limit -------------------------------------------------------


def test_eviction_ranks_idle_before_slow_before_young_and_never_in_service() -> None:
    idle = ChannelHarness(_hello)
    slow = ChannelHarness(_never_called)
    young = ChannelHarness(_never_called)
    served = ChannelHarness(_hello)
    harnesses = [idle, slow, young, served]
    try:
        idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        idle.serve_next()
        idle.settle()
        served.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # in the app: not a candidate
        slow.send(b"GET / HTTP/1.1\r\n")
        for harness in (idle, slow, served):
            harness.loop.advance(5)
        young.send(b"GET / HTTP/1.1\r\n")  # accepted just now: within the grace
        names = ["idle", "slow", "young", "served"]
        ranks = {name: h.channel.eviction_rank(h.loop.time()) for name, h in zip(names, harnesses)}
        assert ranks["served"] is None
        assert ranks["idle"] < ranks["slow"] < ranks["young"]
    finally:
        for harness in harnesses:
            harness.close()


def test_of_two_slow_heads_the_slower_one_ranks_first() -> None:
    slower = ChannelHarness(_never_called)
    faster = ChannelHarness(_never_called)
    try:
        slower.send(b"GET / HTTP/1.1\r\n")
        faster.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 500)
        for harness in (slower, faster):
            harness.loop.advance(5)
        now = slower.loop.time()
        assert slower.channel.eviction_rank(now) < faster.channel.eviction_rank(now)
    finally:
        slower.close()
        faster.close()


# -- the other deadlines --------------------------------------------------------------------


def test_a_stalled_body_is_cut_after_request_body_timeout() -> None:
    harness = ChannelHarness(_never_called, request_body_timeout=60, request_min_rate=0)
    try:
        harness.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        harness.loop.advance(59.9)
        harness.send(b"d")  # a piece in time restarts the wait
        harness.loop.advance(59.9)
        assert harness.state is ChannelState.OPEN
        harness.loop.advance(0.2)
        harness.pump()
        assert harness.received().startswith(b"HTTP/1.1 408 ")
        assert not harness.submitted
    finally:
        harness.close()


def test_a_client_that_stops_reading_is_cut_after_send_timeout_and_its_worker_freed() -> None:
    body = b"x" * (8 * 1024 * 1024)  # far more than the socket pair buffers

    def big(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    harness = ChannelHarness(big, send_timeout=60)
    try:
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        _, pipe = harness.submitted[0]
        harness.serve_next()
        harness.settle()
        assert pipe.pending_bytes > 0  # the client reads nothing: output waits
        harness.loop.advance(59.9)
        assert harness.state is ChannelState.OPEN
        harness.loop.advance(0.2)
        assert harness.state is ChannelState.CLOSED
        assert pipe.aborted  # a worker waiting on back-pressure would wake with ClientDisconnected
        assert harness.owner.in_service == 0
    finally:
        harness.close()


def test_max_connection_age_ends_an_idle_keep_alive_connection() -> None:
    harness = ChannelHarness(_hello, keepalive_timeout=30, max_connection_age=10)
    try:
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        harness.serve_next()
        harness.settle()
        harness.loop.advance(9.9)
        assert harness.state is ChannelState.OPEN
        harness.loop.advance(0.2)
        assert harness.state in (ChannelState.LINGERING, ChannelState.CLOSED)
    finally:
        harness.close()


def test_a_request_past_max_connection_age_is_the_last_one() -> None:
    harness = ChannelHarness(_hello, max_connection_age=10)
    try:
        harness.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        harness.loop.advance(10.5)  # the first request is in the app meanwhile
        harness.serve_next()
        harness.settle()
        harness.serve_next()  # the second starts past the age: it is the last
        harness.settle()
        first, second = harness.received().split(b"HTTP/1.1 200 OK")[1:]
        assert b"Connection: close" not in first
        assert b"Connection: close" in second
    finally:
        harness.close()


def test_lingering_after_the_last_response_ends_after_two_seconds() -> None:
    harness = ChannelHarness(_hello)
    try:
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        harness.serve_next()
        harness.settle()
        assert harness.received().endswith(b"<EOF>")  # our side is shut
        assert harness.state is ChannelState.LINGERING  # the client has not closed yet
        harness.loop.advance(1.9)
        assert harness.state is ChannelState.LINGERING
        harness.loop.advance(0.2)
        assert harness.state is ChannelState.CLOSED
    finally:
        harness.close()


def test_lingering_ends_as_soon_as_the_client_closes() -> None:
    harness = ChannelHarness(_hello)
    try:
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        harness.serve_next()
        harness.settle()
        harness.client.shutdown(1)
        harness.pump()
        assert harness.state is ChannelState.CLOSED
    finally:
        harness.close()


def test_at_the_concurrency_limit_a_request_is_answered_503_and_the_connection_kept() -> None:
    harness = ChannelHarness(_never_called, retry_after=7)
    harness.owner.capacity_left = 0
    try:
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = harness.received()
        assert received.startswith(b"HTTP/1.1 503 ")
        assert b"Retry-After: 7" in received
        assert harness.state is ChannelState.OPEN
        assert not harness.submitted
    finally:
        harness.close()


def test_a_head_arriving_in_many_pieces_reuses_one_deadline_timer() -> None:
    harness = ChannelHarness(_never_called, request_min_rate=0)
    try:
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for _ in range(50):
            harness.loop.now += 0.001  # time passes between pieces; the deadline does not move
            harness.send(b"X-A: b\r\n")
        assert len(harness.loop.pending_timers()) == 1
        assert len(harness.loop._timers) <= 2  # cancelled ones stay in the heap until due
    finally:
        harness.close()


# -- heads up to the size limit ------------------------------------------------------------------


@pytest.mark.parametrize("field_bytes", [60_000, 65_000, 100_000, 200_000])
def test_heads_up_to_the_limit_are_served(field_bytes: int) -> None:
    harness = ChannelHarness(_hello)
    try:
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * field_bytes + b"\r\n\r\n")
        assert len(harness.submitted) == 1
        assert harness.submitted[0][0].head.headers[-1][0] == "X-Big"
    finally:
        harness.close()


def test_a_head_over_the_limit_gets_431_however_long() -> None:
    harness = ChannelHarness(_never_called, max_request_header_size=262144)
    try:
        harness.client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        harness.pump()
        for _ in range(40):  # 40 x 8 KiB: past the limit, without a line end
            if harness.state is not ChannelState.OPEN:
                break
            harness.client.sendall(b"a" * 8192)
            harness.pump()
        received = harness.received()
        assert received.startswith(b"HTTP/1.0 431 ")
        assert not harness.submitted
    finally:
        harness.close()


def test_a_client_closing_during_a_large_partial_head_is_noticed() -> None:
    harness = ChannelHarness(_never_called)
    try:
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000)
        assert harness.state is ChannelState.OPEN
        harness.client.shutdown(1)  # SHUT_WR: the client sends no more
        harness.pump()
        assert harness.state is ChannelState.CLOSED
        assert harness.closed == [harness.channel]
    finally:
        harness.close()


# -- graceful shutdown ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "partial", [b"", b"GET / HTTP/1.1\r\nHo", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc"]
)
def test_drain_closes_connections_that_have_no_request_in_the_app(partial: bytes) -> None:
    harness = ChannelHarness(_never_called)
    try:
        if partial:
            harness.send(partial)
        assert harness.channel.drain() is True
        assert harness.state is ChannelState.CLOSED
        assert harness.received() == b"<EOF>"
    finally:
        harness.close()


def test_drain_serves_a_request_that_arrived_before_it_but_was_not_read_yet() -> None:
    harness = ChannelHarness(_hello)
    harness.owner.draining = True  # as the server is when it calls drain()
    try:
        harness.client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not pumped: unread
        assert harness.channel.drain() is False
        harness.serve_next()
        harness.settle()
        received = harness.received()
        assert received.startswith(b"HTTP/1.1 200 ")
        assert b"Connection: close" in received
    finally:
        harness.close()


def test_drain_waits_for_a_request_in_the_app_and_drops_the_ones_behind_it() -> None:
    harness = ChannelHarness(_hello)
    try:
        harness.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert len(harness.submitted) == 1
        assert harness.channel.drain() is False
        harness.serve_next()
        harness.settle()
        received = harness.received()
        assert received.count(b"HTTP/1.1 200 ") == 1
        assert b"Connection: close" in received
        assert not harness.submitted
    finally:
        harness.close()


def _hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def _never_called(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    raise AssertionError("the application must not be called")
