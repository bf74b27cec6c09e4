"""Server CPU time per request, split by thread: the loop thread and the workers.

    python benchmarks/cpu_per_request.py                      # 3 rounds of 5 s, hello
    python benchmarks/cpu_per_request.py --tree /other/checkout --rounds 5
    python benchmarks/cpu_per_request.py --switch-interval 0.001 --app large_body_pieces

A waitress_like server (``threads=4``, from ``--tree``, default this repository) serves
one app from ``apps.py`` pinned to CPU 0; ``wrk -t1 -c50`` loads it from CPU 1 for
``--seconds``. For each round it prints req/s, p99, and the server's CPU microseconds per
request: in total, in user and system mode, and per thread group (the loop is the main
thread; every other thread is a worker), and the context switches per request of each
group, read from ``/proc/PID/task/*/stat`` and ``status`` before and after the load. With every round it prints the load average, the share of its CPU the
server used, the share other processes took on the server's CPU (``/proc/stat`` of that
CPU minus the server's own time), and the same two for wrk on the client's CPU: on a
shared machine, that is the first place to look for round-to-round swings.

Unlike run.py it measures only waitress_like and needs nothing but wrk: it is the tool
for checking a change to the hot path (run it before and after, on a quiet machine). All
traffic goes to 127.0.0.1; every round is bounded in time.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCHMARKS_DIR.parent
sys.path.insert(0, str(BENCHMARKS_DIR))

from loadgen import parse_wrk  # noqa: E402
from servers import free_port  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_SECONDS = 30.0

_SERVER_SOURCE = """
import sys
sys.path[:0] = [{tree!r}, {benchmarks!r}]
if {switch_interval!r} is not None:
    sys.setswitchinterval({switch_interval!r})
from apps import WSGI_APPS
from waitress_like import serve
serve(WSGI_APPS[{app!r}], listen="127.0.0.1:{port}", threads={threads}, _quiet=True)
"""


def _task_ticks(pid: int) -> dict[int, tuple[int, int, int]]:
    """(user ticks, system ticks, context switches) of every thread of ``pid``, by id."""
    ticks: dict[int, tuple[int, int, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended
        switches = sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)
        ticks[int(task.name)] = (int(fields[11]), int(fields[12]), switches)
    return ticks


def _cpu_busy_ticks(cpu: int) -> int:
    """Non-idle clock ticks of one CPU since boot (/proc/stat)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            values = [int(value) for value in line.split()[1:]]
            idle = values[3] + values[4]  # idle + iowait
            return sum(values[:8]) - idle
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    import http.client

    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
        finally:
            connection.close()
    raise RuntimeError("server not ready in time")


def _split(
    before: dict[int, tuple[int, int, int]], after: dict[int, tuple[int, int, int]], pid: int
) -> dict[str, float]:
    """Between the two readings: CPU seconds of the loop (main thread) and the workers, in
    user and system mode, and the context switches of each group."""
    names = ("loop", "workers", "user", "system", "loop_switches", "worker_switches")
    result = dict.fromkeys(names, 0.0)
    for tid, (user, system, switches) in after.items():
        user0, system0, switches0 = before.get(tid, (0, 0, 0))
        used_user, used_system = (user - user0) / CLOCK_TICKS, (system - system0) / CLOCK_TICKS
        result["loop" if tid == pid else "workers"] += used_user + used_system
        result["loop_switches" if tid == pid else "worker_switches"] += switches - switches0
        result["user"] += used_user
        result["system"] += used_system
    return result


def measure_round(args: argparse.Namespace) -> dict[str, Any]:
    """Start a server, load it once, stop it; return the round's figures."""
    port = free_port()
    source = _SERVER_SOURCE.format(
        tree=str(args.tree),
        benchmarks=str(BENCHMARKS_DIR),
        switch_interval=args.switch_interval,
        app=args.app,
        port=port,
        threads=args.threads,
    )
    command = ["taskset", "-c", str(args.server_cpu), sys.executable, "-c", source]
    # stderr: the server's warnings ("Task queue depth") would interleave with the figures.
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_ready(port, process)
        before, busy_before = _task_ticks(process.pid), _cpu_busy_ticks(args.server_cpu)
        client_busy_before, wrk_before = _cpu_busy_ticks(args.client_cpu), _children_cpu_seconds()
        wrk = ["taskset", "-c", str(args.client_cpu), "wrk", "-t1", f"-c{args.connections}"]
        wrk += [f"-d{args.seconds}s", "--latency", f"http://127.0.0.1:{port}/"]
        output = subprocess.run(wrk, capture_output=True, text=True, timeout=args.seconds + 60).stdout
        after, busy_after = _task_ticks(process.pid), _cpu_busy_ticks(args.server_cpu)
        client_busy_after, wrk_after = _cpu_busy_ticks(args.client_cpu), _children_cpu_seconds()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    result = parse_wrk(output)
    used = _split(before, after, process.pid)
    requests = result.get("requests") or 1
    server_seconds = used["loop"] + used["workers"]
    others_seconds = max(0.0, (busy_after - busy_before) / CLOCK_TICKS - server_seconds)
    wrk_seconds = wrk_after - wrk_before
    client_others_seconds = max(0.0, (client_busy_after - client_busy_before) / CLOCK_TICKS - wrk_seconds)
    return {
        "requests_per_second": result["requests_per_second"],
        "p99_ms": result.get("p99_ms"),
        "cpu_us": server_seconds * 1e6 / requests,
        "user_us": used["user"] * 1e6 / requests,
        "system_us": used["system"] * 1e6 / requests,
        "loop_us": used["loop"] * 1e6 / requests,
        "workers_us": used["workers"] * 1e6 / requests,
        "loop_switches": used["loop_switches"] / requests,
        "worker_switches": used["worker_switches"] / requests,
        "server_cpu_percent": 100.0 * server_seconds / args.seconds,
        "others_on_cpu_percent": 100.0 * others_seconds / args.seconds,
        "wrk_cpu_percent": 100.0 * wrk_seconds / args.seconds,
        "others_on_client_cpu_percent": 100.0 * client_others_seconds / args.seconds,
        "load_average": os.getloadavg()[0],
    }


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _format(figures: dict[str, Any]) -> str:
    return (
        f"{figures['requests_per_second']:9,.0f} req/s  p99 {figures['p99_ms'] or 0:6.2f} ms  "
        f"CPU {figures['cpu_us']:5.1f} us/req (user {figures['user_us']:5.1f}, sys {figures['system_us']:5.1f}; "
        f"loop {figures['loop_us']:5.1f}, workers {figures['workers_us']:5.1f}; context switches "
        f"{figures['loop_switches']:.2f} + {figures['worker_switches']:.2f})  "
        f"server {figures['server_cpu_percent']:3.0f}% + others {figures['others_on_cpu_percent']:2.0f}% of "
        f"its CPU; wrk {figures['wrk_cpu_percent']:3.0f}% + others {figures['others_on_client_cpu_percent']:2.0f}%; "
        f"load {figures['load_average']:.2f}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO_DIR, help="checkout whose waitress_like to run")
    parser.add_argument("--app", default="hello", help="app from apps.py (default hello)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval in the server")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    rounds = []
    for number in range(1, args.rounds + 1):
        figures = measure_round(args)
        rounds.append(figures)
        print(f"[{number}/{args.rounds}] {_format(figures)}", flush=True)
    if len(rounds) > 1:
        median = {key: statistics.median(r[key] or 0 for r in rounds) for key in rounds[0]}
        rates = [r["requests_per_second"] for r in rounds]
        print(f"median  {_format(median)}  spread {max(rates) / min(rates):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
