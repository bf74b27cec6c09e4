"""``waitress-like-serve --access-log=...`` run for real: each request is logged once.

The command configures the root logger (``logging.basicConfig``, stderr) for its own
messages; the access log's own handler must be the only place an access line goes, not
also stderr through the root logger.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.processes import ServerProcess, python_snippet

APP = "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n"
FORMAT = "ACCESS %(U)s %(s)s"


def serve_command(app_dir: Path, stdout_path: Path, access_log: str) -> list[str]:
    """The command's ``main`` in a child whose standard output goes to ``stdout_path``."""
    arguments = [
        "--listen=127.0.0.1:0",
        f"--access-log={access_log}",
        f"--access-log-format={FORMAT}",
        "app:app",
    ]
    return python_snippet(
        "import os\n"
        f"os.dup2(os.open({str(stdout_path)!r}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)\n"
        f"os.chdir({str(app_dir)!r})\n"
        f"sys.path.insert(0, {str(app_dir)!r})\n"
        "from waitress_like.cli import main\n"
        f"sys.exit(main({arguments!r}))\n"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="stops the server with SIGINT")
@pytest.mark.parametrize("destination", ["-", "file"])
def test_each_request_is_logged_once(tmp_path: Path, destination: str) -> None:
    (tmp_path / "app.py").write_text(APP)
    stdout_path = tmp_path / "stdout.txt"
    log_path = tmp_path / "access.log"
    access_log = "-" if destination == "-" else str(log_path)
    with ServerProcess(serve_command(tmp_path, stdout_path, access_log)) as server:
        address = server.wait_serving()
        assert server.get(address, "/once").status == 200
        assert server.stop() == 0
    written = (stdout_path if destination == "-" else log_path).read_text()
    assert written.splitlines() == ["ACCESS /once 200"]
    assert "ACCESS" not in server.stderr
    if destination == "file":
        assert "ACCESS" not in stdout_path.read_text()
