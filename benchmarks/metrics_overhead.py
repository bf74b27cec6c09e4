"""What metrics cost a request, measured without a network: off, Prometheus, Prometheus + statsd.

    python benchmarks/metrics_overhead.py [--number 200000] [--repeat 7]

Times (best of ``--repeat``) each recording call the hot path makes, and a hello-world
request through ``WSGIGateway.run`` into a pipe, with metrics off (``NO_METRICS``) and
on. A request records ``request_done``; a connection records ``connection_opened`` and
``bytes_transferred`` once (its byte counts are its own attributes, metrics on or off).
For the whole server under load, run the A/B with wrk::

    python benchmarks/run.py --servers waitress_like,waitress_like-prometheus,waitress_like-metrics \
        --scenarios hello
"""

from __future__ import annotations

import argparse
import io
import sys
import timeit
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from waitress_like.buffers import OutputPipe  # noqa: E402
from waitress_like.protocol import ParserLimits, RequestParser  # noqa: E402
from waitress_like.server_metrics import NO_METRICS, MetricsRecorder, ServerMetrics  # noqa: E402
from waitress_like.statsd import StatsdClient  # noqa: E402
from waitress_like.wsgi import WSGIGateway, WSGIRequest  # noqa: E402


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


class _Listener:
    server_port = "8080"
    is_unix = False


def _head() -> Any:
    parser = RequestParser(ParserLimits(max_header_bytes=65536, max_body_bytes=0, max_header_count=100))
    parser.feed(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
    return parser.next_event()


def _gateway_run(metrics: MetricsRecorder) -> Callable[[], None]:
    gateway = WSGIGateway(
        hello,
        server_name="localhost",
        url_scheme="http",
        url_prefix="",
        ident="waitress_like",
        expose_tracebacks=False,
    )
    gateway.metrics = metrics
    head = _head()

    def one_request() -> None:
        request = WSGIRequest(head, io.BytesIO(), 0, "127.0.0.1", "50000", _Listener(), lambda: False)
        gateway.run(request, OutputPipe(1 << 20, 1 << 20, _no_notify))

    return one_request


def _no_notify() -> None:
    pass


def _best(function: Callable[[], Any], number: int, repeat: int) -> float:
    """Nanoseconds per call, best of ``repeat`` runs."""
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e9


def _recorders() -> dict[str, MetricsRecorder]:
    return {
        "off": NO_METRICS,
        "prometheus": ServerMetrics(),
        # The client is never used to send here: only what a request records is timed.
        "prometheus+statsd": ServerMetrics(statsd=StatsdClient("127.0.0.1", 9)),
    }


def measure(number: int, repeat: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, metrics in _recorders().items():
        calls = {
            "request_done": lambda m=metrics: m.request_done("GET", 200, 0.0004),
            "bytes_transferred": lambda m=metrics: m.bytes_transferred(120, 160),
        }
        row = {call: _best(function, number, repeat) for call, function in calls.items()}
        row["gateway.run"] = _best(_gateway_run(metrics), max(1, number // 10), repeat)
        if isinstance(metrics, ServerMetrics):
            metrics.registry.drain_samples()
        results[name] = row
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=200_000, help="calls per timing (gateway: a tenth)")
    parser.add_argument("--repeat", type=int, default=7, help="timings; the best is kept")
    args = parser.parse_args(argv)
    results = measure(args.number, args.repeat)
    columns = list(results["off"])
    print(f"{'ns per call':<20}" + "".join(f"{column:>16}" for column in columns))
    for name, row in results.items():
        print(f"{name:<20}" + "".join(f"{row[column]:>16.0f}" for column in columns))
    off = results["off"]
    for name in ("prometheus", "prometheus+statsd"):
        on = results[name]
        # gateway.run records request_done itself (the per-connection calls are left out).
        added = on["gateway.run"] - off["gateway.run"]
        share = 100 * added / off["gateway.run"]
        print(f"{name}: +{added:.0f} ns per request ({share:.1f}% of gateway.run alone, metrics off)")


if __name__ == "__main__":
    main()
