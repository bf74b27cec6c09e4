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
from .server import Server, create_server, run_until_signalled

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
    "__version__",
]

__version__ = "0.1.0"

log = logging.getLogger("waitress_like")


def serve(app: Any, **settings: Any) -> None:
    """Serve ``app`` until SIGTERM, SIGINT (Ctrl-C) or ``close()``, then drain gracefully.

    Takes every setting as a keyword (see the settings reference), exactly as
    ``waitress.serve`` does. Sets up logging from the logging settings (see
    :func:`waitress_like.logsetup.configure_logging`) and logs one "Serving on ..." line
    per listener; ``_quiet=True`` skips both. A second signal stops at once; SIGUSR1
    reopens the log files.
    """
    quiet = settings.pop("_quiet", False)
    logs = None if quiet else configure_logging(logging_settings(settings))
    try:
        server = create_server(app, **settings)
        if not quiet:
            server.print_listen("Serving on {}")
        try:
            run_until_signalled(server)
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    finally:
        if logs is not None:
            logs.close()
