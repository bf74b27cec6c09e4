"""The servers under test: how to probe, start, wait for and stop each one.

The parent side (``SERVERS``, ``probe``, ``running_server``) uses only the standard
library. Run as a script, this module is the child side: it imports one server and serves
one app from ``apps.py`` on 127.0.0.1 (``python servers.py --server waitress --app hello
--port 8080``). gunicorn and granian are started through their own command lines instead.

Every server gets the same number of worker threads and a listen backlog of 1024
(waitress's default). Only the many-connections scenario raises connection limits and
idle timeouts, and only through each server's own settings.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCHMARKS_DIR.parent
BACKLOG = 1024
CONNECTION_LIMIT = 11000
DEFAULT_CONNECTION_LIMIT = 100  # waitress's default connection_limit
IDLE_TIMEOUT_SECONDS = 300
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 5.0
GRANIAN_MAX_HEADER_READ_TIMEOUT_MS = 60_000
# palfrey's loop factory (imported by name in the server process) reads the thread count here.
PALFREY_THREADS_VARIABLE = "WAITRESS_LIKE_BENCH_PALFREY_THREADS"
# Started through their own command line, not through this module's child side.
COMMAND_LINE_SERVERS = ("gunicorn", "granian")


@dataclass(frozen=True)
class ServerSpec:
    """One server under test.

    ``asgi`` says how it runs an ASGI app: "native", "a2wsgi" (waitress behind
    ``a2wsgi.ASGIMiddleware``) or None when it does not take part in ASGI scenarios.
    ``ws`` names its WebSocket implementation for the WebSocket scenarios, or None.
    ``tls`` is the app kind it serves over TLS ("wsgi" or "asgi"), None without TLS.
    """

    name: str
    distributions: tuple[str, ...]
    imports: tuple[str, ...]
    wsgi: bool
    asgi: str | None
    uses_repo: bool = False
    in_default_run: bool = True  # False: only when named with --servers (an A/B variant)
    ws: str | None = None  # how it serves WebSockets; None: not in those scenarios
    tls: str | None = None

    def supports(self, app_kind: str) -> bool:
        if app_kind == "websocket":
            return self.ws is not None
        if app_kind == "tls":
            return self.tls is not None
        return self.wsgi if app_kind == "wsgi" else self.asgi is not None

    def label(self, app_kind: str) -> str:
        """Display name; says when an adapter sits between server and app."""
        if app_kind == "tls" and self.tls == "asgi" and self.wsgi:
            return f"{self.name} (ASGI)"
        return f"{self.name}+a2wsgi" if app_kind == "asgi" and self.asgi == "a2wsgi" else self.name

    def tls_app(self, app_name: str) -> str:
        """The app a TLS scenario runs on this server: its ASGI twin for an ASGI server."""
        return f"asgi_{app_name}" if self.tls == "asgi" else app_name


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec(
            "waitress_like",
            ("waitress_like",),
            ("waitress_like",),
            True,
            "native",
            True,
            ws="native",
            tls="wsgi",
        ),
        # waitress_like with Prometheus and statsd on, and with Prometheus alone: the
        # A/B of the metrics' cost.
        ServerSpec(
            "waitress_like-metrics",
            ("waitress_like",),
            ("waitress_like",),
            True,
            "native",
            True,
            in_default_run=False,
        ),
        ServerSpec(
            "waitress_like-prometheus",
            ("waitress_like",),
            ("waitress_like",),
            True,
            "native",
            True,
            in_default_run=False,
        ),
        ServerSpec("waitress", ("waitress", "a2wsgi"), ("waitress", "a2wsgi"), True, "a2wsgi"),
        ServerSpec("gunicorn", ("gunicorn",), ("gunicorn.workers.gthread",), True, None, tls="wsgi"),
        ServerSpec("cheroot", ("cheroot",), ("cheroot.wsgi",), True, None),
        ServerSpec("uvicorn", ("uvicorn", "h11"), ("uvicorn", "h11"), False, "native", tls="asgi"),
        # Rust I/O runtime (one worker process, one runtime thread); the app runs on its
        # blocking threads, as many as every other server's workers.
        ServerSpec("granian", ("granian",), ("granian",), True, None),
        # An asyncio server: WSGI apps run on the loop's executor threads, ASGI apps natively.
        ServerSpec("palfrey", ("palfrey", "h11"), ("palfrey", "h11"), True, "native"),
        # WebSocket scenarios only: uvicorn with each of its WebSocket implementations.
        ServerSpec(
            "uvicorn-websockets",
            ("uvicorn", "websockets"),
            ("uvicorn", "websockets"),
            False,
            None,
            ws="websockets",
        ),
        ServerSpec(
            "uvicorn-wsproto", ("uvicorn", "wsproto"), ("uvicorn", "wsproto"), False, None, ws="wsproto"
        ),
    )
}
BASELINE = "waitress"


@dataclass(frozen=True)
class LaunchOptions:
    """What every server start in one run shares."""

    threads: int
    cpu: int | None
    log_dir: Path
    extra_environment: dict[str, str]
    # (certfile, keyfile) for TLS scenarios; see make_certificate().
    tls_files: tuple[str, str] | None = None


@dataclass(frozen=True)
class RunningServer:
    """A server that answered its first request; ``pid`` leads its process group."""

    pid: int
    port: int
    log_path: Path


class ServerFailed(RuntimeError):
    """The server exited, never listened, or answered its first request wrongly."""


def _environment(spec: ServerSpec, options: LaunchOptions) -> dict[str, str]:
    environment = dict(os.environ, **options.extra_environment)
    if spec.uses_repo:
        # Until the repository is installed, its working tree is what we measure.
        paths = [str(REPO_DIR), environment.get("PYTHONPATH", "")]
        environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    return environment


_PROBE_SOURCE = """
import importlib, importlib.metadata, json, sys
names, distributions = sys.argv[1].split(","), sys.argv[2].split(",")
modules = [importlib.import_module(name) for name in names]
if names[0] == "waitress_like":
    modules[0].serve
