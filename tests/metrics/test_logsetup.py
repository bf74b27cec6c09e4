"""The queue in front of the server's log: the loop thread never waits for a log handler.

A handler that blocks (a stuck disk, a full pipe) is simulated with one that waits on an
event; the server keeps answering while it waits, and every record is written once it is
released.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import threading
from typing import Any, Iterator

import pytest

from tests.httpclient import request
from tests.workers.harness import wait_until
from waitress_like import logsetup
from waitress_like.config import Settings
from waitress_like.logsetup import LogSetup, configure_logging, logging_settings, reopen_log_files


class StuckHandler(logging.Handler):
    """Writes nothing until ``release`` is set; keeps the messages it got."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.release.wait(10)
        self.messages.append(record.getMessage())


@pytest.fixture
def server_logger() -> Iterator[logging.Logger]:
    """The ``waitress_like`` logger, put back as it was afterwards."""
    logger = logging.getLogger("waitress_like")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def test_the_loop_keeps_serving_while_the_log_handler_is_stuck(
    start_server: Any, server_logger: logging.Logger
) -> None:
    stuck = StuckHandler()
    server_logger.addHandler(stuck)
    server_logger.setLevel(logging.INFO)
    setup = LogSetup(server_logger)
    setup.start()
    try:
        server = start_server(lambda environ, start_response: [])
        for _ in range(20):  # each bad request is logged by the loop thread
            assert request(server.address, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").status == 400
        assert stuck.messages == []  # nothing written yet, and nobody waited for it
    finally:
        stuck.release.set()
        setup.close()  # writes what is queued
    assert sum("bad request from 127.0.0.1" in message for message in stuck.messages) == 20
    assert stuck in server_logger.handlers  # given back


def test_records_past_the_bound_are_dropped_and_counted(
    server_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logsetup, "MAX_QUEUED_RECORDS", 3)
    stuck = StuckHandler()
    logger = logging.getLogger("waitress_like.test_bound")
    logger.addHandler(stuck)
    logger.propagate = False
    setup = LogSetup(logger)
    setup.start()
    try:
        logger.warning("first")  # the writer thread takes it and gets stuck on it
        for index in range(10):
            logger.warning("queued %d", index)
    finally:
        stuck.release.set()
        setup.close()
        logger.removeHandler(stuck)
    assert setup.dropped_records > 0
    assert len(stuck.messages) + setup.dropped_records == 11


def test_close_gives_back_the_handlers_and_propagation(server_logger: logging.Logger, tmp_path: Any) -> None:
    before = list(server_logger.handlers)
    setup = configure_logging(Settings(errorlog=str(tmp_path / "error.log"), loglevel="warning"))
    assert server_logger.propagate is False
    assert server_logger.level == logging.WARNING
    server_logger.warning("to the file")
    setup.close()
    assert server_logger.handlers == before
    assert server_logger.propagate is True
    assert "[WARNING] to the file" in (tmp_path / "error.log").read_text()


def test_reopen_reopens_plain_file_handlers(tmp_path: Any) -> None:
    path = tmp_path / "plain.log"
    handler = logging.FileHandler(path)
    logger = logging.getLogger("waitress_like.test_reopen")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("before")
        path.rename(tmp_path / "plain.log.1")
        assert reopen_log_files() >= 1
        logger.warning("after")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert (tmp_path / "plain.log.1").read_text() == "before\n"
    assert path.read_text() == "after\n"


def test_only_the_logging_settings_are_read_before_the_server_exists() -> None:
    settings = logging_settings({"loglevel": "debug", "threads": "not checked here"})
    assert settings.loglevel == "debug"


# The number of write(2), by machine, as /proc/TID/syscall names it.
_WRITE_SYSCALL = {"x86_64": "1", "aarch64": "64"}


def _blocked_in_write(thread: threading.Thread) -> bool:
    with open(f"/proc/self/task/{thread.native_id}/syscall") as status:
        return status.read().split()[0] == _WRITE_SYSCALL[platform.machine()]


def _fill(fd: int) -> None:
    os.set_blocking(fd, False)
    try:
        while True:
            os.write(fd, b"." * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(fd, True)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.machine() not in _WRITE_SYSCALL,
    reason="reads the writer thread's system call from /proc",
)
def test_a_child_forked_mid_write_still_writes_its_lines(server_logger: logging.Logger) -> None:
    """The supervisor logs as it forks a worker: the parent's writer thread may be inside
    a write at the fork, which leaves the inherited stream locked in the child for good.
    Here it is made certain (a full pipe); the child's lines must still come out."""
    read_end, write_end = os.pipe()
    stream = open(write_end, "w")
    handler = logging.StreamHandler(stream)
    server_logger.addHandler(handler)
    server_logger.propagate = False
    setup = LogSetup(server_logger)
    setup.start()
    received = bytearray()
    try:
        _fill(write_end)
        server_logger.warning("parent line")
        wait_until(lambda: _blocked_in_write(setup._thread), "the writer thread blocked in write")
        child = os.fork()
        if child == 0:  # pragma: no cover - the child process
            server_logger.warning("child line")
            os._exit(0 if logsetup.flush_logs(5) else 1)
        reader = threading.Thread(target=_read_until, args=(read_end, b"child line", received))
        reader.start()
        _, status = os.waitpid(child, 0)
        reader.join(10)
    finally:
        setup.close()
        server_logger.removeHandler(handler)
        handler.close()
        stream.close()
        os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"child line" in received and b"parent line" in received


def _read_until(fd: int, wanted: bytes, into: bytearray) -> None:
    while wanted not in into and (chunk := os.read(fd, 65536)):
        into += chunk
