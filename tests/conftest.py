"""Shared fixtures: a real server on port 0, run once per selector, with leak checks.

A test module (or one test) opts into running over TLS as well with
``pytestmark = OVER_TLS_TOO``: its tests then run a third time, as ``[tls]``, against
an HTTPS server (default selector), and the clients of ``tests.httpclient`` speak TLS
to ``server.address``. A test that cannot (it builds its own address, or half-closes
the raw socket) is marked ``@PLAIN_ONLY`` and its ``[tls]`` run is deselected.
"""

from __future__ import annotations

import gc
import os
import selectors
import ssl
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

from waitress_like import create_server
from waitress_like.loop import EventLoop

SELECTORS = ["default", "select"]

OVER_TLS_TOO = pytest.mark.parametrize(
    ("selector", "scheme"),
    [("default", "http"), ("select", "http"), ("default", "https")],
    ids=["default", "select", "tls"],
)
PLAIN_ONLY = pytest.mark.plain_only

# Every loop made by the tests (and by the servers they start as child processes) checks
# that its loop-only methods run on the loop's thread.
os.environ["WAITRESS_LIKE_DEBUG"] = "1"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under test_compiled.py's child run, every compiled module must be the build's."""
    under_test = os.environ.get("WAITRESS_LIKE_UNDER_TEST")
    if under_test:
        from tests.test_compiled import loaded_from_build

        loaded_from_build(Path(under_test))


def _open_fds() -> set[int]:
    try:
        return {int(name) for name in os.listdir("/proc/self/fd")}
    except FileNotFoundError:  # pragma: no cover - not Linux
        return set()


class TLSAddress(tuple):
    """A ``(host, port)`` whose clients speak TLS: ``ssl_context`` trusts the test CA."""

    ssl_context: ssl.SSLContext
    server_hostname = "localhost"


class ServerCertificates:
    """A CA and a server certificate for localhost, made with trustme, as PEM files."""

    def __init__(self, directory: Path) -> None:
        import trustme

        self.ca = trustme.CA()
        self.server = self.ca.issue_cert("localhost", "127.0.0.1", "::1")
        self.certfile = str(directory / "cert.pem")
        self.keyfile = str(directory / "key.pem")
        self.cafile = str(directory / "ca.pem")
        Path(self.certfile).write_bytes(b"".join(blob.bytes() for blob in self.server.cert_chain_pems))
        Path(self.keyfile).write_bytes(self.server.private_key_pem.bytes())
        Path(self.cafile).write_bytes(self.ca.cert_pem.bytes())

    def client_context(self) -> ssl.SSLContext:
        """A client that trusts the test CA (and checks the name, as browsers do)."""
        return ssl.create_default_context(cafile=self.cafile)


@pytest.fixture(scope="session")
def https_certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificates:
    pytest.importorskip("trustme")
    return ServerCertificates(tmp_path_factory.mktemp("tls"))


class RunningServer:
    """A server created with ``create_server`` and run on a background thread.

    With ``certificates`` it serves HTTPS with them, and :attr:`address` is a
    :class:`TLSAddress`.
    """

    def __init__(
        self, app: Any, selector: str, certificates: Optional[ServerCertificates] = None, **settings: Any
    ) -> None:
        self.certificates = certificates
        if certificates is not None:
            settings.setdefault("certfile", certificates.certfile)
            settings.setdefault("keyfile", certificates.keyfile)
        settings.setdefault("host", "127.0.0.1")
        if "listen" in settings or "unix_socket" in settings or "sockets" in settings:
            settings.pop("host")
        else:
            settings.setdefault("port", 0)
        # "select" runs the server on the select() selector, as on Windows.
        factory = selectors.SelectSelector if selector == "select" else None
        self.server = create_server(app, _loop=EventLoop(factory), **settings)
        self.thread = threading.Thread(target=self.server.run, name="test-server-loop", daemon=True)
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.addresses[0][:2]
        if self.certificates is None:
            return host, port
        address = TLSAddress((host, port))
        address.ssl_context = self.certificates.client_context()
        return address

    def close(self) -> None:
        self.server.close(timeout=2)
        self.thread.join(10)
        assert not self.thread.is_alive(), "server loop thread did not stop"


@pytest.fixture(params=SELECTORS)
def selector(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def scheme() -> str:
    """``https`` in the ``[tls]`` run of a test that opted in (see OVER_TLS_TOO)."""
    return "http"


@pytest.fixture
def start_server(
    selector: str, scheme: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., RunningServer]]:
    """``start_server(app, **settings)``: a running server, closed and leak-checked after."""
    certificates = request.getfixturevalue("https_certificates") if scheme == "https" else None
    threads_before = set(threading.enumerate())
    fds_before = _open_fds()
    started: list[RunningServer] = []

    def start(app: Any, **settings: Any) -> RunningServer:
        server = RunningServer(app, selector, certificates, **settings)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
    gc.collect()
    leaked_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    for thread in leaked_threads:
        thread.join(5)
    leaked_threads = [t for t in leaked_threads if t.is_alive()]
    assert not leaked_threads, f"threads left behind: {leaked_threads}"
    leaked_fds = _open_fds() - fds_before
    assert not leaked_fds, f"file descriptors left behind: {sorted(leaked_fds)} -> " + ", ".join(
        _describe_fd(fd) for fd in sorted(leaked_fds)
    )


def _describe_fd(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the ``[tls]`` run of tests marked PLAIN_ONLY."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        over_tls = callspec is not None and callspec.params.get("scheme") == "https"
        (drop if over_tls and item.get_closest_marker("plain_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
