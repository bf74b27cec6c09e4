"""The command line serving HTTPS: ``waitress-like-serve --certfile=... --keyfile=... app``,
and SIGHUP reloading its certificates without dropping connections."""

from __future__ import annotations

import re
import signal

from tests.conftest import TLSAddress
from tests.httpclient import Connection
from tests.processes import ServerProcess, server_command

from .conftest import peer_names

GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def test_sighup_reloads_the_certificates_of_the_command_line_server(renewable, https_certificates):
    settings = renewable.settings
    arguments = [
        "--listen=127.0.0.1:0",
        f"--certfile={settings['certfile']}",
        f"--keyfile={settings['keyfile']}",
    ]
    with ServerProcess(server_command(*arguments, "tests.apps:hello")) as child:
        line = child.wait_line(re.compile(r"Serving on https://127\.0\.0\.1:\d+"))
        address = TLSAddress(("127.0.0.1", int(line.rsplit(":", 1)[1])))
        address.ssl_context = https_certificates.client_context()
        with Connection(address) as old:
            old.send(GET)
            assert old.read_response().body == b"hello" and "before.example" in peer_names(old.sock)
            renewable("after.example")
            child.process.send_signal(signal.SIGHUP)
            child.wait_line(re.compile("Certificates reloaded"))
            with Connection(address) as new:
                assert "after.example" in peer_names(new.sock)
            old.send(GET)
            assert old.read_response().body == b"hello"
        assert child.stop() == 0
