"""The CPU cost of each stage of one request, measured on one thread without hand-offs.

    python benchmarks/stage_costs.py                 # hello, 20,000 requests, one connection
    python benchmarks/stage_costs.py --connections 50  # 50 requests per turn of the loop
    python benchmarks/stage_costs.py --app large_body_pieces --requests 2000

A real waitress_like server is created (not run: its pool never starts) and one real TCP
connection over loopback is accepted into a real channel. Each request then goes
through the code the threads would run, in their order, on this one thread: one turn of
the loop (epoll, the channel reads, parses and submits), the worker's job (the gateway
runs the app and writes the response into the pipe, whose notification queues a call on
the loop and writes the waker), another turn of the loop (epoll, waker drained, the call
sends the response). The client's send and receive are timed apart and left out.

It prints the time per request of this replay (what the server's own code costs with
no context switch, no GIL hand-off and no contention), then the split into stages from
a cProfile run of the same replay, scaled to the unprofiled total. Calls into the
kernel (recv, send, epoll_wait, the waker) are charged to the stage of their caller.
Compare the total with ``cpu_per_request.py``: the difference is what running on
separate threads adds. Run it before and after a change to the hot path.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCHMARKS_DIR.parent

# What each stage covers: (thread, description).
STAGES: dict[str, tuple[str, str]] = {
    "epoll": ("loop", "epoll_wait (syscall) and the loop's turn"),
    "recv": ("loop", "recv (syscall)"),
    "parse": ("loop", "parse: feed, events, body, request object"),
    "submit": ("loop", "hand-off to the pool: pipe, job, queue put"),
    "waker read": ("loop", "waker drained (syscalls)"),
    "calls": ("loop", "queued call run (the hand-off back)"),
    "send python": ("loop", "send: the pipe's Python side"),
    "send": ("loop", "send (syscall)"),
    "state machine": ("loop", "state machine: handle_event, _read, _advance"),
    "bookkeeping": ("loop", "bookkeeping: interest, deadlines, end of request"),
    "job": ("worker", "gateway: set-up and end (run, response objects, clock)"),
    "environ": ("worker", "environ"),
    "app": ("worker", "app and start_response (status and header checks)"),
    "framing": ("worker", "framing: writer head, body, end; send_body"),
    "pipe": ("worker", "pipe write (lock, queue)"),
    "notify": ("worker", "notify: call queue"),
    "waker write": ("worker", "waker write (syscall)"),
}

# (module, class or None, function, stage): wrapped with exclusive-time accounting.
WRAPPED: tuple[tuple[str, str | None, str, str], ...] = (
    ("selectors", "EpollSelector", "select", "epoll"),
    ("waitress_like.channel", "Channel", "handle_event", "state machine"),
    ("waitress_like.channel", "Channel", "_read", "state machine"),
    ("waitress_like.channel", "Channel", "_advance", "state machine"),
    ("waitress_like.channel", "Channel", "_parse", "parse"),
    ("waitress_like.protocol.request", "RequestParser", "feed", "parse"),
    ("waitress_like.channel", "Channel", "_start", "submit"),
    ("waitress_like.loop", "_Waker", "drain", "waker read"),
    ("waitress_like.loop", "EventLoop", "_run_calls", "calls"),
    ("waitress_like.channel", "Channel", "_on_output", "calls"),
    ("waitress_like.channel", "Channel", "_send_active", "send python"),
    ("waitress_like.channel", "Channel", "_update_interest", "bookkeeping"),
    ("waitress_like.channel", "Channel", "_update_deadline", "bookkeeping"),
    ("waitress_like.channel", "Channel", "_end_request", "bookkeeping"),
    ("waitress_like.wsgi", "WSGIGateway", "run", "job"),
    ("waitress_like.wsgi", "WSGIGateway", "build_environ", "environ"),
    ("waitress_like.wsgi", "_Response", "start_response", "app"),
    ("waitress_like.wsgi", "_Response", "send_body", "framing"),
    ("waitress_like.wsgi", "_Response", "finish", "framing"),
    ("waitress_like.buffers", "OutputPipe", "write_parts", "pipe"),
    ("waitress_like.loop", "EventLoop", "call_soon_threadsafe", "notify"),
    ("waitress_like.loop", "_Waker", "wake", "waker write"),
)


class StageClock:
    """Exclusive time per stage: a wrapped call's time, minus that of wrapped calls made
    inside it, is charged to its stage. The cost of the wrappers themselves is measured
    (:meth:`calibrate`) and taken off per call."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = collections.defaultdict(int)
        self.calls: dict[str, int] = collections.defaultdict(int)
        self._stack: list[list[Any]] = []  # [stage, start, time of wrapped calls inside, their count]
        self.inner_calls: dict[str, int] = collections.defaultdict(int)
        self.overhead_ns = 0.0  # per wrapped call, as seen by the enclosing stage
        self.inner_overhead_ns = 0.0  # per wrapped call, inside its own measurement

    def wrap(self, function: Callable[..., Any], stage: str) -> Callable[..., Any]:
        clock, stack = time.perf_counter_ns, self._stack
        totals, calls, inner_calls = self.ns, self.calls, self.inner_calls

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [stage, 0, 0, 0]
            stack.append(frame)
            frame[1] = clock()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = clock() - frame[1]
                stack.pop()
                totals[stage] += elapsed - frame[2]
                calls[stage] += 1
                inner_calls[stage] += frame[3]
                if stack:
                    stack[-1][2] += elapsed
                    stack[-1][3] += 1

        return timed

    def install(self) -> list[tuple[Any, str, Any]]:
        """Wrap every WRAPPED function; returns what to put back."""
        import importlib

        saved = []
        for module_name, class_name, name, stage in WRAPPED:
            owner: Any = importlib.import_module(module_name)
            if class_name is not None:
                owner = getattr(owner, class_name)
            original = owner.__dict__[name]
            saved.append((owner, name, original))
            setattr(owner, name, self.wrap(original, stage))
        return saved

    def calibrate(self) -> None:
        """Time a wrapped no-op inside a wrapped no-op: what one wrapper adds."""

        def nothing() -> None:
            return None

        inner = self.wrap(nothing, "calibrate inner")
        outer = self.wrap(lambda: inner(), "calibrate outer")
        plain_outer = self.wrap(lambda: nothing(), "calibrate plain")
        for _ in range(3):
            self.reset()
            for _ in range(100_000):
                outer()
                plain_outer()
        count = self.calls["calibrate outer"]
        self.inner_overhead_ns = self.ns["calibrate inner"] / count
        self.overhead_ns = (self.ns["calibrate outer"] - self.ns["calibrate plain"]) / count
        self.reset()

    def reset(self) -> None:
        self.ns.clear()
        self.calls.clear()
        self.inner_calls.clear()

    def per_request_us(self, requests: int) -> dict[str, float]:
        """Microseconds per request and stage, wrapper costs taken off."""
        result = {}
        for stage, total in self.ns.items():
            # Each call of this stage cost its own clock reads; each wrapped call made
            # inside it cost this stage the wrapper's outer overhead.
            corrected = total - self.calls[stage] * self.inner_overhead_ns
            corrected -= self.inner_calls[stage] * self.overhead_ns
            result[stage] = max(0.0, corrected) / requests / 1000
        return result

    def nested_calls(self) -> int:
        return sum(self.calls.values())


