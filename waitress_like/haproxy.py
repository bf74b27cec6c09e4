"""The HAProxy PROXY protocol, versions 1 (text) and 2 (binary), sans I/O.

A proxy that relays whole TCP connections (HAProxy in TCP mode, nginx's ``stream``
module, cloud network load balancers) cannot add HTTP headers; instead it sends one
header before the relayed bytes, naming the client's address ("The PROXY protocol,
Versions 1 & 2", HAProxy's ``doc/proxy-protocol.txt``).

:class:`ProxyProtocolReader` is fed the first bytes of a connection. It answers
:data:`NEED_DATA`, a :class:`ProxyHeader` (which carries the bytes after the header in
``leftover``), or raises :class:`ProxyProtocolError`, after which the connection must be
closed (spec 2.1: "Any sequence which does not exactly match the protocol must be
discarded and cause the receiver to abort the connection"). Every byte is looked at a
bounded number of times, and the header is bounded in size, so a hostile peer costs
linear time and a few kilobytes at most.

Nothing here touches sockets or settings; who may send a header is the caller's policy.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Optional, Union

from .errors import RemoteProtocolError

__all__ = [
    "NEED_DATA",
    "V1_SIGNATURE",
    "V2_SIGNATURE",
    "ProxyHeader",
    "ProxyProtocolError",
    "ProxyProtocolReader",
]

#: Spec 2.1: "PROXY" and exactly one space start a version 1 line.
V1_SIGNATURE = b"PROXY "
#: Spec 2.2: the twelve bytes that start a version 2 header.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: Spec 2.1: the longest version 1 line, CRLF included.
V1_MAX_LINE_BYTES = 107
#: Version 2 headers (16 fixed bytes plus addresses plus TLVs) larger than this are refused.
#: Real senders stay far below it: the spec asks that the header fit one 536-byte segment.
DEFAULT_MAX_V2_BYTES = 16 + 4096

_V2_FIXED_BYTES = 16
_V2_COMMANDS = {0x0: "LOCAL", 0x1: "PROXY"}
_V2_FAMILIES = {0x0: "UNSPEC", 0x1: "INET", 0x2: "INET6", 0x3: "UNIX"}
_V2_TRANSPORTS = {0x0: "UNSPEC", 0x1: "STREAM", 0x2: "DGRAM"}
# Address block size per family (spec 2.2): two addresses, then two ports for IP.
_V2_ADDRESS_BYTES = {"INET": 12, "INET6": 36, "UNIX": 216}
_UNIX_PATH_BYTES = 108

# Spec 2.1: exactly 4 decimal numbers in 0..255, no leading zeroes; ports likewise.
_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_V1_IPV4 = re.compile(rf"{_DEC_OCTET}(?:\.{_DEC_OCTET}){{3}}")
_V1_IPV6_CHARACTERS = re.compile(r"[0-9A-Fa-f:.]+")
_V1_PORT = re.compile(r"0|[1-9][0-9]{0,4}")


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by :meth:`ProxyProtocolReader.feed` while the header is still incomplete.
NEED_DATA = _NeedData()


class ProxyProtocolError(RemoteProtocolError):
    """The connection does not start with an acceptable PROXY header: close it."""


class ProxyHeader:
    """What a PROXY header said, plus the bytes that followed it. Immutable.

    ``version`` is 1 or 2, or None when the reader was told the header is optional and
    the connection did not start with one. ``command`` is ``"PROXY"`` (relayed for a
    client) or ``"LOCAL"`` (v2: the proxy's own connection, e.g. a health check).
    ``family`` is ``"INET"``, ``"INET6"``, ``"UNIX"`` or ``"UNSPEC"`` (v1 ``UNKNOWN``).
    Addresses are text (IP addresses as usual, unix paths decoded as latin-1); ports are
    ints or None. ``tlvs`` holds v2's type-length-value extensions as ``(type, value)``
    pairs, unverified and otherwise ignored.
    """

    __slots__ = (
        "version",
        "command",
        "family",
        "transport",
        "source_addr",
        "source_port",
        "dest_addr",
        "dest_port",
        "tlvs",
        "leftover",
    )

    version: Optional[int]
    command: str
    family: str
    transport: str
    source_addr: Optional[str]
    source_port: Optional[int]
    dest_addr: Optional[str]
    dest_port: Optional[int]
    tlvs: tuple[tuple[int, bytes], ...]
    leftover: bytes

    def __init__(
        self,
        *,
        version: Optional[int],
        command: str = "PROXY",
        family: str = "UNSPEC",
        transport: str = "UNSPEC",
        source_addr: Optional[str] = None,
        source_port: Optional[int] = None,
        dest_addr: Optional[str] = None,
        dest_port: Optional[int] = None,
        tlvs: tuple[tuple[int, bytes], ...] = (),
        leftover: bytes = b"",
    ) -> None:
        values = locals()
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ProxyHeader is immutable")

    def client_address(self) -> Optional[tuple[str, str]]:
        """``(REMOTE_ADDR, REMOTE_PORT)`` to use, or None to keep the real peer's.

        None for no header, a LOCAL command and the UNSPEC family (the spec says to use
        the real connection endpoints then). A unix-socket client is ``("localhost",
        "")``, as for a connection to our own unix listener.
        """
        if self.version is None or self.command != "PROXY":
            return None
        if self.family == "UNIX":
            return "localhost", ""
        if self.source_addr is None or self.family == "UNSPEC":
            return None
        port = "" if self.source_port is None else str(self.source_port)
        return self.source_addr, port

    def __repr__(self) -> str:
        return (
            f"ProxyHeader(version={self.version!r}, command={self.command!r}, family={self.family!r}, "
            f"source=({self.source_addr!r}, {self.source_port!r}), dest=({self.dest_addr!r}, "
            f"{self.dest_port!r}), leftover={self.leftover!r})"
        )


class ProxyProtocolReader:
    """Reads the PROXY header at the start of one connection; use one per connection.

    ``versions`` is ``"v1"``, ``"v2"`` or ``"auto"`` (either). With ``required`` a
    connection that does not start with an accepted signature is an error; without it,
    such bytes are handed back untouched in a :class:`ProxyHeader` whose ``version`` is
    None. Bytes that are still a prefix of a signature make the reader wait for more, so
    an HTTP request is told apart whatever the splits.
    """

    __slots__ = ("_buffer", "_kind", "_scan_from", "_done", "_signatures", "_required", "_max_v2_bytes")

    def __init__(
        self,
        versions: str = "auto",
        *,
        required: bool = True,
        max_v2_bytes: int = DEFAULT_MAX_V2_BYTES,
    ) -> None:
        signatures: dict[str, tuple[tuple[int, bytes], ...]] = {
            "v1": ((1, V1_SIGNATURE),),
            "v2": ((2, V2_SIGNATURE),),
            "auto": ((1, V1_SIGNATURE), (2, V2_SIGNATURE)),
        }
        if versions not in signatures:
            raise ValueError(f"versions must be 'v1', 'v2' or 'auto', not {versions!r}")
        if max_v2_bytes < _V2_FIXED_BYTES + _V2_ADDRESS_BYTES["UNIX"]:
            raise ValueError("max_v2_bytes must leave room for a unix address block")
        self._signatures = signatures[versions]
        self._required = required
        self._max_v2_bytes = max_v2_bytes
        self._buffer = bytearray()
        self._kind = 0  # 0 until a signature is recognised, then 1 or 2
        self._scan_from = 0  # v1: where the search for the line end goes on
        self._done = False

    @property
    def buffered_byte_count(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> Union[ProxyHeader, _NeedData]:
        """Add received bytes; return the header once complete, else :data:`NEED_DATA`.

        Raises :class:`ProxyProtocolError` for a malformed or refused header. After a
        header (or an error) the reader is finished and must not be fed again.
        """
        if self._done:
            raise RuntimeError("this PROXY header reader has already finished")
        self._buffer += data
        try:
            if not self._kind:
                kind = self._recognise()
                if kind is None:
                    return NEED_DATA
                if kind == 0:
                    if self._required:
                        raise ProxyProtocolError("the connection does not start with a PROXY protocol header")
                    return self._finish(ProxyHeader(version=None), 0)
                self._kind = kind
            return self._read_v1() if self._kind == 1 else self._read_v2()
        except ProxyProtocolError:
            self._done = True
            self._buffer = bytearray()
            raise

    # -- recognising ------------------------------------------------------------------

    def _recognise(self) -> Optional[int]:
        """1 or 2 for a full signature, 0 for none possible, None: still a prefix."""
        buffer = self._buffer
        waiting = False
        for kind, signature in self._signatures:
            size = min(len(buffer), len(signature))
            if buffer[:size] == signature[:size]:
                if size == len(signature):
                    return kind
                waiting = True
        return None if waiting else 0

    def _finish(self, header: ProxyHeader, consumed: int) -> ProxyHeader:
        object.__setattr__(header, "leftover", bytes(self._buffer[consumed:]))
        self._buffer = bytearray()
        self._done = True
        return header

    # -- version 1 ----------------------------------------------------------------------

    def _read_v1(self) -> Union[ProxyHeader, _NeedData]:
        buffer = self._buffer
        line_feed = buffer.find(b"\n", self._scan_from, V1_MAX_LINE_BYTES)
        if line_feed < 0:
            if len(buffer) >= V1_MAX_LINE_BYTES:
                raise ProxyProtocolError(f"PROXY v1 line without CRLF in its first {V1_MAX_LINE_BYTES} bytes")
            self._scan_from = len(buffer)
            return NEED_DATA
        if buffer[line_feed - 1] != 0x0D:
            raise ProxyProtocolError("PROXY v1 line ended by a bare LF instead of CRLF")
        line = bytes(buffer[len(V1_SIGNATURE) : line_feed - 1])
        return self._finish(_parse_v1_line(line), line_feed + 1)

    # -- version 2 ----------------------------------------------------------------------

    def _read_v2(self) -> Union[ProxyHeader, _NeedData]:
        buffer = self._buffer
        if len(buffer) < _V2_FIXED_BYTES:
            return NEED_DATA
        version, command_bits = buffer[12] >> 4, buffer[12] & 0x0F
        if version != 2:
            raise ProxyProtocolError(f"PROXY v2 header with version {version}, not 2")
        command = _V2_COMMANDS.get(command_bits)
        if command is None:
            raise ProxyProtocolError(f"PROXY v2 header with unassigned command {command_bits:#x}")
        family = _V2_FAMILIES.get(buffer[13] >> 4)
        transport = _V2_TRANSPORTS.get(buffer[13] & 0x0F)
        if family is None or transport is None:
            raise ProxyProtocolError(f"PROXY v2 header with unassigned family/transport {buffer[13]:#04x}")
        total = _V2_FIXED_BYTES + int.from_bytes(buffer[14:16], "big")
        if total > self._max_v2_bytes:
            raise ProxyProtocolError(f"PROXY v2 header of {total} bytes, more than {self._max_v2_bytes}")
        if len(buffer) < total:
            return NEED_DATA
        block = bytes(buffer[_V2_FIXED_BYTES:total])
        return self._finish(_parse_v2_block(command, family, transport, block), total)


def _parse_v1_line(line: bytes) -> ProxyHeader:
    """``line`` is what follows ``"PROXY "`` up to (not including) the CRLF."""
    if line == b"UNKNOWN" or line.startswith(b"UNKNOWN "):
        # Spec 2.1: the receiver must ignore anything after UNKNOWN and use the real
        # connection's endpoints.
        return ProxyHeader(version=1, family="UNSPEC", transport="STREAM")
    fields = line.split(b" ")
    if len(fields) != 5 or fields[0] not in (b"TCP4", b"TCP6"):
        raise ProxyProtocolError(f"malformed PROXY v1 line {line[:V1_MAX_LINE_BYTES]!r}")
    family = "INET" if fields[0] == b"TCP4" else "INET6"
    try:
        texts = [field.decode("ascii") for field in fields[1:]]
    except UnicodeDecodeError:
        raise ProxyProtocolError("PROXY v1 line with non-ASCII bytes") from None
    source, dest = (_v1_address(text, family) for text in texts[:2])
    source_port, dest_port = (_v1_port(text) for text in texts[2:])
    return ProxyHeader(
        version=1,
        family=family,
        transport="STREAM",
        source_addr=source,
        source_port=source_port,
        dest_addr=dest,
        dest_port=dest_port,
    )


def _v1_address(text: str, family: str) -> str:
    if family == "INET":
        if _V1_IPV4.fullmatch(text):
            return text
    elif _V1_IPV6_CHARACTERS.fullmatch(text):
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            pass
        else:
            return text
    raise ProxyProtocolError(f"PROXY v1 line with invalid {family} address {text!r}")


def _v1_port(text: str) -> int:
    if _V1_PORT.fullmatch(text) and int(text) <= 65535:
        return int(text)
    raise ProxyProtocolError(f"PROXY v1 line with invalid port {text!r}")


def _parse_v2_block(command: str, family: str, transport: str, block: bytes) -> ProxyHeader:
    """The bytes after the 16 fixed ones: an address block, then TLVs."""
    if command == "LOCAL" or family == "UNSPEC" or transport == "UNSPEC":
        # Spec 2.2: LOCAL means "use the real endpoints, ignore the address block"; with
        # UNSPEC the receiver may accept and use the real endpoints, as we do. The length
        # still says how much to skip.
        return ProxyHeader(version=2, command=command, family="UNSPEC", transport=transport)
    address_bytes = _V2_ADDRESS_BYTES[family]
    if len(block) < address_bytes:
        raise ProxyProtocolError(
            f"PROXY v2 {family} header announces {len(block)} address bytes, needs {address_bytes}"
        )
    source_port: Optional[int]
    dest_port: Optional[int]
    if family == "UNIX":
        source = _unix_path(block[:_UNIX_PATH_BYTES])
        dest = _unix_path(block[_UNIX_PATH_BYTES:address_bytes])
        source_port = dest_port = None
    else:
        size = 4 if family == "INET" else 16
        make = ipaddress.IPv4Address if family == "INET" else ipaddress.IPv6Address
        source = str(make(block[:size]))
        dest = str(make(block[size : 2 * size]))
        source_port = int.from_bytes(block[2 * size : 2 * size + 2], "big")
        dest_port = int.from_bytes(block[2 * size + 2 : 2 * size + 4], "big")
    return ProxyHeader(
        version=2,
        command=command,
        family=family,
        transport=transport,
        source_addr=source,
        source_port=source_port,
        dest_addr=dest,
        dest_port=dest_port,
        tlvs=_parse_tlvs(block[address_bytes:]),
    )


def _unix_path(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1")


def _parse_tlvs(data: bytes) -> tuple[tuple[int, bytes], ...]:
    """Spec 2.2: type (1 byte), length (2 bytes), value. A TLV cut short is an error."""
    tlvs = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 3:
            raise ProxyProtocolError("PROXY v2 header with a truncated TLV")
        kind = data[offset]
        length = int.from_bytes(data[offset + 1 : offset + 3], "big")
        end = offset + 3 + length
        if end > len(data):
            raise ProxyProtocolError("PROXY v2 TLV longer than the header")
        tlvs.append((kind, data[offset + 3 : end]))
        offset = end
    return tuple(tlvs)
