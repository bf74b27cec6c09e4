"""ProxyProtocolReader: PROXY protocol v1 and v2 headers, good, malformed and hostile.

Every input goes through :func:`read`, which feeds it whole, byte by byte and at seeded
random split points and insists that all three end the same way.
"""

from __future__ import annotations

import random
import time
from typing import Optional, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waitress_like.haproxy import (
    NEED_DATA,
    V1_MAX_LINE_BYTES,
    ProxyHeader,
    ProxyProtocolError,
    ProxyProtocolReader,
)

from . import ppv2

HTTP = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
Outcome = Union[ProxyHeader, ProxyProtocolError, None]  # None: still waiting for bytes


def feed_pieces(pieces: list[bytes], versions: str = "auto", required: bool = True) -> Outcome:
    reader = ProxyProtocolReader(versions, required=required)
    for piece in pieces:
        try:
            result = reader.feed(piece)
        except ProxyProtocolError as error:
            return error
        if result is not NEED_DATA:
            assert isinstance(result, ProxyHeader)
            return result
    return None


def _same(first: Outcome, second: Outcome) -> bool:
    if isinstance(first, ProxyHeader) and isinstance(second, ProxyHeader):
        # A header completes at the piece that ends it: later pieces were not fed.
        return (
            repr(first).split(", leftover=")[0] == repr(second).split(", leftover=")[0]
            and first.tlvs == second.tlvs
        )
    return type(first) is type(second)


def read(data: bytes, versions: str = "auto", required: bool = True, seed: int = 0) -> Outcome:
    """Whole, byte by byte and at random splits: the same outcome, or the test fails."""
    whole = feed_pieces([data], versions, required)
    bytewise = feed_pieces([data[i : i + 1] for i in range(len(data))], versions, required)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, 5))) if len(data) > 1 else []
    split = feed_pieces([data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])], versions, required)
    for other in (bytewise, split):
        assert _same(whole, other), (whole, other)
    if isinstance(whole, ProxyHeader):
        # Fed whole, everything after the header comes back as leftover.
        header_size = len(data) - len(whole.leftover)
        assert data[header_size:] == whole.leftover
        for other in (bytewise, split):
            assert isinstance(other, ProxyHeader)
            assert other.leftover == data[header_size : header_size + len(other.leftover)]
    return whole


# -- version 1 --------------------------------------------------------------------------------