class _TimedSocket:
    """A socket whose recv, send and sendmsg are charged to their own stages."""

    def __init__(self, sock: socket.socket, clock: StageClock) -> None:
        self._sock = sock
        self.recv = clock.wrap(sock.recv, "recv")
        self.send = clock.wrap(sock.send, "send")
        self.sendmsg = clock.wrap(sock.sendmsg, "send")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class Replay:
    """One server-side connection driven through whole requests on this thread."""

    def __init__(self, app_name: str, connections: int) -> None:
        from apps import WSGI_APPS

        from waitress_like.server import ServerState, create_server

        self.server = create_server(WSGI_APPS[app_name], host="127.0.0.1", port=0, threads=4)
        # As if run() had started: RUNNING (else every response is the connection's last)
        # with four idle workers (else each submit looks like a queue building up).
        self.server.state = ServerState.RUNNING
        self.server.pool._idle = 4
        listener = self.server.listeners[0]
        self.clients = []
        for _ in range(connections):
            client = socket.create_connection(("127.0.0.1", self.server.effective_port))
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.clients.append(client)
            sock, peer = listener.socket.accept()
            self.server._open_channel(sock, peer, listener)
        self.loop = self.server.loop
        self.jobs = self.server.pool._jobs
        port = self.server.effective_port
        self.request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        self.response_bytes = 0
        self.client_ns = 0  # time spent in the clients' own calls, left out

    def socket_clock(self, clock: StageClock) -> None:
        """Time the channels' recv and send calls: their sockets behind a timing proxy."""
        for channel in self.server.channels:
            channel.socket = channel.transport = _TimedSocket(channel.socket, clock)

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for channel in list(self.server.channels):
            channel.close()
        self.server.loop.close()
        for listener in self.server.listeners:
            listener.close()

    def _loop_turn(self) -> None:
        """One iteration of EventLoop.run's body, without blocking."""
        loop = self.loop
        for key, mask in loop._selector.select(0):
            handler = key.data
            if handler is None:
                loop._waker.drain()
            else:
                handler.handle_event(mask)
        loop._run_calls()
        if loop._end_of_turn:
            loop._run_end_of_turn()  # the turn's requests go to the pool together

    def one_round(self) -> None:
        """One request on every connection, served as the threads would, in their order."""
        started = time.perf_counter_ns()
        for client in self.clients:
            client.sendall(self.request)
        self.client_ns += time.perf_counter_ns() - started
        self._loop_turn()  # reads, parses, submits
        while not self.jobs.empty():
            self.jobs.get_nowait()()  # the workers: app, pipe, wake the loop
        self._loop_turn()  # drains the waker, sends
        for client in self.clients:
            self._receive(client)

    def _receive(self, client: socket.socket) -> None:
        """Read one whole response; when the server has more to send, give it a turn."""
        expected = self.response_bytes
        received = 0
        while received < expected or not expected:
            started = time.perf_counter_ns()
            try:
                data = client.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                data = b""
            self.client_ns += time.perf_counter_ns() - started
            if not expected:  # the first response: learn its size
                head_end = data.index(b"\r\n\r\n") + 4
                fields = data[:head_end].lower().split(b"\r\n")
                length = next(line.split(b":")[1] for line in fields if line.startswith(b"content-length"))
                expected = self.response_bytes = head_end + int(length)
            if data:
                received += len(data)
            else:
                self._loop_turn()


