"""The ASGI lifespan protocol: startup before serving, shutdown after.

The lifespan task runs on the bridge loop for as long as the bridge does. ``startup`` and
``shutdown`` are called from another thread (the server's, or whoever calls
:meth:`~waitress_like.asgi.ASGIAdapter.startup`) and wait for the application's answer.

Modes (the ``lifespan`` setting):

* ``auto``: send the events; an application that raises on the lifespan scope, or returns
  without answering, does not support lifespan, and serving carries on without it.
* ``on``: the same, but an application that does not complete startup stops the server.
* ``off``: never send a lifespan scope.

In every mode an explicit ``lifespan.startup.failed`` stops the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import Any, Awaitable, Callable, Mapping, Optional

from ..config import LIFESPAN_MODES
from ..errors import WaitressLikeError, describe_exception
from .bridge import BridgeLoop

__all__ = ["Lifespan", "LifespanError"]

log = logging.getLogger("waitress_like")

_LIFESPAN_SPEC_VERSION = "2.0"

_COMPLETE = "complete"
_FAILED = "failed"
_ENDED = "ended"  # the app returned or raised without answering
Outcome = tuple[str, Any]


class LifespanError(WaitressLikeError, RuntimeError):
    """The application's lifespan startup failed, so the server does not serve it."""


class Lifespan:
    """Drives the lifespan protocol of one application on a :class:`BridgeLoop`.

    Thread contract: :meth:`startup` and :meth:`shutdown` are called from a thread other
    than the bridge loop's, one at a time; the ``_``-prefixed coroutines and callables run
    on the loop. :attr:`state` is the dict the application fills during startup; every
    request scope gets a shallow copy of it.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], mode: str) -> None:
        if mode not in LIFESPAN_MODES:
            raise ValueError(f"lifespan must be one of {', '.join(LIFESPAN_MODES)}, got {mode!r}")
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.active = False  # startup completed; shutdown is due
        self._startup_outcome: Optional[asyncio.Future[Outcome]] = None
        self._shutdown_outcome: Optional[asyncio.Future[Outcome]] = None
        self._shutdown_requested: Optional[asyncio.Future[None]] = None
        self._messages_sent = 0

    # -- the calling thread ------------------------------------------------------------

    def startup(self, bridge: BridgeLoop) -> None:
        """Send ``lifespan.startup`` and wait for the answer.

        Raises :class:`LifespanError` when the application reports
        ``lifespan.startup.failed``, or (mode ``on``) does not complete startup.
        """
        self.state = {}
        self.active = False
        if self.mode == "off":
            return
        outcome, detail = bridge.run(self._start())
        if outcome == _COMPLETE:
            self.active = True
            return
        if outcome == _FAILED:
            reason = f": {detail}" if detail else ""
            raise LifespanError(f"the application's lifespan startup failed{reason}")
        # _ENDED: the app raised, or returned without answering.
        if self.mode == "on":
            what = "returned without answering" if detail is None else f"raised {describe_exception(detail)}"
            raise LifespanError(
                f"lifespan is 'on' but the application {what} on lifespan.startup"
            ) from detail
        if detail is not None:
            log.info(
                "the ASGI application does not support lifespan (%s); serving without it",
                describe_exception(detail),
            )
        else:
            log.info("the ASGI application does not support lifespan; serving without it")

    def shutdown(self, bridge: BridgeLoop, timeout_seconds: float) -> None:
        """Send ``lifespan.shutdown`` and wait up to ``timeout_seconds`` for the answer.

        Never raises: the server is stopping anyway, so problems are logged.
        """
        if not self.active:
            return
        self.active = False
        try:
            outcome, detail = bridge.run(self._stop(), timeout_seconds)
        except concurrent.futures.TimeoutError:
            log.warning("the ASGI lifespan shutdown did not finish within %gs", timeout_seconds)
            return
        if outcome == _FAILED:
            log.error("the application's lifespan shutdown failed: %s", detail)
        elif outcome == _ENDED and detail is not None:
            log.error("exception in the ASGI lifespan shutdown", exc_info=detail)

    # -- the loop thread -----------------------------------------------------------------

    async def _start(self) -> Outcome:
        loop = asyncio.get_running_loop()
        self._startup_outcome = loop.create_future()
        self._shutdown_outcome = loop.create_future()
        self._shutdown_requested = loop.create_future()
        self._messages_sent = 0
        # Not in bridge.tasks: request tasks are waited for at shutdown, this one is told.
        loop.create_task(self._run())
        return await self._startup_outcome

    async def _stop(self) -> Outcome:
        assert self._shutdown_requested is not None and self._shutdown_outcome is not None
        if not self._shutdown_requested.done():
            self._shutdown_requested.set_result(None)
        return await asyncio.shield(self._shutdown_outcome)

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": _LIFESPAN_SPEC_VERSION},
            "state": self.state,
        }
        error: Optional[BaseException] = None
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            pass  # the bridge is stopping
        except BaseException as exc:  # reported through the outcomes; nothing may escape
            error = exc
        startup, shutdown = self._startup_outcome, self._shutdown_outcome
        if startup is not None and not startup.done():
            startup.set_result((_ENDED, error))
        elif shutdown is not None and not shutdown.done():
            if (
                error is not None
                and self._shutdown_requested is not None
                and not self._shutdown_requested.done()
            ):
                # Crashed while serving: say so now, not at shutdown.
                log.error("the ASGI lifespan task failed while serving", exc_info=error)
                error = None
            shutdown.set_result((_ENDED, error))
        elif error is not None:
            log.error("the ASGI lifespan task failed", exc_info=error)

    async def _receive(self) -> Mapping[str, Any]:
        self._messages_sent += 1
        if self._messages_sent == 1:
            return {"type": "lifespan.startup"}
        assert self._shutdown_requested is not None
        await self._shutdown_requested
        if self._messages_sent == 2:
            return {"type": "lifespan.shutdown"}
        await asyncio.get_running_loop().create_future()  # nothing more will ever come
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, message: Mapping[str, Any]) -> None:
        kind = message["type"]
        if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
            future = self._startup_outcome
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            future = self._shutdown_outcome
        else:
            raise RuntimeError(f"unexpected ASGI message type {kind!r} for the lifespan scope")
        assert future is not None
        if future.done():
            raise RuntimeError(f"ASGI {kind!r} sent at the wrong time")
        if kind.endswith(".complete"):
            future.set_result((_COMPLETE, None))
        else:
            future.set_result((_FAILED, message.get("message", "")))
