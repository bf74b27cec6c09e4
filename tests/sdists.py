"""Other projects' source distributions, fetched from the package index at test time.

Some gates run data or tests that belong to other projects (gunicorn's request corpus,
waitress's functional suite). Their licences let us run them, not copy them into this
repository, so :func:`fetch_sdist` downloads the pinned source distribution with pip,
checks its SHA-256, unpacks it once into a cache directory and returns the unpacked tree.

The cache is ``$WAITRESS_LIKE_TEST_CACHE`` when set, else ``~/.cache/waitress_like-tests``.
Unpacking goes to a temporary directory that is renamed into place, so two test runs
sharing the cache never see a half-unpacked tree.

A download that fails raises :class:`SdistUnavailable` with pip's output: the gates that
need these files must not pass silently on a machine that cannot reach the index.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import NamedTuple

__all__ = ["Sdist", "SdistUnavailable", "GUNICORN", "WAITRESS", "fetch_sdist", "cache_root"]


class Sdist(NamedTuple):
    """A pinned source distribution: project name, version and the archive's SHA-256."""

    name: str
    version: str
    sha256: str

    @property
    def archive_name(self) -> str:
        return f"{self.name}-{self.version}.tar.gz"


# The request corpus lives in tests/requests/ (MIT licence, LICENSE at the top level).
GUNICORN = Sdist("gunicorn", "27.0.1", "b1514965361c8b7e8107a80aa2a92636878df1ccfac6dd204a676426e04d9e3e")
# The functional suite lives in tests/ (ZPL 2.1, LICENSE.txt at the top level).
WAITRESS = Sdist("waitress", "3.0.2", "682aaaf2af0c44ada4abfb70ded36393f0e307f4ab9456a215ce0020baefc31f")


class SdistUnavailable(RuntimeError):
    """The archive could not be downloaded, or is not the pinned one."""


def cache_root() -> Path:
    configured = os.environ.get("WAITRESS_LIKE_TEST_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "waitress_like-tests"


def fetch_sdist(sdist: Sdist) -> Path:
    """The unpacked top directory of ``sdist`` (``<cache>/<name>-<version>``).

    Downloads and unpacks it on first use; later calls only check that it is there.
    Raises :class:`SdistUnavailable` when pip cannot fetch it or its hash differs.
    """
    root = cache_root()
    target = root / f"{sdist.name}-{sdist.version}"
    if (target / ".complete").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as work:
        archive = _download(sdist, Path(work))
        _check_hash(sdist, archive)
        unpacked = Path(work) / "unpacked"
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(unpacked, filter="data")
            else:  # pragma: no cover - Pythons before the extraction filters
                tar.extractall(unpacked)
        top = unpacked / f"{sdist.name}-{sdist.version}"
        if not top.is_dir():
            raise SdistUnavailable(f"{archive.name} has no top directory {top.name}")
        (top / ".complete").write_text(sdist.sha256 + "\n")
        try:
            top.rename(target)
        except OSError:
            # Another run unpacked it first; theirs is as good as ours.
            if not (target / ".complete").exists():
                shutil.rmtree(target, ignore_errors=True)
                top.rename(target)
    return target


def _download(sdist: Sdist, directory: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--dest",
        str(directory),
        f"{sdist.name}=={sdist.version}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    archive = directory / sdist.archive_name
    if result.returncode != 0 or not archive.exists():
        raise SdistUnavailable(
            f"could not download {sdist.name}=={sdist.version} from the package index "
            f"(pip exited {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return archive


def _check_hash(sdist: Sdist, archive: Path) -> None:
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != sdist.sha256:
        raise SdistUnavailable(f"{archive.name} has SHA-256 {digest}, not the pinned {sdist.sha256}")
