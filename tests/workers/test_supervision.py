"""Supervised workers with real processes, real signals and real sockets, under load.

Each test starts ``waitress-like-serve`` with workers on 127.0.0.1:0, drives it with
signals while client threads keep sending requests (one connection per request), and
checks what the clients got, what the supervisor logged, and what /proc shows: the
replaced workers gone, nothing left after the stop, no descriptor more in the supervisor
or in a worker started later than in one started first.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading

import pytest

from .harness import APP, Load, Supervised, alive, fd_kinds, get_pid, wait_until

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses fork, signals and /proc")


def test_two_workers_serve_and_stop_cleanly():
    with Supervised(["-w", "2", "--graceful-timeout=5", APP]) as server:
        pids = set(server.wait_ready(2))
        assert set(server.workers()) == pids
        load = Load(server.address)
        load.wait_answered(40)
        load.stop()
        assert not load.failures
        assert set(load.ok) <= pids
        assert server.stop(signal.SIGTERM) == 0
    assert "Worker 1 (pid" in server.stderr and "exited" in server.stderr


def test_a_killed_worker_is_replaced_and_only_its_requests_fail():
    with Supervised(["-w", "2", "--graceful-timeout=5", APP]) as server:
        first, second = server.wait_ready(2)
        descriptors = fd_kinds(server.pid)
        load = Load(server.address, threads=3)
        load.wait_answered(30)
        os.kill(first, signal.SIGKILL)
        line = server.wait_event(re.compile(rf"pid {first}\) was killed by SIGKILL; replacing it"))
        assert f"Worker {server.age[first]} " in line
        (replacement,) = server.wait_ready(1)
        served_after = load.pids_since(lambda: None, answers=40)
        load.stop()
        assert len(load.failures) <= 3, load.failures  # at most the requests it had in flight
        assert not alive(first)
        assert set(server.workers()) == {second, replacement}
        assert served_after <= {second, replacement}
        assert fd_kinds(server.pid) == descriptors  # the dead worker's link is closed
        assert fd_kinds(replacement) == fd_kinds(second)  # and not inherited by its successor
        assert server.stop() == 0


def test_hup_replaces_every_worker_without_a_failed_request():
    with Supervised(["-w", "2", "--graceful-timeout=5", APP]) as server:
        old = set(server.wait_ready(2))
        descriptors = fd_kinds(server.pid)
        load = Load(server.address, threads=3)
        load.wait_answered(30)
        server.send(signal.SIGHUP)
        new = set(server.wait_ready(2))
        assert set(server.wait_exited(2)) == old
        served_after = load.pids_since(lambda: None, answers=40)
        load.stop()
        assert not load.failures
        assert served_after <= new
        assert not any(alive(pid) for pid in old)
        assert set(server.workers()) == new
        assert fd_kinds(server.pid) == descriptors
        assert server.stop() == 0
    assert "Reloading: starting 2 new workers" in server.stderr


def test_ttin_adds_a_worker_and_ttou_retires_the_oldest():
    with Supervised(["-w", "2", "--graceful-timeout=5", APP]) as server:
        first, second = sorted(server.wait_ready(2), key=server.age.get)
        load = Load(server.address, threads=2)
        server.send(signal.SIGTTIN)
        (third,) = server.wait_ready(1)
        assert set(server.workers()) == {first, second, third}
        server.send(signal.SIGTTOU)
        assert server.wait_exited(1) == [first]
        server.send(signal.SIGTTOU)
        assert server.wait_exited(1) == [second]
        load.wait_answered(20)
        load.stop()
        assert not load.failures
        assert server.workers() == [third]
        assert server.stop() == 0


def test_max_requests_recycles_workers_under_load_without_a_failed_request():
    arguments = ["-w", "2", "--max-requests=40", "--max-requests-jitter=10", "--graceful-timeout=5", APP]
    with Supervised(arguments) as server:
        first = set(server.wait_ready(2))
        load = Load(server.address, threads=3)
        retired = [
            server.wait_event(re.compile(r"Retiring worker \d+ .*: its successor is ready")) for _ in range(3)
        ]
        exited = server.wait_exited(3)
        load.stop()
        assert not load.failures
        assert len(retired) == 3
        assert first & set(exited)
        assert "(max_requests): replacing it" in server.stderr
        assert not any(alive(pid) for pid in exited)
        # Workers retired meanwhile finish their settle time and drain, then only two remain.
        wait_until(lambda: len(server.workers()) == 2, "the retired workers to exit")
        assert server.stop() == 0


def test_a_stuck_loop_is_killed_after_worker_timeout_but_a_long_request_is_not():
    arguments = ["-w", "2", "--worker-timeout=1", "--graceful-timeout=5", APP]
    with Supervised(arguments) as server:
        pids = set(server.wait_ready(2))
        # Longer than worker_timeout in a worker thread: the loop thread goes on beating.
        assert get_pid(server.address, "/slow?1.6") in pids
        assert "worker_timeout" not in server.stderr
        # Holding the GIL stops the loop thread: no heartbeat, SIGABRT, then SIGKILL.
        hung = _get_or_error(server.address, "/hang")
        line = server.wait_event(re.compile(r"sent no heartbeat for .* \(worker_timeout\); killing it"))
        victim = int(re.search(r"pid (\d+)", line).group(1))  # type: ignore[union-attr]
        assert isinstance(hung, Exception) and victim in pids
        assert server.wait_exited(1) == [victim]
        (replacement,) = server.wait_ready(1)
        assert not alive(victim)
        assert set(server.workers()) == (pids - {victim}) | {replacement}
        assert server.stop() == 0


def test_a_broken_application_stops_the_supervisor_with_the_reason():
    with Supervised(["-w", "2", "tests.workers.broken:app"]) as server:
        status = server.process.wait(30)
        server.stop()
    assert status == 1
    last = server.stderr.strip().splitlines()[-1]
    assert last.startswith("waitress-like-serve: error: worker processes failed to start 5 times in a row")
    assert "RuntimeError: this application is broken on purpose" in last
    # Back-off: one attempt at a time after the first failures, not a fork loop.
    assert server.stderr.count("Started worker") <= 6
    assert "trying again in 0.1s" in server.stderr and "trying again in 0.8s" in server.stderr


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 0), (signal.SIGINT, 0), (signal.SIGQUIT, 1)])
def test_term_and_int_let_requests_in_flight_finish_and_quit_does_not(signum: int, status: int):
    with Supervised(["-w", "2", "--graceful-timeout=10", APP]) as server:
        server.wait_ready(2)
        answers: list[object] = []
        client = threading.Thread(target=lambda: answers.append(_get_or_error(server.address, "/slow?1.5")))
        client.start()
        server.wait_event(re.compile(r"slow request in \d+"))
        server.send(signum)
        assert server.process.wait(20) == status
        client.join(20)
        server.stop()
    if status == 0:
        assert isinstance(answers[0], int)
        assert "Shutting down: draining the workers" in server.stderr
    else:
        assert isinstance(answers[0], Exception)
        assert "Shutting down: stopping the workers now" in server.stderr


def _get_or_error(address: tuple[str, int], path: str) -> object:
    try:
        return get_pid(address, path)
    except (OSError, ValueError) as error:
        return error


def test_a_reload_whose_workers_cannot_start_keeps_the_old_ones(tmp_path):
    flag = tmp_path / "broken"
    (tmp_path / "flaky.py").write_text(
        "import os\n"
        f"if os.path.exists({str(flag)!r}):\n"
        "    raise RuntimeError('the new code is broken')\n"
        "from tests.workers.apps import app\n"
    )
    with Supervised(["-w", "2", "--graceful-timeout=5", f"--chdir={tmp_path}", "flaky:app"]) as server:
        old = set(server.wait_ready(2))
        load = Load(server.address, threads=2)
        flag.write_text("")
        server.send(signal.SIGHUP)
        server.wait_event(
            re.compile(r"The new workers failed to start \(.*the new code is broken\); the 2 old ones")
        )
        assert load.pids_since(lambda: None, answers=30) <= old
        assert set(server.workers()) == old
        flag.unlink()
        server.send(signal.SIGHUP)  # fixed: this time the reload goes through
        new = set(server.wait_ready(2))
        assert set(server.wait_exited(2)) == old
        assert load.pids_since(lambda: None, answers=30) <= new
        load.stop()
        assert not load.failures
        assert server.stop() == 0
