"""The HTTP contract every framework app in this package implements, and the checks for it.

Each test module builds one small app in its framework with these routes:

``GET /items/<int item_id>/<name>?q=...``
    200 text/plain ``describe_item(item_id, name, q)``; a non-integer ``item_id`` is a 404.
``POST /form`` (urlencoded ``name`` once and ``tags`` repeated)
    200 text/plain ``describe_form(name, tags)``.
``POST /upload`` (multipart: text field ``note``, file field ``upload``)
    200 text/plain ``describe_upload(note, filename, data)``.
``GET /cookies/set``
    200 ``"cookies set"`` with two separate Set-Cookie fields, ``flavour=oatmeal`` (HttpOnly)
    and ``visits=1``, both ``Path=/`` and not Secure.
``GET /cookies/get``
    200 text/plain ``describe_cookies(flavour, visits)`` from the request's cookies.
``GET /stream?gate=<token>``
    200 text/plain, no Content-Length, body produced by ``stream_parts(token)``.

The checks talk to the app over a real socket with ``requests`` (and the raw client where
the exact bytes on the wire matter). Apps and checks share only the ``describe_*`` helpers
and ``stream_parts``, so a body that arrives changed on either side fails the comparison.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import threading
import uuid
from typing import Iterator, Sequence

import requests

from tests.httpclient import Response as RawResponse
from tests.httpclient import request as raw_request

UPLOAD_BYTES = random.Random(20240601).randbytes(300 * 1024)
UPLOAD_FILENAME = "payload.bin"
UPLOAD_NOTE = "naïve note ✓"
FORM_NAME = "Ada & Grace = ü"
FORM_TAGS = ["red", "green+blue"]
COOKIE_FLAVOUR = "oatmeal"
COOKIE_VISITS = "1"
STREAM_PARTS = [b"part-%d:" % index + bytes([65 + index]) * 4000 + b"\n" for index in range(5)]
GATE_TIMEOUT_SECONDS = 10.0
STALLED_MARKER = b"[the first part never reached the client]"
REQUEST_TIMEOUT_SECONDS = 20.0

_gates: dict[str, threading.Event] = {}


# -- helpers the apps call -----------------------------------------------------------------


def describe_item(item_id: int, name: str, query: str) -> str:
    return f"item={item_id};name={name};q={query}"


def describe_form(name: str, tags: Sequence[str]) -> str:
    return f"name={name};tags={'|'.join(tags)}"


def describe_upload(note: str, filename: str, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"note={note};filename={filename};size={len(data)};sha256={digest}"


def describe_cookies(flavour: str | None, visits: str | None) -> str:
    return f"flavour={flavour};visits={visits}"


def stream_parts(token: str) -> Iterator[bytes]:
    """Yield the first part, then wait until the client has received it, then the rest.

    If the server held the first part back (buffered the whole response), the client never
    opens the gate; after ``GATE_TIMEOUT_SECONDS`` this yields ``STALLED_MARKER`` instead of
    the remaining parts, so the test fails on the body rather than hanging.
    """
    yield STREAM_PARTS[0]
    gate = _gates.get(token)
    if gate is None or not gate.wait(GATE_TIMEOUT_SECONDS):
        yield STALLED_MARKER
        return
    yield from STREAM_PARTS[1:]


# -- checks the tests call -----------------------------------------------------------------


def base_url(address: tuple[str, int]) -> str:
    host, port = address
    return f"http://{host}:{port}"


@contextlib.contextmanager
def http_session() -> Iterator[requests.Session]:
    """A ``requests`` session whose sockets are all closed when the block ends.

    ``Session.close()`` forgets urllib3's pools but (urllib3 2) leaves their idle sockets to
    the garbage collector; when an assertion fails, its traceback keeps them alive past the
    server fixture's leak check. Responses are closed by their own ``with`` blocks first, so
    every connection is back in its pool here.
    """
    with requests.Session() as session:
        try:
            yield session
        finally:
            for adapter in session.adapters.values():
                pools = adapter.poolmanager.pools
                for key in pools.keys():  # noqa: SIM118 - the container refuses plain iteration
                    pools[key].close()


def raw_get(address: tuple[str, int], target: str) -> RawResponse:
    """One GET over a fresh raw socket, so the test sees the response exactly as sent."""
    host, port = address
    head = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    return raw_request(address, head.encode("ascii"))


def check_routing(address: tuple[str, int]) -> None:
    url = base_url(address)
    with http_session() as session:
        with session.get(
            f"{url}/items/42/caf%C3%A9%20au%20lait?q=a+b%26c", timeout=REQUEST_TIMEOUT_SECONDS
        ) as response:
            assert response.status_code == 200
            assert response.headers.get("Content-Type", "").startswith("text/plain")
            assert response.content == describe_item(42, "café au lait", "a b&c").encode("utf-8")
        with session.get(f"{url}/items/forty-two/x", timeout=REQUEST_TIMEOUT_SECONDS) as not_an_int:
            assert not_an_int.status_code == 404
        with session.get(f"{url}/no/such/route", timeout=REQUEST_TIMEOUT_SECONDS) as missing:
            assert missing.status_code == 404


def check_form_post(address: tuple[str, int]) -> None:
    with (
        http_session() as session,
        session.post(
            f"{base_url(address)}/form",
            data={"name": FORM_NAME, "tags": FORM_TAGS},
            timeout=REQUEST_TIMEOUT_SECONDS,
        ) as response,
    ):
        assert response.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert response.status_code == 200
        assert response.content == describe_form(FORM_NAME, FORM_TAGS).encode("utf-8")


def check_upload(address: tuple[str, int]) -> None:
    with (
        http_session() as session,
        session.post(
            f"{base_url(address)}/upload",
            data={"note": UPLOAD_NOTE},
            files={"upload": (UPLOAD_FILENAME, UPLOAD_BYTES, "application/octet-stream")},
            timeout=REQUEST_TIMEOUT_SECONDS,
        ) as response,
    ):
        assert int(response.request.headers["Content-Length"]) > len(UPLOAD_BYTES)
        assert response.status_code == 200
        expected = describe_upload(UPLOAD_NOTE, UPLOAD_FILENAME, UPLOAD_BYTES)
        assert response.content == expected.encode("utf-8")


def multipart_body(boundary: str, note: str, filename: str, data: bytes) -> bytes:
    """A multipart/form-data body (RFC 7578) with one text field and one file."""
    return b"".join(
        [
            f"--{boundary}\r\n".encode("ascii"),
            b'Content-Disposition: form-data; name="note"\r\n\r\n',
            note.encode("utf-8"),
            f"\r\n--{boundary}\r\n".encode("ascii"),
            f'Content-Disposition: form-data; name="upload"; filename="{filename}"\r\n'.encode("ascii"),
            b"Content-Type: application/octet-stream\r\n\r\n",
            data,
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        ]
    )


def check_chunked_upload(address: tuple[str, int]) -> None:
    boundary = "waitress-like-" + uuid.uuid4().hex
    body = multipart_body(boundary, UPLOAD_NOTE, UPLOAD_FILENAME, UPLOAD_BYTES)
    # An odd piece size, so chunk edges fall inside boundaries and CRLFs.
    piece_bytes = 7001

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), piece_bytes):
            yield body[start : start + piece_bytes]

    with (
        http_session() as session,
        session.post(
            f"{base_url(address)}/upload",
            data=pieces(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            timeout=REQUEST_TIMEOUT_SECONDS,
        ) as response,
    ):
        assert response.request.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in response.request.headers
        assert response.status_code == 200
        expected = describe_upload(UPLOAD_NOTE, UPLOAD_FILENAME, UPLOAD_BYTES)
        assert response.content == expected.encode("utf-8")


def check_cookies(address: tuple[str, int]) -> None:
    url = base_url(address)
    with http_session() as session:
        with session.get(f"{url}/cookies/set", timeout=REQUEST_TIMEOUT_SECONDS) as first:
            assert first.status_code == 200
            assert first.content == b"cookies set"
        assert session.cookies.get("flavour", path="/") == COOKIE_FLAVOUR
        assert session.cookies.get("visits", path="/") == COOKIE_VISITS

        with session.get(f"{url}/cookies/get", timeout=REQUEST_TIMEOUT_SECONDS) as second:
            sent = second.request.headers["Cookie"]
            assert sent in ("flavour=oatmeal; visits=1", "visits=1; flavour=oatmeal")
            assert second.status_code == 200
            assert second.content == describe_cookies(COOKIE_FLAVOUR, COOKIE_VISITS).encode("utf-8")

    # On the wire: two separate Set-Cookie fields (never folded into one line).
    raw = raw_get(address, "/cookies/set")
    set_cookies = sorted(raw.header_list("Set-Cookie"))
    assert len(set_cookies) == 2, raw.headers
    flavour, visits = set_cookies
    assert flavour.startswith("flavour=oatmeal;")
    assert visits.startswith("visits=1;")
    assert "httponly" in flavour.lower()
    for field in set_cookies:
        assert "path=/" in field.lower()
        assert "secure" not in field.lower()


@contextlib.contextmanager
def _gate() -> Iterator[tuple[str, threading.Event]]:
    token = uuid.uuid4().hex
    gate = _gates[token] = threading.Event()
    try:
        yield token, gate
    finally:
        gate.set()  # never leave a worker waiting, even when the check failed
        del _gates[token]


def check_streaming(address: tuple[str, int]) -> None:
    expected = b"".join(STREAM_PARTS)
    with http_session() as session, _gate() as (token, gate):
        with session.get(
            f"{base_url(address)}/stream",
            params={"gate": token},
            stream=True,
            timeout=REQUEST_TIMEOUT_SECONDS,
        ) as response:
            assert response.status_code == 200
            assert response.headers.get("Transfer-Encoding") == "chunked"
            assert "Content-Length" not in response.headers
            received = b""
            pieces = response.iter_content(chunk_size=None)
            # The first part must arrive while the app is still waiting to produce the rest.
            while len(received) < len(STREAM_PARTS[0]):
                received += next(pieces)
            assert received == STREAM_PARTS[0]
            gate.set()
            received += b"".join(pieces)
        assert received == expected

    # On the wire: valid chunk framing (the raw client checks each chunk's CRLF) and one
    # Transfer-Encoding field.
    with _gate() as (token, gate):
        gate.set()
        raw = raw_get(address, f"/stream?gate={token}")
    assert raw.status == 200
    assert raw.header_list("Transfer-Encoding") == ["chunked"]
    assert raw.header("Content-Length") is None
    assert raw.body == expected