versions = {}
for distribution, module in zip(distributions, modules):
    try:
        versions[distribution] = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        versions[distribution] = getattr(module, "__version__", "unknown")
print(json.dumps(versions))
"""


def probe(spec: ServerSpec, options: LaunchOptions) -> dict[str, str]:
    """Import the server as its process would and return its package versions.

    Raises ServerFailed with the import error when the server cannot be loaded.
    """
    command = [sys.executable, "-c", _PROBE_SOURCE, ",".join(spec.imports), ",".join(spec.distributions)]
    result = subprocess.run(
        command, env=_environment(spec, options), capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ServerFailed(f"{spec.name} cannot be imported: {last_line}")
    return json.loads(result.stdout)


def make_certificate(directory: Path) -> tuple[str, str]:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1, made with the openssl command
    (every server gets the same one; wrk does not check it). Returns (certfile, keyfile)."""
    certfile, keyfile = directory / "bench-cert.pem", directory / "bench-key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    command += ["-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", str(keyfile)]
    command += ["-out", str(certfile), "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return str(certfile), str(keyfile)


def _granian_command(app_name: str, port: int, threads: int, many_connections: bool) -> list[str]:
    from apps import attribute_name

    # One worker process with one Rust runtime thread; --blocking-threads are the Python
    # threads that run the WSGI app (by default half the backlog, 512 here).
    command = [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "--http", "1"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--runtime-threads", "1"]
    command += ["--blocking-threads", str(threads), "--backlog", str(BACKLOG), "--no-ws", "--loop", "asyncio"]
    command += ["--log-level", "warning", "--working-dir", str(BENCHMARKS_DIR)]
    if many_connections:
        # Hyper closes a connection that sends no complete head in this time, idle
        # keep-alive ones included; 60 s is granian's largest allowed value.
        command += ["--http1-header-read-timeout", str(GRANIAN_MAX_HEADER_READ_TIMEOUT_MS)]
    return command + [f"apps:{attribute_name(app_name)}"]


def _command(
    spec: ServerSpec,
    app_name: str,
    port: int,
    threads: int,
    many_connections: bool,
    tls_files: tuple[str, str] | None = None,
) -> list[str]:
    if spec.name == "granian":
        return _granian_command(app_name, port, threads, many_connections)
    if spec.name == "gunicorn":
        from apps import attribute_name

        command = [str(Path(sys.executable).parent / "gunicorn"), "--worker-class", "gthread"]
        command += ["--workers", "1", "--threads", str(threads), "--bind", f"127.0.0.1:{port}"]
        command += ["--backlog", str(BACKLOG), "--chdir", str(BENCHMARKS_DIR), "--log-level", "warning"]
        if many_connections:
            command += ["--worker-connections", str(CONNECTION_LIMIT)]
            command += ["--keep-alive", str(IDLE_TIMEOUT_SECONDS)]
        if tls_files is not None:
            command += ["--certfile", tls_files[0], "--keyfile", tls_files[1]]
        return command + [f"apps:{attribute_name(app_name)}"]
    command = [sys.executable, str(Path(__file__).resolve()), "--server", spec.name]
    command += ["--app", app_name, "--port", str(port), "--threads", str(threads)]
    if tls_files is not None:
        command += ["--certfile", tls_files[0], "--keyfile", tls_files[1]]
    return command + (["--many-connections"] if many_connections else [])


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (the server binds it next)."""
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"exited with status {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.05)
    raise ServerFailed(f"not listening on port {port} after {READY_TIMEOUT_SECONDS:.0f} s")


def _check_first_response(port: int, deadline: float, tls: bool = False) -> None:
    timeout_seconds = max(1.0, deadline - time.monotonic())
    connection: http.client.HTTPConnection
    if tls:
        # The benchmark's own self-signed certificate: nothing to verify it against.
        context = ssl._create_unverified_context()
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout_seconds, context=context)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_seconds)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as error:
        raise ServerFailed(f"first request failed: {error!r}") from error
    finally:
        connection.close()
    if response.status != 200:
        raise ServerFailed(f"first request answered {response.status} {response.reason}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server's process group, then kill it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
            break
        except subprocess.TimeoutExpired:
            continue
    # Children of a killed leader may survive it briefly; the group is ours alone.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _log_last_line(log_path: Path) -> str:
    """The server log's last line: for a traceback, the exception itself."""
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else "(empty log)"


@contextlib.contextmanager
def running_server(
    spec: ServerSpec, app_name: str, options: LaunchOptions, many_connections: bool = False, tls: bool = False
) -> Iterator[RunningServer]:
    """Start the server on a free loopback port, yield once it answered GET /, then stop it.

    With ``tls`` it serves HTTPS with ``options.tls_files``. The server always stops when
    the block exits, normally or not. Raises ServerFailed (with the tail of its log) when
    it does not come up within READY_TIMEOUT_SECONDS.
    """
    port = free_port()
    tls_files = options.tls_files if tls else None
    if tls and tls_files is None:
        raise ServerFailed(f"{spec.name}: no certificate for the TLS scenario")
    command = _command(spec, app_name, port, options.threads, many_connections, tls_files)
    if options.cpu is not None:
        command = ["taskset", "-c", str(options.cpu)] + command
    log_path = options.log_dir / f"{spec.name}-{app_name}-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command,
            env=_environment(spec, options),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        try:
            _wait_until_listening(process, port, deadline)
            _check_first_response(port, deadline, tls)
        except ServerFailed as error:
            raise ServerFailed(f"{spec.name}: {error}; log ends: {_log_last_line(log_path)}") from None
        yield RunningServer(process.pid, port, log_path)
    finally:
        _stop(process)


# ---------------------------------------------------------------------------------------
# Child side: runs inside the server process.


def _serve_waitress(app: Any, port: int, threads: int, many_connections: bool, tls: dict[str, str]) -> None:
    import waitress

    settings: dict[str, Any] = {"host": "127.0.0.1", "port": port, "threads": threads}
    if many_connections:
        # select() cannot watch descriptors past 1024; poll() is waitress's own knob for that.
        settings.update(connection_limit=CONNECTION_LIMIT, asyncore_use_poll=True)
        settings.update(channel_timeout=IDLE_TIMEOUT_SECONDS)
    waitress.serve(app, _quiet=True, **settings)


def _serve_waitress_like(
    app: Any, port: int, threads: int, many_connections: bool, tls: dict[str, str]
) -> None:
    from waitress_like import serve

    settings: dict[str, Any] = {"host": "127.0.0.1", "port": port, "threads": threads, **tls}
    if many_connections:
        settings["connection_limit"] = CONNECTION_LIMIT
    serve(app, **settings)


def _serve_waitress_like_metrics(
    app: Any, port: int, threads: int, many_connections: bool, tls: dict[str, str], statsd: bool = True
) -> None:
    from waitress_like import serve

    settings: dict[str, Any] = {"host": "127.0.0.1", "port": port, "threads": threads}
    settings.update(metrics_listen="127.0.0.1:0")
    if statsd:
        # statsd datagrams go to a socket nobody reads: sending costs what it costs with
        # a real statsd, and the kernel drops them once its buffer is full.
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        settings.update(statsd_host=f"127.0.0.1:{sink.getsockname()[1]}")
    if many_connections:
        settings["connection_limit"] = CONNECTION_LIMIT
    serve(app, **settings)


def _serve_cheroot(app: Any, port: int, threads: int, many_connections: bool, tls: dict[str, str]) -> None:
    from cheroot import wsgi

    timeout_seconds = IDLE_TIMEOUT_SECONDS if many_connections else 10
    server = wsgi.Server(
        ("127.0.0.1", port), app, numthreads=threads, request_queue_size=BACKLOG, timeout=timeout_seconds
    )
    # cheroot keeps only 10 idle keep-alive connections by default and closes the rest
    # after one response; match waitress's default connection_limit instead.
    server.keep_alive_conn_limit = CONNECTION_LIMIT if many_connections else DEFAULT_CONNECTION_LIMIT
    server.start()


def _serve_uvicorn(
    app: Any, port: int, threads: int, many_connections: bool, tls: dict[str, str], ws: str = "auto"
) -> None:
    import uvicorn

    ssl_files = {"ssl_certfile": tls["certfile"], "ssl_keyfile": tls["keyfile"]} if tls else {}
    # Pure-Python parser and the standard event loop, like the other servers here.
    timeout_seconds = IDLE_TIMEOUT_SECONDS if many_connections else 5
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        http="h11",
        backlog=BACKLOG,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=timeout_seconds,
        ws=ws,
        **ssl_files,
    )


def palfrey_event_loop() -> Any:
    """palfrey's ``loop`` factory: the standard selector loop, whose default executor (where
    palfrey runs WSGI apps, through ``asyncio.to_thread``) has the benchmark's thread count
    rather than asyncio's default of CPUs + 4."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    loop = asyncio.SelectorEventLoop()
    threads = int(os.environ.get(PALFREY_THREADS_VARIABLE, "4"))
    loop.set_default_executor(ThreadPoolExecutor(max_workers=threads, thread_name_prefix="palfrey-wsgi"))
    return loop


def _serve_palfrey(
    app: Any, port: int, threads: int, many_connections: bool, tls: dict[str, str], interface: str = "wsgi"
) -> None:
    import palfrey

    os.environ[PALFREY_THREADS_VARIABLE] = str(threads)
    # h11 (pure Python), as for uvicorn; "auto" would pick httptools when it is installed.
    palfrey.run(
        app,
        host="127.0.0.1",
        port=port,
        interface=interface,
        http="h11",
        loop="servers:palfrey_event_loop",
        lifespan="off" if interface == "wsgi" else "auto",
        backlog=BACKLOG,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=IDLE_TIMEOUT_SECONDS if many_connections else 5,
    )


def _raise_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main(argv: list[str] | None = None) -> None:
    """Serve one app with one server until terminated."""
    from apps import ASGI_APPS, WSGI_APPS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server", required=True, choices=[name for name in SERVERS if name not in COMMAND_LINE_SERVERS]
    )
    parser.add_argument("--app", required=True, choices=sorted(WSGI_APPS) + sorted(ASGI_APPS))
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--many-connections", action="store_true")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args(argv)
    tls = {"certfile": args.certfile, "keyfile": args.keyfile} if args.certfile else {}
    _raise_open_file_limit()
    app = WSGI_APPS.get(args.app) or ASGI_APPS[args.app]
    if args.app in ASGI_APPS and args.server == "waitress":
        from a2wsgi import ASGIMiddleware

        app = ASGIMiddleware(app)
    serve = {
        "waitress": _serve_waitress,
        "waitress_like": _serve_waitress_like,
        "waitress_like-metrics": _serve_waitress_like_metrics,
        "waitress_like-prometheus": functools.partial(_serve_waitress_like_metrics, statsd=False),
        "cheroot": _serve_cheroot,
        "uvicorn": _serve_uvicorn,
        "uvicorn-websockets": functools.partial(_serve_uvicorn, ws="websockets"),
        "uvicorn-wsproto": functools.partial(_serve_uvicorn, ws="wsproto"),
        "palfrey": functools.partial(_serve_palfrey, interface="asgi3" if args.app in ASGI_APPS else "wsgi"),
    }[args.server]
    serve(app, args.port, args.threads, args.many_connections, tls)


if __name__ == "__main__":
    main()
