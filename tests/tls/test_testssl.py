"""testssl.sh (Debian's ``testssl.sh`` package) against a default HTTPS server: protocols,
cipher categories and the known vulnerabilities. Nothing may be graded worse than OK/INFO.

One run takes about 20 s, so it runs once (default selector). docs/tls.rst records the
summary of a full run.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.apps import hello

pytestmark = pytest.mark.parametrize(("selector", "scheme"), [("default", "https")])

ACCEPTABLE = {"OK", "INFO"}
SECTIONS = ("protocols", "ciphers", "vulnerabilities")


def test_testssl_grades_nothing_as_a_weakness(start_server, tmp_path):
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    if testssl is None:
        pytest.skip("testssl.sh is not installed (.ci/run installs Debian's testssl.sh)")
    server = start_server(hello)
    report = tmp_path / "testssl.json"
    completed = subprocess.run(
        [testssl, "--quiet", "--color", "0", "--warnings", "batch", "--protocols", "--std"]
        + ["--vulnerable", "--jsonfile-pretty", str(report), f"https://localhost:{server.address[1]}"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert report.exists(), completed.stdout[-2000:] + completed.stderr[-2000:]
    scan = json.loads(report.read_text())["scanResult"][0]
    findings = {finding["id"]: finding for section in SECTIONS for finding in scan.get(section, [])}
    graded = {
        key: (f["severity"], f["finding"]) for key, f in findings.items() if f["severity"] not in ACCEPTABLE
    }
    assert not graded, graded
    # The scan really ran: what it saw is what the defaults promise.
    assert findings["TLS1_2"]["finding"] == "offered" and findings["TLS1_3"]["finding"].startswith("offered")
    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert findings[old]["finding"] == "not offered", old
    assert findings["ALPN"]["finding"] == "http/1.1"
    assert findings["cipherlist_STRONG"]["finding"] == "offered"
    assert {"heartbleed", "ROBOT", "CRIME_TLS", "SWEET32", "LUCKY13"} <= set(findings)
