"""statsd under gunicorn's names, received by a real UDP socket.

The server reports once a second and once more when it stops; the tests stop it, then
read every datagram already delivered to the listening socket (loopback UDP is queued
to the receiver when it is sent), so nothing waits on a timer.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from typing import Any, Callable, Iterator

import pytest

from tests.httpclient import request
from waitress_like.metrics import Registry
from waitress_like.metrics_table import LOG_MESSAGES, METRICS, REQUESTS, RESPONSES
from waitress_like.statsd import MAX_DATAGRAM_BYTES, MAX_TIMER_SAMPLES, StatsdClient, statsd_lines

TAGS = "env:test,team:web"


@pytest.fixture
def statsd_socket() -> Iterator[socket.socket]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    yield receiver
    receiver.close()


def delivered_lines(receiver: socket.socket) -> list[str]:
    """Every line of every datagram waiting on ``receiver`` now."""
    receiver.setblocking(False)
    lines = []
    while True:
        try:
            datagram = receiver.recv(65536)
        except BlockingIOError:
            return lines
        assert len(datagram) <= MAX_DATAGRAM_BYTES
        lines += datagram.decode("ascii").split("\n")


class Report:
    """Lines read back: counters summed, timer samples and gauges kept, tags checked."""

    def __init__(self, lines: list[str], suffix: str = "") -> None:
        self.counters: Counter[str] = Counter()
        self.timers: dict[str, list[float]] = {}
        self.gauges: dict[str, float] = {}
        for line in lines:
            assert line.endswith(suffix), line
            name, _, rest = line[: len(line) - len(suffix)].partition(":")
            number, kind = rest.split("|")
            if kind == "c":
                self.counters[name] += int(number)
            elif kind == "ms":
                self.timers.setdefault(name, []).append(float(number))
            else:
                assert kind == "g", line
                self.gauges[name] = float(number)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise RuntimeError("the application failed")
    start_response("404 Not Found" if path == "/missing" else "200 OK", [("Content-Length", "0")])
    return [b""]


def test_gunicorns_names_reach_a_real_statsd_listener(
    start_server: Any, statsd_socket: socket.socket
) -> None:
    port = statsd_socket.getsockname()[1]
    server = start_server(app, statsd_host=f"127.0.0.1:{port}", statsd_prefix="shop.web", dogstatsd_tags=TAGS)
    for path, status in [("/", 200), ("/", 200), ("/missing", 404), ("/boom", 500)]:
        raw = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
        assert request(server.address, raw).status == status
    logging.getLogger("waitress_like").warning("a warning the operator should see")
    server.close()  # the last report goes out before close() returns
    report = Report(delivered_lines(statsd_socket), suffix=f"|#{TAGS}")
    assert report.counters["shop.web.gunicorn.requests"] == 4
    assert report.counters["shop.web.gunicorn.request.status.200"] == 2
    assert report.counters["shop.web.gunicorn.request.status.404"] == 1
    assert report.counters["shop.web.gunicorn.request.status.500"] == 1
    assert report.counters["shop.web.gunicorn.log.exception"] == 1
    assert report.counters["shop.web.gunicorn.log.warning"] == 1
    durations = report.timers["shop.web.gunicorn.request.duration"]
    assert len(durations) == 4 and all(0 <= duration < 10_000 for duration in durations)
    assert report.gauges["shop.web.gunicorn.workers"] == 1


def test_nothing_is_sent_twice_across_reports() -> None:
    registry = Registry(METRICS)
    client = StatsdClient("127.0.0.1", 9, prefix="p")
    previous: dict[tuple[str, tuple], float] = {}
    shard = registry.shard()
    shard.add(REQUESTS, ("GET", "2xx"), 3)
    shard.add(RESPONSES, ("200",), 3)
    first = statsd_lines(client, registry.snapshot(), previous, [0.0015, 0.25], report_workers=False)
    assert first == [
        "p.gunicorn.requests:3|c",
        "p.gunicorn.request.status.200:3|c",
        "p.gunicorn.request.duration:1.5|ms",
        "p.gunicorn.request.duration:250|ms",
    ]
    shard.add(REQUESTS, ("POST", "2xx"))
    shard.add(RESPONSES, ("201",))
    shard.add(LOG_MESSAGES, ("error",), 2)
    second = statsd_lines(client, registry.snapshot(), previous, [], report_workers=True)
    assert second == [
        "p.gunicorn.requests:1|c",
        "p.gunicorn.request.status.201:1|c",
        "p.gunicorn.log.error:2|c",
        "p.gunicorn.workers:0|g",
    ]
    assert statsd_lines(client, registry.snapshot(), previous, [], report_workers=False) == []


@pytest.mark.parametrize(
    "prefix, expected", [("", ""), ("app", "app."), ("app.", "app."), ("a.b..", "a.b."), (".", "")]
)
def test_the_prefix_ends_in_one_dot(prefix: str, expected: str) -> None:
    assert StatsdClient("localhost", 8125, prefix=prefix).prefix == expected


def test_lines_are_packed_into_datagrams_without_splitting_one(statsd_socket: socket.socket) -> None:
    client = StatsdClient(*statsd_socket.getsockname()[:2], prefix="x")
    lines = [client.line(f"metric.number.{index}", index, "c") for index in range(300)]
    client.send(lines)
    client.close()
    statsd_socket.setblocking(False)
    datagrams = []
    while True:
        try:
            datagrams.append(statsd_socket.recv(65536))
        except BlockingIOError:
            break
    assert 1 < len(datagrams) < 20
    assert all(len(datagram) <= MAX_DATAGRAM_BYTES for datagram in datagrams)
    assert b"\n".join(datagrams).decode().split("\n") == lines


def test_an_unreachable_statsd_never_raises_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    unresolvable = StatsdClient("statsd.invalid", 8125)
    for _ in range(3):
        unresolvable.send(["a:1|c"])
    assert caplog.text.count("cannot reach statsd at statsd.invalid:8125") == 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    nobody = StatsdClient("127.0.0.1", closed_port)
    for _ in range(3):
        nobody.send(["a:1|c"])  # ICMP port unreachable comes back as ECONNREFUSED: ignored
    nobody.close()


def test_past_the_cap_timers_are_sampled_with_their_rate() -> None:
    client = StatsdClient("127.0.0.1", 9, tags="a:b")
    durations = [0.001] * (MAX_TIMER_SAMPLES * 4)
    lines = statsd_lines(client, {"format": 1, "metrics": {}}, {}, durations, report_workers=False)
    assert lines == ["gunicorn.request.duration:1|ms|@0.25|#a:b"] * MAX_TIMER_SAMPLES
