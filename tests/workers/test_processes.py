"""Ways to run workers: serve() with an object or a name, the spawn path, ASGI, reuse_port;
and the process settings (pidfile, user, group, umask, chdir), with their errors."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

from tests.processes import REPO_ROOT, python_snippet, run_command, server_command
from waitress_like import create_server
from waitress_like.config import Settings
from waitress_like.errors import ConfigError
from waitress_like.process import PidFile, ProcessSettings
from waitress_like.supervisor import AppSource, Supervisor

from .harness import APP, Load, Supervised, alive, fd_kinds, get_pid, wait_until

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="uses fork, signals and /proc")


def _snippet(code: str) -> list[str]:
    return python_snippet("import logging\nlogging.basicConfig(level=logging.INFO)\n" + textwrap.dedent(code))


@linux_only
def test_serve_forks_workers_with_an_application_object():
    code = """
        from waitress_like import serve
        from tests.workers.apps import app
        serve(app, listen="127.0.0.1:0", workers=2, graceful_timeout=5)
    """
    with Supervised(_snippet(code), snippet=True) as server:
        pids = set(server.wait_ready(2))
        assert {get_pid(server.address) for _ in range(10)} <= pids
        assert server.stop() == 0


@linux_only
def test_workers_tell_the_application_it_runs_in_several_processes():
    code = """
        from waitress_like import serve
        from tests.workers.apps import app
        serve(app, listen="127.0.0.1:0", workers=2, graceful_timeout=5)
    """
    with Supervised(_snippet(code), snippet=True) as server:
        server.wait_ready(2)
        request = b"GET /multiprocess HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        with socket.create_connection(server.address, timeout=10) as sock:
            sock.sendall(request)
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        assert data.endswith(b"\r\n\r\nTrue")  # PEP 3333 wsgi.multiprocess
        assert server.stop() == 0


@linux_only
def test_the_spawn_path_imports_the_application_in_each_worker_and_reloads_it():
    # What Windows does, with inherited descriptors in place of socket.share().
    code = """
        from waitress_like.hooks import Hooks
        from waitress_like.supervisor import AppSource, Supervisor
        supervisor = Supervisor(
            AppSource(spec="tests.workers.apps:app"),
            {"listen": "127.0.0.1:0", "workers": 2, "graceful_timeout": 5, "worker_timeout": 2},
            start_method="spawn",
        )
        raise SystemExit(0 if supervisor.run() else 1)
    """
    with Supervised(_snippet(code), snippet=True) as server:
        old = set(server.wait_ready(2))
        load = Load(server.address, threads=2)
        load.wait_answered(10)
        server.send(signal.SIGHUP)
        new = set(server.wait_ready(2))
        assert set(server.wait_exited(2)) == old
        assert load.pids_since(lambda: None, answers=10) <= new
        load.stop()
        assert not load.failures
        # A new interpreter, not a fork: it did not inherit the supervisor's descriptors
        # (its standard input, the supervisor's, was the pipe its boot came through).
        spawned = new.pop()
        assert os.readlink(f"/proc/{spawned}/fd/0") != os.readlink(f"/proc/{server.pid}/fd/0")
        assert spawned in server.workers()
        assert server.stop() == 0


def test_spawned_workers_need_the_application_by_name():
    with pytest.raises(ConfigError, match="give it as 'MODULE:OBJECT'") as info:
        Supervisor(AppSource(app=lambda e, s: []), {"workers": 2}, start_method="spawn")
    assert info.value.setting == "workers"


def test_create_server_refuses_workers():
    with pytest.raises(ConfigError, match="create_server\\(\\) builds one server") as info:
        create_server(lambda e, s: [], workers=3)
    assert info.value.setting == "workers"


@linux_only
def test_asgi_lifespan_runs_in_each_worker():
    with Supervised(["-w", "2", "--graceful-timeout=5", "tests.workers.apps:asgi_app"]) as server:
        pids = set(server.wait_ready(2))
        assert get_pid(server.address) in pids
        assert server.stop() == 0
    started = {int(pid) for pid in re.findall(r"lifespan startup in (\d+)", server.stderr)}
    assert started == pids


@linux_only
def test_reuse_port_gives_each_worker_its_own_socket():
    with Supervised(["-w", "2", "--reuse-port", "--graceful-timeout=5", APP]) as server:
        first, second = server.wait_ready(2)
        assert fd_kinds(server.pid)["socket"] == 2 + 2 + 2  # a listener per worker, links, wakeup pair
        load = Load(server.address, threads=3)
        load.wait_answered(60)
        assert set(load.ok) == {first, second}  # the kernel spreads connections over both
        os.kill(first, signal.SIGKILL)
        (replacement,) = server.wait_ready(1)
        served = load.pids_since(lambda: None, answers=60)
        assert len(load.failures) <= 3  # what the killed worker had in flight
        assert served == {second, replacement}  # the replacement took over the dead one's socket
        # SIGHUP: each successor takes its predecessor's socket, so nothing queued is lost.
        failed = len(load.failures)
        server.send(signal.SIGHUP)
        new = set(server.wait_ready(2))
        server.wait_exited(2)
        assert load.pids_since(lambda: None, answers=60) == new
        assert len(load.failures) == failed
        # SIGTTOU: the retired worker's socket closes with it (else connections would wait
        # there for nobody); what was queued on it then is reset, as documented.
        server.send(signal.SIGTTOU)
        (retired,) = server.wait_exited(1)
        wait_until(lambda: fd_kinds(server.pid)["socket"] == 1 + 1 + 2, "its socket to close")
        assert load.pids_since(lambda: None, answers=60) == new - {retired}
        load.stop()
        resets = load.failures[failed:]
        assert all("ConnectionResetError" in failure for failure in resets) and len(resets) <= 10, resets
        assert server.stop() == 0


@pytest.mark.parametrize(
    "given, setting, message",
    [
        (
            {"reuse_port": True, "unix_socket": "/tmp/x.sock"},
            "reuse_port",
            "cannot be combined with unix_socket",
        ),
        ({"reuse_port": True, "fd": 3}, "reuse_port", "cannot be combined with fd"),
    ],
)
def test_worker_settings_that_do_not_fit_together(given: dict, setting: str, message: str):
    with pytest.raises(ConfigError, match=message) as info:
        Settings.from_mapping(given)
    assert info.value.setting == setting


# --------------------------------------------------------------------------- process settings


def test_pidfile_is_written_refused_when_running_and_removed(tmp_path: Path):
    path = tmp_path / "server.pid"
    pidfile = PidFile(str(path))
    pidfile.create(os.getpid())
    assert path.read_text() == f"{os.getpid()}\n"
    with pytest.raises(ConfigError, match="it names process .* which is running") as info:
        PidFile(str(path)).create(os.getpid() + 1)
    assert info.value.setting == "pidfile"
    pidfile.remove()
    assert not path.exists()
    path.write_text("999999999\n")  # stale: no such process
    PidFile(str(path)).create(os.getpid())
    assert path.read_text() == f"{os.getpid()}\n"


@pytest.mark.skipif(os.name == "nt", reason="users and groups are Unix settings")
def test_unknown_users_and_groups_are_errors_naming_the_setting():
    for name in ("user", "group"):
        with pytest.raises(ConfigError, match=f"no such {name}") as info:
            ProcessSettings.from_given({name: "no-such-name-here"})
        assert info.value.setting == name


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="needs an unprivileged user")
def test_changing_user_needs_root():
    with pytest.raises(ConfigError, match="only a server started as root can change user"):
        ProcessSettings.from_given({"user": "0"})


@linux_only
def test_pidfile_umask_and_chdir_in_a_supervised_server(tmp_path: Path):
    (tmp_path / "elsewhere.py").write_text("from tests.workers.apps import app\n")
    pidfile = tmp_path / "run" / "server.pid"
    pidfile.parent.mkdir()
    arguments = ["-w", "2", f"--pidfile={pidfile}", "--umask=027", f"--chdir={tmp_path}", "elsewhere:app"]
    with Supervised(arguments) as server:
        pids = server.wait_ready(2)
        assert pidfile.read_text() == f"{server.pid}\n"
        for pid in [server.pid, *pids]:
            status = Path(f"/proc/{pid}/status").read_text()
            assert re.search(r"^Umask:\s+0027$", status, re.M)
            assert os.readlink(f"/proc/{pid}/cwd") == str(tmp_path)
        assert server.stop() == 0
    assert not pidfile.exists()


def _readable_by_everyone(path: Path) -> bool:
    """Every directory up to ``path`` may be entered by any user (``nobody`` imports from it)."""
    return all(os.stat(parent).st_mode & stat.S_IXOTH for parent in [path, *path.parents])


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="changing user needs root")
def test_workers_run_as_user_and_group_on_the_roots_socket():
    if not (_readable_by_everyone(REPO_ROOT) and _readable_by_everyone(Path(sys.prefix))):
        pytest.skip("the checkout or the Python environment is not readable by nobody")
    group = "nogroup" if _group_exists("nogroup") else "nobody"
    with Supervised(["-w", "2", "--user=nobody", f"--group={group}", "--graceful-timeout=5", APP]) as server:
        pids = server.wait_ready(2)
        for pid in pids:  # the workers run as nobody; the supervisor stays root
            status = Path(f"/proc/{pid}/status").read_text()
            assert re.search(r"^Uid:\s+65534\s", status, re.M), status
        assert re.search(r"^Uid:\s+0\s", Path(f"/proc/{server.pid}/status").read_text(), re.M)
        assert get_pid(server.address) in pids
        assert server.stop() == 0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="changing user needs root")
def test_workers_open_root_only_files_before_giving_up_root(tmp_path: Path, https_certificates):
    # As a single process does: the key and the access log are opened as root, then the
    # workers serve as nobody (before, a worker could not open the access log and died).
    if not (_readable_by_everyone(REPO_ROOT) and _readable_by_everyone(Path(sys.prefix))):
        pytest.skip("the checkout or the Python environment is not readable by nobody")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    keyfile = private / "key.pem"
    keyfile.write_bytes(Path(https_certificates.keyfile).read_bytes())
    keyfile.chmod(0o600)
    # Like /var/log/app: nobody may look (the handler checks for a rotation) but not write.
    logs = Path(tempfile.mkdtemp(prefix="waitress-like-logs-"))
    logs.chmod(0o755)
    access_log = logs / "access.log"
    try:
        _serve_as_nobody_with(https_certificates, keyfile, access_log)
    finally:
        shutil.rmtree(logs)


def _serve_as_nobody_with(https_certificates, keyfile: Path, access_log: Path) -> None:
    group = "nogroup" if _group_exists("nogroup") else "nobody"
    arguments = [
        "-w", "2", "--user=nobody", f"--group={group}", "--graceful-timeout=5",
        f"--certfile={https_certificates.certfile}", f"--keyfile={keyfile}", f"--access-log={access_log}", APP,
    ]  # fmt: skip
    with Supervised(arguments) as server:
        pids = server.wait_ready(2)
        raw = socket.create_connection(server.address, timeout=10)
        with raw, https_certificates.client_context().wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"GET /private HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        assert int(data.partition(b"\r\n\r\n")[2]) in pids
        wait_until(lambda: '"GET /private HTTP/1.1" 200' in access_log.read_text(), "the access log line")
        assert server.stop() == 0


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def test_a_bad_process_setting_stops_the_command_before_binding(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = run_command(
            server_command("-w", "2", f"--listen=127.0.0.1:{port}", "--user=no-such-name-here", APP),
            cwd=REPO_ROOT,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "waitress-like-serve: error: --user: no such user (got 'no-such-name-here')"
    )


@linux_only
def test_supervisor_killed_leaves_no_worker_behind():
    with Supervised(["-w", "2", "--graceful-timeout=5", APP]) as server:
        pids = server.wait_ready(2)
        server.process.kill()
        server.process.wait(10)
        server.wait_event(re.compile(r"the supervisor is gone; stopping"))
        wait_until(lambda: not any(alive(pid) for pid in pids), "the orphaned workers to exit")


@linux_only
def test_the_service_runner_supervises_workers_and_its_stop_drains_them():
    # The Windows service's runner is platform-neutral: here its stop comes from SIGTERM
    # on the main thread while the supervisor runs on the runner's thread, as SvcStop does.
    code = """
        import signal, threading
        from waitress_like.winservice import ServiceRunner
        runner = ServiceRunner("tests.workers.apps:app", {"listen": "127.0.0.1:0", "workers": "2"})
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *args: stopped.set())
        runner.start()
        assert runner.wait_started(30), runner.startup_error_message
        stopped.wait()
        raise SystemExit(0 if runner.stop() and runner.startup_error is None else 1)
    """
    with Supervised(_snippet(code), snippet=True) as server:
        pids = set(server.wait_ready(2))
        answers: list[object] = []
        client = threading.Thread(target=lambda: answers.append(get_pid(server.address, "/slow?1")))
        client.start()
        server.wait_event(re.compile(r"slow request in \d+"))
        assert server.stop(signal.SIGTERM) == 0
        client.join(10)
    assert answers and answers[0] in pids


@linux_only
def test_proc_name_titles_the_processes():
    pytest.importorskip("setproctitle")
    with Supervised(["-w", "2", "--proc-name=shop", "--graceful-timeout=5", APP]) as server:
        pids = server.wait_ready(2)
        titles = {
            pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] for pid in [server.pid, *pids]
        }
        assert titles[server.pid] == b"waitress_like: supervisor [shop]"
        assert {titles[pid] for pid in pids} == {b"waitress_like: worker [shop]"}
        assert server.stop() == 0


@linux_only
def test_a_new_message_kind_needs_only_a_sender_and_a_handler():
    # How a later feature (per-worker metrics) extends the link: the worker sends with
    # worker.link, the supervisor registers a handler; kinds nobody handles are ignored.
    code = """
        from waitress_like.hooks import Hooks
        from waitress_like.supervisor import AppSource, Supervisor

        def post_worker_init(worker):
            worker.link.send("metrics", pid=worker.pid, requests=0)
            worker.link.send("something-new", anything=[1, 2])

        supervisor = Supervisor(
            AppSource(spec="tests.workers.apps:app"),
            {"listen": "127.0.0.1:0", "workers": 2, "graceful_timeout": 5},
            Hooks({"post_worker_init": post_worker_init}),
        )
        supervisor.message_handlers["metrics"] = lambda worker, message: logging.getLogger(
            "waitress_like").info("metrics from worker %d: pid %d", worker.age, message["pid"])
        raise SystemExit(0 if supervisor.run() else 1)
    """
    with Supervised(_snippet(code), snippet=True) as server:
        pids = set(server.wait_ready(2))
        # Sent in post_worker_init, so handled before each worker said it was ready.
        reported = {int(pid) for pid in re.findall(r"metrics from worker \d+: pid (\d+)", server.stderr)}
        assert reported == pids
        assert get_pid(server.address) in pids
        assert server.stop() == 0
