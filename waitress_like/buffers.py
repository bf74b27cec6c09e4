"""Byte buffers that spill to temporary files past a size, for request bodies and responses.

* :class:`RequestBody` collects a request body on the loop thread and becomes the app's
  ``wsgi.input``: memory up to ``inbuf_overflow`` bytes, an anonymous temp file beyond.
* :class:`OutputPipe` carries one response from the worker thread that produces it to the
  loop thread that sends it: memory up to ``outbuf_overflow`` pending bytes, a temp file
  beyond, and the producer waits while more than ``outbuf_high_watermark`` bytes are pending.

Temp files come from :func:`tempfile.TemporaryFile`, which has no name on POSIX, so nothing
is left on disk even if the process dies; every path that ends a buffer closes its file.
"""

from __future__ import annotations

import io
import os
import socket
import tempfile
import threading
from collections import deque
from typing import IO, Any, Callable, Protocol, Sequence, Union, cast

__all__ = ["RequestBody", "OutputPipe", "FileRange", "ClientDisconnected", "Transport"]

_SEND_BLOCK_BYTES = 256 * 1024
_HAS_SENDFILE = hasattr(os, "sendfile")
_HAS_PREAD = hasattr(os, "pread")
# Gather writes send a response head, chunk framing and body pieces without joining them
# into a new buffer first. Windows sockets have no sendmsg; there small pieces are joined.
_HAS_SENDMSG = hasattr(socket.socket, "sendmsg")
_MAX_GATHER_ITEMS = 64
# Parts smaller than this in total are joined by the producer: one small item is cheaper
# to queue and send than several tiny ones.
_JOIN_BELOW_BYTES = 16 * 1024


class Transport(Protocol):
    """What :meth:`OutputPipe.send_to` writes to: a non-blocking socket, or an object
    with the same ``send``/``sendmsg`` that raises ``BlockingIOError`` when it cannot take
    more (:class:`~waitress_like.tlsio.TLSStream`). Loop thread only."""

    def send(self, data: Any, /) -> int: ...

    def sendmsg(self, buffers: Any, /) -> int: ...

    def fileno(self) -> int: ...


def _is_socket(transport: Transport) -> bool:
    """True for a plain socket, whose kernel can send a file and pace it. An encrypting
    transport (:class:`~waitress_like.tlsio.TLSStream`) only takes bytes through ``send``."""
    return type(transport) is socket.socket


def _read_at(fd: int, offset: int, size: int) -> bytes:
    if _HAS_PREAD:
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows; the pipe's own duplicate descriptor
    return os.read(fd, size)


# Large files are paced: while one is sent, the kernel holds at most this many of its
# bytes not yet transmitted (TCP_NOTSENT_LOWAT; Linux and macOS). Unpaced, one sendfile
# call fills the whole send buffer (up to 4 MiB), and the kernel then transmits it piece by
# piece as the reader's ACKs open the window a few KiB at a time; over loopback that work
# runs on the reader's CPU. Paced, the bytes leave from our own sendfile calls. Measured
# over loopback against wrk, which reads 8 KiB at a time, a 10 MiB file went from about
# 125 to 260 requests/s, and the CPU time of server and reader together fell from 1.0 s
# to 0.7 s per GB. The price is more wake-ups of the loop: one per 32-96 KiB sent instead
# of one per MiB or so.
_TCP_NOTSENT_LOWAT: int | None = getattr(socket, "TCP_NOTSENT_LOWAT", None)
_PACED_UNSENT_BYTES = 32 * 1024
# A smaller file fits the send buffer in one or two calls; pacing it would only add syscalls.
_PACE_FILES_FROM_BYTES = 1024 * 1024


def _set_unsent_limit(sock: Transport, limit_bytes: int) -> bool:
    """Set TCP_NOTSENT_LOWAT (0: the system default). False where it is not available,
    and on a TLS stream (the kernel would count records, not what the pipe tracks)."""
    if _TCP_NOTSENT_LOWAT is None or not _is_socket(sock):
        return False
    try:
        cast(socket.socket, sock).setsockopt(socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, limit_bytes)
    except OSError:
        # A Unix socket, or a platform that defines the name but not the option.
        return False
    return True


class ClientDisconnected(OSError):
    """Raised in the worker when it writes a response the client will never receive."""


