"""OutputPipe over a real loopback TCP connection: sendfile pacing of large files."""

from __future__ import annotations

import os
import socket

import pytest

from waitress_like.buffers import OutputPipe

NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", None)
pytestmark = pytest.mark.skipif(NOTSENT_LOWAT is None, reason="no TCP_NOTSENT_LOWAT here")


@pytest.fixture
def tcp_pair():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server_side, _ = listener.accept()
    server_side.setblocking(False)
    yield server_side, client
    server_side.close()
    client.close()


def unsent_limit(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, NOTSENT_LOWAT)


def send_file_through_pipe(tmp_path, tcp_pair, size_bytes: int) -> set[int]:
    """Send a random file of ``size_bytes`` with the pipe, check it arrives intact, and
    return the unsent limits seen on the socket each time the pipe had to wait for it."""
    server_side, client = tcp_pair
    content = os.urandom(size_bytes)
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    pipe = OutputPipe(overflow_bytes=1 << 20, high_watermark_bytes=1 << 24, notify=lambda: None)
    with open(path, "rb") as file:
        pipe.write_file(os.dup(file.fileno()), 0, size_bytes)
    pipe.finish()
    received = bytearray()
    limits_while_waiting = set()
    while not pipe.send_to(server_side):
        limits_while_waiting.add(unsent_limit(server_side))
        # The send buffer is full, so there is data to read: this recv does not block.
        received += client.recv(1 << 20)
    assert pipe.done
    while len(received) < size_bytes:
        received += client.recv(1 << 20)
    assert received == content
    return limits_while_waiting


def test_large_file_is_paced_and_the_limit_is_reset_after_it(tmp_path, tcp_pair):
    server_side, _ = tcp_pair
    before = unsent_limit(server_side)
    limits = send_file_through_pipe(tmp_path, tcp_pair, 8 * 1024 * 1024)
    assert limits == {32 * 1024}
    assert unsent_limit(server_side) == before


def test_small_file_is_not_paced(tmp_path, tcp_pair):
    server_side, _ = tcp_pair
    before = unsent_limit(server_side)
    limits = send_file_through_pipe(tmp_path, tcp_pair, 512 * 1024)
    assert limits <= {before}
    assert unsent_limit(server_side) == before
