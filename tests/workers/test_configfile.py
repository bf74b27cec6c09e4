"""The Python config file (``-c``), the precedence of sources, and ``--print-config``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from waitress_like.cli import main
from waitress_like.config import Settings
from waitress_like.configfile import ConfigFileError, load_config_file, resolve
from waitress_like.errors import ConfigError

GUNICORN_CONF = """
import multiprocessing

bind = ["127.0.0.1:8001", "unix:/tmp/app.sock"]
workers = multiprocessing.cpu_count() * 0 + 3
threads = 8
timeout = 45
keepalive = 5
max_requests = 1000
max_requests_jitter = 50
worker_class = "gthread"
_private = "ignored"

def post_fork(server, worker):
    server.log.info("Worker spawned (pid: %s)", worker.pid)

def when_ready(server):
    pass

def helper():
    return 1

class Thing:
    pass
"""


def _write(tmp_path: Path, text: str, name: str = "conf.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_a_gunicorn_conf_loads_with_its_names(tmp_path: Path):
    config = load_config_file(_write(tmp_path, GUNICORN_CONF))
    assert config.settings == {
        "listen": ["127.0.0.1:8001"],
        "unix_socket": "/tmp/app.sock",
        "workers": 3,
        "threads": 8,
        "worker_timeout": 45,
        "keepalive_timeout": 5,
        "max_requests": 1000,
        "max_requests_jitter": 50,
    }
    assert sorted(config.hooks) == ["post_fork", "when_ready"]
    assert config.warnings == [f"{config.path}: unknown setting 'worker_class' ignored"]


def test_a_misspelt_name_gets_a_warning_with_a_suggestion(tmp_path: Path):
    config = load_config_file(_write(tmp_path, "worker = 4\ndef post_forks(server, worker): pass\n"))
    assert config.warnings == [
        f"{config.path}: unknown setting 'worker' ignored; did you mean 'workers'?",
        f"{config.path}: post_forks is not a hook; did you mean post_fork?",
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("x = 1\ny = undefined_name\n", "line 2: NameError: name 'undefined_name' is not defined"),
        ("x = (\n", "line 1: SyntaxError"),
        ("post_fork = 5\n", "hook post_fork must be a function"),
    ],
)
def test_a_broken_file_is_one_error_naming_the_file_and_line(tmp_path: Path, text: str, message: str):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigFileError) as info:
        load_config_file(path)
    assert str(info.value).startswith(f"config file {path}")
    assert message in str(info.value)


def test_a_missing_file_is_an_error():
    with pytest.raises(ConfigFileError, match="no such file"):
        load_config_file("/nonexistent/conf.py")


def test_precedence_defaults_environment_file_command_line(tmp_path: Path):
    path = _write(tmp_path, "workers = 3\nthreads = 8\nbind = '127.0.0.1:9000'\n")
    environ = {"WEB_CONCURRENCY": "5"}
    assert resolve({}, None, environ).given == {"workers": 5}
    resolved = resolve({"threads": "2"}, path, environ)
    assert resolved.given == {"workers": 3, "threads": "2", "listen": ["127.0.0.1:9000"]}
    assert resolved.source("workers") == f"config file {path}"
    assert resolved.source("threads") == "command line"
    assert resolved.source("backlog") == "default"
    assert resolve({}, None, {"WEB_CONCURRENCY": "5"}).source("workers") == "environment (WEB_CONCURRENCY)"


def test_the_command_line_addresses_replace_the_files_as_a_group(tmp_path: Path):
    path = _write(tmp_path, "bind = '127.0.0.1:9000'\nthreads = 8\n")
    resolved = resolve({"port": "9100"}, path, {})
    assert resolved.given == {"threads": 8, "port": "9100"}
    Settings.from_mapping(resolved.given)  # no "listen cannot be combined with port"


def test_a_bad_web_concurrency_names_the_variable():
    with pytest.raises(ConfigError, match=r"from WEB_CONCURRENCY") as info:
        resolve({}, None, {"WEB_CONCURRENCY": "lots"})
    assert info.value.setting == "workers"


def test_print_config_shows_where_each_value_came_from(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = _write(tmp_path, "workers = 3\ntimeout = 45\ndef post_fork(server, worker): pass\n")
    assert main(["-c", path, "--threads=2", "--print-config"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "workers = 3" in out and "worker_timeout = 45" in out and "threads = 2" in out
    comments = out[out.index("# where the values come from (every other setting: its default):") :]
    assert comments[1:] == [
        "#   threads: command line",
        f"#   workers: config file {path}",
        f"#   worker_timeout: config file {path}",
        f"# hooks from {path}: post_fork",
    ]


def test_a_bad_value_in_the_file_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = _write(tmp_path, "workers = 0\n")
    assert main(["-c", path, "--print-config"]) == 1
    assert capsys.readouterr().err == (
        f"waitress-like-serve: error: workers (config file {path}): must be >= 1 (got 0)\n"
    )


def test_warnings_and_errors_of_the_file_reach_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = _write(tmp_path, "worker_class = 'sync'\n")
    assert main(["-c", path, "--print-config"]) == 0
    assert (
        f"waitress-like-serve: warning: {path}: unknown setting 'worker_class' ignored\n"
        in capsys.readouterr().err
    )
    broken = _write(tmp_path, "1/0\n", "broken.py")
    assert main(["-c", broken, "--print-config"]) == 1
    assert capsys.readouterr().err.startswith(
        f"waitress-like-serve: error: config file {broken}, line 1: ZeroDivisionError"
    )


def test_short_options(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    assert main(["-w", "4", "--print-config"]) == 0
    assert "workers = 4" in capsys.readouterr().out.splitlines()
    monkeypatch.setenv("WEB_CONCURRENCY", "6")
    assert main(["--print-config"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "workers = 6" in out and "#   workers: environment (WEB_CONCURRENCY)" in out
