"""PasteDeploy: ``use = egg:waitress_like#main``, the shipped example, and pserve.

The servers run in child processes, as PasteDeploy and pserve users run them: they block
in ``serve()`` until interrupted.
"""

from __future__ import annotations

import re
import shutil
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from tests.processes import REPO_ROOT, ServerProcess
from waitress_like.config import Settings
from waitress_like.errors import ConfigError
from waitress_like.paste import load_ini, serve_paste, split_ini_spec

pytest.importorskip("paste.deploy")

EXAMPLE = REPO_ROOT / "paste.example.ini"
PASTE_DOC = REPO_ROOT / "docs" / "paste.rst"
EXAMPLE_LISTEN = "listen = 127.0.0.1:8080"

APP_MODULE = """
def make_app(global_config, **settings):
    greeting = settings.get("greeting", "hello").encode()

    def app(environ, start_response):
        body = greeting + b"|" + environ["SCRIPT_NAME"].encode() + b"|" + environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app
"""

# loadapp + loadserver, exactly as PasteDeploy documents them.
PASTE_RUNNER = (
    "import sys; from paste.deploy import loadapp, loadserver; "
    "uri = 'config:' + sys.argv[1]; "
    "sys.exit(loadserver(uri)(loadapp(uri)))"
)


def _ini(tmp_path: Path, server_section: str, name: str = "site.ini") -> Path:
    (tmp_path / "myapp.py").write_text(APP_MODULE)
    path = tmp_path / name
    path.write_text(
        "[app:main]\nuse = call:myapp:make_app\ngreeting = hi from paste\n\n"
        + textwrap.dedent(server_section)
    )
    return path


# --------------------------------------------------------------------------- the example file


def test_example_loads_verbatim():
    """The file as shipped: its app loads and its server settings are valid."""
    app, settings = load_ini(str(EXAMPLE))
    assert callable(app)
    assert settings == {"listen": "127.0.0.1:8080", "threads": "4"}
    Settings.from_mapping(settings)
    assert EXAMPLE_LISTEN in EXAMPLE.read_text().splitlines()


def test_example_serves_with_only_the_port_changed(tmp_path: Path):
    original = EXAMPLE.read_text()
    copy = tmp_path / "paste.ini"
    copy.write_text(original.replace(EXAMPLE_LISTEN, "listen = 127.0.0.1:0"))
    changed = [
        (before, after)
        for before, after in zip(original.splitlines(), copy.read_text().splitlines())
        if before != after
    ]
    assert changed == [(EXAMPLE_LISTEN, "listen = 127.0.0.1:0")]
    with ServerProcess([sys.executable, "-c", PASTE_RUNNER, str(copy)], cwd=tmp_path) as server:
        address = server.wait_serving()
        response = server.get(address, "/from-paste")
        assert response.status == 200
        assert b"waitress_like is serving this page" in response.body
        assert b"/from-paste" in response.body
        assert server.stop() == 0


def test_the_documented_pserve_command_serves_the_example(tmp_path: Path):
    """``pserve <example>`` as docs/paste.rst and the file's own header write it, run with
    the installed ``pserve`` on a copy of the same name: plaster picks its loader by the
    file name's extension, so the name is part of what is tested."""
    pytest.importorskip("pyramid.scripts.pserve")
    documented = re.findall(r"pserve (\S+)", PASTE_DOC.read_text() + EXAMPLE.read_text())
    assert {name for name in documented if "example" in name} == {EXAMPLE.name}
    pserve = shutil.which("pserve", path=sysconfig.get_path("scripts")) or shutil.which("pserve")
    assert pserve is not None, "pyramid's pserve script is not installed"
    copy = tmp_path / EXAMPLE.name
    copy.write_text(EXAMPLE.read_text().replace(EXAMPLE_LISTEN, "listen = 127.0.0.1:0"))
    with ServerProcess([pserve, EXAMPLE.name], cwd=tmp_path) as server:
        address = server.wait_serving()
        response = server.get(address, "/from-pserve")
        assert response.status == 200
        assert b"waitress_like is serving this page" in response.body
        assert server.stop() == 0