class RequestBody:
    """A request body: written by the loop thread, then read by one worker as wsgi.input.

    The loop thread calls :meth:`append` while the body arrives and :meth:`finish` once it
    is complete; after that only the worker running the request touches it (through the
    file object :meth:`finish` returns). :meth:`close` may be called from either side once
    the other is done with it.
    """

    __slots__ = ("_overflow_bytes", "_memory", "_file", "length")

    def __init__(self, overflow_bytes: int) -> None:
        self._overflow_bytes = overflow_bytes
        self._memory = bytearray()
        self._file: IO[bytes] | None = None
        self.length = 0

    def append(self, data: bytes) -> None:
        """Loop thread. Add decoded body bytes, spilling to a temp file past the limit."""
        self.length += len(data)
        if self._file is not None:
            self._file.write(data)
            return
        self._memory += data
        if len(self._memory) > self._overflow_bytes:
            self._file = tempfile.TemporaryFile()
            self._file.write(self._memory)
            self._memory = bytearray()

    def finish(self) -> IO[bytes]:
        """Loop thread, once. Return a readable file positioned at the body's start."""
        if self._file is not None:
            self._file.flush()
            self._file.seek(0)
            return self._file
        return io.BytesIO(self._memory)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._memory = bytearray()


class FileRange:
    """``count`` bytes of an open file from ``offset``: sent with sendfile where possible.

    The pipe owns ``fd`` (a duplicate of the application's file descriptor) and closes it,
    so the application may close its own file object as soon as it has handed this over.
    """

    __slots__ = ("fd", "offset", "remaining", "paced")

    def __init__(self, fd: int, offset: int, count: int) -> None:
        self.fd = fd
        self.offset = offset
        self.remaining = count
        # True while this range holds the socket's unsent-bytes limit (see _set_unsent_limit).
        self.paced = False

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _SpillFile:
    """Pending output on disk: the producer appends at ``write_offset``, the loop reads at
    ``read_offset``. Both under the pipe's lock."""

    __slots__ = ("file", "read_offset", "write_offset")

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile(buffering=0)
        self.read_offset = 0
        self.write_offset = 0

    def write(self, data: bytes) -> None:
        self.file.seek(self.write_offset)
        self.file.write(data)
        self.write_offset += len(data)

    def read(self, size: int) -> bytes:
        self.file.seek(self.read_offset)
        return self.file.read(min(size, self.write_offset - self.read_offset))

    def close(self) -> None:
        self.file.close()


_Item = Union[bytes, memoryview, FileRange, _SpillFile]


