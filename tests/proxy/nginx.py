"""A real nginx for the proxy tests: generated config, foreground process, bounded start.

``.ci/run`` installs Debian's ``nginx-light`` and ``libnginx-mod-stream``; tests that
need nginx (or its stream module) skip with the reason when it is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

START_SECONDS = 15.0
STOP_SECONDS = 15.0


def nginx_binary() -> Optional[str]:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None
    )


def _build_options(binary: str) -> str:
    # nginx -V prints its configure arguments on stderr.
    result = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=30, check=False)
    return result.stderr + result.stdout


def stream_module_line(binary: str) -> Optional[str]:
    """The ``load_module`` line the stream module needs ("" if built in), or None if absent."""
    options = _build_options(binary)
    if re.search(r"--with-stream(\s|$)", options):
        return ""
    if "--with-stream=dynamic" not in options:
        return None
    match = re.search(r"--modules-path=(\S+)", options)
    module = Path(match.group(1) if match else "/usr/lib/nginx/modules") / "ngx_stream_module.so"
    return f"load_module {module};" if module.exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _user_line() -> str:
    # Unprivileged, nginx runs as the current user and the directive is not wanted. As
    # root its workers would become "nobody", who may not reach the test's temporary
    # files or unix socket: name the current user instead.
    if os.geteuid() != 0:
        return ""
    import grp
    import pwd

    return f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"


class Nginx:
    """One nginx master process in the foreground, configured in ``directory``."""

    def __init__(self, binary: str, directory: Path, stream_line: Optional[str]) -> None:
        self.binary = binary
        self.directory = directory
        self.stream_line = stream_line
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.error_log = directory / "error.log"

    def start(self, http: str = "", stream: str = "", ports: tuple[int, ...] = ()) -> None:
        """Write the config around the ``http`` and ``stream`` blocks' contents, start
        nginx, and return once every port in ``ports`` accepts connections."""
        assert self.process is None, "already started"
        if stream and self.stream_line is None:
            raise RuntimeError("nginx has no stream module")
        directory = self.directory
        temp_paths = "\n".join(
            f"    {kind}_temp_path {directory / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        config = f"""
{self.stream_line if stream else ""}
{_user_line()}
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {self.error_log} info;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp_paths}
{http}
}}
"""
        if stream:
            config += f"stream {{\n{stream}\n}}\n"
        (directory / "nginx.conf").write_text(config)
        self.process = subprocess.Popen(
            [
                self.binary,
                "-e",
                str(self.error_log),
                "-p",
                f"{directory}/",
                "-c",
                str(directory / "nginx.conf"),
                "-g",
                "daemon off;",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_SECONDS
        for port in ports:
            self._wait_for_port(port, deadline)

    def _wait_for_port(self, port: int, deadline: float) -> None:
        assert self.process is not None
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
                return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen on {port} in {START_SECONDS}s:\n{self.log()}")
            try:
                # Waiting on the process both paces the polling and notices an early exit.
                self.process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")
        except OSError:
            return "(no error log)"

    def stop(self) -> None:
        """Fast shutdown (SIGTERM); fails the test if nginx does not exit cleanly."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
        try:
            returncode = process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)
            raise AssertionError(f"nginx did not stop within {STOP_SECONDS}s:\n{self.log()}") from None
        assert returncode == 0, f"nginx exited with {returncode}:\n{self.log()}"
        assert not (self.directory / "nginx.pid").exists(), "nginx left its pid file behind"
