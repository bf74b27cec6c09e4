"""Prepare what the benchmark needs: the peers' virtual environment and wrk.

The peers (requirements-peers.txt) live in ``benchmarks/.venv-peers`` so they never mix
with the project's own environment. A stamp file in the venv records what was installed,
so a second run installs nothing. The repository itself is installed editable once it
has packaging metadata; until then servers.py puts its working tree on PYTHONPATH.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCHMARKS_DIR.parent
VENV_DIR = BENCHMARKS_DIR / ".venv-peers"
REQUIREMENTS = BENCHMARKS_DIR / "requirements-peers.txt"
STAMP = VENV_DIR / "benchmarks-stamp.json"


class SetupFailed(RuntimeError):
    """A tool or package the benchmark needs could not be installed."""


def venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def running_in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV_DIR.resolve()


def _run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    if subprocess.run(command).returncode != 0:
        raise SetupFailed(f"command failed: {' '.join(command)}")


def _read_stamp() -> dict[str, object]:
    try:
        return json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return {}


def _repo_is_packaged() -> bool:
    return any((REPO_DIR / name).exists() for name in ("setup.py", "pyproject.toml"))


def ensure_venv() -> Path:
    """Create or update the peers' venv; returns its interpreter.

    Raises SetupFailed when pip cannot install a pinned peer. A failed editable install
    of the repository only warns: the PYTHONPATH fallback still measures the tree.
    """
    if not venv_python().exists():
        _run([sys.executable, "-m", "venv", str(VENV_DIR)])
    stamp = _read_stamp()
    requirements_hash = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if stamp.get("requirements_sha256") != requirements_hash:
        _run(pip + ["-r", str(REQUIREMENTS)])
        stamp["requirements_sha256"] = requirements_hash
        STAMP.write_text(json.dumps(stamp))
    if _repo_is_packaged() and not stamp.get("repo_editable"):
        _install_repo(pip, stamp)
    return venv_python()


def _install_repo(pip: list[str], stamp: dict[str, object]) -> None:
    """``pip install --editable`` the repository; a failure is one warning line.

    The packaging is being written alongside the server, so it may be broken for a while:
    the attempt is repeated on every run until it succeeds.
    """
    command = pip + ["--editable", str(REPO_DIR)]
    print("+", " ".join(command), flush=True)
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode == 0:
        stamp["repo_editable"] = True
        STAMP.write_text(json.dumps(stamp))
        return
    lines = [line.strip() for line in completed.stderr.splitlines() if "Error" in line]
    reason = lines[-1] if lines else f"pip exited {completed.returncode}"
    print(f"warning: editable install failed ({reason}); waitress_like runs from PYTHONPATH", file=sys.stderr)


def ensure_wrk() -> None:
    """Install Debian's wrk when it is missing (needs root and the apt repositories)."""
    if shutil.which("wrk"):
        return
    if not shutil.which("apt-get"):
        raise SetupFailed("wrk is missing and there is no apt-get to install it")
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "wrk"]):
        print("+", " ".join(command), flush=True)
        if subprocess.run(command, env=environment).returncode != 0:
            raise SetupFailed(f"command failed: {' '.join(command)}")


def reexec_in_venv(script: Path, argv: list[str]) -> None:
    """Replace this process with ``script`` run by the venv's interpreter (does not return)."""
    python = str(venv_python())
    os.execv(python, [python, str(script)] + argv)