def test_v1_tcp4():
    header = read(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n" + HTTP)
    assert isinstance(header, ProxyHeader)
    assert (header.version, header.command, header.family) == (1, "PROXY", "INET")
    assert (header.source_addr, header.source_port) == ("192.168.0.1", 56324)
    assert (header.dest_addr, header.dest_port) == ("192.168.0.11", 443)
    assert header.leftover == HTTP
    assert header.client_address() == ("192.168.0.1", "56324")


def test_v1_tcp6():
    header = read(ppv2.v1("2001:db8::1", "::ffff:192.0.2.1", 0, 65535) + HTTP)
    assert isinstance(header, ProxyHeader)
    assert header.family == "INET6"
    assert header.client_address() == ("2001:db8::1", "0")
    assert header.dest_addr == "::ffff:192.0.2.1"


@pytest.mark.parametrize("line", [b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN ffff::1 whatever \x01 goes\r\n"])
def test_v1_unknown_keeps_the_real_endpoints(line: bytes):
    header = read(line + HTTP)
    assert isinstance(header, ProxyHeader)
    assert header.version == 1 and header.family == "UNSPEC"
    assert header.client_address() is None
    assert header.leftover == HTTP


def test_v1_longest_line_is_accepted():
    ipv6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    line = f"PROXY UNKNOWN {ipv6} {ipv6} 65535 65535\r\n".encode()
    assert len(line) == V1_MAX_LINE_BYTES
    assert isinstance(read(line), ProxyHeader)
    tcp6 = ppv2.v1(ipv6, ipv6, 65535, 65535)
    assert isinstance(read(tcp6), ProxyHeader)


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 192.168.0.1 192.16...\r\n",  # gunicorn corpus invalid/pp_01
        b"PROXY TCP4 192.168.0.1 192.168.0.11 65iii 100000\r\n",  # invalid/pp_02
        b"PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n",  # invalid/pp_03
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n",  # bare LF
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\r\n",
        b"PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n",  # two spaces
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",
        b"PROXY TCP4 192.168.0.01 192.168.0.11 56324 443\r\n",  # leading zero (octal?)
        b"PROXY TCP4 192.168.0.256 192.168.0.11 56324 443\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
        b"PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n",
        b"PROXY TCP4 ::1 ::1 1 2\r\n",  # family mismatch
        b"PROXY TCP6 192.168.0.1 192.168.0.11 1 2\r\n",
        b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",  # no zone ids
        b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
        b"PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n",
        b"PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        b"PROXY \r\n",
        b"PROXY TCP4 \xc2\xb9.2.3.4 1.2.3.4 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.4 \xd9\xa1 2\r\n",  # Arabic-Indic digit one
        b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\x00\r\n",
    ],
)
def test_v1_malformed(line: bytes):
    assert isinstance(read(line + HTTP), ProxyProtocolError)


def test_v1_without_crlf_in_107_bytes_is_refused_without_reading_on():
    reader = ProxyProtocolReader("v1")
    assert reader.feed(b"PROXY UNKNOWN " + b"x" * (V1_MAX_LINE_BYTES - 15)) is NEED_DATA
    with pytest.raises(ProxyProtocolError, match="CRLF"):
        reader.feed(b"x")
    assert reader.buffered_byte_count == 0


def test_v1_line_end_just_past_the_limit_is_refused():
    line = b"PROXY UNKNOWN " + b"x" * (V1_MAX_LINE_BYTES - 15) + b"\r\n"
    assert len(line) == V1_MAX_LINE_BYTES + 1
    assert isinstance(read(line), ProxyProtocolError)


# -- version 2 --------------------------------------------------------------------------------


def test_v2_inet():
    header = read(ppv2.v2("192.168.1.10", "192.168.1.1", 12345, 443) + HTTP)
    assert isinstance(header, ProxyHeader)
    assert (header.version, header.command, header.family, header.transport) == (2, "PROXY", "INET", "STREAM")
    assert header.client_address() == ("192.168.1.10", "12345")
    assert (header.dest_addr, header.dest_port) == ("192.168.1.1", 443)
    assert header.leftover == HTTP


def test_v2_inet6_with_tlvs():
    tlvs = ((0x02, b"example.com"), (0x04, b""), (0x05, b"\x00" * 128), (0xE0, b"custom"))
    header = read(ppv2.v2("2001:db8::1", "2001:db8::2", 54321, 80, tlvs=tlvs) + HTTP)
    assert isinstance(header, ProxyHeader)
    assert header.client_address() == ("2001:db8::1", "54321")
    assert header.tlvs == tlvs
    assert header.leftover == HTTP


def test_gunicorn_corpus_v2_bytes():
    # valid/pp_04 and valid/pp_05: hand-written by gunicorn's authors, not by our builder.
    ipv4 = b"\r\n\r\n\x00\r\nQUIT\n!\x11\x00\x0c\xc0\xa8\x01\n\xc0\xa8\x01\x0109\x01\xbb"
    header = read(ipv4 + HTTP)
    assert isinstance(header, ProxyHeader) and header.client_address() == ("192.168.1.10", "12345")
    ipv6 = (
        b"\r\n\r\n\x00\r\nQUIT\n!!\x00$ \x01\r\xb8"
        + b"\x00" * 11
        + b"\x01 \x01\r\xb8"
        + b"\x00" * 11
        + b"\x02\xd41\x00P"
    )
    header = read(ipv6 + HTTP)
    assert isinstance(header, ProxyHeader) and header.client_address() == ("2001:db8::1", "54321")


def test_v2_local_command_keeps_the_real_endpoints():
    # Health checks: LOCAL, usually UNSPEC with no address; the length must still be skipped.
    for data in (ppv2.v2(command="LOCAL"), ppv2.v2("10.0.0.1", "10.0.0.2", 1, 2, command="LOCAL")):
        header = read(data + HTTP)
        assert isinstance(header, ProxyHeader)
        assert header.command == "LOCAL" and header.client_address() is None
        assert header.leftover == HTTP


@pytest.mark.parametrize("transport", ["UNSPEC", "STREAM"])
def test_v2_unspec_family_keeps_the_real_endpoints(transport: str):
    header = read(ppv2.v2(family="UNSPEC", transport=transport, address_block=b"ignored") + HTTP)
    assert isinstance(header, ProxyHeader)
    assert header.family == "UNSPEC" and header.client_address() is None
    assert header.leftover == HTTP


def test_v2_unspec_transport_ignores_the_addresses():
    header = read(ppv2.v2("10.0.0.1", "10.0.0.2", 1, 2, transport="UNSPEC") + HTTP)
    assert isinstance(header, ProxyHeader) and header.client_address() is None


def test_v2_unix_family():
    header = read(ppv2.v2("/run/client.sock", "/run/haproxy.sock", family="UNIX") + HTTP)
    assert isinstance(header, ProxyHeader)
    assert header.family == "UNIX"
    assert (header.source_addr, header.dest_addr) == ("/run/client.sock", "/run/haproxy.sock")
    assert header.client_address() == ("localhost", "")
    assert header.leftover == HTTP


def test_v2_dgram_is_read_like_stream():
    header = read(ppv2.v2("10.0.0.1", "10.0.0.2", 5353, 53, transport="DGRAM"))
    assert isinstance(header, ProxyHeader) and header.client_address() == ("10.0.0.1", "5353")


def _with_byte(data: bytes, index: int, value: int) -> bytes:
    return data[:index] + bytes([value]) + data[index + 1 :]


GOOD_V2 = ppv2.v2("10.0.0.1", "10.0.0.2", 1, 2)


@pytest.mark.parametrize(
    "data",
    [
        ppv2.v2("10.0.0.1", "10.0.0.2", 1, 2, version=1),
        ppv2.v2("10.0.0.1", "10.0.0.2", 1, 2, version=3),
        _with_byte(GOOD_V2, 12, 0x22),  # command 2 is unassigned
        _with_byte(GOOD_V2, 12, 0x2F),
        _with_byte(GOOD_V2, 13, 0x41),  # family 4
        _with_byte(GOOD_V2, 13, 0x13),  # transport 3
        ppv2.v2(family="INET", address_block=b"\x00" * 11),  # short address block
        ppv2.v2(family="INET6", address_block=b"\x00" * 35),
        ppv2.v2(family="UNIX", address_block=b"\x00" * 215),
        # TLVs cut short or running past the end of the header
        ppv2.v2(family="INET", address_block=GOOD_V2[16:] + b"\x01\x00"),
        ppv2.v2(family="INET", address_block=GOOD_V2[16:] + b"\x01\x00\x05abc"),
    ],
)
def test_v2_malformed(data: bytes):
    assert isinstance(read(data + HTTP), ProxyProtocolError)


def test_v2_size_is_bounded_before_the_bytes_arrive():
    reader = ProxyProtocolReader("v2")
    with pytest.raises(ProxyProtocolError, match="more than"):
        reader.feed(ppv2.V2_SIGNATURE + b"\x21\x11\xff\xff")
    big = ppv2.v2("10.0.0.1", "10.0.0.2", 1, 2, tlvs=((0x04, b"x" * 4000),))
    assert isinstance(read(big), ProxyHeader)
    too_big = ppv2.v2("10.0.0.1", "10.0.0.2", 1, 2, tlvs=((0x04, b"x" * 4100),))
    assert isinstance(read(too_big), ProxyProtocolError)


# -- which versions, and whether one is required ----------------------------------------------

V1_LINE = ppv2.v1("10.1.1.1", "10.1.1.2", 1000, 80)


@pytest.mark.parametrize(
    "versions, data, accepted",
    [
        ("v1", V1_LINE, True),
        ("v1", GOOD_V2, False),
        ("v2", V1_LINE, False),
        ("v2", GOOD_V2, True),
        ("auto", V1_LINE, True),
        ("auto", GOOD_V2, True),
    ],
)
def test_versions(versions: str, data: bytes, accepted: bool):
    outcome = read(data + HTTP, versions)
    assert isinstance(outcome, ProxyHeader) is accepted


@pytest.mark.parametrize("versions", ["v1", "v2", "auto"])
@pytest.mark.parametrize(
    "data", [HTTP, b"\r\n" + HTTP, b"PROXY", b"PROXYGET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01"]
)
def test_required_header_missing(versions: str, data: bytes):
    assert isinstance(read(data + HTTP, versions, required=True), ProxyProtocolError)


@pytest.mark.parametrize(
    "data",
    [
        HTTP,
        b"\r\n" + HTTP,  # RFC 9112 2.2: blank lines before a request; also a v2 prefix
        b"\r\n\r\n" + HTTP,
        b"\r\n\r\n\r\n" + HTTP,
        b"POST / HTTP/1.1\r\n\r\n",
        b"PROXYFOO / HTTP/1.1\r\n\r\n",
        b"P",  # one byte: a prefix; then EOF, nothing to serve anyway
    ],
)
def test_optional_header_absent_hands_every_byte_back(data: bytes):
    outcome = read(data, "auto", required=False)
    if data in (b"P",):
        assert outcome is None  # still a prefix of "PROXY "
        return
    assert isinstance(outcome, ProxyHeader)
    assert outcome.version is None and outcome.client_address() is None
    assert outcome.leftover == data


def test_optional_header_present_is_read():
    outcome = read(V1_LINE + HTTP, "auto", required=False)
    assert isinstance(outcome, ProxyHeader) and outcome.version == 1
    assert outcome.leftover == HTTP


def test_a_finished_reader_refuses_more_bytes():
    reader = ProxyProtocolReader()
    assert isinstance(reader.feed(V1_LINE), ProxyHeader)
    with pytest.raises(RuntimeError):
        reader.feed(b"x")
    failed = ProxyProtocolReader()
    with pytest.raises(ProxyProtocolError):
        failed.feed(b"GET")
    with pytest.raises(RuntimeError):
        failed.feed(b"x")


def test_bad_reader_arguments():
    with pytest.raises(ValueError):
        ProxyProtocolReader("v3")
    with pytest.raises(ValueError):
        ProxyProtocolReader(max_v2_bytes=100)


def test_protocol_errors_answer_400():
    try:
        ProxyProtocolReader().feed(b"GET")
    except ProxyProtocolError as error:
        assert error.status_hint == 400


def test_header_is_immutable():
    header = read(V1_LINE)
    assert isinstance(header, ProxyHeader)
    with pytest.raises(AttributeError):
        header.source_addr = "6.6.6.6"  # type: ignore[misc]


def test_linear_time_on_hostile_trickles():
    # Byte by byte, a maximal v2 header and a maximal v1 line each take well under a second.
    big = ppv2.v2("10.0.0.1", "10.0.0.2", 1, 2, tlvs=((0x04, b"x" * 4000),))
    for data in (big, b"PROXY UNKNOWN " + b"x" * 90 + b"\r\n"):
        reader = ProxyProtocolReader()
        started = time.perf_counter()
        outcome: object = NEED_DATA
        for index in range(len(data)):
            outcome = reader.feed(data[index : index + 1])
        assert isinstance(outcome, ProxyHeader)
        assert time.perf_counter() - started < 1.0


# -- properties -------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FRAGMENTS = [
    b"PROXY", b" ", b"TCP4", b"TCP6", b"UNKNOWN", b"1.2.3.4", b"::1", b"65535", b"0", b"\r\n", b"\r", b"\n",
    ppv2.V2_SIGNATURE, ppv2.V2_SIGNATURE[:5], b"\x21", b"\x20", b"\x11", b"\x21\x11\x00\x0c", b"\x00",
    b"\xff", b"GET / HTTP/1.1\r\n",
]  # fmt: skip

