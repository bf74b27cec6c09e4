"""The drop-in gate: waitress's own functional suite, run against waitress_like.

waitress 3.0.2's ``tests/test_functional.py`` starts a server in a forked process for
each of its 137 tests (over TCP and over a unix socket) and speaks raw HTTP to it. The
gate fetches the pinned source distribution (:mod:`tests.sdists`; it is never copied
into this repository) and runs that file in a child pytest with
:mod:`~tests.waitress_suite.waitress_like_shim` loaded, which starts waitress_like
instead of waitress and changes nothing else but ``ident`` and the ``Host`` field (see
the shim's docstring). A per-test timeout makes a hang cost seconds.

Every test must pass or be named in ``docs/migrating.rst``, section
:data:`SECTION_TITLE`, as a deliberate difference with its reason. The gate fails both
ways: a failing test the page does not name, and a named test that passes now (take it
off the page).

waitress itself is needed only so that the suite can import: its fixture servers
subclass ``waitress.server.TcpWSGIServer`` and it imports ``waitress.compat`` and
``waitress.utilities`` at module level. The child finds those in the sdist's own
``src/`` directory, put first on its path, so they are exactly the version the suite was
written for and nothing is installed; the shim checks that every test class starts
waitress_like's server.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.processes import package_paths
from tests.sdists import WAITRESS, fetch_sdist

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIM_DIRECTORY = Path(__file__).resolve().parent
MIGRATING_PAGE = REPO_ROOT / "docs" / "migrating.rst"
SECTION_TITLE = "waitress's functional suite"

SUITE_FILE = "tests/test_functional.py"
# 68 tests run over TCP and again over a unix socket, plus one over TCP only.
SUITE_TEST_COUNT = 137 if hasattr(socket, "AF_UNIX") else 69
MIN_PASSING = 120 if hasattr(socket, "AF_UNIX") else 60
# The slowest test sleeps 3 s on purpose; anything far past that is a hang.
PER_TEST_TIMEOUT_SECONDS = 6
SUITE_TIMEOUT_SECONDS = 240

# ``ClassName.test_name`` in the page; the class may be a mixin (``EchoTests``) that
# stands for its TCP and unix variants (``TcpEchoTests``, ``UnixEchoTests``).
_DOCUMENTED_TEST = re.compile(r"``([A-Za-z]\w*)\.(test_\w+)``")
_UNDERLINE = re.compile(r"([-=~^\"'`#*+])\1{2,}\Z")
_TRANSPORT_PREFIXES = ("", "Tcp", "Unix")


def documented_differences(page: str) -> list[str]:
    """The ``Class.test`` names listed in the page's :data:`SECTION_TITLE` section."""
    lines = page.splitlines()
    for index in range(len(lines) - 1):
        if lines[index].strip() == SECTION_TITLE and _UNDERLINE.match(lines[index + 1].strip()):
            break
    else:
        raise AssertionError(f"{MIGRATING_PAGE.name} has no section titled {SECTION_TITLE!r}")
    body: list[str] = []
    for position in range(index + 2, len(lines)):
        is_title = (
            position + 1 < len(lines)
            and lines[position].strip()
            and _UNDERLINE.match(lines[position + 1].strip())
        )
        if is_title:
            break
        body.append(lines[position])
    return [f"{cls}.{test}" for cls, test in _DOCUMENTED_TEST.findall("\n".join(body))]


def expand_documented(documented: list[str], collected: set[str]) -> tuple[set[str], list[str]]:
    """Map documented names onto collected test ids; also return names that match none."""
    expected: set[str] = set()
    unknown: list[str] = []
    for name in documented:
        matches = {prefix + name for prefix in _TRANSPORT_PREFIXES} & collected
        if not matches:
            unknown.append(name)
        expected |= matches
    return expected, unknown


def read_outcomes(junit_path: Path) -> dict[str, bool]:
    """``{"TcpEchoTests.test_x": passed}`` from pytest's junit XML (written by our child)."""
    passed: dict[str, bool] = {}
    for case in ElementTree.parse(junit_path).iter("testcase"):
        name = case.get("classname", "").rsplit(".", 1)[-1] + "." + case.get("name", "")
        ok = all(case.find(tag) is None for tag in ("failure", "error", "skipped"))
        # A test can be reported twice (a failure, then an error in teardown): worst wins.
        passed[name] = passed.get(name, True) and ok
    return passed


def run_suite(tree: Path, junit_path: Path) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    environment.pop("PYTEST_ADDOPTS", None)
    inherited = [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p]
    # waitress's src/ first (the version the suite was written for), then the shim, then
    # this checkout (the child's own tests package must stay waitress's, which the child's
    # working directory, first on sys.path, guarantees).
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(tree / "src"), str(SHIM_DIRECTORY), *package_paths(), *inherited]
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        SUITE_FILE,
        "-p",
        "waitress_like_shim",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",  # waitress's setup.cfg asks for pytest-cov
        "-q",
        f"--timeout={PER_TEST_TIMEOUT_SECONDS}",
        f"--junitxml={junit_path}",
    ]
    return subprocess.run(
        command,
        cwd=tree,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT_SECONDS,
    )


@pytest.mark.timeout(SUITE_TIMEOUT_SECONDS + 120)
def test_waitress_functional_suite_passes_but_for_documented_differences(tmp_path: Path) -> None:
    tree = fetch_sdist(WAITRESS)
    junit_path = tmp_path / "waitress-functional.xml"
    result = run_suite(tree, junit_path)
    output = (result.stdout + result.stderr)[-6000:]
    assert junit_path.exists(), f"the suite did not run (exit {result.returncode}):\n{output}"
    outcomes = read_outcomes(junit_path)
    assert len(outcomes) == SUITE_TEST_COUNT, f"ran {len(outcomes)} tests:\n{output}"

    failing = {name for name, ok in outcomes.items() if not ok}
    expected, unknown = expand_documented(documented_differences(MIGRATING_PAGE.read_text()), set(outcomes))
    assert not unknown, f"{MIGRATING_PAGE.name} names tests the suite does not have: {unknown}"
    undocumented = sorted(failing - expected)
    now_passing = sorted(expected - failing)
    assert not undocumented and not now_passing, (
        f"failing but not documented as deliberate differences: {undocumented}\n"
        f"documented but passing now (remove them from {MIGRATING_PAGE.name}): {now_passing}\n"
        f"{output}"
    )
    assert len(outcomes) - len(failing) >= MIN_PASSING


def test_documented_names_are_found_in_their_section() -> None:
    page = (
        "Intro\n=====\n\n``EchoTests.test_elsewhere``\n\n"
        f"{SECTION_TITLE}\n{'-' * len(SECTION_TITLE)}\n\n"
        "``EchoTests.test_one`` and ``TcpFileWrapperTests.test_two``\n    Why.\n\n"
        "Next section\n------------\n\n``EchoTests.test_after``\n"
    )
    assert documented_differences(page) == ["EchoTests.test_one", "TcpFileWrapperTests.test_two"]


def test_a_mixin_name_stands_for_both_transports() -> None:
    collected = {"TcpEchoTests.test_one", "UnixEchoTests.test_one", "TcpEchoTests.test_two", "Sleepy.test_it"}
    expected, unknown = expand_documented(
        ["EchoTests.test_one", "TcpEchoTests.test_two", "Sleepy.test_it", "EchoTests.test_gone"], collected
    )
    assert expected == collected
    assert unknown == ["EchoTests.test_gone"]
