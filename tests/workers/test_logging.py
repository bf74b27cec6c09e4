"""Logging in worker processes: a worker's lines (an application's traceback, what a
hook logs as the worker ends) reach ``errorlog`` whether the worker was forked or
spawned, and SIGUSR1 to the supervisor reopens the log files in every worker."""

from __future__ import annotations

import json
import signal
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from tests.processes import python_snippet

from .harness import APP, Supervised, wait_until

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses fork, signals and /proc")

BOOM = b"GET /boom HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


def _boom(server: Supervised) -> None:
    """One request whose application raises (answered 500; the worker logs the traceback)."""
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(BOOM)
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 500 "), data[:80]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _booms_until_every_worker_logged(server: Supervised, path: Path, workers: set[int]) -> None:
    """Requests to /boom until ``path`` holds a traceback from each of ``workers`` (the
    kernel decides which worker gets a connection)."""

    def logged() -> bool:
        _boom(server)
        text = _text(path)
        return all(f"RuntimeError: boom in {pid}" in text for pid in workers)

    wait_until(logged, f"tracebacks from {sorted(workers)} in {path.name}")


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_worker_lines_reach_errorlog(tmp_path: Path, start_method: str):
    errorlog = tmp_path / "error.log"
    code = f"""
        import logging, sys
        from waitress_like.hooks import Hooks
        from waitress_like.logsetup import configure_logging, logging_settings
        from waitress_like.supervisor import AppSource, Supervisor
        from tests.workers.apps import log_goodbye
        given = {{"listen": "127.0.0.1:0", "workers": 2, "graceful_timeout": 5, "errorlog": {str(errorlog)!r}}}
        logs = configure_logging(logging_settings(given))
        # The test reads the supervisor's lines on stderr too (a forked worker's as well;
        # the file is what is checked).
        logging.getLogger("waitress_like").addHandler(logging.StreamHandler(sys.stderr))
        try:
            supervisor = Supervisor(
                AppSource(spec={APP!r}), given, Hooks({{"worker_exit": log_goodbye}}),
                start_method={start_method!r},
            )
            clean = supervisor.run()
        finally:
            logs.close()
        raise SystemExit(0 if clean else 1)
    """
    with Supervised(python_snippet(textwrap.dedent(code)), snippet=True) as server:
        workers = set(server.wait_ready(2))
        _booms_until_every_worker_logged(server, errorlog, workers)
        assert server.stop() == 0
    text = _text(errorlog)
    for pid in workers:
        # gunicorn's format, with the worker's pid, and the whole traceback.
        assert f"[{pid}] [ERROR] exception while serving /boom" in text
        # Logged as the worker ends: written before the process is gone.
        assert f"[{pid}] [WARNING] goodbye from {pid}" in text
    assert text.count("Traceback (most recent call last)") >= 2


def test_sigusr1_reopens_the_log_files_of_every_worker(tmp_path: Path):
    # A plain FileHandler keeps writing to a moved file until it is reopened (errorlog's
    # WatchedFileHandler would notice the move by itself).
    logfile = tmp_path / "app.log"
    config = {
        "version": 1,
        "formatters": {"pid": {"format": "%(process)d %(levelname)s %(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(logfile), "formatter": "pid"},
            "stderr": {"class": "logging.StreamHandler"},
        },
        "loggers": {"waitress_like": {"handlers": ["file", "stderr"], "level": "INFO", "propagate": False}},
    }
    conf = tmp_path / "conf.py"
    conf.write_text(f"import json\nlogconfig_dict = json.loads({json.dumps(json.dumps(config))})\n")
    with Supervised(["-w", "2", "--graceful-timeout=5", "-c", str(conf), APP]) as server:
        workers = set(server.wait_ready(2))
        _booms_until_every_worker_logged(server, logfile, workers)
        rotated = tmp_path / "app.log.1"
        logfile.rename(rotated)  # logrotate
        server.send(signal.SIGUSR1)
        wait_until(logfile.exists, "the supervisor to reopen its log file")
        _booms_until_every_worker_logged(server, logfile, workers)
        assert server.stop() == 0
    assert "Reopening log files" in _text(rotated)
