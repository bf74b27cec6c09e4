"""Server hooks: gunicorn's names, arguments and moments, so a ``gunicorn.conf.py`` works.

A hook is a callable given in a config file (a module-level function with the hook's
name) or to ``serve()`` as a keyword. The moments, and where each runs:

==================== =========================================== ===========================
hook                 called                                      process
==================== =========================================== ===========================
``on_starting``      ``(server)`` before the sockets are bound   supervisor
``on_reload``        ``(server)`` on SIGHUP, settings re-read    supervisor
``when_ready``       ``(server)`` sockets bound, before workers  supervisor
``pre_fork``         ``(server, worker)`` before a worker starts supervisor
``post_fork``        ``(server, worker)`` first thing in it      worker
``post_worker_init`` ``(worker)`` application loaded             worker
``worker_int``       ``(worker)`` on SIGINT or SIGQUIT           worker
``worker_abort``     ``(worker)`` on SIGABRT (worker_timeout)    worker
``pre_request``      ``(worker, req)`` before the application    worker, request thread
``post_request``     ``(worker, req, environ, resp)`` after it   worker, request thread
``child_exit``       ``(server, worker)`` a worker was reaped    supervisor
``worker_exit``      ``(server, worker)`` a worker is exiting    worker
``nworkers_changed`` ``(server, new_value, old_value)``          supervisor
``on_exit``          ``(server)`` just before exiting            supervisor
==================== =========================================== ===========================

``server`` has ``log`` (a logger), ``pid`` and ``settings``; the supervisor's also
``num_workers``. ``worker`` has ``log``, ``pid`` (None before it starts), ``age`` (1 for
the first worker started, then 2, ...) and, inside the worker, ``server`` (its
:class:`~waitress_like.server.Server`). ``req`` and ``resp`` carry gunicorn's common
attributes (``req.method``, ``req.path``, ``req.query``, ``req.headers``; ``resp.status``,
``resp.status_code``, ``resp.headers``).

Errors: a hook that raises is logged with its traceback and the server goes on, except
where gunicorn aborts start-up: ``on_starting`` and ``when_ready`` stop the server from
starting, and ``post_fork`` and ``post_worker_init`` fail that worker's start (counted by
the supervisor's start-up back-off). Only :meth:`Hooks.call_strict` raises
:class:`HookError`, the others never do.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

from .errors import WaitressLikeError, describe_exception

__all__ = [
    "HOOK_NAMES",
    "HookError",
    "HookMiddleware",
    "Hooks",
    "RequestInfo",
    "ResponseInfo",
    "split_hooks",
]

log = logging.getLogger("waitress_like")

HOOK_NAMES = (
    "on_starting",
    "on_reload",
    "when_ready",
    "pre_fork",
    "post_fork",
    "post_worker_init",
    "worker_int",
    "worker_abort",
    "pre_request",
    "post_request",
    "child_exit",
    "worker_exit",
    "nworkers_changed",
    "on_exit",
)


class HookError(WaitressLikeError):
    """A hook that must succeed raised; the message names the hook and the error."""


class Hooks:
    """The hooks in force: name -> callable. Read-only once built; any thread may call."""

    def __init__(self, hooks: Optional[Mapping[str, Callable[..., Any]]] = None) -> None:
        self._hooks = dict(hooks or {})
        for name, function in self._hooks.items():
            if name not in HOOK_NAMES:
                raise ValueError(f"unknown hook {name!r}")
            if not callable(function):
                raise TypeError(f"hook {name} must be callable, not a {type(function).__name__}")

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def __contains__(self, name: object) -> bool:
        return name in self._hooks

    def names(self) -> list[str]:
        return [name for name in HOOK_NAMES if name in self._hooks]

    def as_dict(self) -> dict[str, Callable[..., Any]]:
        return dict(self._hooks)

    def call(self, name: str, *args: Any) -> None:
        """Call hook ``name`` if set; an exception is logged, never raised."""
        function = self._hooks.get(name)
        if function is None:
            return
        try:
            function(*args)
        except Exception:
            log.exception("the %s hook raised; going on", name)

    def call_strict(self, name: str, *args: Any) -> None:
        """Call hook ``name`` if set; an exception becomes :class:`HookError`."""
        function = self._hooks.get(name)
        if function is None:
            return
        try:
            function(*args)
        except Exception as error:
            raise HookError(f"the {name} hook raised {describe_exception(error)}") from error


def split_hooks(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``values`` (keywords of ``serve()``) as (settings, hooks): hook names go to hooks."""
    settings = {name: value for name, value in values.items() if name not in HOOK_NAMES}
    hooks = {name: value for name, value in values.items() if name in HOOK_NAMES}
    return settings, hooks


