"""Run the Autobahn|Testsuite fuzzing client against a WebSocket echo server.

    python benchmarks/autobahn/run.py ws://127.0.0.1:9001 [--cases 1.*,2.*] [--wstest PATH]

The server at the URL must echo every text and binary message back unchanged (and answer
the closing handshake); it should negotiate permessage-deflate for sections 12 and 13.
This script writes a spec (fuzzingclient.json with the URL and cases filled in) to the
output folder, runs ``wstest -m fuzzingclient`` (a Python 2.7 tool, see README.md), and
prints the result counts per section and every case that was not OK. It exits 1 when a
case FAILED or was UNIMPLEMENTED, else 0. It is not part of the test suite.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOOD = ("OK", "INFORMATIONAL")


def main() -> int:
    arguments = parse_arguments()
    wstest = arguments.wstest or os.environ.get("AUTOBAHN_WSTEST") or shutil.which("wstest")
    if not wstest:
        sys.exit("wstest not found: pass --wstest or set AUTOBAHN_WSTEST (see README.md)")
    output = Path(arguments.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    spec = json.loads((HERE / "fuzzingclient.json").read_text())
    spec["outdir"] = str(output / "reports")
    spec["servers"] = [{"agent": arguments.agent, "url": arguments.url}]
    if arguments.cases:
        spec["cases"] = arguments.cases.split(",")
    spec_path = output / "fuzzingclient.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    started = time.monotonic()
    subprocess.run([wstest, "-m", "fuzzingclient", "-s", str(spec_path)], cwd=output, check=True)
    elapsed = time.monotonic() - started
    return summarize(output / "reports" / "index.json", arguments.agent, elapsed)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", help="the echo server, e.g. ws://127.0.0.1:9001/")
    parser.add_argument(
        "--cases", help="comma-separated case patterns (default: those in fuzzingclient.json)"
    )
    parser.add_argument(
        "--wstest", help="path of the wstest executable (default: $AUTOBAHN_WSTEST, then PATH)"
    )
    parser.add_argument("--output", default=str(HERE / "output"), help="folder for the spec and the reports")
    parser.add_argument("--agent", default="waitress_like", help="the name the reports give the server")
    return parser.parse_args()


def summarize(index_path: Path, agent: str, elapsed: float) -> int:
    """Print result counts per section and the cases that were not OK; the exit status."""
    cases = json.loads(index_path.read_text())[agent]
    per_section: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    not_ok = []
    for case_id, result in cases.items():
        per_section[int(case_id.split(".")[0])][result["behavior"]] += 1
        if result["behavior"] not in GOOD or result["behaviorClose"] not in GOOD:
            not_ok.append((case_id, result["behavior"], result["behaviorClose"]))
    for section in sorted(per_section):
        counts = ", ".join(f"{name} {count}" for name, count in sorted(per_section[section].items()))
        print(f"section {section:>2}: {counts}")
    for case_id, behavior, close_behavior in sorted(not_ok, key=lambda row: _case_key(row[0])):
        print(f"  {case_id}: {behavior} (closing: {close_behavior})")
    print(f"{len(cases)} cases in {elapsed:.0f} s; reports in {index_path.parent}")
    failed = [row for row in not_ok if "FAILED" in row[1:] or "UNIMPLEMENTED" in row[1:]]
    return 1 if failed else 0


def _case_key(case_id: str) -> list[int]:
    return [int(part) for part in case_id.split(".")]


if __name__ == "__main__":
    sys.exit(main())