class OutputPipe:
    """One response on its way from a worker thread to the loop thread.

    Producer side (the worker running the request): :meth:`write`, :meth:`write_file`,
    :meth:`finish`. :meth:`write` blocks while more than ``high_watermark_bytes`` are
    pending, and raises :class:`ClientDisconnected` once the pipe is aborted.

    Consumer side (the loop thread): :meth:`send_to` moves bytes to the connection's
    transport (a socket, or a TLS stream with the same ``send``/``sendmsg``),
    :meth:`abort` discards everything when the connection dies. ``notify`` is called by
    the producer, outside the lock, whenever new output needs the loop's attention; it
    must be thread-safe (the channel passes a ``call_soon_threadsafe`` wrapper).

    The hand-off cannot lose a wake-up: a write or finish notifies unless a notification
    is already outstanding, and only :meth:`send_to` (under the lock) marks it consumed.
    So the consumer must look at the pipe through :meth:`send_to` every time it is
    notified (not by peeking at ``pending_bytes`` or ``finished``): then after every
    change the producer makes, either it notifies or a ``send_to`` is still to come.
    """

    # One pipe per response: slots make it cheaper to build.
    __slots__ = (
        "_overflow_bytes",
        "_high_watermark_bytes",
        "_notify",
        "_lock",
        "_drained",
        "_items",
        "_memory_bytes",
        "pending_bytes",
        "_notify_pending",
        "finished",
        "close_connection",
        "aborted",
        "sent_bytes",
        "last_response",
    )

    def __init__(
        self,
        overflow_bytes: int,
        high_watermark_bytes: int,
        notify: Callable[[], None],
    ) -> None:
        self._overflow_bytes = overflow_bytes
        self._high_watermark_bytes = high_watermark_bytes
        self._notify = notify
        self._lock = threading.Lock()
        # Created only when a producer first has to wait: most responses never do, and a
        # Condition per request is a measurable cost on the hot path.
        self._drained: threading.Condition | None = None
        self._items: deque[_Item] = deque()
        self._memory_bytes = 0
        self.pending_bytes = 0
        self._notify_pending = False
        self.finished = False
        # The verdict on the connection after this response, given with the producer's
        # last write (the gateway gives its response writer's): the channel closes when
        # True. The consumer sets it in one case: a file found shorter than promised.
        self.close_connection = False
        self.aborted = False
        self.sent_bytes = 0
        # Set by the loop (before the producer starts, or when the server drains), read by
        # the producer when it writes the head: the connection closes after this response,
        # so the head says "Connection: close". A head already out cannot say it; the
        # channel closes after the response all the same.
        self.last_response = False

    # -- producer (worker thread) --------------------------------------------------------

    def write(self, data: bytes, finish: bool = False, close_connection: bool = False) -> None:
        """Queue ``data``; with ``finish`` it is the response's last write."""
        self.write_parts((data,) if data else (), finish, close_connection)

    def write_parts(
        self, parts: Sequence[bytes], finish: bool = False, close_connection: bool = False
    ) -> None:
        """Queue ``parts`` in order (sent without being joined); see :meth:`write`.

        The response's last write never spills: its bytes are already in memory, held by
        the application, so copying them to disk would only cost time.
        """
        if len(parts) > 1 and sum(map(len, parts)) < _JOIN_BELOW_BYTES:
            parts = (b"".join(parts),)
        with self._lock:
            if self.aborted:
                raise ClientDisconnected("the client has gone away")
            appended = False
            for part in parts:
                if part:
                    self._append_locked(part, may_spill=not finish)
                    appended = True
            if finish:
                self.finished = True
                self.close_connection = close_connection
            elif not appended:
                # Nothing for the consumer to do (a HEAD body, a piece cut to nothing past
                # Content-Length): no wake-up, and pending_bytes cannot have grown.
                return
            notify = not self._notify_pending
            self._notify_pending = True
            if not finish:
                while self.pending_bytes > self._high_watermark_bytes and not self.aborted:
                    if notify:
                        # Wake the consumer before sleeping, or nobody drains the pipe.
                        self._lock.release()
                        try:
                            self._notify()
                        finally:
                            self._lock.acquire()
                        notify = False
                        # The loop may have drained the pipe while the lock was released:
                        # look again before sleeping, or that wake-up is lost.
                        continue
                    if self._drained is None:
                        self._drained = threading.Condition(self._lock)
                    self._drained.wait()
                if self.aborted:
                    raise ClientDisconnected("the client has gone away")
        if notify:
            self._notify()

    def write_file(self, fd: int, offset: int, count: int) -> None:
        """Queue ``count`` bytes of the file behind ``fd``; the pipe closes ``fd``."""
        with self._lock:
            if self.aborted:
                os.close(fd)
                raise ClientDisconnected("the client has gone away")
            self._items.append(FileRange(fd, offset, count))
            self.pending_bytes += count
            notify = not self._notify_pending
            self._notify_pending = True
        if notify:
            self._notify()

    def finish(self, close_connection: bool = False) -> None:
        """Mark the response complete. Never raises, even after :meth:`abort`."""
        with self._lock:
            self.finished = True
            self.close_connection = close_connection
            notify = not self._notify_pending
            self._notify_pending = True
        if notify:
            self._notify()

    def _append_locked(self, data: bytes, may_spill: bool) -> None:
        size = len(data)
        self.pending_bytes += size
        tail = self._items[-1] if self._items else None
        if isinstance(tail, _SpillFile):
            tail.write(data)
        elif may_spill and self._memory_bytes + size > self._overflow_bytes:
            spill = _SpillFile()
            spill.write(data)
            self._items.append(spill)
        else:
            self._memory_bytes += size
            self._items.append(data)

    # -- consumer (loop thread) ------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once the response is complete and every byte of it has been sent."""
        return self.finished and not self._items

    def send_to(self, sock: Transport) -> bool:
        """Send as much as the transport takes. True if all that is queued now was sent.

        ``sock`` is a non-blocking socket, or an object with its ``send``/``sendmsg``
        that raises ``BlockingIOError`` when full (a TLS stream: files are then read and
        sent through it, never with ``os.sendfile``). Raises the transport's OSError
        (other than would-block) so the channel can close.
        """
        with self._lock:
            self._notify_pending = False
            items = self._items
            try:
                while items:
                    item = items[0]
                    if isinstance(item, (bytes, memoryview)):
                        if not self._send_memory_locked(sock):
                            return False
                    elif isinstance(item, FileRange):
                        if not self._send_file_range_locked(sock, item):
                            return False
                    elif not self._send_spill_locked(sock, item):
                        return False
                return True
            finally:
                if self._drained is not None and self.pending_bytes <= self._high_watermark_bytes:
                    self._drained.notify_all()

    def _consumed_locked(self, size: int) -> None:
        self.pending_bytes -= size
        self.sent_bytes += size

    def _send_memory_locked(self, sock: Transport) -> bool:
        """Send the leading in-memory items; True if all of them went out."""
        items = self._items
        if len(items) > 1 and isinstance(items[1], (bytes, memoryview)):
            return self._send_gathered_locked(sock)
        data = items[0]
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            return False
        self._consumed_locked(sent)
        self._memory_bytes -= sent
        if sent == len(data):  # type: ignore[arg-type]
            items.popleft()
            return True
        items[0] = memoryview(data)[sent:]  # type: ignore[arg-type]
        return False

    def _send_gathered_locked(self, sock: Transport) -> bool:
        """Several leading in-memory items: one sendmsg (or, without it, one joined send)."""
        items = self._items
        batch: list[bytes | memoryview] = []
        batch_bytes = 0
        for item in items:
            if not isinstance(item, (bytes, memoryview)) or len(batch) == _MAX_GATHER_ITEMS:
                break
            if not _HAS_SENDMSG and batch and batch_bytes + len(item) > _SEND_BLOCK_BYTES:
                break
            batch.append(item)
            batch_bytes += len(item)
        try:
            if _HAS_SENDMSG:
                sent = sock.sendmsg(batch)
            else:
                sent = sock.send(b"".join(batch))
        except (BlockingIOError, InterruptedError):
            return False
        self._consumed_locked(sent)
        self._memory_bytes -= sent
        remaining = sent
        while remaining:
            first = items[0]
            size = len(first)  # type: ignore[arg-type]
            if remaining < size:
                items[0] = memoryview(first)[remaining:]  # type: ignore[arg-type]
                return False
            items.popleft()
            remaining -= size
        return sent == batch_bytes

    def _send_file_range_locked(self, sock: Transport, item: FileRange) -> bool:
        if not item.paced and item.remaining >= _PACE_FILES_FROM_BYTES:
            item.paced = _set_unsent_limit(sock, _PACED_UNSENT_BYTES)
        while item.remaining > 0:
            try:
                sent = self._send_file_block(sock, item)
            except (BlockingIOError, InterruptedError):
                return False
            if sent == 0:
                # The file is shorter than promised: stop here; the channel sees the
                # response was cut (the app's Content-Length was wrong) and closes.
                self.close_connection = True
                self.pending_bytes -= item.remaining
                item.remaining = 0
                break
            item.offset += sent
            item.remaining -= sent
            self._consumed_locked(sent)
        if item.paced:
            # Back to the system default for whatever this connection sends next.
            _set_unsent_limit(sock, 0)
        item.close()
        self._items.popleft()
        return True

    @staticmethod
    def _send_file_block(sock: Transport, item: FileRange) -> int:
        count = min(item.remaining, 1 << 30)
        if _HAS_SENDFILE and _is_socket(sock):
            try:
                return os.sendfile(sock.fileno(), item.fd, item.offset, count)
            except OSError as error:
                if isinstance(error, (BlockingIOError, InterruptedError)):
                    raise
                # Some descriptors (pipes, special files) refuse sendfile: read instead.
        block = _read_at(item.fd, item.offset, min(count, _SEND_BLOCK_BYTES))
        if not block:
            return 0
        # A partial send is fine: the next call re-reads from the new offset. A TLS
        # stream refuses (BlockingIOError) while its records wait, so no more than one
        # block of records is held beyond what the client takes: the same back-pressure.
        return sock.send(block)

    def _send_spill_locked(self, sock: Transport, spill: _SpillFile) -> bool:
        while spill.read_offset < spill.write_offset:
            block = spill.read(_SEND_BLOCK_BYTES)
            try:
                sent = sock.send(block)
            except (BlockingIOError, InterruptedError):
                return False
            spill.read_offset += sent
            self._consumed_locked(sent)
            if sent < len(block):
                return False
        # Drained: drop it, so later writes go back to memory until the next overflow.
        spill.close()
        self._items.popleft()
        self._memory_bytes = sum(len(i) for i in self._items if isinstance(i, (bytes, memoryview)))
        return True

    def abort(self) -> None:
        """Loop thread: the client is gone. Drop pending output, wake a waiting producer."""
        with self._lock:
            self.aborted = True
            self._release_items_locked()
            if self._drained is not None:
                self._drained.notify_all()

    def _release_items_locked(self) -> None:
        for item in self._items:
            if isinstance(item, (FileRange, _SpillFile)):
                item.close()
        self._items.clear()
        self._memory_bytes = 0
        self.pending_bytes = 0
