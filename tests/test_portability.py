"""Nothing on waitress_like's import path needs a POSIX-only facility, so it runs on Windows.

A child process blocks the POSIX-only modules (a ``None`` entry in ``sys.modules`` makes
their import fail) and removes ``os.fork``, then imports every module of the package.
"""

from __future__ import annotations

import sys

from tests.processes import run_command

POSIX_ONLY_MODULES = ["fcntl", "pwd", "grp", "resource", "termios", "pty", "tty", "syslog", "posix_ipc"]

IMPORT_EVERYTHING = """
import os, pkgutil, sys
for name in {blocked!r}:
    sys.modules[name] = None
for name in ("fork", "forkpty", "setsid", "getuid", "geteuid"):
    if hasattr(os, name):
        delattr(os, name)
import waitress_like
imported = []
for module in pkgutil.walk_packages(waitress_like.__path__, "waitress_like."):
    if module.name.endswith("__main__"):
        continue  # running it would start the command
    __import__(module.name)
    imported.append(module.name)
print(" ".join(sorted(imported)))
"""


def test_every_module_imports_without_posix_only_facilities():
    code = IMPORT_EVERYTHING.format(blocked=POSIX_ONLY_MODULES)
    result = run_command([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    imported = set(result.stdout.split())
    for expected in (
        "waitress_like.cli",
        "waitress_like.paste",
        "waitress_like.winservice",
        "waitress_like.listeners",
    ):
        assert expected in imported
