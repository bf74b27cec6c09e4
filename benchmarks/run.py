"""Benchmark waitress_like against its peers on this machine (loopback only).

    python benchmarks/run.py --quick --servers waitress,gunicorn,cheroot

Sets up benchmarks/.venv-peers and wrk when missing, then re-runs itself inside that
venv. For each repetition, for each scenario, the servers take turns (A B C, A B C, ...);
each measurement starts a fresh server pinned to one CPU, loads it from a client pinned
to another, and stops it. Medians are printed as a table and written to
results/latest.json and results/benchmarks.png. See README.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import bootstrap

BENCHMARKS_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCHMARKS_DIR / "results"
FILE_BYTES = 10 * 1024 * 1024


def _comma_list(choices: list[str]) -> Any:
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (got {text!r})")
        return names

    return parse


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    from scenarios import SCENARIOS
    from servers import SERVERS

    defaults = [name for name, spec in SERVERS.items() if spec.in_default_run]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--servers",
        type=_comma_list(list(SERVERS)),
        default=defaults,
        help=f"comma-separated, in turn order (default: {','.join(defaults)}; also: "
        f"{','.join(name for name in SERVERS if name not in defaults)})",
    )
    scenario_names = [scenario.name for scenario in SCENARIOS]
    parser.add_argument(
        "--scenarios",
        type=_comma_list(scenario_names),
        default=scenario_names,
        help=f"comma-separated (default: {','.join(scenario_names)})",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 s runs, 1 repetition")
    parser.add_argument("--repeat", type=int, help="repetitions per scenario (default 3; 1 with --quick)")
    parser.add_argument("--duration", type=int, help="seconds per load run (default 10; 2 with --quick)")
    parser.add_argument("--threads", type=int, default=4, help="worker threads of every server (default 4)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument("--upload-mib", type=int, default=100, help="size of one upload (default 100)")
    parser.add_argument(
        "--idle-connections",
        type=int,
        default=10_000,
        help="idle keep-alive connections held open (default 10000)",
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to (default 0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU of wrk and clients (default 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--chart", type=Path, default=RESULTS_DIR / "benchmarks.png")
    parser.add_argument(
        "--no-setup",
        action="store_true",
        help="use this interpreter as is: no venv, no installs (peers must be importable)",
    )
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.duration = args.duration or (2 if args.quick else 10)
    return args


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _wrk_version() -> str:
    completed = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    first_line = (completed.stdout + completed.stderr).strip().splitlines()
    return first_line[0] if first_line else "unknown"


def machine_description() -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "wrk": _wrk_version(),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def _warn_if_busy() -> None:
    """Other work on the machine skews every figure; say so rather than hide it."""
    one_minute = os.getloadavg()[0]
    if one_minute > 0.5:
        print(
            f"warning: load average {one_minute:.2f} before starting: other processes are busy, "
            "figures will be noisy",
            flush=True,
        )


def _prepare_process(args: argparse.Namespace) -> None:
    """Raise our open-file limit (servers inherit it) and keep ourselves off the server CPU."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    available = os.sched_getaffinity(0)
    if not args.no_pin and not {args.server_cpu, args.client_cpu} <= available:
        print(f"warning: CPUs {sorted(available)} lack {args.server_cpu} or {args.client_cpu}; not pinning")
        args.no_pin = True
    if args.server_cpu == args.client_cpu and not args.no_pin:
        print("warning: server and client share a CPU")
    if not args.no_pin:
        os.sched_setaffinity(0, {args.client_cpu})


def probe_servers(args: argparse.Namespace, launch: Any) -> tuple[list[Any], dict[str, Any]]:
    """The servers that can run, and each one's versions or reason for skipping."""
    from servers import SERVERS, ServerFailed, probe

    usable: list[Any] = []
    descriptions: dict[str, dict[str, Any]] = {}
    for name in args.servers:
        spec = SERVERS[name]
        try:
            descriptions[name] = {"versions": probe(spec, launch)}
            usable.append(spec)
        except (ServerFailed, subprocess.TimeoutExpired) as error:
            descriptions[name] = {"skipped": str(error)}
            print(f"skipping {name}: {error}")
    for name, ws in (("uvicorn", None), ("uvicorn-websockets", "websockets"), ("uvicorn-wsproto", "wsproto")):
        if name in descriptions and "versions" in descriptions[name]:
            descriptions[name]["configuration"] = "loop=asyncio http=h11" + (f" ws={ws}" if ws else "")
    configurations = {
        "granian": f"--interface wsgi --http 1 --workers 1 --runtime-threads 1 --blocking-threads {args.threads}",
        "palfrey": f"interface=wsgi (asgi3 for ASGI apps) http=h11 loop=asyncio, {args.threads} executor threads",
    }
    for name, configuration in configurations.items():
        if name in descriptions and "versions" in descriptions[name]:
            descriptions[name]["configuration"] = configuration
    return usable, descriptions


