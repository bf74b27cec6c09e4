"""--reload: a supervisor restarts the server when a source file changes."""

from __future__ import annotations

import os
import signal

import pytest

from tests.processes import ServerProcess, server_command
from waitress_like.cli import _without_reload_options
from waitress_like.reload import Watcher

APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"VERSION"]
"""


@pytest.mark.skipif(os.name == "nt", reason="signals differ on Windows")
def test_editing_a_file_restarts_the_server(tmp_path):
    (tmp_path / "project_app.py").write_text(APP.replace("VERSION", "v1"))
    arguments = server_command(
        "--reload", "--reload-dir", str(tmp_path), "--listen", "127.0.0.1:0", "project_app:app"
    )
    with ServerProcess(arguments, cwd=tmp_path) as server:
        address = server.wait_serving()
        assert server.get(address).body == b"v1"
        (tmp_path / "project_app.py").write_text(APP.replace("VERSION", "v2 after the edit"))
        # The new child logs its own "Serving on" line (port 0: a new port).
        address = server.wait_serving()
        assert server.get(address).body == b"v2 after the edit"
        assert server.stop(signal.SIGINT) == 0


def test_reload_options_are_not_passed_to_the_server():
    argv = ["--reload", "--reload-dir", "src", "--reload-include=*.txt", "--threads", "8", "app:app"]
    assert _without_reload_options(argv) == ["--threads", "8", "app:app"]


def test_watcher_patterns(tmp_path):
    watcher = Watcher([str(tmp_path)], include=("*.py",), exclude=(".*", "__pycache__"))
    assert watcher.wanted(str(tmp_path / "a.py"))
    assert not watcher.wanted(str(tmp_path / "a.txt"))
    assert not watcher.wanted(str(tmp_path / "__pycache__" / "a.py"))
    assert not watcher.wanted(str(tmp_path / ".git" / "a.py"))


def test_polling_watcher_reports_the_changed_file(tmp_path):
    target = tmp_path / "module.py"
    target.write_text("x = 1\n")
    watcher = Watcher([str(tmp_path)], include=("*.py",), exclude=())
    before = watcher._snapshot()
    target.write_text("x = 2  # changed, and longer\n")
    (tmp_path / "notes.txt").write_text("not watched")
    assert watcher._poll(before) == [str(target)]