fragment_bytes = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=6)), max_size=30).map(
    b"".join
)


@PROPERTY_SETTINGS
@given(
    data=fragment_bytes,
    versions=st.sampled_from(["v1", "v2", "auto"]),
    required=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_any_bytes_end_the_same_way_however_split(data: bytes, versions: str, required: bool, seed: int):
    outcome = read(data, versions, required, seed)
    assert outcome is None or isinstance(outcome, (ProxyHeader, ProxyProtocolError))


ipv4s = st.ip_addresses(v=4).map(str)
ipv6s = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535)


@PROPERTY_SETTINGS
@given(
    use_v2=st.booleans(),
    ipv6=st.booleans(),
    data=st.data(),
    tail=st.binary(max_size=40),
    seed=st.integers(0, 1000),
)
def test_generated_headers_read_back(use_v2: bool, ipv6: bool, data: st.DataObject, tail: bytes, seed: int):
    addresses = ipv6s if ipv6 else ipv4s
    source, dest = data.draw(addresses), data.draw(addresses)
    source_port, dest_port = data.draw(ports), data.draw(ports)
    tlvs = tuple(data.draw(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=20)), max_size=4)))
    if use_v2:
        header_bytes = ppv2.v2(source, dest, source_port, dest_port, tlvs=tlvs)
    else:
        header_bytes = ppv2.v1(source, dest, source_port, dest_port)
    outcome: Optional[object] = read(
        header_bytes + tail, "auto", required=data.draw(st.booleans()), seed=seed
    )
    assert isinstance(outcome, ProxyHeader)
    assert outcome.client_address() == (source, str(source_port))
    assert (outcome.dest_addr, outcome.dest_port) == (dest, dest_port)
    assert outcome.leftover == tail
    assert outcome.tlvs == (tlvs if use_v2 else ())
