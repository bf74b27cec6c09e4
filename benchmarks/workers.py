"""Worker processes: hello world on every core, waitress_like with 1 and 2 workers, gunicorn, granian.

    python benchmarks/workers.py                    # 3 repetitions of 10 s each
    python benchmarks/workers.py --duration 3 --repeat 1   # a sanity check

Unlike run.py, nothing is pinned: the servers may use every core and wrk (``-t2``)
shares them, so on a 2-core machine the ceiling of 2 workers over 1 is below 2x. The
contenders take turns within each repetition (A B C D, A B C D, ...) and the median of
the repetitions is reported, with the ratio to waitress_like with one worker, and the
CPU time the server's processes (supervisor and workers) spent per request, read from
``/proc`` (Linux): if a worker costs as much per request as a single process does, the
per-core figures hold per worker. Every server gets ``--threads`` threads per worker
and the hello app of apps.py.

Sets up benchmarks/.venv-peers and wrk as run.py does (granian is in
requirements-peers.txt), unless --no-setup. Writes results/workers.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import bootstrap

BENCHMARKS_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCHMARKS_DIR / "results"
BASELINE = "waitress_like -w 1"
TARGET_RATIO = 1.4  # 2 workers over 1, with wrk on the same two cores


def _waitress_like(workers: int) -> Callable[[int, int], list[str]]:
    def command(port: int, threads: int) -> list[str]:
        return [sys.executable, "-m", "waitress_like", f"--listen=127.0.0.1:{port}", f"--threads={threads}",
                f"--workers={workers}", "--backlog=1024", "apps:hello_app"]  # fmt: skip

    return command


def _gunicorn(port: int, threads: int) -> list[str]:
    return [str(Path(sys.executable).parent / "gunicorn"), "--worker-class", "gthread", "--workers", "2",
            "--threads", str(threads), "--bind", f"127.0.0.1:{port}", "--backlog", "1024",
            "--log-level", "warning", "apps:hello_app"]  # fmt: skip


def _granian(port: int, threads: int) -> list[str]:
    return [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "2", "--blocking-threads", str(threads), "--no-ws",
            "--log-level", "warning", "apps:hello_app"]  # fmt: skip


CONTENDERS: dict[str, Callable[[int, int], list[str]]] = {
    BASELINE: _waitress_like(1),
    "waitress_like -w 2": _waitress_like(2),
    "gunicorn -w 2 -k gthread": _gunicorn,
    "granian --workers 2": _granian,
}


def _group_cpu_seconds(group: int) -> float:
    """CPU time (user and system) of every live process in process group ``group``;
    NaN where there is no Linux ``/proc``."""
    if not os.path.isdir("/proc/self"):
        return float("nan")
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            # The fields after the command name's ")": state, ppid, pgrp, ... utime, stime.
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _running(name: str, command: list[str], port: int, log_dir: Path) -> Iterator[int]:
    """Start ``command`` in its own process group; yield the group's id once GET /
    answers; stop it."""
    from servers import (
        READY_TIMEOUT_SECONDS,
        ServerFailed,
        _check_first_response,
        _stop,
        _wait_until_listening,
    )

    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(BENCHMARKS_DIR.parent), environment.get("PYTHONPATH")) if p
    )
    environment.pop("WEB_CONCURRENCY", None)
    log_path = log_dir / f"{name.replace(' ', '_')}-{port}.log"
    with open(log_path, "wb") as log_file:
        # A process group of its own (to stop it whole), but not a session: with the
        # kernel's scheduler autogroups, a new session is a new group, and the CPU is
        # then shared half and half between the server and wrk, however many workers
        # the server runs (measured: 2 workers 33k req/s in a session of their own,
        # 55k in wrk's). Unpinned runs must let every process compete as equals.
        process = subprocess.Popen(command, cwd=BENCHMARKS_DIR, env=environment, stdin=subprocess.DEVNULL,
                                   stdout=log_file, stderr=subprocess.STDOUT, process_group=0)  # fmt: skip
    try:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        try:
            _wait_until_listening(process, port, deadline)
            _check_first_response(port, deadline)
            # Every worker up before wrk connects: its connections are kept for the whole
            # run, so a worker still starting would get none. waitress_like says when each
            # is ready; for the others a pause has to do.
            if name.startswith("waitress_like"):
                _wait_for_ready_workers(log_path, int(name.rsplit(" ", 1)[1]), deadline)
            else:
                time.sleep(1.0)
        except ServerFailed as error:
            raise ServerFailed(
                f"{name}: {error}; log: {log_path.read_text(errors='replace')[-300:]}"
            ) from None
        yield process.pid  # process_group=0: the group's id is the leader's pid
    finally:
        _stop(process)


def _wait_for_ready_workers(log_path: Path, workers: int, deadline: float) -> None:
    """Wait until the supervisor's log says ``workers`` workers are ready (one worker: no
    supervisor, so ready once it answers)."""
    if workers == 1:
        return
    while log_path.read_text(errors="replace").count(" is ready") < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{workers} workers were not ready in time")
        time.sleep(0.1)  # polling a log file: there is nothing to wait on


def _wrk(port: int, connections: int, duration: int) -> dict[str, Any]:
    from loadgen import parse_wrk

    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", f"http://127.0.0.1:{port}/"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True)
    return parse_wrk(completed.stdout)


def measure(args: argparse.Namespace, log_dir: Path) -> dict[str, list[dict[str, Any]]]:
    from servers import ServerFailed, free_port

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.contenders}
    for repetition in range(1, args.repeat + 1):
        for name in args.contenders:
            port = free_port()
            try:
                with _running(name, CONTENDERS[name](port, args.threads), port, log_dir) as group:
                    cpu_before = _group_cpu_seconds(group)
                    result = _wrk(port, args.connections, args.duration)
                    cpu = _group_cpu_seconds(group) - cpu_before
            except (ServerFailed, subprocess.CalledProcessError) as error:
                print(f"[{repetition}/{args.repeat}] {name:<26} FAILED: {error}", flush=True)
                continue
            requests = result["requests_per_second"] * args.duration
            result["server_cpu_us_per_request"] = cpu / requests * 1e6 if requests else float("nan")
            runs[name].append(result)
            print(f"[{repetition}/{args.repeat}] {name:<26} {result['requests_per_second']:>10,.0f} req/s, "
                  f"p99 {result.get('p99_ms', float('nan')):.2f} ms, "
                  f"server CPU {result['server_cpu_us_per_request']:.1f} us/req", flush=True)  # fmt: skip
    return runs


def report(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    medians = {
        name: statistics.median(run["requests_per_second"] for run in results)
        for name, results in runs.items()
        if results
    }
    cpu = {
        name: statistics.median(run["server_cpu_us_per_request"] for run in results)
        for name, results in runs.items()
        if results
    }
    baseline = medians.get(BASELINE)
    print(f"\n{'server':<28}{'req/s (median)':>16}{'vs -w 1':>10}{'server CPU us/req':>20}")
    for name, value in medians.items():
        ratio = f"{value / baseline:.2f}x" if baseline else "-"
        print(f"{name:<28}{value:>16,.0f}{ratio:>10}{cpu[name]:>20.1f}")
    two = medians.get("waitress_like -w 2")
    if baseline and two:
        verdict = "met" if two / baseline >= TARGET_RATIO else "NOT met"
        print(f"\ntarget: 2 workers >= {TARGET_RATIO}x one worker: {two / baseline:.2f}x, {verdict}")
    return {
        "medians": medians,
        "server_cpu_us_per_request": cpu,
        "ratios": {name: value / baseline for name, value in medians.items()} if baseline else {},
    }


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument("--contenders", type=lambda text: [n.strip() for n in text.split(",")],
                        default=list(CONTENDERS), help="comma-separated names (default: all four)")  # fmt: skip
    parser.add_argument("--no-setup", action="store_true", help="use this interpreter as it is")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "workers.json")
    args = parser.parse_args(argv)
    unknown = [name for name in args.contenders if name not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contenders {unknown}; choose from {list(CONTENDERS)}")
    return args


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    if not args.no_setup and not bootstrap.running_in_venv():
        bootstrap.ensure_wrk()
        bootstrap.ensure_venv()
        bootstrap.reexec_in_venv(Path(__file__).resolve(), argv)
    from run import machine_description

    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="waitress-like-workers-") as scratch:
        runs = measure(args, Path(scratch))
    summary = report(runs)
    document = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_description(),
        "settings": {key: getattr(args, key) for key in ("duration", "repeat", "threads", "connections")},
        "runs": runs,
        **summary,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0 if all(runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
