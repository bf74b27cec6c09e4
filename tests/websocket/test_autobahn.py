"""Autobahn|Testsuite's fuzzing client against the real server and an ASGI echo app.

Sections 1-7 (framing, pings, reserved bits and opcodes, fragmentation, UTF-8, closing)
run here, in about ten seconds; every case must end OK, NON-STRICT or INFORMATIONAL. The
full run (sections 9, 12 and 13 too, about a quarter of an hour) is
``benchmarks/autobahn/run.py``; its summary is in docs/conformance.rst.

``wstest`` runs on Python 2.7 only, so it is not a test dependency: ``.ci/run`` builds it
into a virtualenv when a Python 2.7 interpreter exists and names it in
``AUTOBAHN_WSTEST``. Without it the test skips, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RunningServer

RUNNER = Path(__file__).resolve().parents[2] / "benchmarks" / "autobahn" / "run.py"
SECTIONS = "1.*,2.*,3.*,4.*,5.*,6.*,7.*"
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


@pytest.mark.timeout(600)
def test_autobahn_sections_1_to_7(tmp_path: Path) -> None:
    wstest = os.environ.get("AUTOBAHN_WSTEST", "")
    if not wstest or not os.access(wstest, os.X_OK):
        pytest.skip("AUTOBAHN_WSTEST does not name Autobahn|Testsuite's wstest (see .ci/run)")
    sys.path.insert(0, str(RUNNER.parents[2]))
    try:
        from benchmarks.autobahn.echo import app
    finally:
        sys.path.pop(0)
    server = RunningServer(app, "default", log_socket_errors=False)
    try:
        host, port = server.address
        completed = subprocess.run(
            [sys.executable, str(RUNNER), f"ws://{host}:{port}/", "--cases", SECTIONS]
            + ["--wstest", wstest, "--output", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=540,
        )
    finally:
        server.close()
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    results = json.loads((tmp_path / "reports" / "index.json").read_text())["waitress_like"]
    assert len(results) > 200
    failing = {
        case: (result["behavior"], result["behaviorClose"])
        for case, result in results.items()
        if result["behavior"] not in PASSING or result["behaviorClose"] not in PASSING
    }
    assert failing == {}
