"""The PEP 3333 gateway: runs one request through the WSGI application on a worker thread.

:meth:`WSGIGateway.run` builds the environ, calls the application, and maps what it gives
(``start_response``, ``write``, the iterable, ``wsgi.file_wrapper``) onto the request's
:class:`~waitress_like.protocol.writer.ResponseWriter`, which frames the bytes and gives
the keep-alive verdict; bytes and verdict go to the request's
:class:`~waitress_like.buffers.OutputPipe`. Application errors become a 500 response
here, or a closed connection when the headers are already on their way.

Thread contract: :meth:`WSGIGateway.run` is called on a worker thread, once per request;
the gateway itself holds only read-only state and serves every worker at once.
"""

from __future__ import annotations

import enum
import logging
import os
import stat
import sys
import time
import traceback
from types import TracebackType
from typing import IO, Any, Callable, Iterable, Optional, Sequence, Tuple, Type
from urllib.parse import unquote_to_bytes

from .accesslog import CLIENT_CLOSED_REQUEST
from .buffers import ClientDisconnected, OutputPipe
from .protocol.writer import HeadPolicy, ResponseWriter
from .proxy import MalformedProxyHeader, ProxyPolicy
from .server_metrics import NO_METRICS, MetricsRecorder
from .tlsinfo import TLS_ENVIRON_KEY, TLSConnectionInfo

__all__ = ["WSGIGateway", "FileWrapper", "WSGIRequest"]

log = logging.getLogger("waitress_like")

ExcInfo = Tuple[Type[BaseException], BaseException, Optional[TracebackType]]
WSGIApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]


class FileWrapper:
    """``wsgi.file_wrapper``: iterates a file in blocks, or lets the server sendfile it.

    The gateway recognises its own wrapper and, when the file is a regular file with a
    descriptor, sends it with ``os.sendfile`` from the loop thread instead of iterating.
    """

    def __init__(self, filelike: Any, block_size: int = 32768) -> None:
        self.filelike = filelike
        self.block_size = block_size
        self._close_file = getattr(filelike, "close", None)

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.block_size)
        if data:
            return data
        raise StopIteration

    def close(self) -> None:
        if self._close_file is not None:
            self._close_file()


class WSGIRequest:
    """What a worker needs to serve one request; built by the channel on the loop thread.

    ``body`` is the complete request body as a readable file (``wsgi.input``); the gateway
    closes it when the request is done. ``tls`` describes the connection's TLS session
    (None on plain HTTP).
    """

    __slots__ = (
        "head",
        "body",
        "body_length",
        "remote_addr",
        "remote_port",
        "listener",
        "client_disconnected",
        "proxy_trusted",
        "tls",
    )

    def __init__(
        self,
        head: Any,
        body: IO[bytes],
        body_length: int,
        remote_addr: str,
        remote_port: str,
        listener: Any,
        client_disconnected: Callable[[], bool],
        proxy_trusted: bool = False,
        tls: Optional[TLSConnectionInfo] = None,
    ) -> None:
        self.head = head
        self.body = body
        self.body_length = body_length
        self.remote_addr = remote_addr
        self.remote_port = remote_port
        self.listener = listener
        self.client_disconnected = client_disconnected
        self.proxy_trusted = proxy_trusted  # the peer is a trusted proxy (decided at accept)
        self.tls = tls  # the connection's TLS facts; None on plain HTTP


class _ResponseState(enum.Enum):
    NOT_STARTED = 0  # start_response not called yet
    HEADERS_SET = 1  # called; head not sent yet (can still be replaced with exc_info)
    HEADERS_SENT = 2  # head handed to the pipe
    FINISHED = 3


_PROTOCOLS = {(1, 1): "HTTP/1.1", (1, 0): "HTTP/1.0"}

# Header name -> environ key; None for names with "_" (dropped: "X_Foo" and "X-Foo" would
# collide in environ, the classic header-spoofing trick). Bounded so hostile clients
# sending random names cannot grow it without end.
_ENVIRON_KEYS: dict[str, Optional[str]] = {}
_ENVIRON_KEYS_MAX = 2048


