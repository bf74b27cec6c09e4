"""Serving on sockets opened by someone else: ``--fd N`` and systemd socket activation.

The child processes get a real listening socket through ``pass_fds``; the systemd case
goes through a small wrapper that moves the socket to descriptor 3, sets ``LISTEN_FDS``
and ``LISTEN_PID`` and execs the server, which keeps the pid, as systemd's own exec does.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

from tests.apps import hello
from tests.httpclient import request
from tests.processes import ServerProcess, child_environment, run_command, server_command
from waitress_like import create_server
from waitress_like.config import Settings
from waitress_like.errors import ConfigError
from waitress_like.listeners import BindError, inherited_sockets, systemd_listen_fds

pytestmark = pytest.mark.skipif(os.name != "posix", reason="descriptor passing as on POSIX")

APP_MODULE = """
import os

def app(environ, start_response):
    body = ("LISTEN_FDS=%s" % os.environ.get("LISTEN_FDS", "unset")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""

# What systemd does before starting the service: the socket at fd 3, the variables naming
# the process, then exec (which keeps the pid).
SYSTEMD_WRAPPER = """
import os, sys
passed = int(sys.argv[1])
os.dup2(passed, 3)
os.close(passed)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.executable, [sys.executable, "-m", "waitress_like", *sys.argv[2:]])
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP_MODULE)
    return tmp_path


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


# --------------------------------------------------------------------------- child processes


def test_fd_flag_serves_on_the_passed_socket(app_dir: Path, listening_socket: socket.socket):
    fd = listening_socket.fileno()
    port = listening_socket.getsockname()[1]
    with ServerProcess(server_command(f"--fd={fd}", "myapp:app"), cwd=app_dir, pass_fds=[fd]) as server:
        assert server.wait_serving() == ("127.0.0.1", port)
        response = server.get(("127.0.0.1", port))
        assert response.status == 200
        assert response.body == b"LISTEN_FDS=unset"
        assert server.stop() == 0


def test_fd_flag_with_several_sockets(app_dir: Path, listening_socket: socket.socket):
    with socket.create_server(("127.0.0.1", 0)) as second:
        fds = [listening_socket.fileno(), second.fileno()]
        ports = {listening_socket.getsockname()[1], second.getsockname()[1]}
        arguments = server_command("--fd", f"{fds[0]} {fds[1]}", "myapp:app")
        with ServerProcess(arguments, cwd=app_dir, pass_fds=fds) as server:
            served = {server.wait_serving()[1], server.wait_serving()[1]}
            assert served == ports
            for port in ports:
                assert server.get(("127.0.0.1", port)).status == 200
            assert server.stop() == 0


def test_fd_that_is_not_open(app_dir: Path):
    result = run_command(server_command("--fd=57", "myapp:app"), cwd=app_dir)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "waitress-like-serve: error: cannot use inherited fd 57: it is not open"
    ]


def test_systemd_socket_activation(app_dir: Path, listening_socket: socket.socket):
    fd = listening_socket.fileno()
    port = listening_socket.getsockname()[1]
    arguments = [sys.executable, "-c", SYSTEMD_WRAPPER, str(fd), "myapp:app"]
    with ServerProcess(arguments, cwd=app_dir, pass_fds=[fd]) as server:
        assert server.wait_serving() == ("127.0.0.1", port)
        response = server.get(("127.0.0.1", port))
        assert response.status == 200
        assert response.body == b"LISTEN_FDS=unset"  # consumed, so children do not see it
        assert server.stop() == 0


def test_systemd_sockets_conflict_with_listen(app_dir: Path, listening_socket: socket.socket):
    fd = listening_socket.fileno()
    arguments = [sys.executable, "-c", SYSTEMD_WRAPPER, str(fd), "--listen=127.0.0.1:0", "myapp:app"]
    result = run_command(arguments, cwd=app_dir, pass_fds=[fd])
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "waitress-like-serve: error: --fd: inherited sockets (fd, systemd) cannot be combined with listen "
        "(got [3])"
    ]


def test_systemd_variables_for_another_process_are_ignored(app_dir: Path):
    env = child_environment(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))  # ours, not the child's
    arguments = server_command("--listen=127.0.0.1:0", "myapp:app")
    with ServerProcess(arguments, cwd=app_dir, env=env) as server:
        address = server.wait_serving()
        assert server.get(address).body == b"LISTEN_FDS=1"  # left alone: not for this process
        assert server.stop() == 0


# --------------------------------------------------------------------------- in process


def test_create_server_adopts_an_fd(listening_socket: socket.socket):
    address = listening_socket.getsockname()
    fd = listening_socket.detach()  # the server owns and closes it
    server = create_server(hello, fd=str(fd))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        assert server.addresses == [address]
        assert request(address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").body == b"hello"
    finally:
        server.close(timeout=10)
        thread.join(10)
    with pytest.raises(OSError):
        os.fstat(fd)  # closed with the server


def test_inherited_unix_socket(tmp_path: Path):
    path = str(tmp_path / "inherited.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    server = create_server(hello, fd=[sock.detach()])
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        assert server.listeners[0].is_unix
        response = request(path, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", family=socket.AF_UNIX)
        assert response.body == b"hello"
    finally:
        server.close(timeout=10)
        thread.join(10)


def test_systemd_sockets_reach_create_server(
    listening_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
):
    # fd 3 belongs to something else inside pytest, so systemd's first descriptor is moved
    # to a copy of our socket instead; the subprocess test above uses the real fd 3.
    fd = os.dup(listening_socket.fileno())
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setattr("waitress_like.listeners.SYSTEMD_FIRST_FD", fd)
    server = create_server(hello)
    try:
        assert server.addresses == [listening_socket.getsockname()]
        assert "LISTEN_FDS" not in os.environ and "LISTEN_PID" not in os.environ
    finally:
        server.close()


def test_systemd_listen_fds_for_this_process():
    environ = {
        "LISTEN_PID": str(os.getpid()),
        "LISTEN_FDS": "2",
        "LISTEN_FDNAMES": "web:admin",
        "PATH": "/bin",
    }
    assert systemd_listen_fds(environ) == [3, 4]
    assert environ == {"PATH": "/bin"}


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"LISTEN_FDS": "1"},
        {"LISTEN_PID": "1", "LISTEN_FDS": "1"},
        {"LISTEN_PID": "self", "LISTEN_FDS": "1"},
        {"LISTEN_PID": "{pid}", "LISTEN_FDS": "many"},
        {"LISTEN_PID": "{pid}", "LISTEN_FDS": "0"},
    ],
)
def test_systemd_listen_fds_not_for_us(environ: dict[str, str]):
    environ = {key: value.format(pid=os.getpid()) for key, value in environ.items()}
    before = dict(environ)
    assert systemd_listen_fds(environ) == []
    assert environ == before


def test_inherited_sockets_rejects_and_leaves_descriptors_alone(
    tmp_path: Path, listening_socket: socket.socket
):
    good = os.dup(listening_socket.fileno())
    with open(tmp_path / "file", "wb") as handle:
        with pytest.raises(BindError, match=f"inherited fd {handle.fileno()}: it is not a socket"):
            inherited_sockets([good, handle.fileno()])
        os.fstat(good)  # still open: nothing was taken over
        os.close(good)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM), "not a TCP or Unix stream socket"),
        (lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM), "the socket is not bound"),
    ],
)
def test_inherited_sockets_wrong_kind(make, reason: str):
    with make() as sock:
        with pytest.raises(BindError, match=reason):
            inherited_sockets([sock.fileno()])
        assert sock.fileno() != -1


def test_closed_descriptor():
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    with pytest.raises(BindError, match=f"inherited fd {read_end}: it is not open"):
        inherited_sockets([read_end])


# --------------------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    "given, expected",
    [("3", (3,)), ("3 4", (3, 4)), ("3,4 3", (3, 4)), (5, (5,)), ([6, "7"], (6, 7)), ("", ())],
)
def test_fd_setting_converts(given, expected):
    assert Settings(fd=given).fd == expected


@pytest.mark.parametrize("given", ["-1", "three", True, 2.5, None])
def test_fd_setting_rejects(given):
    with pytest.raises(ConfigError) as info:
        Settings(fd=given)
    assert info.value.setting == "fd"


@pytest.mark.parametrize(
    "other", [{"listen": "127.0.0.1:0"}, {"host": "127.0.0.1"}, {"port": 0}, {"unix_socket": "/tmp/x.sock"}]
)
def test_fd_conflicts_like_sockets(other):
    with pytest.raises(ConfigError) as info:
        Settings(fd="3", **other)
    assert info.value.setting == "fd"


def test_fd_replaces_the_default_listen():
    assert Settings(fd="3").listen == ()
