"""PasteDeploy support: the server runner and loading an ini file's app and settings.

An ini file selects this server with::

    [server:main]
    use = egg:waitress_like#main
    listen = 127.0.0.1:8080
             [::1]:8080
    threads = 8

Every setting of the table may appear in the section, as a string; the table converts
and checks it exactly as for ``serve()``. PasteDeploy itself is only imported by
:func:`load_ini`, so the runner works with whatever loaded it (PasteDeploy, pserve,
plaster).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from .importer import make_importable

__all__ = ["serve_paste", "load_ini", "split_ini_spec"]


def serve_paste(app: Any, global_conf: Mapping[str, Any], **settings: str) -> int:
    """The ``paste.server_runner`` entry point ``egg:waitress_like#main``.

    Serves ``app`` with the section's settings until interrupted. ``global_conf`` (the
    ``[DEFAULT]`` values and PasteDeploy's ``here``/``__file__``) is not a source of
    settings: only the server section's own keys are, as with waitress.
    """
    from . import serve

    serve(app, **settings)
    return 0


def split_ini_spec(spec: str) -> Optional[tuple[str, Optional[str]]]:
    """``path/app.ini`` or ``path/app.ini#name`` -> (absolute path, name); else None.

    A ``config:`` prefix, as PasteDeploy URIs have, is accepted. Anything that does not
    end in ``.ini`` (before an optional ``#name``) is not an ini spec.
    """
    text = spec[len("config:") :] if spec.startswith("config:") else spec
    path, _, name = text.partition("#")
    if not path.lower().endswith(".ini"):
        return None
    return os.path.abspath(path), (name or None)


def load_ini(
    path: str, name: Optional[str] = None, server_name: Optional[str] = None
) -> tuple[Any, dict[str, str]]:
    """Load the application ``[app:NAME]`` (or pipeline/composite) of a PasteDeploy ini
    and the settings of its ``[server:SERVER_NAME]`` section (``main`` by default).

    The settings are returned as the strings the ini holds, without PasteDeploy's
    ``use`` key. A missing server section gives no settings. The current directory is
    importable, as for ``MODULE:OBJECT`` specs (``use = call:module:factory``). Needs
    PasteDeploy (``pip install waitress_like[paste]``); raises ``ImportError`` without it
    and PasteDeploy's own errors (``LookupError``, ``OSError``) for a bad file.
    """
    from paste.deploy import loadapp
    from paste.deploy.loadwsgi import SERVER, loadcontext

    make_importable()
    uri = "config:" + os.path.abspath(path)
    app = loadapp(uri, name=name)
    try:
        context = loadcontext(SERVER, uri, name=server_name)
    except LookupError:
        if server_name is not None:
            raise
        return app, {}  # no [server:main]: the caller's settings (or the defaults) apply
    return app, {key: str(value) for key, value in context.local_conf.items()}