def _environ_key(name: str) -> Optional[str]:
    key = _ENVIRON_KEYS.get(name)
    if key is not None or name in _ENVIRON_KEYS:
        return key
    if "_" in name:
        key = None
    else:
        upper = name.upper().replace("-", "_")
        key = upper if upper in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + upper
    if len(_ENVIRON_KEYS) < _ENVIRON_KEYS_MAX:
        _ENVIRON_KEYS[name] = key
    return key


class WSGIGateway:
    """Runs requests through one WSGI application."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        server_name: str,
        url_scheme: str,
        url_prefix: str,
        ident: str,
        expose_tracebacks: bool,
        server_header: bool = True,
        date_header: bool = True,
        default_headers: tuple[tuple[str, str], ...] = (),
        proxy: Optional[ProxyPolicy] = None,
        multiprocess: bool = False,
    ) -> None:
        """``multiprocess``: other processes run the same application at once (worker
        processes), as ``wsgi.multiprocess`` tells it (PEP 3333)."""
        self.app = app
        self.proxy = proxy  # rewrites the environ from trusted forwarding headers
        # What the server adds to every response head: Server, Date, default headers.
        self.head_policy = HeadPolicy(ident if server_header else "", date_header, default_headers)
        # An AccessLog, or None when access logging is off (then it costs nothing).
        self.access_log: Any = None
        self.metrics: MetricsRecorder = NO_METRICS  # told of every request that ends here
        self.url_prefix = url_prefix
        self._plain_paths = not url_prefix  # PATH_INFO is the path itself when it has no "%"
        self.expose_tracebacks = expose_tracebacks
        self.base_environ: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url_scheme,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
            "SERVER_NAME": server_name,
            "SERVER_SOFTWARE": ident,
            "SCRIPT_NAME": url_prefix,
        }

    # -- environ -------------------------------------------------------------------------

    def build_environ(self, request: WSGIRequest) -> dict[str, Any]:
        head = request.head
        environ = self.base_environ.copy()
        environ["REQUEST_METHOD"] = head.method
        environ["SERVER_PROTOCOL"] = _PROTOCOLS.get(head.version) or "HTTP/%d.%d" % head.version
        path = head.path
        # Most paths need no unquoting and no prefix taken off: no call for them.
        plain = self._plain_paths and "%" not in path and path != "*"
        environ["PATH_INFO"] = path if plain else self._path_info(path)
        environ["QUERY_STRING"] = head.query
        environ["RAW_URI"] = environ["REQUEST_URI"] = head.target
        environ["REMOTE_ADDR"] = request.remote_addr
        if request.remote_port:
            environ["REMOTE_PORT"] = request.remote_port
        environ["SERVER_PORT"] = request.listener.server_port
        environ["wsgi.input"] = request.body
        # Also under waitress's name, so code written for waitress keeps working.
        environ["waitress_like.client_disconnected"] = environ["waitress.client_disconnected"] = (
            request.client_disconnected
        )
        known_keys = _ENVIRON_KEYS
        for name, value in head.headers:
            key = known_keys.get(name)  # inline look-up: one call less per header
            if key is None:
                key = _environ_key(name)  # a new name, or one that is dropped
                if key is None:
                    continue
            if key in environ:
                if key == "CONTENT_LENGTH":
                    continue  # the parser already refused conflicting lengths
                # RFC 9110 5.3: repeated fields combine with commas; Cookie with "; "
                # (RFC 6265 5.4), so cookie parsers see one list.
                separator = "; " if key == "HTTP_COOKIE" else ", "
                environ[key] = environ[key] + separator + value
            else:
                environ[key] = value
        if head.content_length is not None or head.chunked:
            # For chunked uploads the body is complete, so its decoded length is known.
            environ["CONTENT_LENGTH"] = str(request.body_length)
        if request.tls is not None:
            # Before the proxy rewrite: a trusted proxy's X-Forwarded-Proto still wins.
            environ.update(request.tls.environ)
            environ[TLS_ENVIRON_KEY] = request.tls
        if self.proxy is not None:
            self.proxy.apply(environ, request.proxy_trusted)  # may raise MalformedProxyHeader
        # CGI lets REMOTE_HOST be the address when no name is looked up (RFC 3875 4.1.9).
        # waitress sets it, so applications written for waitress read it; after the proxy
        # rewrite, it names the same client as REMOTE_ADDR.
        environ["REMOTE_HOST"] = environ["REMOTE_ADDR"]
        return environ

    def _path_info(self, path: str) -> str:
        # build_environ skips this call for what it would return unchanged: a path other
        # than "*" without "%", when there is no url_prefix.
        if path == "*":
            # OPTIONS * names the server, not a resource: PEP 3333 wants PATH_INFO empty
            # or starting with "/" (RAW_URI keeps the "*").
            return ""
        if "%" in path:
            path = unquote_to_bytes(path).decode("latin-1")
        prefix = self.url_prefix
        if prefix:
            if path == prefix:
                return ""
            if path.startswith(prefix + "/"):
                return path[len(prefix) :]
        return path

    # -- running -------------------------------------------------------------------------

    def run(self, request: WSGIRequest, pipe: OutputPipe) -> None:
        """Worker thread: serve ``request`` completely into ``pipe``. Never raises."""
        response = _Response(self, request, pipe)
        started = time.time()
        environ: dict[str, Any] = {}
        try:
            try:
                environ = self.build_environ(request)
            except MalformedProxyHeader as error:
                response.logged_status = 400
                response.refuse_proxy_header(error)
                return
            app_iter = self.app(environ, response.start_response)
            try:
                response.send_body(app_iter)
            finally:
                close = getattr(app_iter, "close", None)
                if close is not None:
                    close()
            response.finish()
        except ClientDisconnected:
            log.debug("client disconnected while serving %s", request.head.target)
            response.logged_status = CLIENT_CLOSED_REQUEST
            response.abort()
        except Exception:
            response.fail(sys.exc_info())  # type: ignore[arg-type]
        finally:
            request.body.close()
            if self.access_log is not None:
                self._log_access(request, response, environ, started)
            if self.metrics is not NO_METRICS:  # off by default: then nothing to compute
                self.metrics.request_done(request.head.method, _final_status(response), time.time() - started)

    def _log_access(
        self, request: WSGIRequest, response: _Response, environ: dict[str, Any], started: float
    ) -> None:
        if not environ:  # refused before the environ existed: log what the request said
            environ = {
                "REMOTE_ADDR": request.remote_addr,
                "REQUEST_METHOD": request.head.method,
                "RAW_URI": request.head.target,
                "SERVER_PROTOCOL": "HTTP/%d.%d" % request.head.version,
            }
        writer = response.writer
        self.access_log.record(
            environ,
            _final_status(response),
            writer.headers,
            writer.body_bytes,
            started,
            time.time() - started,
        )


def _final_status(response: _Response) -> int:
    """The status a request ended with, for the access log and metrics (499: client gone)."""
    if response.pipe.aborted:
        return CLIENT_CLOSED_REQUEST
    return response.logged_status or response.writer.status_code


class _Response:
    """PEP 3333's side of one response, on the worker thread that runs the request.

    It keeps the WSGI rules (when ``start_response`` may be called, ``write``, what the
    application may return) and turns them into calls on a
    :class:`~waitress_like.protocol.writer.ResponseWriter`, which owns the framing; the
    bytes go to the pipe with the writer's verdict as ``close_connection``.
    """

    __slots__ = ("gateway", "request", "pipe", "writer", "state", "logged_status", "excess_logged")

    def __init__(self, gateway: WSGIGateway, request: WSGIRequest, pipe: OutputPipe) -> None:
        head = request.head
        self.gateway = gateway
        self.request = request
        self.pipe = pipe
        self.writer = ResponseWriter(gateway.head_policy, head.method, head.version, head.keep_alive)
        self.state = _ResponseState.NOT_STARTED
        self.logged_status = 0  # what the access log records when it is not the writer's status
        self.excess_logged = False  # warned that the application sent past its Content-Length

    # -- PEP 3333 start_response and write -------------------------------------------------

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: Optional[ExcInfo] = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.state is _ResponseState.HEADERS_SENT or self.state is _ResponseState.FINISHED:
                    # PEP 3333: too late to change the response; re-raise the app's error.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the traceback reference cycle
        elif self.state is not _ResponseState.NOT_STARTED:
            raise AssertionError("start_response called a second time without exc_info")
        self.writer.set_head(status, headers)
        self.state = _ResponseState.HEADERS_SET
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable: send ``data`` now (PEP 3333)."""
        if self.state is _ResponseState.NOT_STARTED:
            raise AssertionError("write() called before start_response()")
        if type(data) is not bytes:
            raise TypeError(f"write() takes bytes, got {type(data).__name__}")
        if data:
            self._send(data, finish=False)

    # -- body --------------------------------------------------------------------------

    def send_body(self, app_iter: Iterable[bytes]) -> None:
        if type(app_iter) is FileWrapper and self._send_file(app_iter):
            return
        if type(app_iter) in (list, tuple):
            self._send_sequence(app_iter)  # type: ignore[arg-type]  # a list or tuple
            return
        disconnected = self.request.client_disconnected
        for chunk in app_iter:
            if type(chunk) is not bytes:
                raise TypeError(f"the application yielded {type(chunk).__name__}, not bytes")
            if chunk:
                self._send(chunk, finish=False)
                if disconnected():
                    raise ClientDisconnected("the client has gone away")

    def _send_sequence(self, chunks: Sequence[bytes]) -> None:
        """A list body: everything is known, so it goes to the pipe in one write, with a
        length.

        The pieces are not joined into one body: copying a large body costs more than
        sending its pieces with one gather write (a fresh megabyte also costs a page
        fault per page). Runs of small pieces are joined, so that many tiny ones do not
        become as many items to send.
        """
        size = 0
        for chunk in chunks:
            if type(chunk) is not bytes:
                raise TypeError(f"the application returned {type(chunk).__name__}, not bytes")
            size += len(chunk)
        if self.state is _ResponseState.HEADERS_SET and self.writer.content_length is None:
            self.writer.set_content_length(size)
        if size:
            self._send_pieces(chunks if len(chunks) == 1 else _coalesce(chunks), finish=True)

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """Frame a wrapped file by its size, and send a regular file with sendfile from the
        loop thread. False when the body is to be iterated instead.

        When the file's size is known, the Content-Length says what the file really holds
        from its current position, if the application gave none or a longer one (as
        waitress does): a length the body cannot fill would cost the connection.
        """
        if self.state is not _ResponseState.HEADERS_SET:
            return False
        extent = _file_extent(wrapper.filelike)
        if extent is None:
            return False
        fd, offset, available = extent
        writer = self.writer
        if writer.content_length is None or writer.content_length > available:
            writer.set_content_length(available)
        if fd is None:
            return False
        head = writer.start(self.pipe.last_response)
        count = writer.body_from_file(available)
        self.state = _ResponseState.HEADERS_SENT
        self.pipe.write(head)
        if count:
            self.pipe.write_file(os.dup(fd), offset, count)
        return True

    def _send(self, data: bytes, finish: bool) -> None:
        """Frame ``data`` and hand it to the pipe, with the head first if still unsent."""
        self._send_pieces((data,), finish)

    def _send_pieces(self, pieces: Sequence[bytes], finish: bool) -> None:
        """Frame every piece and hand them to the pipe in one write, with the head first
        if still unsent.

        The parts go to the pipe as a list: a large body is never copied to be joined
        with its head or its chunk framing.
        """
        state = self.state
        writer = self.writer
        if state is _ResponseState.HEADERS_SET:
            parts = [writer.start(self.pipe.last_response)]
            self.state = _ResponseState.HEADERS_SENT
        elif state is _ResponseState.HEADERS_SENT:
            parts = []
        elif state is _ResponseState.NOT_STARTED:
            raise AssertionError("the application sent body data before start_response()")
        else:
            raise AssertionError("response already finished")
        for data in pieces:
            if writer.body(data, parts):
                self._warn_excess()
        if finish:
            if writer.end(parts):
                self._warn_short()
            self.state = _ResponseState.FINISHED
            self.pipe.write_parts(parts, finish=True, close_connection=not writer.keep_alive)
        elif parts:
            self.pipe.write_parts(parts)

    def finish(self) -> None:
        """The application's iterable is exhausted: end the response."""
        state = self.state
        if state is _ResponseState.FINISHED:
            return
        if state is _ResponseState.NOT_STARTED:
            raise AssertionError("the application returned without calling start_response()")
        self._send(b"", finish=True)

    def _warn_short(self) -> None:
        # The client waits for bytes that will never come; the writer's verdict is close.
        log.warning(
            "application sent %d of %d promised bytes for %s; closing the connection",
            self.writer.body_bytes,
            self.writer.content_length,
            self.request.head.target,
        )

    def _warn_excess(self) -> None:
        if not self.excess_logged:
            self.excess_logged = True
            log.warning(
                "application sent more than its Content-Length (%d) for %s; the excess is dropped",
                self.writer.content_length,
                self.request.head.target,
            )

    # -- errors --------------------------------------------------------------------------

    def abort(self) -> None:
        """The response cannot be completed (the client left, or the application failed
        after the head went out): end it, and the connection with it. Never raises."""
        self.state = _ResponseState.FINISHED
        self.writer.abort()
        self.pipe.finish(close_connection=not self.writer.keep_alive)

    def fail(self, exc_info: ExcInfo) -> None:
        """The application (or its iterator) raised: answer 500, or cut the response."""
        head = self.request.head
        log.error("exception while serving %s", head.target, exc_info=exc_info)
        try:
            if self.state in (_ResponseState.NOT_STARTED, _ResponseState.HEADERS_SET):
                detail = "The server encountered an unexpected internal server error"
                if self.gateway.expose_tracebacks:
                    detail += "\r\n\r\n" + "".join(traceback.format_exception(*exc_info))
                self.logged_status = 500
                self._send_error(500, detail)
            else:
                # Part of the response is already out: closing is the only honest signal.
                self.abort()
        finally:
            exc_info = None  # type: ignore[assignment]

    def refuse_proxy_header(self, error: MalformedProxyHeader) -> None:
        """A trusted proxy sent a forwarding header we cannot read: 400 and close, no app."""
        log.warning(
            "malformed %s header from %s: %s: %r",
            error.header,
            self.request.remote_addr,
            error.reason,
            error.value,
        )
        self._send_error(400, f"The {error.header} header is malformed")

    def _send_error(self, status_code: int, detail: str) -> None:
        """Answer ``status_code`` instead of the application; the connection closes."""
        self.state = _ResponseState.FINISHED
        data = self.writer.error_response(status_code, detail)
        try:
            self.pipe.write(data, finish=True, close_connection=not self.writer.keep_alive)
        except ClientDisconnected:
            self.pipe.finish(close_connection=True)


