"""The scenarios and how one (scenario, server) measurement is taken.

Each measurement starts a fresh server, reads its idle memory, applies the load, reads
its peak memory and stops it. Memory figures are KiB summed over the server's process
tree (see memory.py).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Any

from loadgen import IdleConnections, run_upload, run_wrk
from memory import RssSampler, tree_cpu_seconds, tree_hwm_kib, tree_rss_kib
from servers import LaunchOptions, ServerSpec, running_server
from wsload import run_ws_echo

# The WebSocket echo scenarios: connections and message size of each.
WS_SMALL_CONNECTIONS, WS_SMALL_BYTES = 10, 32
WS_LARGE_CONNECTIONS, WS_LARGE_BYTES = 1, 1024 * 1024


@dataclass(frozen=True)
class Scenario:
    """One workload. ``load`` is "wrk", "upload", "idle" or "ws-echo"; ``metric`` is what
    the chart and the ratios compare (requests/s, MiB/s for uploads and large WebSocket
    messages, round trips/s for small ones).

    ``kind`` "tls" runs over HTTPS, against the servers that serve it (each with its own
    app kind: see ``ServerSpec.tls``); ``new_connections`` makes wrk close the connection
    after every response, so each request pays a full TLS handshake.
    """

    name: str
    title: str
    app: str
    kind: str
    load: str
    metric: str = "requests_per_second"
    chunked: bool = False
    ws_connections: int = 0
    ws_message_bytes: int = 0
    new_connections: bool = False

    @property
    def unit(self) -> str:
        return {"mib_per_second": "MiB/s", "round_trips_per_second": "round trips/s"}.get(
            self.metric, "req/s"
        )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("hello", "hello world, keep-alive", "hello", "wsgi", "wrk"),
    Scenario("body-1mib", "1 MiB response body", "large_body", "wsgi", "wrk"),
    Scenario(
        "body-1mib-pieces", "1 MiB response body, 16 x 64 KiB pieces", "large_body_pieces", "wsgi", "wrk"
    ),
    Scenario("file-10mib", "10 MiB file via wsgi.file_wrapper", "file", "wsgi", "wrk"),
    Scenario("upload-length", "upload, Content-Length", "upload", "wsgi", "upload", "mib_per_second"),
    Scenario("upload-chunked", "upload, chunked", "upload", "wsgi", "upload", "mib_per_second", True),
    Scenario("idle-keepalive", "hello world + idle keep-alive conns", "hello", "wsgi", "idle"),
    Scenario("asgi-hello", "ASGI hello world", "asgi_hello", "asgi", "wrk"),
    Scenario(
        "ws-echo-small",
        f"WebSocket echo, {WS_SMALL_BYTES}-byte messages, {WS_SMALL_CONNECTIONS} connections",
        "ws_echo",
        "websocket",
        "ws-echo",
        "round_trips_per_second",
        ws_connections=WS_SMALL_CONNECTIONS,
        ws_message_bytes=WS_SMALL_BYTES,
    ),
    Scenario(
        "ws-echo-1mib",
        "WebSocket echo, 1 MiB messages, 1 connection",
        "ws_echo",
        "websocket",
        "ws-echo",
        "mib_per_second",
        ws_connections=WS_LARGE_CONNECTIONS,
        ws_message_bytes=WS_LARGE_BYTES,
    ),
    Scenario("tls-hello", "hello world over TLS, keep-alive", "hello", "tls", "wrk"),
    Scenario(
        "tls-handshake",
        "hello world over TLS, one handshake per request",
        "hello",
        "tls",
        "wrk",
        new_connections=True,
    ),
)


@dataclass(frozen=True)
class LoadSettings:
    """The knobs of the load side, shared by every measurement of a run."""

    duration_seconds: int
    connections: int
    upload_bytes: int
    idle_connections: int
    client_cpu: int | None


def _measure_idle(port: int, pid: int, idle_rss_kib: int, load: LoadSettings) -> dict[str, Any]:
    with IdleConnections(port, load.idle_connections, load.client_cpu) as holder:
        setup = holder.open()
        rss_with_idle_kib = tree_rss_kib(pid)
        result = run_wrk(port, load.connections, load.duration_seconds, load.client_cpu)
        status = holder.check()
    established = setup["established"]
    result.update(
        idle_requested=load.idle_connections,
        idle_established=established,
        idle_failed=setup["failed"],
        idle_setup_seconds=setup["setup_seconds"],
        idle_still_open=status["still_open"],
        rss_with_idle_kib=rss_with_idle_kib,
        rss_per_idle_connection_kib=(rss_with_idle_kib - idle_rss_kib) / established if established else None,
    )
    return result


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    scenario: Scenario, spec: ServerSpec, launch: LaunchOptions, load: LoadSettings
) -> dict[str, Any]:
    """Run ``scenario`` once against a fresh ``spec`` server and return its figures.

    Raises servers.ServerFailed or loadgen.LoadFailed; the server is stopped either way.
    """
    many_connections = scenario.load == "idle"
    tls = scenario.kind == "tls"
    app = spec.tls_app(scenario.app) if tls else scenario.app
    with running_server(spec, app, launch, many_connections, tls) as server:
        idle_rss_kib = tree_rss_kib(server.pid)
        cpu_before = tree_cpu_seconds(server.pid)
        client_cpu_before = _children_cpu_seconds()
        wall_before = time.monotonic()
        with RssSampler(server.pid) as sampler:
            if scenario.load == "wrk":
                result = run_wrk(
                    server.port,
                    load.connections,
                    load.duration_seconds,
                    load.client_cpu,
                    tls=tls,
                    close_connections=scenario.new_connections,
                )
            elif scenario.load == "ws-echo":
                result = run_ws_echo(
                    server.port,
                    scenario.ws_connections,
                    scenario.ws_message_bytes,
                    load.duration_seconds,
                    load.client_cpu,
                )
            elif scenario.load == "upload":
                result = run_upload(
                    server.port, load.upload_bytes, scenario.chunked, load.duration_seconds, load.client_cpu
                )
            else:
                result = _measure_idle(server.port, server.pid, idle_rss_kib, load)
        hwm_kib = tree_hwm_kib(server.pid)
        # Server CPU over the load: when the load generator is the bottleneck (large
        # files), throughput per server CPU-second still shows the server's own cost.
        cpu_seconds = tree_cpu_seconds(server.pid) - cpu_before
        wall_seconds = time.monotonic() - wall_before
        # Every load generator is a child process that has been waited for by now, and
        # the server (also a child) not yet: near 100% means the client set the pace.
        client_cpu_seconds = _children_cpu_seconds() - client_cpu_before
    if wall_seconds > 0:
        result["server_cpu_percent"] = 100.0 * cpu_seconds / wall_seconds
        result["client_cpu_percent"] = 100.0 * client_cpu_seconds / wall_seconds
    metric_value = result.get(scenario.metric)
    if cpu_seconds > 0 and isinstance(metric_value, (int, float)) and scenario.load != "idle":
        result["per_server_cpu_second"] = metric_value * wall_seconds / cpu_seconds
        # Over loopback the kernel's TCP work lands on either side's CPU depending on who
        # waits for whom, so the cost of server and client together is the fairer figure.
        result["per_total_cpu_second"] = metric_value * wall_seconds / (cpu_seconds + client_cpu_seconds)
    peak_rss_kib = max(sampler.peak_kib, hwm_kib)
    result.update(
        idle_rss_kib=idle_rss_kib,
        sampled_peak_rss_kib=sampler.peak_kib,
        peak_rss_kib=peak_rss_kib,
        rss_growth_kib=peak_rss_kib - idle_rss_kib,
    )
    return result
