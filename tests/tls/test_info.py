"""What a TLS connection tells the application, read from real handshakes."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest

from waitress_like.config import Settings
from waitress_like.tls import ServerTLS, build_server_tls
from waitress_like.tlsinfo import (
    TLS_VERSION_NUMBERS,
    cipher_suite_ids,
    connection_info,
    distinguished_name,
    looks_like_plaintext_http,
    looks_like_tls_handshake,
)

from .conftest import CertificateFiles
from .memorypair import MemoryPair

x509 = pytest.importorskip("cryptography.x509")
NameOID = pytest.importorskip("cryptography.x509.oid").NameOID
hashes = pytest.importorskip("cryptography.hazmat.primitives.hashes")
ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")
serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")

# The IANA TLS Cipher Suites registry.
IANA_SUITES = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C,
    "ECDHE-RSA-AES128-GCM-SHA256": 0xC02F,
    "ECDHE-RSA-AES256-GCM-SHA384": 0xC030,
    "ECDHE-RSA-CHACHA20-POLY1305": 0xCCA8,
    "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
}


def _server(files: CertificateFiles, **settings: Any) -> ServerTLS:
    return build_server_tls(Settings(certfile=files.cert, keyfile=files.key, **settings))


def _connected(server: ServerTLS, client: ssl.SSLContext) -> MemoryPair:
    pair = MemoryPair(server, client)
    pair.handshake()
    return pair


# --------------------------------------------------------------------------- environ


def test_the_environ_of_a_connection_without_a_client_certificate(files: CertificateFiles):
    server = _server(files)
    pair = _connected(server, files.client_context())
    info = server.connection_info(pair.server)
    assert dict(info.environ) == {
        "wsgi.url_scheme": "https",
        "HTTPS": "on",
        "SSL_PROTOCOL": "TLSv1.3",
        "SSL_CIPHER": pair.client.cipher()[0],
        "SSL_CIPHER_USEKEYSIZE": str(pair.client.cipher()[2]),
        "SSL_CLIENT_VERIFY": "NONE",
    }
    assert info.alpn_protocol is None  # this client offered no ALPN


def test_the_environ_carries_the_verified_client_certificate(files: CertificateFiles):
    server = _server(files, cert_reqs="optional", ca_certs=files.ca_cert)
    client = files.client_context()
    alice = files.ca.issue_cert(
        "alice@example.org", common_name='Alice, "A" <admin>', organization_name="Example"
    )
    alice.configure_cert(client)
    pair = _connected(server, client)
    environ = server.connection_info(pair.server).environ
    leaf = x509.load_pem_x509_certificate(alice.cert_chain_pems[0].bytes())
    assert environ["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert environ["SSL_CLIENT_CERT"] == alice.cert_chain_pems[0].bytes().decode("ascii")
    assert environ["SSL_CLIENT_S_DN"] == leaf.subject.rfc4514_string()
    assert environ["SSL_CLIENT_S_DN"].startswith('CN=Alice\\, \\"A\\" \\<admin\\>,')
    assert environ["SSL_CLIENT_I_DN"] == leaf.issuer.rfc4514_string()
    serial = environ["SSL_CLIENT_M_SERIAL"]  # upper-case hex in whole bytes, as OpenSSL prints it
    assert int(serial, 16) == leaf.serial_number and len(serial) % 2 == 0 and serial == serial.upper()
    assert environ["SSL_CLIENT_M_VERSION"] == "3"
    assert environ["SSL_CLIENT_V_END"] == pair.server.getpeercert()["notAfter"]


def _issuers_follow(chain: tuple[str, ...]) -> bool:
    certificates = [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in chain]
    return all(lower.issuer == upper.subject for lower, upper in zip(certificates, certificates[1:]))


def test_an_intermediate_sent_by_the_client_is_in_the_chain(files: CertificateFiles):
    server = _server(files, cert_reqs="required", ca_certs=files.ca_cert)
    intermediate = files.ca.create_child_ca()
    bob = intermediate.issue_cert("bob@example.org")
    client = files.client_context()
    bob.configure_cert(client)  # sends bob's certificate and the intermediate's
    pair = _connected(server, client)
    info = server.connection_info(pair.server)
    sent = [blob.bytes().decode("ascii") for blob in bob.cert_chain_pems]
    assert info.client_cert_chain[0] == sent[0]
    assert _issuers_follow(info.client_cert_chain)
    if hasattr(pair.server, "get_unverified_chain") or hasattr(pair.server._sslobj, "get_unverified_chain"):
        # As mod_ssl's SSL_CLIENT_CERT_CHAIN_n: the chain as OpenSSL holds it once verified.
        assert info.client_cert_chain[1] == sent[1]
        assert info.environ["SSL_CLIENT_CERT_CHAIN_0"] == sent[1]


# --------------------------------------------------------------------------- ASGI


def test_the_asgi_tls_extension(files: CertificateFiles):
    server = _server(files, cert_reqs="optional", ca_certs=files.ca_cert)
    client = files.client_context()
    carol = files.ca.issue_cert("carol@example.org")
    carol.configure_cert(client)
    pair = _connected(server, client)
    info = server.connection_info(pair.server)
    extension = info.asgi_extension()
    assert extension["client_cert_chain"][0] == carol.cert_chain_pems[0].bytes().decode("ascii")
    assert _issuers_follow(tuple(extension["client_cert_chain"]))
    assert extension == {
        "server_cert": files.leaf_pem,
        "client_cert_chain": list(info.client_cert_chain),
        "client_cert_name": info.environ["SSL_CLIENT_S_DN"],
        "client_cert_error": None,
        "tls_version": 0x0304,
        "cipher_suite": IANA_SUITES[pair.client.cipher()[0]],
    }
    extension["client_cert_chain"].clear()
    assert info.asgi_extension()["client_cert_chain"]  # each call is a new dict


def test_the_asgi_extension_of_a_tls12_connection_without_a_client_certificate(files: CertificateFiles):
    server = _server(files)
    client = files.client_context()
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    pair = _connected(server, client)
    extension = server.connection_info(pair.server).asgi_extension()
    assert extension["tls_version"] == 0x0303
    assert extension["cipher_suite"] == IANA_SUITES["ECDHE-ECDSA-AES128-GCM-SHA256"]
    assert extension["client_cert_chain"] == [] and extension["client_cert_name"] is None


@pytest.mark.parametrize("name, number", sorted(IANA_SUITES.items()))
def test_cipher_names_map_to_their_registry_numbers(name: str, number: int):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL")
    ids = cipher_suite_ids(context)
    assert ids[name] == number


def test_tls_version_numbers():
    assert TLS_VERSION_NUMBERS["TLSv1.2"] == 0x0303 and TLS_VERSION_NUMBERS["TLSv1.3"] == 0x0304


def test_an_ssl_socket_works_as_well_as_an_ssl_object(files: CertificateFiles):
    server = _server(files)
    server_side, client_side = socket.socketpair()
    client_context = files.client_context()
    finished = threading.Event()

    def client() -> None:
        with client_context.wrap_socket(client_side, server_hostname="localhost") as tls:
            tls.sendall(b"hi")
            finished.wait(10)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        with server.context.wrap_socket(server_side, server_side=True) as tls:
            assert tls.recv(2) == b"hi"
            info = server.connection_info(tls)
            assert info.environ["SSL_PROTOCOL"] == "TLSv1.3"
            assert info.asgi_extension()["server_cert"] == files.leaf_pem
    finally:
        finished.set()
        thread.join(10)
        client_side.close()


def test_connection_info_without_known_facts_reads_the_context(files: CertificateFiles):
    server = _server(files)
    pair = _connected(server, files.client_context())
    info = connection_info(pair.server)
    assert info.server_cert_pem is None
    assert info.cipher_suite == IANA_SUITES[pair.server.cipher()[0]]


# --------------------------------------------------------------------------- names


def _certificate_details(tmp_path: Path, name: Any) -> dict[str, Any]:
    """``getpeercert()``'s dict for a certificate whose subject is ``name``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "named.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    details: dict[str, Any] = ssl._ssl._test_decode_cert(str(path))  # type: ignore[attr-defined]
    return details


