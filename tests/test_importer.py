"""The application loader: ``MODULE:OBJECT`` specs, each kind of failure, child processes."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from waitress_like.importer import (
    AppAttributeError,
    AppFactoryError,
    AppImportError,
    AppLoadError,
    AppModuleNotFoundError,
    AppNotCallableError,
    AppSpecError,
    load_application,
    make_importable,
    split_spec,
)

MODULE = """
def app(environ, start_response):
    start_response("200 OK", [])
    return [b"loaded"]

class Holder:
    application = staticmethod(app)

def factory():
    return app

def factory_of_text():
    return "not an application"

def failing_factory():
    raise RuntimeError("the database\\n  is down")

not_callable = 42
"""


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory of application modules; sys.path and sys.modules restored after."""
    (tmp_path / "importer_app.py").write_text(MODULE)
    (tmp_path / "importer_broken.py").write_text("raise RuntimeError('configuration file missing')\n")
    (tmp_path / "importer_needs.py").write_text("import no_such_dependency_xyz\napp = None\n")
    package = tmp_path / "importer_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "wsgi.py").write_text(MODULE)
    # "" would stand for whatever directory a test changes to.
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry != ""])
    modules_before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - modules_before:
        del sys.modules[name]


def _body(application: Any) -> bytes:
    return b"".join(application({}, lambda status, headers: None))


@pytest.mark.parametrize(
    "spec",
    ["importer_app:app", "importer_app.app", "importer_app:Holder.application", "importer_pkg.wsgi:app"],
)
def test_loads_the_named_object_from_the_working_directory(
    app_dir: Path, monkeypatch: pytest.MonkeyPatch, spec: str
):
    monkeypatch.chdir(app_dir)
    assert _body(load_application(spec)) == b"loaded"
    assert sys.path[0] == str(app_dir)


def test_an_explicit_working_directory_is_importable_without_changing_directory(app_dir: Path):
    assert os.getcwd() != str(app_dir)
    assert _body(load_application("importer_app:app", working_directory=str(app_dir))) == b"loaded"
    assert os.getcwd() != str(app_dir)


def test_a_factory_is_called_only_when_asked(app_dir: Path):
    factory = load_application("importer_app:factory", working_directory=str(app_dir))
    assert factory.__name__ == "factory"
    application = load_application("importer_app:factory", call_factory=True, working_directory=str(app_dir))
    assert application.__name__ == "app"


ERRORS = [
    ("importer_app", AppSpecError, "the application must be named MODULE:OBJECT, e.g. myproject.wsgi:application (got 'importer_app')", False),
    ("importer_app:", AppSpecError, "the application must be named MODULE:OBJECT", False),
    ("1abc:app", AppSpecError, "the application must be named MODULE:OBJECT", False),
    ("no_such_module_xyz:app", AppModuleNotFoundError, "cannot import 'no_such_module_xyz': no module named 'no_such_module_xyz' (the current directory and sys.path were searched)", False),
    ("importer_pkg.nope:app", AppModuleNotFoundError, "cannot import 'importer_pkg.nope': no module named 'importer_pkg.nope'", False),
    ("importer_broken:app", AppImportError, "importing 'importer_broken' failed: RuntimeError: configuration file missing", True),
    ("importer_needs:app", AppImportError, "importing 'importer_needs' failed: ModuleNotFoundError: No module named 'no_such_dependency_xyz'", True),
    ("importer_app:application", AppAttributeError, "module 'importer_app' has no attribute 'application'", False),
    ("importer_app:Holder.nope", AppAttributeError, "module 'importer_app' has no attribute 'Holder.nope'", False),
    ("importer_app:not_callable", AppNotCallableError, "importer_app:not_callable is not callable (it is a int), so it cannot be a WSGI application", False),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "kind", "message", "has_cause"), ERRORS)
def test_each_failure_has_its_own_class_and_one_line_message(
    app_dir: Path, spec: str, kind: type[AppLoadError], message: str, has_cause: bool
):
    with pytest.raises(kind) as caught:
        load_application(spec, working_directory=str(app_dir))
    assert isinstance(caught.value, AppLoadError)
    assert caught.value.spec == spec
    assert str(caught.value) == caught.value.message
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message
    assert (caught.value.__cause__ is not None) is has_cause


def test_a_bad_spec_imports_nothing(app_dir: Path):
    path_before = list(sys.path)
    with pytest.raises(AppSpecError):
        load_application("not a spec", working_directory=str(app_dir))
    assert sys.path == path_before
    assert isinstance(AppSpecError("x", "y"), ValueError)


@pytest.mark.parametrize(
    ("spec", "kind", "message"),
    [
        (
            "importer_app:failing_factory",
            AppFactoryError,
            "calling importer_app:failing_factory() failed: RuntimeError: the database is down",
        ),
        (
            "importer_app:factory_of_text",
            AppNotCallableError,
            "importer_app:factory_of_text() returned a str, not a WSGI application",
        ),
    ],
)
def test_factory_failures(app_dir: Path, spec: str, kind: type[AppLoadError], message: str):
    with pytest.raises(kind) as caught:
        load_application(spec, call_factory=True, working_directory=str(app_dir))
    assert caught.value.message == message
    assert (caught.value.__cause__ is not None) is (kind is AppFactoryError)


def test_split_spec():
    assert split_spec("a.b:c.d") == ("a.b", "c.d")
    assert split_spec("a.b.c") == ("a.b", "c")
    with pytest.raises(AppSpecError):
        split_spec("a:b:c")


def test_make_importable_adds_a_directory_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys, "path", ["/somewhere"])
    make_importable(str(tmp_path / "sub" / ".."))
    make_importable(str(tmp_path))
    assert sys.path == [str(tmp_path), "/somewhere"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", "/somewhere"])
    make_importable()  # the empty entry already stands for the current directory
    assert sys.path == ["", "/somewhere"]


@pytest.mark.parametrize("kind", [AppSpecError, AppModuleNotFoundError, AppImportError, AppFactoryError])
def test_errors_survive_pickling(kind: type[AppLoadError]):
    copy = pickle.loads(pickle.dumps(kind("mod:app", "what went wrong")))
    assert type(copy) is kind
    assert (copy.spec, copy.message, str(copy)) == ("mod:app", "what went wrong", "what went wrong")


def _load_in_child(spec: str, directory: str) -> tuple[Optional[bytes], Optional[AppLoadError]]:
    try:
        return _body(load_application(spec, working_directory=directory)), None
    except AppLoadError as error:
        return None, error


def test_a_spawned_child_process_loads_from_the_spec(app_dir: Path):
    # How worker processes will load the application: only the spec crosses over.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        loaded = pool.submit(_load_in_child, "importer_app:app", str(app_dir)).result(timeout=30)
        failed = pool.submit(_load_in_child, "importer_app:nope", str(app_dir)).result(timeout=30)
    assert loaded == (b"loaded", None)
    assert failed[0] is None and isinstance(failed[1], AppAttributeError)
    assert failed[1].message == "module 'importer_app' has no attribute 'nope'"