def close_hook_name(name: str) -> Optional[str]:
    """The hook name ``name`` is probably a misspelling of, or None."""
    matches = difflib.get_close_matches(name, HOOK_NAMES, n=1, cutoff=0.8)
    return matches[0] if matches else None


# --------------------------------------------------------------------------- requests


class RequestInfo:
    """What ``pre_request``/``post_request`` get as ``req``: gunicorn's usual attributes."""

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self.method = environ.get("REQUEST_METHOD", "")
        self.path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        self.query = environ.get("QUERY_STRING", "")
        self.uri = self.path + ("?" + self.query if self.query else "")
        protocol = str(environ.get("SERVER_PROTOCOL", "HTTP/1.1"))
        major, _, minor = protocol.partition("/")[2].partition(".")
        self.version = (int(major or 1), int(minor or 0)) if (major + minor).isdigit() else (1, 1)
        self.headers = [
            (key[5:].replace("_", "-"), value) for key, value in environ.items() if key.startswith("HTTP_")
        ]
        self.remote_addr = environ.get("REMOTE_ADDR", "")


class ResponseInfo:
    """What ``post_request`` gets as ``resp``: the status and headers the application set."""

    def __init__(self) -> None:
        self.status: Optional[str] = None
        self.headers: list[tuple[str, str]] = []

    @property
    def status_code(self) -> Optional[int]:
        if not self.status:
            return None
        code = self.status.split(None, 1)[0]
        return int(code) if code.isdigit() else None


class HookMiddleware:
    """The application with ``pre_request`` and ``post_request`` around each call.

    ``post_request`` runs when the server closes the response (after its body is sent),
    or at once for a list or tuple body, which the server sends as it is (wrapping it
    would cost the response its Content-Length). A ``wsgi.file_wrapper`` response keeps
    its type, so the server can still ``sendfile`` it. Called on request threads.
    """

    def __init__(self, app: Callable[..., Any], hooks: Hooks, worker: Any) -> None:
        self.app = app
        self.hooks = hooks
        self.worker = worker

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = RequestInfo(environ)
        response = ResponseInfo()
        self.hooks.call("pre_request", self.worker, request)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            response.status, response.headers = status, headers
            return start_response(status, headers, exc_info)

        def after() -> None:
            self.hooks.call("post_request", self.worker, request, environ, response)

        try:
            result = self.app(environ, start)
        except BaseException:
            after()
            raise
        if type(result) in (list, tuple):
            after()
            return result
        if type(result) is environ.get("wsgi.file_wrapper") and _close_then(result, after):
            return result
        return _ClosingIterable(result, after)


def _close_then(result: Any, after: Callable[[], None]) -> bool:
    """Make ``result.close()`` run ``after`` too, keeping ``result`` itself; False if the
    object takes no attribute (then it is wrapped instead)."""
    original = getattr(result, "close", None)

    def close() -> None:
        try:
            if original is not None:
                original()
        finally:
            after()

    try:
        result.close = close
    except AttributeError:
        return False
    return True


class _ClosingIterable:
    """Iterates the application's result; ``close()`` closes it, then calls ``after``."""

    __slots__ = ("_result", "_after", "_closed")

    def __init__(self, result: Iterable[bytes], after: Callable[[], None]) -> None:
        self._result = result
        self._after = after
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._after()
