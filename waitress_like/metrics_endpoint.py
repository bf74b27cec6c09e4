"""The ``/metrics`` listener: the Prometheus exposition, served by a server of its own.

The endpoint is an ordinary waitress_like server (the same class as the one it reports
on, so the same HTTP code, limits and deadlines) with one worker thread and a tiny WSGI
application, running its own loop on a thread of its own. It never shares a listener,
a loop or a worker with the application: a scrape is answered even while every worker
of the application is busy, and scrapes are not counted in the application's metrics.

The server class is passed in rather than imported, so that this module does not depend
on the server module that depends on it.

Thread contract: :meth:`MetricsEndpoint.start` and :meth:`MetricsEndpoint.close` from
one thread (the application server's loop thread starts it; whichever thread releases
that server closes it). ``render`` is called on the endpoint's worker thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable, Sequence

from .config import Settings
from .listeners import Listener
from .metrics import CONTENT_TYPE

__all__ = ["MetricsEndpoint", "exposition_app"]

log = logging.getLogger("waitress_like")

PATH = "/metrics"
_CLOSE_GRACE_SECONDS = 2.0
# A scrape is one short request; a few connections are plenty, and a small limit keeps
# an endpoint exposed by mistake cheap to hold.
_ENDPOINT_SETTINGS = {
    "threads": 1,
    "connection_limit": 16,
    "keepalive_timeout": 30,
    "graceful_timeout": _CLOSE_GRACE_SECONDS,
    "max_request_body_size": 0,
}


def exposition_app(render: Callable[[], bytes]) -> Callable[..., Iterable[bytes]]:
    """A WSGI application answering ``GET /metrics`` with ``render()``; 404/405 otherwise."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return _plain(start_response, "404 Not Found", b"Not found: metrics are at /metrics\n")
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", b"Use GET\n", [("Allow", "GET, HEAD")])
        body = render()
        start_response(
            "200 OK",
            [
                ("Content-Type", CONTENT_TYPE),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    return app


def _plain(
    start_response: Callable[..., Any], status: str, body: bytes, extra: Sequence[tuple[str, str]] = ()
) -> list[bytes]:
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra]
    start_response(status, headers)
    return [body]


class MetricsEndpoint:
    """Serves ``render()`` at ``/metrics`` on ``listeners`` (already bound), with a
    server made by ``server_class(app, settings, listeners)``."""

    def __init__(self, listeners: Sequence[Listener], render: Callable[[], bytes], server_class: Any) -> None:
        self.listeners = list(listeners)
        self._server = server_class(
            exposition_app(render), Settings.from_mapping(_ENDPOINT_SETTINGS), self.listeners
        )
        # Scrapes are not requests of the application: no access log line for them.
        self._server.access_log = None
        self._server.gateway.access_log = None
        self._thread = threading.Thread(target=self._run, name="waitress_like-metrics", daemon=True)
        self._started = False

    @property
    def loop(self) -> Any:
        """The endpoint server's event loop (a forked child closes its copy)."""
        return self._server.loop

    @property
    def addresses(self) -> list[Any]:
        return [listener.address for listener in self.listeners]

    def start(self) -> None:
        for listener in self.listeners:
            log.info("Serving metrics on %s%s", listener.display, PATH)
        self._started = True
        self._thread.start()

    def _run(self) -> None:
        try:
            self._server.run()
        except Exception:  # pragma: no cover - a bug; the application server keeps serving
            log.exception("the metrics endpoint stopped")

    def close(self) -> None:
        """Stop serving and release the listeners and threads (waits a couple of seconds
        at most for a scrape in progress). Idempotent."""
        self._server.close(timeout=_CLOSE_GRACE_SECONDS)
        if self._started:
            self._thread.join(_CLOSE_GRACE_SECONDS + 10)
