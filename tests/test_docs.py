"""What the documentation tells people to type.

waitress_like is not published on the package index, so every ``pip install`` in the
docs must install it from a source tree (a path), never by name.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted((REPO_ROOT / "docs").glob("*.rst")) + [REPO_ROOT / "README.md"]
PIP_INSTALL = re.compile(r"pip install ([^`\n]+)")
PACKAGE_NAMES = {"waitress_like", "waitress-like"}


def pip_install_arguments(text: str) -> list[str]:
    """The requirement arguments of each ``pip install`` in ``text`` (options left out)."""
    found = []
    for match in PIP_INSTALL.finditer(text):
        # posix=False keeps Windows paths' backslashes; the quotes are stripped by hand.
        for word in shlex.split(match.group(1).split(" && ")[0], posix=False):
            if not word.startswith("-"):
                found.append(word.strip("\"'"))
    return found


def installs_from_the_index(argument: str) -> bool:
    name = argument.split("[", 1)[0]
    return name.lower() in PACKAGE_NAMES


def test_the_reader_finds_names_paths_and_extras() -> None:
    text = 'python -m pip install -q waitress_like[paste] && x\n    pip install "C:\\src\\waitress_like[windows]"'
    assert pip_install_arguments(text) == ["waitress_like[paste]", "C:\\src\\waitress_like[windows]"]
    assert installs_from_the_index("waitress_like[paste]")
    assert not installs_from_the_index("C:\\src\\waitress_like[windows]")
    assert not installs_from_the_index(".[paste]")


def test_no_document_installs_waitress_like_from_the_package_index() -> None:
    offending = {
        f"{path.name}: pip install {argument}"
        for path in DOCUMENTS
        for argument in pip_install_arguments(path.read_text(encoding="utf-8"))
        if installs_from_the_index(argument)
    }
    assert not offending


def test_the_quick_start_installs_from_a_checkout() -> None:
    arguments = pip_install_arguments((REPO_ROOT / "docs" / "quickstart.rst").read_text(encoding="utf-8"))
    assert "." in arguments
