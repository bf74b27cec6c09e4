"""The Windows service: its platform-neutral runner and command line, tested anywhere.

The pywin32 glue itself only runs on Windows; here we check that the module imports and
reports cleanly without pywin32, and exercise everything it delegates to.
"""

from __future__ import annotations

import gc
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.apps import hello
from tests.httpclient import request
from tests.processes import REPO_ROOT, run_command
from waitress_like import winservice
from waitress_like.winservice import ServiceConfig, ServiceRunner, parse_command

GET = b"GET / HTTP/1.1\r\nHost: service\r\nConnection: close\r\n\r\n"
START_SECONDS = 10.0

factory_entered = threading.Event()
factory_gate = threading.Event()


def gated_factory() -> Callable[..., Any]:
    """An application factory that blocks until the test opens the gate."""
    factory_entered.set()
    factory_gate.wait(START_SECONDS)
    return hello


request_entered = threading.Event()
request_gate = threading.Event()


def gated_app(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
    """Holds its request in flight until the test opens the gate."""
    request_entered.set()
    request_gate.wait(START_SECONDS)
    start_response("200 OK", [("Content-Length", "4")])
    return [b"done"]


def _refuses_connections(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError:
        return True
    return False


@pytest.fixture
def no_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    gc.collect()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in left:
        thread.join(5)
    assert not [t for t in left if t.is_alive()], f"threads left behind: {left}"


@pytest.fixture
def runners() -> Iterator[list[ServiceRunner]]:
    started: list[ServiceRunner] = []
    yield started
    for runner in started:
        runner.stop(5)


def _runner(runners: list[ServiceRunner], spec: str, **kwargs: Any) -> ServiceRunner:
    runner = ServiceRunner(spec, **kwargs)
    runners.append(runner)
    return runner


# --------------------------------------------------------------------------- the runner


def test_start_serve_and_stop_within_time(no_leaks: None, runners: list[ServiceRunner]):
    runner = _runner(runners, "tests.apps:hello", settings={"listen": "127.0.0.1:0", "threads": "2"})
    runner.start()
    assert runner.wait_started(START_SECONDS)
    assert runner.startup_error is None and runner.running
    address = runner.server.addresses[0]
    assert request(address, GET).body == b"hello"
    began = time.monotonic()
    assert runner.stop(timeout=5) is True
    assert time.monotonic() - began < 5
    assert not runner.running
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=2).close()  # no longer listening


def test_stop_lets_a_request_in_flight_finish(no_leaks: None, runners: list[ServiceRunner]):
    request_entered.clear()
    request_gate.clear()
    runner = _runner(runners, "tests.test_winservice:gated_app", settings={"listen": "127.0.0.1:0"})
    runner.start()
    assert runner.wait_started(START_SECONDS)
    address = runner.server.addresses[0]
    with socket.create_connection(address, timeout=10) as client:
        client.sendall(GET)
        assert request_entered.wait(START_SECONDS)
        stopper = threading.Thread(target=runner.stop, args=(8,))
        stopper.start()
        # No event says "draining has begun"; new connections being refused shows it.
        assert any(_refuses_connections(address) for _ in range(200))
        assert runner.running  # still serving the request in flight
        request_gate.set()
        received = b""
        while chunk := client.recv(4096):
            received += chunk
        stopper.join(10)
    assert received.startswith(b"HTTP/1.1 200 OK") and received.endswith(b"done")
    assert not runner.running


def test_stop_from_another_thread_while_the_service_waits(no_leaks: None, runners: list[ServiceRunner]):
    runner = _runner(runners, "tests.apps:hello", settings={"port": "0", "host": "127.0.0.1"})
    runner.start()
    assert runner.wait_started(START_SECONDS)
    stopper = threading.Timer(0.01, runner.stop, kwargs={"timeout": 5})
    stopper.start()
    assert runner.wait(START_SECONDS)  # what the service's SvcRun blocks in
    stopper.join(5)


def test_bad_application_is_reported_not_raised(no_leaks: None, runners: list[ServiceRunner]):
    runner = _runner(runners, "tests.apps:no_such_app", settings={"listen": "127.0.0.1:0"})
    runner.start()
    assert runner.wait_started(START_SECONDS) is False
    assert runner.startup_error_message == "module 'tests.apps' has no attribute 'no_such_app'"
    assert runner.wait(START_SECONDS)
    assert runner.server is None
    assert runner.stop(1) is True


def test_missing_module_is_reported(no_leaks: None, runners: list[ServiceRunner]):
    runner = _runner(runners, "no_such_module_xyz:app")
    runner.start()
    assert not runner.wait_started(START_SECONDS)
    assert "cannot import 'no_such_module_xyz'" in (runner.startup_error_message or "")


def test_bad_setting_is_reported(no_leaks: None, runners: list[ServiceRunner]):
    runner = _runner(runners, "tests.apps:hello", settings={"threads": "none"})
    runner.start()
    assert not runner.wait_started(START_SECONDS)
    assert runner.startup_error_message == "setting 'threads': expected an integer (got 'none')"


def test_address_in_use_is_reported(no_leaks: None, runners: list[ServiceRunner]):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        runner = _runner(runners, "tests.apps:hello", settings={"listen": f"127.0.0.1:{port}"})
        runner.start()
        assert not runner.wait_started(START_SECONDS)
    assert runner.startup_error_message == f"cannot listen on 127.0.0.1:{port}: Address already in use"


def test_paste_ini_application(no_leaks: None, runners: list[ServiceRunner], tmp_path: Path):
    pytest.importorskip("paste.deploy")
    ini = tmp_path / "site.ini"
    ini.write_text((REPO_ROOT / "paste.example.ini").read_text().replace("127.0.0.1:8080", "127.0.0.1:0"))
    runner = _runner(runners, str(ini), settings={"threads": "2"})
    runner.start()
    assert runner.wait_started(START_SECONDS), runner.startup_error_message
    assert runner.server.settings.threads == 2  # given settings override the ini's
    response = request(runner.server.addresses[0], GET)
    assert b"waitress_like is serving this page" in response.body
    assert runner.stop(5)


def test_missing_ini_is_reported(no_leaks: None, runners: list[ServiceRunner], tmp_path: Path):
    pytest.importorskip("paste.deploy")
    runner = _runner(runners, str(tmp_path / "missing.ini"))
    runner.start()
    assert not runner.wait_started(START_SECONDS)
    assert "missing.ini" in (runner.startup_error_message or "")


def test_stop_before_start(no_leaks: None):
    runner = ServiceRunner("tests.apps:hello")
    assert runner.stop(1) is True
    runner.start()
    assert runner.wait_started(1) is False
    assert not runner.running


def test_stop_during_startup_closes_the_server_once_it_exists(no_leaks: None, runners: list[ServiceRunner]):
    factory_entered.clear()
    factory_gate.clear()
    runner = _runner(
        runners, "tests.test_winservice:gated_factory", settings={"listen": "127.0.0.1:0"}, call=True
    )
    runner.start()
    assert factory_entered.wait(START_SECONDS)
    assert runner.stop(timeout=0) is False  # still importing: asked to stop, not stopped yet
    factory_gate.set()
    assert runner.wait(START_SECONDS)
    assert runner.wait_started(0) is False
    assert runner.server is None and runner.startup_error is None


def test_start_twice_is_an_error(runners: list[ServiceRunner]):
    runner = _runner(runners, "tests.apps:hello", settings={"listen": "127.0.0.1:0"})
    runner.start()
    with pytest.raises(RuntimeError):
        runner.start()
    assert runner.wait_started(START_SECONDS)


# --------------------------------------------------------------------------- configuration


def test_config_round_trips_through_string_options(tmp_path: Path):
    config = ServiceConfig(
        "myproject.wsgi:application",
        {"listen": "0.0.0.0:8080", "threads": "8"},
        call=True,
        directory=str(tmp_path),
    )
    stored = config.to_options()
    assert all(isinstance(value, str) for value in stored.values())
    loaded = ServiceConfig.from_options(stored.get)
    assert (loaded.app_spec, loaded.settings, loaded.call, loaded.directory) == (
        "myproject.wsgi:application",
        {"listen": "0.0.0.0:8080", "threads": "8"},
        True,
        str(tmp_path),
    )
    assert json.loads(stored["Settings"]) == {"listen": "0.0.0.0:8080", "threads": "8"}


def test_config_without_application():
    with pytest.raises(ValueError, match="no application"):
        ServiceConfig.from_options({}.get)


def test_parse_install_command(tmp_path: Path):
    command = parse_command(
        [
            "--service-name=shop", "--app", "shop.wsgi:app", "--directory", str(tmp_path),
            "--listen=0.0.0.0:8080", "--threads", "8", "--no-ipv6",
            "--startup", "auto", "--username", r"DOMAIN\user", "--password=secret", "install",
        ]
    )  # fmt: skip
    assert command.command == "install"
    assert command.service_name == "shop"
    assert command.config is not None
    assert command.config.app_spec == "shop.wsgi:app"
    assert command.config.settings == {"listen": "0.0.0.0:8080", "threads": "8", "ipv6": False}
    assert command.config.directory == str(tmp_path)
    assert command.pywin32_argv("prog") == [
        "prog", "--startup=auto", "--username=DOMAIN\\user", "--password=secret", "install",
    ]  # fmt: skip


def test_parse_start_and_stop_need_no_application():
    start = parse_command(["--wait", "10", "start"])
    assert start.config is None
    assert start.service_name == winservice.DEFAULT_SERVICE_NAME
    assert start.pywin32_argv("prog") == ["prog", "--wait=10", "start"]
    assert parse_command(["--service-name", "shop", "stop"]).pywin32_argv("p") == ["p", "stop"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["install"], "install needs the application"),
        (["--app", "x:y", "reinstall"], "invalid choice: 'reinstall'"),
        (["--app", "x:y", "--bogus", "install"], "unrecognized arguments: --bogus"),
    ],
)
def test_parse_errors(argv: list[str], message: str):
    with pytest.raises(ValueError, match=message):
        parse_command(argv)


def test_bad_setting_fails_at_install():
    from waitress_like.cli import CLIError

    with pytest.raises(CLIError, match="--threads: expected an integer"):
        parse_command(["--app", "x:y", "--threads=many", "install"])


@pytest.mark.skipif(sys.platform == "win32", reason="checks the message given without Windows")
def test_command_without_windows_says_what_is_needed():
    result = run_command([sys.executable, "-m", "waitress_like.winservice", "--app", "x:y", "install"])
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "waitress_like.winservice: error: Windows services need Windows and pywin32 "
        "(pip install waitress_like[windows])"
    ]


def test_command_line_error_is_one_line():
    result = run_command([sys.executable, "-m", "waitress_like.winservice", "install"])
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "waitress_like.winservice: error: install needs the application: --app MODULE:OBJECT or --app FILE.ini"
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="pywin32 may be installed on Windows")
def test_service_class_needs_pywin32():
    with pytest.raises(ImportError):
        winservice.WaitressLikeService  # noqa: B018 - built on first use
    with pytest.raises(AttributeError):
        winservice.NoSuchThing  # noqa: B018