# --------------------------------------------------------------------------- settings from an ini


def test_every_kind_of_setting_as_a_string(tmp_path: Path):
    ini = _ini(
        tmp_path,
        """
        [server:main]
        use = egg:waitress_like#main
        listen = 127.0.0.1:0
                 localhost:0
        threads = 2
        ident = paste-ident
        url_prefix = /site
        url_scheme = http
        expose_tracebacks = true
        ipv6 = yes
        channel_timeout = 30
        max_request_body_size = 1048576
        unix_socket_perms = 660
        trusted_proxy = 127.0.0.1
        trusted_proxy_headers = x-forwarded-for
                                x-forwarded-proto
        """,
    )
    with ServerProcess([sys.executable, "-c", PASTE_RUNNER, str(ini)], cwd=tmp_path) as server:
        first = server.wait_serving()
        second = server.wait_serving()  # listen on two lines: two listeners
        assert first != second
        response = server.get(first, "/site/page")
        assert response.status == 200
        assert response.header("Server") == "paste-ident"
        assert response.body == b"hi from paste|/site|/page"
        assert server.stop() == 0


def test_pserve_serves_the_ini(tmp_path: Path):
    pytest.importorskip("pyramid.scripts.pserve")
    ini = _ini(
        tmp_path,
        """
        [server:main]
        use = egg:waitress_like#main
        listen = 127.0.0.1:0
        """,
    )
    with ServerProcess([sys.executable, "-m", "pyramid.scripts.pserve", str(ini)], cwd=tmp_path) as server:
        address = server.wait_serving()
        response = server.get(address, "/pyramid")
        assert response.status == 200
        assert response.body == b"hi from paste||/pyramid"
        assert server.stop() == 0


# --------------------------------------------------------------------------- the runner, in process


def test_bad_setting_in_the_section_names_it():
    with pytest.raises(ConfigError) as info:
        serve_paste(lambda environ, start_response: [], {"here": "/"}, threads="zero")
    assert info.value.setting == "threads"


def test_unknown_key_in_the_section_is_an_error():
    with pytest.raises(ConfigError, match="unknown setting.*did you mean 'threads'"):
        serve_paste(lambda environ, start_response: [], {}, thread="4")


def test_load_ini_without_server_section(tmp_path: Path):
    path = tmp_path / "app-only.ini"
    path.write_text("[app:main]\nuse = call:waitress_like.demo:make_app\n")
    app, settings = load_ini(str(path))
    assert callable(app) and settings == {}


def test_load_ini_named_app_and_server(tmp_path: Path):
    ini = _ini(tmp_path, "[server:other]\nuse = egg:waitress_like#main\nthreads = 3\n")
    with ini.open("a") as handle:
        handle.write("\n[app:second]\nuse = call:waitress_like.demo:make_app\n")
    app, settings = load_ini(str(ini), "second", server_name="other")  # [app:main] not loaded
    assert app.__module__ == "waitress_like.demo"
    assert settings == {"threads": "3"}


def test_load_ini_imports_the_app_from_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # As a console script or a service runs it: the current directory is not on sys.path.
    (tmp_path / "paste_cwd_app.py").write_text(APP_MODULE)
    (tmp_path / "cwd.ini").write_text("[app:main]\nuse = call:paste_cwd_app:make_app\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in ("", str(tmp_path))])
    try:
        app, settings = load_ini("cwd.ini")
    finally:
        sys.modules.pop("paste_cwd_app", None)
    assert app.__module__ == "paste_cwd_app" and settings == {}


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("site.ini", ("site.ini", None)),
        ("config:site.ini", ("site.ini", None)),
        ("site.INI#admin", ("site.INI", "admin")),
        ("myproject.wsgi:application", None),
        ("myproject.ini_loader:app", None),
    ],
)
def test_split_ini_spec(spec: str, expected):
    result = split_ini_spec(spec)
    if expected is None:
        assert result is None
    else:
        assert result == (str(Path(expected[0]).resolve()), expected[1])
