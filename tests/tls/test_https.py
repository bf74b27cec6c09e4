"""The real server over HTTPS with real clients: curl, requests, http.client and
``openssl s_client``; what applications see; plain HTTP on the TLS port; reloads.

Every test here starts an HTTPS server (``scheme`` is ``https``), on both selectors.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from typing import Any

import pytest

from tests.apps import EchoApp, hello
from tests.asgi.helpers import echo_scope_app
from tests.conftest import TLSAddress
from tests.httpclient import Connection, request
from waitress_like.tlsinfo import PLAINTEXT_HTTP_DETAIL

from .conftest import peer_names

pytestmark = pytest.mark.parametrize("scheme", ["https"])

GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
RUN_SECONDS = 30


def _url(server: Any, path: str = "/") -> str:
    return f"https://localhost:{server.address[1]}{path}"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return path


# --------------------------------------------------------------------------- real clients


def test_curl_accepts_the_certificate_and_keeps_the_connection(start_server, https_certificates):
    curl = _tool("curl")
    server = start_server(EchoApp())
    result = subprocess.run(
        [curl, "-sS", "--cacert", https_certificates.cafile, "-w", " %{ssl_verify_result} %{num_connects}\n"]
        + [_url(server, "/one"), _url(server, "/two")],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    first, second = (json.loads(line.rsplit(" ", 2)[0]) for line in lines)
    assert [line.rsplit(" ", 2)[1:] for line in lines] == [["0", "1"], ["0", "0"]]  # verified; one connection
    assert (first["PATH_INFO"], second["PATH_INFO"]) == ("/one", "/two")
    assert first["wsgi.url_scheme"] == "https" and first["REMOTE_PORT"] == second["REMOTE_PORT"]


def test_requests_with_keep_alive_and_a_chunked_upload(start_server, https_certificates):
    requests = pytest.importorskip("requests")
    app = EchoApp()
    server = start_server(app)
    verify = https_certificates.cafile  # per request: REQUESTS_CA_BUNDLE would beat the session's
    with requests.Session() as session:
        assert session.get(_url(server), verify=verify).json()["HTTPS"] == "on"
        response = session.post(_url(server, "/up"), data=iter([b"abc", b"def" * 100_000]), verify=verify)
    assert response.status_code == 200
    assert response.json()["body"] == "abc" + "def" * 100_000
    assert app.calls[1]["HTTP_TRANSFER_ENCODING"] == "chunked"
    assert app.calls[0]["REMOTE_PORT"] == app.calls[1]["REMOTE_PORT"]


def test_http_client_over_one_connection(start_server, https_certificates):
    server = start_server(EchoApp())
    connection = http.client.HTTPSConnection(
        "localhost", server.address[1], context=https_certificates.client_context(), timeout=10
    )
    try:
        seen = []
        for method, body in (("GET", None), ("PUT", b"x" * 1_000_000), ("GET", None)):
            connection.request(method, "/", body=body)
            response = connection.getresponse()
            assert response.status == 200
            seen.append(json.loads(response.read()))
    finally:
        connection.close()
    assert len(seen[1]["body"]) == 1_000_000
    assert len({report["REMOTE_PORT"] for report in seen}) == 1


def test_alpn_offers_http_1_1(start_server):
    server = start_server(hello)
    address = server.address
    address.ssl_context.set_alpn_protocols(["h2", "http/1.1"])
    with Connection(address) as conn:
        assert conn.sock.selected_alpn_protocol() == "http/1.1"  # h2 is not served (yet)
        conn.send(GET)
        assert conn.read_response().body == b"hello"


def _s_client(server: Any, cafile: str, *options: str) -> subprocess.CompletedProcess:
    openssl = _tool("openssl")
    host, port = server.address[:2]
    return subprocess.run(
        [openssl, "s_client", "-connect", f"{host}:{port}", "-servername", "localhost", "-CAfile", cafile]
        + list(options),
        input="",
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )


def test_openssl_s_client_negotiates_tls_1_2_and_1_3_with_alpn(start_server, https_certificates):
    server = start_server(hello)
    for version in ("-tls1_2", "-tls1_3"):
        result = _s_client(server, https_certificates.cafile, version, "-alpn", "h2,http/1.1")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ALPN protocol: http/1.1" in result.stdout
        assert "Verify return code: 0 (ok)" in result.stdout


def _allow_tls_1_0(settings: Any, default_ssl_context_factory: Any) -> ssl.SSLContext:
    """The control: a server that does accept TLS 1.0 and 1.1, to show the client can."""
    context = default_ssl_context_factory()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_openssl_s_client_with_tls_1_0_or_1_1_is_refused(start_server, https_certificates, version):
    # SECLEVEL=0: the client would offer these versions; only the server refuses them.
    options = (version, "-cipher", "DEFAULT:@SECLEVEL=0")
    refused = _s_client(start_server(hello), https_certificates.cafile, *options)
    assert refused.returncode != 0
    assert "alert protocol version" in refused.stderr
    accepted = _s_client(start_server(hello, ssl_context=_allow_tls_1_0), https_certificates.cafile, *options)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_a_python_client_limited_to_old_versions_is_refused(start_server, https_certificates, version):
    def old_client(address: TLSAddress) -> TLSAddress:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            address.ssl_context.minimum_version = getattr(ssl.TLSVersion, version)
            address.ssl_context.maximum_version = getattr(ssl.TLSVersion, version)
        address.ssl_context.set_ciphers("DEFAULT:@SECLEVEL=0")
        return address

    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION|protocol version"):
        Connection(old_client(start_server(hello).address))
    with Connection(old_client(start_server(hello, ssl_context=_allow_tls_1_0).address)) as conn:
        conn.send(GET)
        assert conn.read_response().body == b"hello"


# --------------------------------------------------------------------------- what apps see


def test_the_environ_of_a_tls_request(start_server):
    app = EchoApp()
    server = start_server(app)
    request(server.address, GET)
    seen = app.calls[0]
    assert seen["wsgi.url_scheme"] == "https" and seen["HTTPS"] == "on"
    assert seen["SSL_PROTOCOL"] == "TLSv1.3" and seen["SSL_CIPHER"].startswith("TLS_")
    assert seen["SSL_CIPHER_USEKEYSIZE"] in ("128", "256") and seen["SSL_CLIENT_VERIFY"] == "NONE"
    assert not any(key.startswith("SSL_CLIENT_") and key != "SSL_CLIENT_VERIFY" for key in seen)


def test_a_client_certificate_reaches_the_environ(start_server, https_certificates):
    client = https_certificates.ca.issue_cert(
        "alice@example.org", common_name="alice", organization_name="Ex"
    )
    app = EchoApp()
    server = start_server(app, cert_reqs="required", ca_certs=https_certificates.cafile)
    address = server.address
    client.configure_cert(address.ssl_context)
    assert request(address, GET).status == 200
    seen = app.calls[0]
    assert seen["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert ssl.PEM_cert_to_DER_cert(seen["SSL_CLIENT_CERT"]) == ssl.PEM_cert_to_DER_cert(
        client.cert_chain_pems[0].bytes().decode("ascii")
    )
    subject = seen["SSL_CLIENT_S_DN"]  # RFC 4514, most specific first; trustme adds an OU
    assert subject.startswith("CN=alice,OU=Testing cert #") and subject.endswith(",O=Ex")
    assert seen["SSL_CLIENT_I_DN"].startswith("OU=Testing CA #") and "O=trustme" in seen["SSL_CLIENT_I_DN"]


def test_a_client_without_the_required_certificate_is_refused(start_server, https_certificates):
    app = EchoApp()
    server = start_server(app, cert_reqs="required", ca_certs=https_certificates.cafile)
    with pytest.raises((ssl.SSLError, ConnectionError, EOFError)):
        request(server.address, GET)  # TLS 1.3: the refusal arrives as the first read's alert
    assert app.calls == []


def test_a_trusted_proxys_forwarded_proto_still_wins(start_server):
    app = EchoApp()
    server = start_server(app, trusted_proxy="127.0.0.1", trusted_proxy_headers="x-forwarded-proto")
    request(server.address, b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: http\r\n\r\n")
    request(server.address, GET)
    assert [call["wsgi.url_scheme"] for call in app.calls] == ["http", "https"]


def test_asgi_apps_see_the_https_scheme_and_the_tls_extension(start_server, https_certificates):
    server = start_server(echo_scope_app)
    scope = json.loads(request(server.address, GET).body)
    assert scope["scheme"] == "https"
    tls = scope["extensions"]["tls"]
    assert tls["tls_version"] == 0x0304 and tls["cipher_suite"] in (0x1301, 0x1302, 0x1303)
    assert tls["client_cert_chain"] == [] and tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None
    served = ssl.PEM_cert_to_DER_cert(tls["server_cert"])
    assert served == ssl.PEM_cert_to_DER_cert(https_certificates.server.cert_chain_pems[0].bytes().decode())


# --------------------------------------------------------------------------- plain HTTP


def test_plain_http_on_the_tls_port_is_answered_400_and_closed(start_server):
    app = EchoApp()
    server = start_server(app, request_head_timeout=30)
    with socket.create_connection(tuple(server.address), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        received = b""
        while True:  # the server closes after its answer: no wait for the head deadline
            piece = sock.recv(65536)
            if not piece:
                break
            received += piece
    assert received.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert PLAINTEXT_HTTP_DETAIL.encode() in received
    assert app.calls == []


# --------------------------------------------------------------------------- reloading


def test_a_reload_serves_new_connections_the_renewed_certificate_and_keeps_open_ones(
    start_server, renewable, caplog
):
    server = start_server(hello, **renewable.settings)
    with Connection(server.address) as old:
        old.send(GET)
        assert old.read_response().body == b"hello"
        assert "before.example" in peer_names(old.sock)
        renewable("after.example")
        with caplog.at_level(logging.INFO, logger="waitress_like"):
            assert server.server.reload_tls() is True
        assert "Certificates reloaded" in caplog.text
        with Connection(server.address) as new:
            assert "after.example" in peer_names(new.sock)
            new.send(GET)
            assert new.read_response().body == b"hello"
        old.send(GET)  # the connection opened before the reload goes on
        assert old.read_response().body == b"hello"


def test_a_failed_reload_keeps_the_previous_certificate(start_server, renewable, https_certificates, caplog):
    server = start_server(hello, **renewable.settings)
    renewable("after.example")
    assert server.server.reload_tls() is True
    renewable.keyfile.write_bytes(https_certificates.ca.issue_cert("stranger").private_key_pem.bytes())
    assert server.server.reload_tls() is False
    assert "Certificate reload failed" in caplog.text and "does not match" in caplog.text
    with Connection(server.address) as conn:
        assert "after.example" in peer_names(conn.sock)
        conn.send(GET)
        assert conn.read_response().body == b"hello"


class _LogEvent(logging.Handler):
    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.pattern.search(record.getMessage()):
            self.seen.set()


def test_reload_tls_soon_reads_the_files_off_the_loop_thread(start_server, renewable):
    server = start_server(hello, **renewable.settings)
    handler = _LogEvent("Certificates reloaded")
    logger = logging.getLogger("waitress_like")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        renewable("after.example")
        server.server.reload_tls_soon()
        assert handler.seen.wait(10)
    finally:
        logger.setLevel(level)
        logger.removeHandler(handler)
    with Connection(server.address) as conn:
        assert "after.example" in peer_names(conn.sock)
