"""Which interface an application speaks, and the WSGI callable the server runs for it.

The rule for ``interface="auto"`` (called once, on the thread that creates the server):

* An :class:`~waitress_like.asgi.ASGIAdapter` is served as it is (it is a WSGI callable),
  and the server drives its lifespan.
* A coroutine function, or an object whose ``__call__`` is one, that accepts
  ``(scope, receive, send)`` is ASGI 3: FastAPI, Starlette, Django's ``ASGIHandler``,
  Quart, and plain ``async def app(scope, receive, send)``.
* A coroutine function that cannot take three positional arguments is refused: it is
  neither WSGI nor ASGI 3.
* A class whose instances have an async ``__call__`` is refused too: it may be an ASGI 2
  application (say ``interface="asgi2"``) or an ASGI 3 class passed instead of its
  instance. ASGI 2 is never guessed: a plain callable returning an object looks the same
  as a WSGI application until it is called.
* Everything else is WSGI.

A callable that returns a coroutine without being a coroutine function itself (some
hand-written middleware) is not recognised: give ``interface="asgi3"``.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

from ..config import INTERFACES, LIFESPAN_MODES
from ..errors import ConfigError
from .adapter import ASGIAdapter

__all__ = ["detect_interface", "resolve_application"]


def _async_call_target(app: Any) -> Any:
    """The coroutine function that calling ``app`` runs, or None."""
    if inspect.iscoroutinefunction(app):
        return app
    call = getattr(app, "__call__", None)  # noqa: B004 - the attribute itself is wanted
    if call is not None and inspect.iscoroutinefunction(call):
        return call
    return None


def _takes_arguments(function: Any, count: int) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins and other callables without a signature
        return True
    try:
        signature.bind(*([None] * count))
    except TypeError:
        return False
    return True


def detect_interface(app: Any) -> str:
    """``"wsgi"`` or ``"asgi3"`` for ``app``, by the rule in the module docstring.

    Raises :class:`~waitress_like.errors.ConfigError` (naming ``interface``) for an
    application the rule refuses to guess about.
    """
    if isinstance(app, ASGIAdapter):
        return "wsgi"
    if inspect.isclass(app):
        if inspect.iscoroutinefunction(getattr(app, "__call__", None)):  # noqa: B004
            raise ConfigError(
                "interface",
                "auto",
                f"{app.__qualname__} is a class whose instances have an async __call__: "
                "give interface='asgi2' for an ASGI 2 application, or pass an instance",
            )
        return "wsgi"
    target = _async_call_target(app)
    if target is None:
        return "wsgi"
    if not _takes_arguments(target, 3):
        raise ConfigError(
            "interface",
            "auto",
            f"{app!r} is a coroutine function that does not take (scope, receive, send); "
            "give interface='asgi3' or 'asgi2' explicitly",
        )
    return "asgi3"


def resolve_application(
    app: Any, interface: str = "auto", lifespan: str = "auto"
) -> tuple[Any, Optional[ASGIAdapter]]:
    """Return ``(wsgi_app, hook)``: what the server calls per request, and the object
    whose ``startup()``/``shutdown()`` it calls around serving (None for plain WSGI).

    Raises :class:`~waitress_like.errors.ConfigError` for an unknown ``interface`` or
    ``lifespan``, for ``lifespan="on"`` with a WSGI application, and when ``auto``
    refuses to guess.
    """
    if interface not in INTERFACES:
        raise ConfigError("interface", interface, f"expected one of {', '.join(INTERFACES)}")
    if lifespan not in LIFESPAN_MODES:
        raise ConfigError("lifespan", lifespan, f"expected one of {', '.join(LIFESPAN_MODES)}")
    if not callable(app):
        raise ConfigError("interface", interface, f"the application {app!r} is not callable")
    if interface == "auto":
        interface = detect_interface(app)
    if isinstance(app, ASGIAdapter):
        return app, app  # built by the caller, with its own lifespan mode
    if interface == "wsgi":
        if lifespan == "on":
            raise ConfigError("lifespan", lifespan, "needs an ASGI application; this one is served as WSGI")
        return app, None
    adapter = ASGIAdapter(app, lifespan=lifespan, interface=interface)
    return adapter, adapter