def _empty_document(args: argparse.Namespace, selected: list[Any], servers: list[Any]) -> dict[str, Any]:
    scenarios = []
    for scenario in selected:
        cells = {
            spec.name: {"label": spec.label(scenario.kind), "runs": [], "failures": []}
            for spec in servers
            if spec.supports(scenario.kind)
        }
        scenarios.append(
            {
                "name": scenario.name,
                "title": scenario.title,
                "load": scenario.load,
                "metric": scenario.metric,
                "unit": scenario.unit,
                "results": cells,
            }
        )
    settings = {
        name: getattr(args, name)
        for name in ("threads", "connections", "upload_mib", "idle_connections", "repeat", "quick")
    }
    settings.update(
        duration_seconds=args.duration,
        pinned=not args.no_pin,
        server_cpu=None if args.no_pin else args.server_cpu,
        client_cpu=None if args.no_pin else args.client_cpu,
    )
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "settings": settings,
        "scenarios": scenarios,
    }


def _describe(scenario: Any, result: dict[str, Any]) -> str:
    text = f"{result[scenario.metric]:,.1f} {scenario.unit}"
    if "p99_ms" in result:
        text += f", p99 {result['p99_ms']:.2f} ms"
    text += f", peak RSS {result['peak_rss_kib'] / 1024:.1f} MiB"
    if scenario.load == "idle":
        text += f", {result['idle_still_open']}/{result['idle_requested']} idle open"
    return text


def run_all(
    args: argparse.Namespace,
    document: dict[str, Any],
    selected: list[Any],
    servers: list[Any],
    launch: Any,
    load: Any,
) -> None:
    """Fill the document's runs and failures; a Ctrl-C keeps what was measured so far."""
    from loadgen import LoadFailed
    from scenarios import measure
    from servers import ServerFailed

    cells_by_scenario = {entry["name"]: entry["results"] for entry in document["scenarios"]}
    try:
        for repetition in range(1, args.repeat + 1):
            for scenario in selected:
                for spec in servers:
                    cell = cells_by_scenario[scenario.name].get(spec.name)
                    if cell is None:
                        continue
                    prefix = f"[{repetition}/{args.repeat}] {scenario.name:<15} {cell['label']:<16}"
                    try:
                        result = measure(scenario, spec, launch, load)
                    except (ServerFailed, LoadFailed) as error:
                        cell["failures"].append(str(error))
                        print(f"{prefix} FAILED: {error}", flush=True)
                        continue
                    cell["runs"].append(result)
                    print(f"{prefix} {_describe(scenario, result)}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: reporting what was measured")


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    if not args.no_setup and not bootstrap.running_in_venv():
        bootstrap.ensure_wrk()
        bootstrap.ensure_venv()
        bootstrap.reexec_in_venv(Path(__file__).resolve(), argv)
    from apps import FILE_PATH_VARIABLE
    from report import format_table, summarize, write_chart, write_json
    from scenarios import SCENARIOS, LoadSettings
    from servers import BASELINE, LaunchOptions, make_certificate

    _prepare_process(args)
    _warn_if_busy()
    selected = [scenario for scenario in SCENARIOS if scenario.name in args.scenarios]
    with tempfile.TemporaryDirectory(prefix="waitress-like-bench-") as scratch:
        file_path = Path(scratch) / "ten-mib.bin"
        file_path.write_bytes(os.urandom(FILE_BYTES))
        needs_tls = any(scenario.kind == "tls" for scenario in selected)
        launch = LaunchOptions(
            threads=args.threads,
            cpu=None if args.no_pin else args.server_cpu,
            log_dir=Path(scratch),
            extra_environment={FILE_PATH_VARIABLE: str(file_path)},
            tls_files=make_certificate(Path(scratch)) if needs_tls else None,
        )
        load = LoadSettings(
            duration_seconds=args.duration,
            connections=args.connections,
            upload_bytes=args.upload_mib * 1024 * 1024,
            idle_connections=args.idle_connections,
            client_cpu=None if args.no_pin else args.client_cpu,
        )
        servers, descriptions = probe_servers(args, launch)
        document = _empty_document(args, selected, servers)
        document["servers"] = descriptions
        run_all(args, document, selected, servers, launch, load)
    document["machine"]["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    summarize(document, BASELINE)
    print()
    print(format_table(document, BASELINE))
    write_json(document, args.output)
    write_chart(document, args.chart, BASELINE)
    print(f"\nwrote {args.output} and {args.chart}")
    failed = any(cell["failures"] for entry in document["scenarios"] for cell in entry["results"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