# Pieces of a list body smaller than this are joined with their small neighbours, up to
# _JOINED_PIECE_BYTES at a time; larger ones are sent as the application gave them.
_SMALL_PIECE_BYTES = 8 * 1024
_JOINED_PIECE_BYTES = 64 * 1024


def _coalesce(chunks: Sequence[bytes]) -> list[bytes]:
    """``chunks`` with each run of small pieces joined (see _SMALL_PIECE_BYTES)."""
    pieces: list[bytes] = []
    run: list[bytes] = []
    run_bytes = 0
    for chunk in chunks:
        size = len(chunk)
        if size >= _SMALL_PIECE_BYTES:
            if run:
                pieces.append(b"".join(run))
                run, run_bytes = [], 0
            pieces.append(chunk)
            continue
        run.append(chunk)
        run_bytes += size
        if run_bytes >= _JOINED_PIECE_BYTES:
            pieces.append(b"".join(run))
            run, run_bytes = [], 0
    if run:
        pieces.append(b"".join(run))
    return pieces


def _file_extent(filelike: Any) -> Optional[tuple[Optional[int], int, int]]:
    """``(descriptor, position, bytes from there to the end)`` of a file whose size is known.

    That is a regular file (its descriptor is given, for sendfile), or a seekable
    file-like object without one such as ``BytesIO`` (descriptor None). None for anything
    else: a pipe, socket or device has no size to trust, and an object that cannot seek
    cannot say.
    """
    try:
        fd: Optional[int] = filelike.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        fd = None
    try:
        if fd is not None:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            position = filelike.tell()
            end = info.st_size
        elif filelike.seekable():
            position = filelike.tell()
            filelike.seek(0, os.SEEK_END)
            end = filelike.tell()
            filelike.seek(position)
        else:
            return None
    except (AttributeError, OSError, ValueError, TypeError):
        return None
    if type(position) is not int or type(end) is not int:
        return None
    return fd, position, max(0, end - position)
