"""Builders for PROXY protocol headers, written from the spec, shared by the proxy tests."""

from __future__ import annotations

import ipaddress
import struct

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

FAMILIES = {"UNSPEC": 0x0, "INET": 0x1, "INET6": 0x2, "UNIX": 0x3}
TRANSPORTS = {"UNSPEC": 0x0, "STREAM": 0x1, "DGRAM": 0x2}
COMMANDS = {"LOCAL": 0x0, "PROXY": 0x1}


def v1(source: str, dest: str, source_port: int, dest_port: int, family: str = "") -> bytes:
    family = family or ("TCP6" if ":" in source else "TCP4")
    return f"PROXY {family} {source} {dest} {source_port} {dest_port}\r\n".encode("ascii")


def v2(
    source: str = "",
    dest: str = "",
    source_port: int = 0,
    dest_port: int = 0,
    *,
    command: str = "PROXY",
    family: str = "",
    transport: str = "STREAM",
    tlvs: tuple[tuple[int, bytes], ...] = (),
    address_block: bytes | None = None,
    version: int = 2,
) -> bytes:
    """A version 2 header. ``family`` defaults from ``source``; ``address_block`` overrides
    the encoded addresses (for malformed headers)."""
    if not family:
        family = "UNSPEC" if not source else ("INET6" if ":" in source else "INET")
    if address_block is None:
        if family in ("INET", "INET6"):
            address_block = (
                ipaddress.ip_address(source).packed
                + ipaddress.ip_address(dest).packed
                + struct.pack("!HH", source_port, dest_port)
            )
        elif family == "UNIX":
            address_block = source.encode().ljust(108, b"\x00") + dest.encode().ljust(108, b"\x00")
        else:
            address_block = b""
    extensions = b"".join(struct.pack("!BH", kind, len(value)) + value for kind, value in tlvs)
    payload = address_block + extensions
    return (
        V2_SIGNATURE
        + bytes([(version << 4) | COMMANDS[command], (FAMILIES[family] << 4) | TRANSPORTS[transport]])
        + struct.pack("!H", len(payload))
        + payload
    )