def _timed(replay: Replay, rounds: int) -> float:
    """Server-side microseconds per request over ``rounds`` rounds."""
    replay.client_ns = 0
    started = time.perf_counter_ns()
    for _ in range(rounds):
        replay.one_round()
    return (time.perf_counter_ns() - started - replay.client_ns) / (rounds * len(replay.clients)) / 1000


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="hello")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=1, help="requests served per turn of the loop")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds; the fastest is reported")
    parser.add_argument("--cpu", type=int, default=0, help="CPU to run on (default 0, the server's)")
    parser.add_argument("--tree", type=Path, default=REPO_DIR, help="checkout whose waitress_like to run")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(args.tree), str(BENCHMARKS_DIR)]
    os.sched_setaffinity(0, {args.cpu})
    replay = Replay(args.app, args.connections)
    turns = max(1, args.requests // args.connections)
    requests = turns * args.connections
    try:
        replay.one_round()  # learns the response size
        _timed(replay, turns // 10 + 1)  # warm up
        totals = [_timed(replay, turns) for _ in range(args.rounds)]
        clock = StageClock()
        clock.calibrate()
        saved = clock.install()
        replay.socket_clock(clock)
        try:
            _timed(replay, turns // 10 + 1)
            clock.reset()
            wrapped_total = _timed(replay, turns)
        finally:
            for owner, name, original in saved:
                setattr(owner, name, original)
    finally:
        replay.close()
    total = min(totals)
    stages = clock.per_request_us(requests)
    # The wrappers disturb what they measure (caches, more calls); share the unwrapped
    # total out in proportion to what they measured.
    scale = total / sum(stages.values())
    print(
        f"{args.app}, {args.connections} connection(s): {total:.1f} us per request on one thread, "
        f"CPU {args.cpu} (fastest of {args.rounds} rounds of {requests}: "
        f"{', '.join(f'{value:.1f}' for value in totals)}); load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"with stage clocks: {wrapped_total:.1f} us, {clock.nested_calls() / requests:.0f} wrapped calls per "
        f"request; their own cost taken off ({clock.inner_overhead_ns:.0f} ns inside, {clock.overhead_ns:.0f} ns "
        f"outside each), the stages sum to {sum(stages.values()):.1f} us, scaled by {scale:.2f} below"
    )
    for thread in ("loop", "worker"):
        rows = [(stage, value * scale) for stage, value in stages.items() if STAGES[stage][0] == thread]
        print(f"\n{thread} thread: {sum(value for _, value in rows):.1f} us")
        for stage, value in sorted(rows, key=lambda row: -row[1]):
            print(f"  {STAGES[stage][1]:<58} {value:5.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
