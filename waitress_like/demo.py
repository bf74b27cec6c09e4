"""A small demo application: a page that shows the request exactly as the app saw it.

Serve it with ``waitress-like-serve waitress_like.demo:app``. GET shows the environ; the
page's form POSTs back to it so uploads and form bodies can be seen too.
"""

from __future__ import annotations

import html
from typing import Any, Callable, Iterable

__all__ = ["app"]

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>waitress_like demo</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{padding:2px 8px;vertical-align:top}}
tr:nth-child(odd){{background:#f2f2f2}}code{{white-space:pre-wrap}}</style></head>
<body><h1>waitress_like is serving this page</h1>
<p>This is the request as the WSGI application received it.</p>
<h2>Request</h2><table>{request_rows}</table>
<h2>Body ({body_length} bytes)</h2><pre>{body}</pre>
<h2>Send a form</h2>
<form method="post" enctype="multipart/form-data">
<input name="greeting" value="hello"> <input type="file" name="upload">
<button type="submit">POST</button></form>
<h2>Environ</h2><table>{environ_rows}</table>
</body></html>
"""

_SHOWN_BODY_BYTES = 4096


def _rows(pairs: Iterable[tuple[str, Any]]) -> str:
    return "".join(
        f"<tr><td>{html.escape(str(k))}</td><td><code>{html.escape(repr(v))}</code></td></tr>"
        for k, v in pairs
    )


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The demo WSGI application."""
    body = environ["wsgi.input"].read()
    request = [
        ("method", environ["REQUEST_METHOD"]),
        ("script name", environ.get("SCRIPT_NAME", "")),
        ("path", environ.get("PATH_INFO", "")),
        ("query", environ.get("QUERY_STRING", "")),
        ("protocol", environ.get("SERVER_PROTOCOL")),
        ("client", f"{environ.get('REMOTE_ADDR')}:{environ.get('REMOTE_PORT', '')}"),
        ("scheme", environ["wsgi.url_scheme"]),
    ]
    page = _PAGE.format(
        request_rows=_rows(request),
        body_length=len(body),
        body=html.escape(body[:_SHOWN_BODY_BYTES].decode("utf-8", "replace")),
        environ_rows=_rows(sorted((k, v) for k, v in environ.items() if k != "wsgi.input")),
    ).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [page]


def make_app(global_config: dict[str, Any], **settings: str) -> Callable[..., Any]:
    """PasteDeploy app factory (``use = call:waitress_like.demo:make_app``)."""
    return app
