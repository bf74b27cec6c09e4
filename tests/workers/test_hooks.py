"""Hooks: gunicorn's names, arguments and moments, in the process each belongs to."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import REPO_ROOT, child_environment, run_command, server_command
from waitress_like.hooks import HOOK_NAMES, HookError, HookMiddleware, Hooks, split_hooks
from waitress_like.wsgi import FileWrapper

from .harness import APP, Supervised, alive, get_pid, wait_until

HOOKS_CONF = str(Path(__file__).with_name("hooks_conf.py"))


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def hooks(self, *names: str, fail: bool = False) -> Hooks:
        def make(name: str) -> Any:
            def hook(*args: Any) -> None:
                self.calls.append((name, args))
                if fail:
                    raise RuntimeError(f"{name} fails")

            return hook

        return Hooks({name: make(name) for name in names})


def _call(app: Any, environ: dict[str, Any]) -> tuple[list[str], Any]:
    statuses: list[str] = []
    result = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    return statuses, result


ENVIRON = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/a",
    "QUERY_STRING": "x=1",
    "HTTP_HOST": "h",
    "wsgi.file_wrapper": FileWrapper,
}


def test_post_request_runs_when_an_iterable_response_is_closed():
    recorder = Recorder()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("201 Created", [("X", "1")])
        return iter([b"a", b"b"])

    wrapped = HookMiddleware(app, recorder.hooks("pre_request", "post_request"), "worker")
    statuses, result = _call(wrapped, dict(ENVIRON))
    assert [name for name, _ in recorder.calls] == ["pre_request"]
    request = recorder.calls[0][1][1]
    assert (request.method, request.path, request.query, request.uri) == ("GET", "/a", "x=1", "/a?x=1")
    assert request.headers == [("HOST", "h")]
    assert list(result) == [b"a", b"b"]
    result.close()
    result.close()
    assert [name for name, _ in recorder.calls] == ["pre_request", "post_request"]
    worker, request, environ, response = recorder.calls[1][1]
    assert worker == "worker" and environ["PATH_INFO"] == "/a"
    assert (response.status, response.status_code, response.headers) == ("201 Created", 201, [("X", "1")])


def test_a_list_body_stays_a_list_and_a_file_wrapper_keeps_its_type():
    recorder = Recorder()
    hooks = recorder.hooks("post_request")
    listed = HookMiddleware(lambda environ, start: (start("200 OK", []), [b"x"])[1], hooks, None)
    _, result = _call(listed, dict(ENVIRON))
    assert type(result) is list  # the server gives it a Content-Length
    assert len(recorder.calls) == 1
    body = io.BytesIO(b"file")
    wrapped = HookMiddleware(lambda environ, start: (start("200 OK", []), FileWrapper(body))[1], hooks, None)
    _, result = _call(wrapped, dict(ENVIRON))
    assert type(result) is FileWrapper  # so the server can still sendfile it
    result.close()
    assert body.closed and len(recorder.calls) == 2


def test_an_application_error_still_gets_post_request():
    recorder = Recorder()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        _call(HookMiddleware(app, recorder.hooks("pre_request", "post_request"), None), dict(ENVIRON))
    assert [name for name, _ in recorder.calls] == ["pre_request", "post_request"]


def test_a_hook_that_raises_is_logged_and_the_request_goes_on(caplog: pytest.LogCaptureFixture):
    recorder = Recorder()
    wrapped = HookMiddleware(
        lambda e, s: (s("200 OK", []), [b"ok"])[1], recorder.hooks("pre_request", fail=True), None
    )
    with caplog.at_level(logging.ERROR, "waitress_like"):
        statuses, result = _call(wrapped, dict(ENVIRON))
    assert statuses == ["200 OK"] and result == [b"ok"]
    assert "the pre_request hook raised; going on" in caplog.text and "pre_request fails" in caplog.text


def test_strict_hooks_raise_one_line_errors_and_others_do_not():
    hooks = Recorder().hooks("on_starting", "on_exit", fail=True)
    with pytest.raises(HookError, match="the on_starting hook raised RuntimeError: on_starting fails"):
        hooks.call_strict("on_starting", None)
    hooks.call("on_exit", None)


def test_hook_names_and_checks():
    assert len(HOOK_NAMES) == 14
    assert split_hooks({"threads": 2, "post_fork": print}) == ({"threads": 2}, {"post_fork": print})
    with pytest.raises(TypeError, match="hook post_fork must be callable"):
        Hooks({"post_fork": 5})
    with pytest.raises(ValueError, match="unknown hook"):
        Hooks({"pre_frok": print})


# --------------------------------------------------------------------------- real processes


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.skipif(sys.platform != "linux", reason="uses fork, signals and /proc")
def test_every_hook_runs_at_its_moment_in_its_process(tmp_path: Path):
    log_path, requests_path = tmp_path / "hooks.jsonl", tmp_path / "requests.log"
    environment = child_environment(HOOK_LOG=str(log_path), REQUEST_LOG=str(requests_path))
    with Supervised(["-c", HOOKS_CONF, APP], env=environment) as server:
        first = set(server.wait_ready(2))
        assert get_pid(server.address, "/one") in first
        assert get_pid(server.address, "/two?raise") in first  # pre_request raised
        server.send(signal.SIGTTIN)
        server.wait_ready(1)
        server.send(signal.SIGHUP)  # the file says workers = 2 again
        new = set(server.wait_ready(2))
        server.wait_exited(3)
        os.rename(requests_path, tmp_path / "requests.log.1")
        server.send(signal.SIGUSR1)
        server.wait_event(re.compile("Reopening log files"))
        wait_until(lambda: requests_path.exists(), "the workers to reopen the request log")
        assert get_pid(server.address, "/three") in new
        victim = min(new)
        os.kill(victim, signal.SIGABRT)  # as the supervisor does on worker_timeout
        assert server.wait_exited(1) == [victim]
        server.wait_ready(1)
        assert server.stop() == 0
    supervisor = server.pid
    events = _events(log_path)
    by_hook: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_hook.setdefault(event["hook"], []).append(event)
    assert [e["hook"] for e in events[:2]] == ["on_starting", "when_ready"] and events[-1][
        "hook"
    ] == "on_exit"
    for name in (
        "on_starting",
        "when_ready",
        "on_reload",
        "pre_fork",
        "child_exit",
        "nworkers_changed",
        "on_exit",
    ):
        assert {e["pid"] for e in by_hook[name]} == {supervisor}, name
    assert [(e["new"], e["old"]) for e in by_hook["nworkers_changed"]] == [(2, None), (3, 2), (2, 3)]
    assert len(by_hook["on_reload"]) == 1
    started = {e["age"] for e in by_hook["pre_fork"]}
    assert (
        {e["age"] for e in by_hook["post_fork"]} == {e["age"] for e in by_hook["post_worker_init"]} == started
    )
    assert all(e["server_pid"] == supervisor and e["pid"] != supervisor for e in by_hook["post_fork"])
    assert all(e["has_server"] for e in by_hook["post_worker_init"])
    paths = [(e["path"], e["status"]) for e in by_hook["post_request"]]
    assert paths == [("/one", 200), ("/two", 200), ("/three", 200)]
    assert [e["query"] for e in by_hook["pre_request"]] == ["", "raise", ""]
    assert {e["pid"] for e in by_hook["pre_request"]} <= first | new
    assert [e["pid"] for e in by_hook["worker_abort"]] == [victim]
    exited = {e["worker_pid"] for e in by_hook["child_exit"]}
    assert len(exited) == len(started) and not any(alive(pid) for pid in exited)
    assert {e["pid"] for e in by_hook["worker_exit"]} == exited - {victim}  # an abort skips it
    assert (
        "GET /three" in requests_path.read_text()
        and "GET /three" not in (tmp_path / "requests.log.1").read_text()
    )


@pytest.mark.parametrize("hook", ["on_starting", "when_ready"])
def test_a_failing_start_up_hook_stops_the_start(tmp_path: Path, hook: str):
    config = tmp_path / "conf.py"
    config.write_text(f"workers = 2\ndef {hook}(server):\n    raise RuntimeError('not today')\n")
    result = run_command(server_command("-c", str(config), "--listen=127.0.0.1:0", APP), cwd=REPO_ROOT)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"waitress-like-serve: error: the {hook} hook raised RuntimeError: not today (--traceback shows where)"
    )
    assert "Started worker" not in result.stderr