def _attribute(oid_name: str, value: str) -> Any:
    return x509.NameAttribute(getattr(NameOID, oid_name), value)


NAMES = [
    [("COUNTRY_NAME", "SE"), ("ORGANIZATION_NAME", "Example AB"), ("COMMON_NAME", "alice")],
    [("DOMAIN_COMPONENT", "org"), ("DOMAIN_COMPONENT", "example"), ("USER_ID", "u42")],
    [
        ("STATE_OR_PROVINCE_NAME", "Västra Götaland"),
        ("LOCALITY_NAME", "Göteborg"),
        ("STREET_ADDRESS", "Gatan 1"),
    ],
    [("ORGANIZATIONAL_UNIT_NAME", "#hash first"), ("COMMON_NAME", " spaces around ")],
    [("COMMON_NAME", 'all of , + " \\ < > ; here')],
]


@pytest.mark.parametrize("attributes", NAMES, ids=range(len(NAMES)))
def test_names_are_written_as_rfc4514_says(tmp_path: Path, attributes: list[tuple[str, str]]):
    name = x509.Name([_attribute(oid_name, value) for oid_name, value in attributes])
    details = _certificate_details(tmp_path, name)
    assert distinguished_name(details["subject"]) == name.rfc4514_string()


def test_a_multi_valued_relative_name_is_joined_with_plus(tmp_path: Path):
    name = x509.Name(
        [
            x509.RelativeDistinguishedName([_attribute("ORGANIZATION_NAME", "Example")]),
            x509.RelativeDistinguishedName([_attribute("COMMON_NAME", "carol"), _attribute("USER_ID", "c1")]),
        ]
    )
    written = distinguished_name(_certificate_details(tmp_path, name)["subject"])
    assert written in ("CN=carol+UID=c1,O=Example", "UID=c1+CN=carol,O=Example")  # a set: any order


def test_other_attributes_and_control_characters():
    rdns = ((("emailAddress", "a@example.org"),), (("commonName", "tab\there"),))
    assert distinguished_name(rdns) == "CN=tab\\09here,emailAddress=a@example.org"
    assert distinguished_name(((("commonName", " "),),)) == "CN=\\ "
    assert distinguished_name(()) == ""


# --------------------------------------------------------------------------- first bytes


@pytest.mark.parametrize(
    "request_start",
    [b"GET / HTTP/1.1\r\n", b"POST", b"OPTIONS * HTTP/1.1", b"PRI * HTTP/2.0", b"\r\nGET /", b"g"],
)
def test_plain_http_is_recognised_from_its_first_byte(request_start: bytes):
    assert looks_like_plaintext_http(request_start)
    assert not looks_like_tls_handshake(request_start)


def test_a_client_hello_is_not_plain_http(files: CertificateFiles):
    hello = MemoryPair(_server(files), files.client_context()).first_client_bytes()
    assert looks_like_tls_handshake(hello) and looks_like_tls_handshake(hello[:1])
    assert not looks_like_plaintext_http(hello)
    assert not looks_like_plaintext_http(hello[:1])


def test_no_first_byte_is_both():
    for value in range(256):
        first = bytes([value])
        assert not (looks_like_plaintext_http(first) and looks_like_tls_handshake(first))
    assert not looks_like_plaintext_http(b"") and not looks_like_tls_handshake(b"")
