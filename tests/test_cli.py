"""The command line: ``python -m waitress_like`` run for real, plus the generated parser.

Error cases run the command in a child process and check the single stderr line and the
exit status; serving cases start it on port 0, read the port from the "Serving on" line,
make a raw HTTP request and stop it with a signal.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import ServerProcess, child_environment, run_command, server_command
from waitress_like import __version__
from waitress_like.cli import build_parser, format_value, main, settings_given
from waitress_like.config import SETTINGS, SETTINGS_BY_NAME, TOPICS

APP_MODULE = """
def app(environ, start_response):
    body = ("%s|%s|%s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"], environ["wsgi.url_scheme"])).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

def factory():
    return app

def factory_of_text():
    return "not an application"

def failing_factory():
    raise RuntimeError("the database is down")

not_callable = 42

def stuck(environ, start_response):
    import sys, threading
    print("request in service", file=sys.stderr, flush=True)
    threading.Event().wait(60)
"""

# waitress-serve's long options (waitress/runner.py and Adjustments.parse_args, 3.x),
# written out so that this test runs without waitress installed.
WAITRESS_SERVE_VALUE_OPTIONS = [
    "host", "port", "listen", "threads", "trusted-proxy", "trusted-proxy-count",
    "trusted-proxy-headers", "url-scheme", "url-prefix", "backlog", "recv-bytes", "send-bytes",
    "outbuf-overflow", "outbuf-high-watermark", "inbuf-overflow", "connection-limit",
    "cleanup-interval", "channel-timeout", "max-request-header-size", "max-request-body-size",
    "ident", "asyncore-loop-timeout", "unix-socket", "unix-socket-perms",
    "channel-request-lookahead", "server-name",
]  # fmt: skip
WAITRESS_SERVE_FLAGS = [
    "ipv4", "ipv6", "log-untrusted-proxy-headers", "clear-untrusted-proxy-headers",
    "log-socket-errors", "expose-tracebacks", "asyncore-use-poll",
]  # fmt: skip


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "myapp.py").write_text(APP_MODULE)
    (tmp_path / "broken_import.py").write_text("raise RuntimeError('configuration file missing')\n")
    (tmp_path / "needs_dependency.py").write_text("import no_such_dependency_xyz\napp = None\n")
    return tmp_path


def _single_error_line(result, exit_status: int) -> str:
    assert result.returncode == exit_status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("waitress-like-serve: error: ")
    assert "Traceback" not in result.stderr
    return lines[0][len("waitress-like-serve: error: ") :]


# --------------------------------------------------------------------------- errors, for real

ERROR_CASES = [
    (["--bogus", "myapp:app"], 2, "unknown option --bogus (see --help)"),
    (["--threds=4", "myapp:app"], 2, "unknown option --threds; did you mean --threads? (see --help)"),
    (["--threads"], 2, "argument --threads: expected one argument"),
    (["myapp:app", "other:app"], 2, "unexpected argument 'other:app': give exactly one application"),
    ([], 2, "no application given: name it as MODULE:OBJECT (see --help)"),
    (
        ["myapp"],
        2,
        "the application must be named MODULE:OBJECT, e.g. myproject.wsgi:application (got 'myapp')",
    ),
    (["--threads=four", "myapp:app"], 1, "--threads: expected an integer (got 'four')"),
    (["--port=http", "myapp:app"], 1, "--port: expected an integer (got 'http')"),
    (["--listen=127.0.0.1:99999", "myapp:app"], 1, "--listen: '127.0.0.1:99999': the port must be"),
    (["--unix-socket-perms=999", "myapp:app"], 1, "--unix-socket-perms: expected octal permissions"),
    (
        ["--listen=127.0.0.1:0", "--port=8080", "myapp:app"],
        1,
        "--listen: cannot be combined with host or port",
    ),
    (["--fd=three", "myapp:app"], 1, "--fd: 'three' is not a file descriptor number (got 'three')"),
    (["--no-ipv4", "--no-ipv6", "myapp:app"], 1, "--ipv4: ipv4 and ipv6 cannot both be disabled"),
    (
        ["no_such_module_xyz:app"],
        1,
        "cannot import 'no_such_module_xyz': no module named 'no_such_module_xyz'",
    ),
    (["myapp:application"], 1, "module 'myapp' has no attribute 'application'"),
    (["myapp:not_callable"], 1, "myapp:not_callable is not callable (it is a int), so it cannot be a WSGI"),
    (
        ["--call", "myapp:factory_of_text"],
        1,
        "myapp:factory_of_text() returned a str, not a WSGI application",
    ),
    (
        ["--call", "myapp:failing_factory"],
        1,
        "calling myapp:failing_factory() failed: RuntimeError: the database",
    ),
    (["broken_import:app"], 1, "importing 'broken_import' failed: RuntimeError: configuration file missing"),
    (
        ["needs_dependency:app"],
        1,
        "importing 'needs_dependency' failed: ModuleNotFoundError: No module named",
    ),
]


@pytest.mark.parametrize("arguments, exit_status, message", ERROR_CASES, ids=[c[2][:40] for c in ERROR_CASES])
def test_error_is_one_line_and_a_nonzero_exit(app_dir: Path, arguments, exit_status: int, message: str):
    result = run_command(server_command(*arguments), cwd=app_dir)
    assert _single_error_line(result, exit_status).startswith(message)


def test_traceback_on_request(app_dir: Path):
    result = run_command(server_command("--traceback", "broken_import:app"), cwd=app_dir)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert 'broken_import.py", line 1' in result.stderr
    assert result.stderr.splitlines()[-1].startswith("waitress-like-serve: error: importing 'broken_import'")


def test_hint_at_traceback_when_there_is_one(app_dir: Path):
    result = run_command(server_command("broken_import:app"), cwd=app_dir)
    assert _single_error_line(result, 1).endswith("(--traceback shows where)")


def test_address_in_use(app_dir: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_command(server_command(f"--listen=127.0.0.1:{port}", "myapp:app"), cwd=app_dir)
    message = _single_error_line(result, 1)
    assert message == f"cannot listen on 127.0.0.1:{port}: Address already in use"


def _without_bind_privilege() -> list[str]:
    """A command prefix under which binding a port below 1024 is refused."""
    unprivileged_start = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    if unprivileged_start.exists() and int(unprivileged_start.read_text()) <= 1:
        pytest.skip("every port is unprivileged on this host")
    if os.name != "posix":
        pytest.skip("privileged ports are a POSIX notion")
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is not available to drop CAP_NET_BIND_SERVICE")
    return [setpriv, "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service"]


def test_permission_denied_on_bind(app_dir: Path):
    prefix = _without_bind_privilege()
    result = run_command([*prefix, *server_command("--host=127.0.0.1", "--port=1", "myapp:app")], cwd=app_dir)
    assert _single_error_line(result, 1) == "cannot listen on 127.0.0.1:1: Permission denied"


# --------------------------------------------------------------------------- serving, for real


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serves_until_signalled(app_dir: Path, stop_signal: int):
    with ServerProcess(server_command("--listen=127.0.0.1:0", "myapp:app"), cwd=app_dir) as server:
        host, port = server.wait_serving()
        assert host == "127.0.0.1"
        response = server.get((host, port), "/hello")
        assert response.status == 200
        assert response.body == b"|/hello|http"
        assert server.stop(stop_signal) == 0
    assert "Traceback" not in server.stderr


def test_requests_cut_at_shutdown_make_the_exit_status_nonzero(app_dir: Path):
    arguments = server_command("--listen=127.0.0.1:0", "--graceful-timeout=0.2", "myapp:stuck")
    with ServerProcess(arguments, cwd=app_dir) as server:
        address = server.wait_serving()
        with socket.create_connection(address, timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            server.wait_line(re.compile("request in service"))
            assert server.stop(signal.SIGTERM) == 1


def test_waitress_serve_options_unchanged(app_dir: Path):
    arguments = server_command(
        "--host=127.0.0.1", "--port=0", "--threads=2", "--url-prefix=/mounted", "--url-scheme=https",
        "--ident=test-ident", "--no-ipv6", "--ipv4", "--expose-tracebacks", "--channel-timeout=60",
        "--connection-limit=50", "--backlog=64", "--recv-bytes=4096", "--log-socket-errors",
        "--asyncore-use-poll", "--call", "myapp:factory",
    )  # fmt: skip
    with ServerProcess(arguments, cwd=app_dir) as server:
        address = server.wait_serving()
        response = server.get(address, "/mounted/page")
        assert response.status == 200
        assert response.header("Server") == "test-ident"
        assert response.body == b"/mounted|/page|https"
        assert server.stop() == 0


def test_listen_may_be_repeated(app_dir: Path):
    arguments = server_command("--listen=127.0.0.1:0", "--listen", "localhost:0", "myapp:app")
    with ServerProcess(arguments, cwd=app_dir) as server:
        first = server.wait_serving()
        second = server.wait_serving()
        assert first != second
        for address in (first, second):
            if ":" not in address[0]:
                assert server.get(address).status == 200
        assert server.stop() == 0


def test_app_option_instead_of_positional(app_dir: Path):
    with ServerProcess(
        server_command("--app", "myapp:app", "--port=0", "--host=127.0.0.1"), cwd=app_dir
    ) as server:
        assert server.get(server.wait_serving()).status == 200
        assert server.stop() == 0


def test_current_directory_is_importable_without_python_m(app_dir: Path):
    # `python -c` puts '' first on sys.path; remove it to be where the console script is.
    code = "import sys; del sys.path[0]; from waitress_like.cli import main; sys.exit(main())"
    result = run_command([sys.executable, "-c", code, "--check-config", "myapp:app"], cwd=app_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "waitress-like-serve: configuration OK"


def test_dotted_application_name_as_waitress_serve_accepts(app_dir: Path):
    result = run_command(server_command("--check-config", "myapp.app"), cwd=app_dir)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- help, version, config


def test_version(app_dir: Path):
    result = run_command(server_command("--version"), cwd=app_dir)
    assert result.returncode == 0
    assert result.stdout.strip() == f"waitress_like {__version__}"


def test_help_is_grouped_by_topic():
    result = run_command(server_command("--help"))
    assert result.returncode == 0
    text = result.stdout
    assert text.startswith("usage: waitress-like-serve [OPTIONS] MODULE:OBJECT")
    positions = [text.index(f"\n{title} settings:") for title in TOPICS.values()]
    assert positions == sorted(positions)
    for setting in SETTINGS:
        if setting.accepts_text:
            assert setting.cli_option in text
    for option in ("--call", "--app", "--check-config", "--print-config", "--traceback", "--version"):
        assert option in text


def test_check_config_reports_every_problem(app_dir: Path):
    result = run_command(
        server_command("--check-config", "--threads=0", "--port=x", "no_such_module_xyz:app"), cwd=app_dir
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "waitress-like-serve: error: --port: expected an integer (got 'x')",
        "waitress-like-serve: error: --threads: must be >= 1 (got '0')",
        "waitress-like-serve: error: cannot import 'no_such_module_xyz': no module named 'no_such_module_xyz' "
        "(the current directory and sys.path were searched)",
    ]


def test_check_config_conflict_and_missing_app(app_dir: Path):
    result = run_command(server_command("--check-config", "--listen=127.0.0.1:0", "--host=::1"), cwd=app_dir)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "waitress-like-serve: error: --listen: cannot be combined with host or port; give HOST:PORT entries "
        "(got '127.0.0.1:0')",
        "waitress-like-serve: error: no application given: name it as MODULE:OBJECT",
    ]


def test_check_config_does_not_bind(app_dir: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_command(server_command("--check-config", f"--port={port}", "myapp:app"), cwd=app_dir)
    assert result.returncode == 0, result.stderr


def test_print_config_round_trips(capsys: pytest.CaptureFixture[str]):
    assert main(["--print-config", "--threads=7", "--listen=127.0.0.1:9000", "--listen=[::1]:9001"]) == 0
    lines = capsys.readouterr().out.splitlines()
    comments = [line for line in lines if line.startswith("#")]
    lines = [line for line in lines if not line.startswith("#")]
    printed = dict(line.split(" = ", 1) if " = " in line else (line[:-2], "") for line in lines)
    assert list(printed) == [s.name for s in SETTINGS if s.accepts_text]
    # Where the values come from: comment lines, so the output is still a valid ini section.
    assert comments[1:] == ["#   listen: command line", "#   threads: command line"]
    assert printed["threads"] == "7"
    assert printed["listen"] == "127.0.0.1:9000 [::1]:9001"
    assert printed["unix_socket_perms"] == "600"
    assert printed["ipv6"] == "true"
    for name, text in printed.items():
        setting = SETTINGS_BY_NAME[name]
        if name not in ("listen", "trusted_proxy_count"):  # derived / resolved values
            assert format_value(setting, setting.parse(text)) == text, name


def test_print_config_with_a_bad_value(capsys: pytest.CaptureFixture[str]):
    assert main(["--print-config", "--backlog=-1"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "waitress-like-serve: error: --backlog: must be >= 0 (got '-1')\n"


def test_deprecated_setting_warns_on_one_line(capsys: pytest.CaptureFixture[str]):
    assert main(["--print-config", "--send-bytes=9000"]) == 0
    assert capsys.readouterr().err == (
        "waitress-like-serve: warning: send_bytes has no effect and will be removed in a future release\n"
    )


# --------------------------------------------------------------------------- the parser, in process


def _option_strings() -> set[str]:
    return {name for action in build_parser()._actions for name in action.option_strings}


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.accepts_text], ids=lambda s: s.name)
def test_every_text_setting_has_a_generated_option(setting):
    options = _option_strings()
    assert setting.cli_option in options
    if setting.is_flag:
        assert "--no-" + setting.cli_option[2:] in options


def test_python_only_settings_have_no_option():
    options = _option_strings()
    for setting in SETTINGS:
        if not setting.accepts_text:
            assert setting.cli_option not in options


def test_setting_options_are_exactly_the_table():
    parser = build_parser()
    setting_dests = {action.dest for action in parser._actions if action.dest in SETTINGS_BY_NAME}
    assert setting_dests == {s.name for s in SETTINGS if s.accepts_text}


@pytest.mark.parametrize("name", WAITRESS_SERVE_VALUE_OPTIONS)
def test_waitress_serve_value_options_parse(name: str):
    options = build_parser().parse_args([f"--{name}=5", "myapp:app"])
    assert settings_given(options) == {name.replace("-", "_"): "5"}


@pytest.mark.parametrize("name", WAITRESS_SERVE_FLAGS)
def test_waitress_serve_flags_parse(name: str):
    parser = build_parser()
    key = name.replace("-", "_")
    assert settings_given(parser.parse_args([f"--{name}"])) == {key: True}
    assert settings_given(parser.parse_args([f"--no-{name}"])) == {key: False}


def test_same_options_as_installed_waitress_serve():
    adjustments = pytest.importorskip("waitress.adjustments")
    theirs = {name.replace("_", "-") for name, _ in adjustments.Adjustments._params if name != "sockets"}
    assert theirs == set(WAITRESS_SERVE_VALUE_OPTIONS) | set(WAITRESS_SERVE_FLAGS)
    options = _option_strings()
    assert {"--help", "--call"} <= options
    assert {f"--{name}" for name in theirs} <= options


def test_repeated_list_options_add_up():
    options = build_parser().parse_args(["--listen=127.0.0.1:1", "--listen", "[::1]:2", "--fd=3", "--fd=4 5"])
    assert settings_given(options) == {"listen": "127.0.0.1:1 [::1]:2", "fd": "3 4 5"}


def test_unique_prefixes_are_accepted_as_getopt_does():
    assert settings_given(build_parser().parse_args(["--max-request-body=10"])) == {
        "max_request_body_size": "10"
    }


def test_nothing_given_means_no_settings():
    assert settings_given(build_parser().parse_args(["myapp:app"])) == {}


def test_child_environment_has_no_systemd_variables():
    assert "LISTEN_FDS" not in child_environment()


# --------------------------------------------------------------------------- the docs extension


def _load_cli_reference() -> Any:
    path = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "cli_reference.py"
    spec = importlib.util.spec_from_file_location("cli_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_documents_every_option():
    text = _load_cli_reference().render_rst()
    assert text.startswith(".. program:: waitress-like-serve")
    for name in _option_strings():
        assert re.search(rf"^\.\. option:: .*{re.escape(name)}\b", text, re.M), name
    for title in TOPICS.values():
        assert f".. rubric:: {title} settings" in text


def test_cli_reference_of_the_service_command_can_skip_settings():
    text = _load_cli_reference().render_rst("waitress_like.winservice", skip_settings=True)
    assert ".. option:: --service-name NAME" in text
    assert "--threads" not in text


def test_new_settings_list_is_the_table_less_waitress():
    extension = _load_cli_reference()
    listed = set(re.findall(r"^\* ``(\w+)``", extension.render_new_settings_rst(), re.M))
    assert listed == set(SETTINGS_BY_NAME) - extension.WAITRESS_SETTINGS
    assert "fd" in listed and "threads" not in listed
    adjustments = pytest.importorskip("waitress.adjustments")
    assert {name for name, _ in adjustments.Adjustments._params} == extension.WAITRESS_SETTINGS
