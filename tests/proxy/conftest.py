"""The ``nginx`` fixture: a real nginx in front of the server under test."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import pytest

from .nginx import Nginx, nginx_binary, stream_module_line


@pytest.fixture(scope="session")
def nginx_setup() -> tuple[str, Optional[str]]:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx-light)")
    return binary, stream_module_line(binary)


@pytest.fixture
def nginx(nginx_setup: tuple[str, Optional[str]], tmp_path: Path) -> Iterator[Nginx]:
    """An nginx not yet started: call ``start(http=..., stream=..., ports=...)``."""
    binary, stream_line = nginx_setup
    directory = tmp_path / "nginx"
    directory.mkdir()
    proxy = Nginx(binary, directory, stream_line)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def nginx_stream(nginx: Nginx) -> Nginx:
    """The same, for tests that need the stream module (PROXY protocol)."""
    if nginx.stream_line is None:
        pytest.skip("nginx has no stream module (.ci/run installs libnginx-mod-stream)")
    return nginx
