"""Serving ASGI applications: a bridge from the WSGI server to one background event loop.

* :class:`ASGIAdapter` turns an ASGI 3 application into a WSGI callable; it works on any
  WSGI server.
* :func:`resolve_application` is what ``serve()``/``create_server()`` use to apply the
  ``interface`` and ``lifespan`` settings.
* :class:`LifespanError` is raised when the application's lifespan startup fails.

Modules: :mod:`.scope` (environ -> HTTP scope), :mod:`.bridge` (the loop thread),
:mod:`.cycle` (one request between a worker and its task), :mod:`.lifespan`,
:mod:`.adapter`, :mod:`.detect`.
"""

from ..config import INTERFACES, LIFESPAN_MODES
from .adapter import DEFAULT_SHUTDOWN_TIMEOUT_SECONDS, ASGIAdapter
from .detect import detect_interface, resolve_application
from .lifespan import LifespanError

__all__ = [
    "ASGIAdapter",
    "DEFAULT_SHUTDOWN_TIMEOUT_SECONDS",
    "INTERFACES",
    "LIFESPAN_MODES",
    "LifespanError",
    "detect_interface",
    "resolve_application",
]
