"""The logging settings, each through the command line and through a config file (a
PasteDeploy ini section), in real child processes.

The child serves a listening socket the test made (``fd``), so the test knows the
address without reading a "Serving on" line, which several of these settings send
elsewhere or hide. Each run makes its requests, stops the child (SIGINT), then reads
what was written.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

from tests.httpclient import request as http_request
from tests.processes import ServerProcess, run_command, server_command

pytestmark = pytest.mark.skipif(os.name != "posix", reason="passes the listening socket as on POSIX")

APP_MODULE = """
import logging

log = logging.getLogger("waitress_like.app")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    log.debug("app debug %s", path)
    log.info("app info %s", path)
    log.warning("app warning %s", path)
    if path == "/boom":
        raise RuntimeError("boom")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def make_app(global_config, **settings):
    return app
"""

# loadapp + loadserver, as PasteDeploy documents them.
PASTE_RUNNER = (
    "import sys; from paste.deploy import loadapp, loadserver; "
    "uri = 'config:' + sys.argv[1]; "
    "sys.exit(loadserver(uri)(loadapp(uri)))"
)


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "logapp.py").write_text(APP_MODULE)
    return tmp_path


class Run:
    """What a child wrote: its exit status and stderr."""

    def __init__(self, status: int, stderr: str) -> None:
        self.status = status
        self.stderr = stderr


Launcher = Callable[[dict[str, str], Sequence[str]], Run]


def _serve(
    arguments: list[str],
    cwd: Path,
    sock: socket.socket,
    paths: Sequence[str],
    between: Callable[[], None] = None,
) -> Run:
    address = sock.getsockname()
    with ServerProcess(arguments, cwd=cwd, pass_fds=[sock.fileno()]) as server:
        for index, path in enumerate(paths):
            if path == "|" and between is not None:
                between()
                continue
            raw = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
            assert http_request(address, raw).status in (200, 500), index
        status = server.stop()
    return Run(status, server.stderr)


@pytest.fixture(params=["cli", "ini"])
def launch(request: pytest.FixtureRequest, app_dir: Path, listening_socket: socket.socket) -> Launcher:
    """``launch(settings, paths)``: serve with ``settings`` given on the command line or in
    a PasteDeploy ini file, request each path, stop; returns the run."""

    def with_cli(settings: dict[str, str], paths: Sequence[str], between: Callable[[], None] = None) -> Run:
        options = [f"--{name.replace('_', '-')}={value}" for name, value in settings.items()]
        arguments = server_command(f"--fd={listening_socket.fileno()}", *options, "logapp:app")
        return _serve(arguments, app_dir, listening_socket, paths, between)

    def with_ini(settings: dict[str, str], paths: Sequence[str], between: Callable[[], None] = None) -> Run:
        pytest.importorskip("paste.deploy")
        # An ini file interpolates "%(name)s": a literal % is written %%.
        lines = "".join(f"{name} = {value.replace('%', '%%')}\n" for name, value in settings.items())
        ini = app_dir / "site.ini"
        ini.write_text(
            "[app:main]\nuse = call:logapp:make_app\n\n[server:main]\nuse = egg:waitress_like#main\n"
            f"fd = {listening_socket.fileno()}\n{lines}"
        )
        arguments = [sys.executable, "-c", PASTE_RUNNER, str(ini)]
        return _serve(arguments, app_dir, listening_socket, paths, between)

    return with_cli if request.param == "cli" else with_ini


# --------------------------------------------------------------------------- loglevel


def test_loglevel_warning_hides_info_and_debug(launch: Launcher) -> None:
    run = launch({"loglevel": "warning"}, ["/"])
    assert run.status == 0
    assert "app warning /" in run.stderr
    assert "app info" not in run.stderr
    assert "Serving on" not in run.stderr


def test_loglevel_debug_shows_debug(launch: Launcher) -> None:
    run = launch({"loglevel": "debug"}, ["/"])
    assert "app debug /" in run.stderr
    assert "Serving on" in run.stderr


def test_without_loglevel_the_server_logs_info(launch: Launcher) -> None:
    run = launch({}, ["/"])
    assert "Serving on" in run.stderr and "app info /" in run.stderr
    assert "app debug" not in run.stderr


# --------------------------------------------------------------------------- errorlog


def test_errorlog_file_takes_the_servers_log_in_gunicorns_format(launch: Launcher, tmp_path: Path) -> None:
    path = tmp_path / "error.log"
    run = launch({"errorlog": str(path)}, ["/", "/boom"])
    assert run.status == 0
    assert "Serving on" not in run.stderr and "app warning" not in run.stderr
    text = path.read_text()
    assert f"] [{pid_of(text)}] [INFO] Serving on http://127.0.0.1:" in text
    assert "[WARNING] app warning /boom" in text
    assert "[ERROR] exception while serving /boom" in text
    assert "RuntimeError: boom" in text  # the traceback comes along


def pid_of(text: str) -> str:
    return text.split("] [", 1)[1].split("]", 1)[0]


def test_errorlog_dash_is_standard_error(launch: Launcher) -> None:
    run = launch({"errorlog": "-"}, ["/"])
    assert "[INFO] Serving on http://127.0.0.1:" in run.stderr


# --------------------------------------------------------------------------- logconfig*


def _dict_config(path: Path, marker: str) -> dict:
    return {
        "version": 1,
        "formatters": {"plain": {"format": f"{marker} %(levelname)s %(name)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path), "formatter": "plain"}},
        "loggers": {"waitress_like": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }


def test_logconfig_ini_file(launch: Launcher, tmp_path: Path) -> None:
    log_path = tmp_path / "from-ini.log"
    config = tmp_path / "logging.ini"
    config.write_text(
        textwrap.dedent(
            f"""\
            [loggers]
            keys = root, server

            [handlers]
            keys = file

            [formatters]
            keys = plain

            [logger_root]
            level = WARNING
            handlers =

            [logger_server]
            level = INFO
            handlers = file
            propagate = 0
            qualname = waitress_like

            [handler_file]
            class = FileHandler
            args = ({str(log_path)!r},)
            formatter = plain

            [formatter_plain]
            format = INI %(levelname)s %(name)s %(message)s
            """
        )
    )
    run = launch({"logconfig": str(config)}, ["/"])
    assert run.status == 0
    text = log_path.read_text()
    assert "INI INFO waitress_like Serving on" in text
    assert "INI WARNING waitress_like.app app warning /" in text
    assert "Serving on" not in run.stderr


def test_logconfig_json_file(launch: Launcher, tmp_path: Path) -> None:
    log_path = tmp_path / "from-json.log"
    config = tmp_path / "logging.json"
    config.write_text(json.dumps(_dict_config(log_path, "JSONFILE")))
    run = launch({"logconfig_json": str(config)}, ["/"])
    assert run.status == 0
    assert "JSONFILE INFO waitress_like Serving on" in log_path.read_text()


def test_logconfig_dict_as_json_text(launch: Launcher, tmp_path: Path) -> None:
    log_path = tmp_path / "from-dict.log"
    run = launch({"logconfig_dict": json.dumps(_dict_config(log_path, "DICT"))}, ["/"])
    assert run.status == 0
    text = log_path.read_text()
    assert "DICT INFO waitress_like Serving on" in text
    assert "DICT WARNING waitress_like.app app warning /" in text


def test_a_logging_configuration_that_cannot_be_read_is_reported(app_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.ini"
    result = run_command(
        server_command("--listen=127.0.0.1:0", f"--logconfig={missing}", "logapp:app"), cwd=app_dir
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        "waitress-like-serve: error: --logconfig: cannot apply this logging configuration"
    )
    assert str(missing) in result.stderr


def test_two_logging_configurations_are_refused(app_dir: Path) -> None:
    arguments = server_command(
        "--listen=127.0.0.1:0", "--logconfig=a.ini", "--logconfig-json=b.json", "logapp:app"
    )
    result = run_command(arguments, cwd=app_dir)
    assert result.returncode == 1
    assert "--logconfig-json: cannot be combined with logconfig" in result.stderr


# --------------------------------------------------------------------------- access log


def test_access_log_as_json(launch: Launcher, tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    run = launch({"access_log": str(path), "access_log_format": "json"}, ["/", "/boom"])
    assert run.status == 0
    records = [json.loads(line) for line in path.read_text().splitlines()]
    # Each record is written by the worker thread that served it, once the response is
    # out: two requests in a row may be logged in either order.
    assert sorted((record["method"], record["path"], record["status"]) for record in records) == [
        ("GET", "/", 200),
        ("GET", "/boom", 500),
    ]
    first = records[0]
    assert first["remote_addr"] == "127.0.0.1"
    assert first["request"] == "GET / HTTP/1.1"
    assert first["protocol"] == "HTTP/1.1"
    assert first["body_bytes"] == 2
    assert first["user_agent"] is None and first["user"] is None
    assert isinstance(first["duration_seconds"], float) and first["duration_seconds"] >= 0
    assert isinstance(first["pid"], int) and "T" in first["time"]


# --------------------------------------------------------------------------- reopening


def test_moved_log_files_are_reopened(launch: Launcher, tmp_path: Path) -> None:
    error_log, access_log = tmp_path / "error.log", tmp_path / "access.log"

    def rotate() -> None:
        wait_until(lambda: access_log.exists() and "/before" in access_log.read_text())
        for path in (error_log, access_log):
            path.rename(path.with_suffix(".log.1"))

    settings = {"errorlog": str(error_log), "access_log": str(access_log), "access_log_format": "%(U)s"}
    run = launch(settings, ["/before", "|", "/after"], between=rotate)
    assert run.status == 0
    assert access_log.with_suffix(".log.1").read_text().splitlines() == ["/before"]
    assert access_log.read_text().splitlines() == ["/after"]
    assert "app warning /after" in error_log.read_text()
    assert "/after" not in error_log.with_suffix(".log.1").read_text()


def test_usr1_reopens_log_files_that_do_not_watch_themselves(launch: Launcher, tmp_path: Path) -> None:
    # Plain FileHandlers (a logging configuration's), which keep writing to a moved file
    # until they are told to reopen it.
    error_log, access_log = tmp_path / "error.log", tmp_path / "access.log"
    config = _dict_config(error_log, "E")
    config["handlers"]["access"] = {"class": "logging.FileHandler", "filename": str(access_log)}
    config["loggers"]["waitress_like.access"] = {"handlers": ["access"], "level": "INFO", "propagate": False}

    def rotate() -> None:
        wait_until(lambda: access_log.exists() and "/before" in access_log.read_text())
        for path in (error_log, access_log):
            path.rename(path.with_suffix(".log.1"))
        os.kill(running_child_pid(), signal.SIGUSR1)
        wait_until(lambda: error_log.exists() and access_log.exists())  # reopening creates them

    settings = {"logconfig_dict": json.dumps(config), "access_log_format": "%(U)s"}
    run = launch(settings, ["/before", "|", "/after"], between=rotate)
    assert run.status == 0
    assert access_log.with_suffix(".log.1").read_text().splitlines() == ["/before"]
    assert access_log.read_text().splitlines() == ["/after"]
    assert "app warning /before" in error_log.with_suffix(".log.1").read_text()
    assert "app warning /after" in error_log.read_text()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (bounded) for what another process writes to a file: the access line of a
    request is written just after its response is sent, and a reopened file appears
    when the child's log thread gets to it."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def running_child_pid() -> int:
    """The pid of the child serving this test's socket (the only child of this process)."""
    children = [
        int(pid) for pid in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    ]
    assert len(children) == 1, children
    return children[0]
