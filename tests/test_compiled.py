"""The compiled build: the hot modules compiled with mypyc pass the same gates as pure Python.

``setup.py`` compiles ``COMPILED_MODULES`` with mypyc when ``WAITRESS_LIKE_COMPILE=1``
(the same source; pure Python is the default and the fallback). This test builds those
modules in a copy of the package (cached under the test cache by a hash of the source),
then runs :data:`GATES` in a child pytest whose ``waitress_like`` is that copy, and the
child's ``conftest`` refuses to start unless every compiled module came from the build
(:func:`loaded_from_build`). Children the gates start themselves (servers, waitress's
suite) find the copy first through ``$WAITRESS_LIKE_UNDER_TEST``
(:func:`tests.processes.package_paths`).

It skips, saying why, where mypyc or a C compiler is missing.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sdists import cache_root

REPO_ROOT = Path(__file__).resolve().parents[1]

# The conformance gates run against the build: the parser and writer (whole, piecewise,
# hypothesis, corpora), the channel on a fake loop, the server over real sockets with
# bad and hostile input, waitress's own suite, ASGI and real frameworks.
GATES = [
    "tests/protocol",
    "tests/test_channel.py",
    "tests/functional/test_core_http.py",
    "tests/functional/test_bad_requests.py",
    "tests/functional/test_hostile_clients.py",
    "tests/functional/test_corpus_server.py",
    "tests/functional/test_wsgi_gateway.py",
    "tests/functional/test_request_line_edges.py",
    "tests/waitress_suite",
    "tests/asgi",
    "tests/frameworks",
]
BUILD_TIMEOUT_SECONDS = 600
GATES_TIMEOUT_SECONDS = 900


def compiled_modules() -> list[str]:
    """``COMPILED_MODULES`` as setup.py lists them (paths relative to the checkout)."""
    tree = ast.parse((REPO_ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "COMPILED_MODULES" for target in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no COMPILED_MODULES")


def module_name(path: str) -> str:
    return path[: -len(".py")].replace("/", ".")


def loaded_from_build(build: Path) -> None:
    """Raise unless each compiled module imports as an extension from ``build``."""
    for path in compiled_modules():
        module = importlib.import_module(module_name(path))
        location = Path(module.__file__ or "")
        if not (
            location.is_relative_to(build)
            and location.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
        ):
            raise RuntimeError(f"{module.__name__} was imported from {location}, not compiled from {build}")


def _source_hash() -> str:
    digest = hashlib.sha256()
    import mypy.version

    digest.update(mypy.version.__version__.encode())
    for path in sorted((REPO_ROOT / "waitress_like").rglob("*.py")):
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    digest.update(repr(compiled_modules()).encode())
    return digest.hexdigest()[:16]


def build() -> Path:
    """A copy of the package with :func:`compiled_modules` compiled in place (cached)."""
    pytest.importorskip("mypyc", reason="mypyc (the mypy package) is not installed")
    if shutil.which(os.environ.get("CC", "cc")) is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler to build the mypyc extensions with")
    target = cache_root() / f"compiled-{_source_hash()}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(
        REPO_ROOT / "waitress_like", target / "waitress_like", ignore=shutil.ignore_patterns("*.so")
    )
    completed = subprocess.run(
        [sys.executable, "-m", "mypyc", *compiled_modules()],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0:
        raise AssertionError(f"mypyc failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    shutil.rmtree(target / "build", ignore_errors=True)
    (target / ".complete").write_text("")
    return target


@pytest.mark.timeout(BUILD_TIMEOUT_SECONDS + GATES_TIMEOUT_SECONDS)
def test_the_compiled_build_passes_the_conformance_gates() -> None:
    if os.environ.get("WAITRESS_LIKE_UNDER_TEST"):
        pytest.skip("already running against the compiled build")
    target = build()
    environment = dict(os.environ)
    environment.pop("PYTEST_ADDOPTS", None)
    environment["WAITRESS_LIKE_UNDER_TEST"] = str(target)
    # The child's working directory (first on its path) is the build; --import-mode=append
    # puts this checkout (for the tests package) after it.
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--import-mode=append",
            "--rootdir",
            str(REPO_ROOT),
            "-c",
            str(REPO_ROOT / "pyproject.toml"),
            *(str(REPO_ROOT / gate) for gate in GATES),
        ],  # fmt: skip
        cwd=target,
        env=environment,
        capture_output=True,
        text=True,
        timeout=GATES_TIMEOUT_SECONDS,
    )
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-3000:]
    assert " passed" in completed.stdout and " failed" not in completed.stdout, completed.stdout[-3000:]
