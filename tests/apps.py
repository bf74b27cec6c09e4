"""Small WSGI applications the functional tests serve."""

from __future__ import annotations

import json
import threading


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


class EchoApp:
    """Answers with a JSON report of what it saw; records every call for assertions."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read()
        extra = environ["wsgi.input"].read()
        report = {
            key: value
            for key, value in environ.items()
            if isinstance(value, (str, bool, int)) or key == "wsgi.version"
        }
        report["body"] = body.decode("latin-1")
        report["read_after_end"] = extra.decode("latin-1")
        with self.lock:
            self.calls.append(report)
        data = json.dumps(report).encode("utf-8")
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def streaming(environ, start_response):
    """No Content-Length: chunked on HTTP/1.1, close-delimited on HTTP/1.0."""
    start_response("200 OK", [("Content-Type", "text/plain")])

    def generate():
        for index in range(5):
            yield b"part%d;" % index

    return generate()


def status_app(status, body=b""):
    def app(environ, start_response):
        start_response(status, [("Content-Type", "text/plain")])
        return [body]

    return app


class BlockingApp:
    """Answers "ok", but only once ``release`` is set (at most ``timeout_seconds``);
    ``running`` is released as each call starts, so a test can count calls in progress."""

    def __init__(self, timeout_seconds: float = 10) -> None:
        self.running = threading.Semaphore(0)
        self.release = threading.Event()
        self.timeout_seconds = timeout_seconds

    def __call__(self, environ, start_response):
        self.running.release()
        self.release.wait(self.timeout_seconds)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]
