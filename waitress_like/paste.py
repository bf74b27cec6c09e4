"""The PasteDeploy server runner: ``[server:main] use = egg:waitress_like#main``."""

from __future__ import annotations

from typing import Any

__all__ = ["serve_paste"]


def serve_paste(app: Any, global_conf: Any, **settings: str) -> int:
    """Serve ``app`` with the ini section's settings (all strings; the table converts them)."""
    from . import serve

    serve(app, **settings)
    return 0
