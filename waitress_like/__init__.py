"""waitress_like: a pure-Python WSGI server, a drop-in replacement for waitress.

Public API: :func:`serve`, :func:`create_server`, the exception classes and
``__version__``.
"""

from __future__ import annotations

import logging
from typing import Any

from .asgi import LifespanError
from .errors import ConfigError, LocalProtocolError, ProtocolError, RemoteProtocolError, WaitressLikeError
from .logsetup import configure_logging, logging_settings
from .server import Server, create_server
from .supervisor import WorkerStartError

__all__ = [
    "serve",
    "create_server",
    "Server",
    "ConfigError",
    "LifespanError",
    "WaitressLikeError",
    "ProtocolError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "WorkerStartError",
    "__version__",
]

__version__ = "0.1.0"

log = logging.getLogger("waitress_like")


def serve(app: Any, **settings: Any) -> None:
    """Serve ``app`` until SIGTERM, SIGINT (Ctrl-C) or ``close()``, then drain gracefully.

    Takes every setting as a keyword (see the settings reference), exactly as
    ``waitress.serve`` does, and hooks by their names (``post_fork=...``). Sets up
    logging from the logging settings (see :func:`waitress_like.logsetup.configure_logging`)
    and logs one "Serving on ..." line per listener; ``_quiet=True`` skips both. A second
    signal stops at once; SIGUSR1 reopens the log files.

    ``app`` is the application, or ``"MODULE:OBJECT"`` to import. With ``workers`` > 1,
    ``max_requests`` or hooks, a supervisor runs worker processes (see the deployment
    page): on Unix they are forked, so an application object works; on Windows each
    worker imports the application, which must then be given as ``"MODULE:OBJECT"``.
    Raises :class:`~waitress_like.supervisor.WorkerStartError` when the workers keep
    failing to start.
    """
    from .hooks import Hooks, split_hooks
    from .process import run_one_process
    from .supervisor import AppSource, Supervisor, wants_supervisor

    quiet = settings.pop("_quiet", False)
    settings, hooks = split_hooks(settings)
    logs = None if quiet else configure_logging(logging_settings(settings))
    try:
        if wants_supervisor(settings, hooks):
            source = AppSource(spec=app) if isinstance(app, str) else AppSource(app=app)
            Supervisor(source, settings, Hooks(hooks), log_listen=not quiet).run()
            return
        run_one_process(app, settings, log_listen=not quiet)
    finally:
        if logs is not None:
            logs.close()
