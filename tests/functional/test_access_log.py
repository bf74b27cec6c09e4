"""The access log over real requests: formats, files and rotation, 499, log injection."""

from __future__ import annotations

import logging
import os
import threading

from tests.apps import hello
from tests.httpclient import Connection, request

GET = b"GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: tester/1.0\r\nReferer: http://r/\r\n\r\n"


def _lines(path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


def test_off_by_default(start_server, caplog):
    caplog.set_level(logging.WARNING)
    server = start_server(hello)
    request(server.address, GET)
    assert server.server.access_log is None
    assert not [r for r in caplog.records if r.name == "waitress_like.access"]


def test_default_format_to_a_file(start_server, tmp_path):
    path = tmp_path / "access.log"
    server = start_server(hello, access_log=str(path))
    request(server.address, GET)
    server.close()
    (line,) = _lines(path)
    assert line.startswith("127.0.0.1 - - [")
    assert line.endswith('] "GET /path?q=1 HTTP/1.1" 200 5 "http://r/" "tester/1.0"')


def test_stdout(start_server, capsys):
    server = start_server(hello, access_log="-", access_log_format="%(m)s %(U)s %(s)s")
    request(server.address, GET)
    server.close()
    assert capsys.readouterr().out.splitlines() == ["GET /path 200"]


class _RecordCounter(logging.Handler):
    """Counts access records as they are emitted (after the file handler wrote them:
    handlers run in the order they were added), so a test can wait for one."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()

    def wait_for(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count >= count, timeout=10)


def test_file_survives_rotation(start_server, tmp_path):
    path = tmp_path / "access.log"
    server = start_server(hello, access_log=str(path), access_log_format="%(U)s")
    counter = _RecordCounter()
    logger = logging.getLogger("waitress_like.access")
    logger.addHandler(counter)
    try:
        request(server.address, b"GET /before HTTP/1.1\r\nHost: x\r\n\r\n")
        # The line is written by the worker just after the response went out.
        assert counter.wait_for(1)
        os.rename(path, tmp_path / "access.log.1")  # what logrotate does
        request(server.address, b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        assert counter.wait_for(2)
    finally:
        logger.removeHandler(counter)
    server.close()
    assert _lines(tmp_path / "access.log.1") == ["/before"]
    assert _lines(path) == ["/after"]


def test_every_atom(start_server, tmp_path):
    def app(environ, start_response):
        environ["REMOTE_USER"] = "alice"
        start_response("201 Created", [("Content-Length", "2"), ("X-Out", "o")])
        return [b"ok"]

    path = tmp_path / "access.log"
    fmt = "|".join(
        ["%(h)s", "%(l)s", "%(u)s", "%(r)s", "%(m)s", "%(U)s", "%(q)s", "%(H)s", "%(s)s", "%(B)s", "%(b)s",
         "%(f)s", "%(a)s", "%(T)s", "%(M)s", "%(D)s", "%(L)s", "%(p)s", "%({x-in}i)s", "%({x-out}o)s",
         "%({REQUEST_METHOD}e)s", "%({missing}i)s"]
    )  # fmt: skip
    server = start_server(app, access_log=str(path), access_log_format=fmt)
    request(server.address, GET.replace(b"\r\n\r\n", b"\r\nX-In: i\r\n\r\n"))
    server.close()
    fields = _lines(path)[0].split("|")
    assert fields[:13] == ["127.0.0.1", "-", "alice", "GET /path?q=1 HTTP/1.1", "GET", "/path", "q=1", "HTTP/1.1",
                           "201", "2", "2", "http://r/", "tester/1.0"]  # fmt: skip
    assert fields[13] == "0" and fields[14].isdigit() and fields[15].isdigit()
    assert float(fields[16]) >= 0
    assert fields[17] == f"<{os.getpid()}>"
    assert fields[18:] == ["i", "o", "GET", "-"]


def test_basic_auth_user(start_server, tmp_path):
    path = tmp_path / "access.log"
    server = start_server(hello, access_log=str(path), access_log_format="%(u)s")
    request(server.address, b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Ym9iOnNlY3JldA==\r\n\r\n")
    server.close()
    assert _lines(path) == ["bob"]


def test_client_gone_is_logged_as_499(start_server, tmp_path):
    closed = threading.Event()

    def endless(environ, start_response):
        start_response("200 OK", [])

        def body():
            try:
                for _ in range(100_000):
                    yield b"x" * 65536
            finally:
                closed.set()

        return body()

    path = tmp_path / "access.log"
    server = start_server(endless, access_log=str(path), access_log_format="%(s)s", threads=1,
                          outbuf_overflow=65536, outbuf_high_watermark=262144)  # fmt: skip
    conn = Connection(server.address)
    conn.send(GET)
    conn.sock.recv(1000)
    conn.close()
    assert closed.wait(10)
    server.close()
    assert _lines(path) == ["499"]


def test_client_values_cannot_forge_log_lines(start_server, tmp_path):
    path = tmp_path / "access.log"
    server = start_server(hello, access_log=str(path))
    request(
        server.address,
        b'GET /a%0Afake%22line HTTP/1.1\r\nHost: x\r\nUser-Agent: evil" \\ \t tab\r\n\r\n',
    )
    server.close()
    (line,) = _lines(path)
    assert '"evil\\" \\\\ \\x09 tab"' in line
    assert "\n" not in line


def test_error_responses_are_logged(start_server, tmp_path):
    def broken(environ, start_response):
        raise RuntimeError("boom")

    path = tmp_path / "access.log"
    server = start_server(broken, access_log=str(path), access_log_format="%(s)s %(b)s")
    assert request(server.address, GET).status == 500
    server.close()
    assert _lines(path) == ["500 -"]


def test_serve_does_not_turn_the_access_log_on(start_server):
    import logging as logging_module

    # serve() sets INFO on the "waitress_like" logger for its start-up lines; the access
    # logger inherits that level, which must not enable it.
    parent = logging_module.getLogger("waitress_like")
    before = parent.level
    parent.setLevel(logging_module.INFO)
    try:
        server = start_server(hello)
        assert server.server.access_log is None
    finally:
        parent.setLevel(before)


def test_logging_configuration_can_enable_it(start_server, caplog):
    caplog.set_level(logging.INFO, logger="waitress_like.access")
    server = start_server(hello)
    request(server.address, GET)
    server.close()
    assert [r for r in caplog.records if r.name == "waitress_like.access"]
