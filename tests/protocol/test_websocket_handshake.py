"""The opening handshake (RFC 6455 4.2) and permessage-deflate negotiation (RFC 7692 5, 7.1)."""

from __future__ import annotations

from typing import Optional

import pytest

from waitress_like.errors import LocalProtocolError, RemoteProtocolError
from waitress_like.protocol import ParserLimits, RequestHead, RequestParser
from waitress_like.protocol.ws_deflate import (
    DeflateOptions,
    DeflateParameters,
    negotiate_deflate,
    parse_extensions,
)
from waitress_like.protocol.ws_handshake import (
    HandshakeError,
    WebSocketUpgrade,
    accept_handshake,
    accept_key,
    is_websocket_upgrade,
    upgrade_response,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the example of RFC 6455 1.3
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

BASE_HEADERS = (
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
)


def headers_with(*extra: tuple[str, str], without: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    kept = tuple((name, value) for name, value in BASE_HEADERS if name.lower() not in without)
    return kept + extra


def handshake_error(headers: tuple[tuple[str, str], ...], method: str = "GET") -> HandshakeError:
    with pytest.raises(HandshakeError) as caught:
        accept_handshake(method, (1, 1), headers)
    assert isinstance(caught.value, RemoteProtocolError)
    return caught.value


def test_accept_key_of_the_rfc_example() -> None:
    assert accept_key(KEY) == ACCEPT


def test_a_parsed_request_is_accepted() -> None:
    parser = RequestParser(ParserLimits())
    parser.feed(
        b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
        b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " + KEY.encode() + b"\r\n"
        b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    head = parser.next_event()
    assert isinstance(head, RequestHead)
    assert is_websocket_upgrade(head.version, head.headers)
    upgrade = accept_handshake(head.method, head.version, head.headers)
    assert upgrade.accept == ACCEPT
    assert upgrade.subprotocols == ("chat", "superchat")
    assert upgrade.deflate is None
    assert upgrade_response(upgrade, "chat") == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + ACCEPT.encode() + b"\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
    )


@pytest.mark.parametrize(
    "headers",
    [
        (("Upgrade", "websocket"), ("Connection", "Upgrade")),
        (("upgrade", "WebSocket"), ("connection", "upgrade")),
        (("Upgrade", "h2c, websocket"), ("Connection", "keep-alive ,\tUPGRADE")),
        (("Upgrade", "websocket"), ("Connection", "keep-alive"), ("Connection", "upgrade")),
    ],
)
def test_upgrade_detection(headers: tuple[tuple[str, str], ...]) -> None:
    assert is_websocket_upgrade((1, 1), headers)


@pytest.mark.parametrize(
    "headers",
    [
        (("Upgrade", "websocket"),),
        (("Connection", "Upgrade"),),
        (("Upgrade", "h2c"), ("Connection", "Upgrade")),
        (("Upgrade", "websocket"), ("Connection", "close")),
        (("Upgrade", "websockets"), ("Connection", "Upgrade")),
        (("Upgrade", "websocket"), ("Connection", "upgraded")),
    ],
)
def test_not_an_upgrade(headers: tuple[tuple[str, str], ...]) -> None:
    assert not is_websocket_upgrade((1, 1), headers)


def test_http10_upgrade_is_ignored() -> None:
    # RFC 9110 7.8: Upgrade in an HTTP/1.0 request is ignored.
    assert not is_websocket_upgrade((1, 0), BASE_HEADERS)
    with pytest.raises(HandshakeError) as caught:
        accept_handshake("GET", (1, 0), BASE_HEADERS)
    assert caught.value.status_hint == 400


def test_method_must_be_get() -> None:
    assert handshake_error(BASE_HEADERS, method="POST").status_hint == 400


@pytest.mark.parametrize("version", ["8", "14", "8, 7", "x"])
def test_other_versions_get_426_with_the_supported_version(version: str) -> None:
    error = handshake_error(
        headers_with(("Sec-WebSocket-Version", version), without=("sec-websocket-version",))
    )
    assert error.status_hint == 426
    assert error.headers == (("Sec-WebSocket-Version", "13"),)


def test_a_version_list_including_13_is_accepted() -> None:
    headers = headers_with(("Sec-WebSocket-Version", "8, 13"), without=("sec-websocket-version",))
    assert accept_handshake("GET", (1, 1), headers).accept == ACCEPT


def test_missing_version_is_400() -> None:
    error = handshake_error(headers_with(without=("sec-websocket-version",)))
    assert error.status_hint == 400
    assert error.headers == (("Sec-WebSocket-Version", "13"),)


@pytest.mark.parametrize(
    "keys",
    [
        (),
        (KEY, KEY),
        ("",),
        ("dGhlIHNhbXBsZSBub25jZQ",),  # no padding
        ("dGhlIHNhbXBsZSBub25jZQ=",),
        ("dGhlIHNhbXBsZSBub25jZQ!=",),
        ("dGhlIHNhbXBsZSBub25jZXh4",),  # 18 bytes
        ("dGhlIHNhbXBsZSBub25j",),  # 15 bytes
    ],
)
def test_bad_keys_are_400(keys: tuple[str, ...]) -> None:
    headers = headers_with(*(("Sec-WebSocket-Key", key) for key in keys), without=("sec-websocket-key",))
    error = handshake_error(headers)
    assert error.status_hint == 400
    assert error.headers == ()


@pytest.mark.parametrize("field", [("Content-Length", "5"), ("Transfer-Encoding", "chunked")])
def test_a_request_body_is_400(field: tuple[str, str]) -> None:
    assert handshake_error(headers_with(field)).status_hint == 400


def test_an_empty_body_is_fine() -> None:
    assert accept_handshake("GET", (1, 1), headers_with(("Content-Length", "0"))).accept == ACCEPT


def test_subprotocols_from_several_fields() -> None:
    headers = headers_with(("Sec-WebSocket-Protocol", "a, b"), ("Sec-WebSocket-Protocol", " , c.v2"))
    assert accept_handshake("GET", (1, 1), headers).subprotocols == ("a", "b", "c.v2")


def test_a_subprotocol_that_is_not_a_token_is_400() -> None:
    assert handshake_error(headers_with(("Sec-WebSocket-Protocol", "a b"))).status_hint == 400


def test_deflate_is_negotiated_only_when_enabled() -> None:
    headers = headers_with(("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"))
    assert accept_handshake("GET", (1, 1), headers).deflate is None
    upgrade = accept_handshake("GET", (1, 1), headers, deflate=DeflateOptions())
    assert upgrade.deflate is not None
    response = upgrade_response(upgrade)
    assert (
        b"\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12\r\n"
        in response
    )


def test_response_with_extra_headers() -> None:
    upgrade = WebSocketUpgrade(ACCEPT, (), None)
    response = upgrade_response(upgrade, None, [("Set-Cookie", "a=b; Path=/"), ("X-Thing", "\tv\xe9")])
    assert response.endswith(b"\r\nSet-Cookie: a=b; Path=/\r\nX-Thing: \tv\xe9\r\n\r\n")


@pytest.mark.parametrize(
    "header",
    [
        ("X-Bad", "a\r\nInjected: yes"),
        ("X-Bad", "a\nb"),
        ("X-Bad", "nul\x00"),
        ("Bad Name", "v"),
        ("Bad:Name", "v"),
        ("", "v"),
        ("Upgrade", "websocket"),
        ("connection", "close"),
        ("Sec-WebSocket-Accept", "x"),
        ("Sec-WebSocket-Protocol", "x"),
        ("Sec-WebSocket-Extensions", "x"),
        ("Content-Length", "0"),
        ("Transfer-Encoding", "chunked"),
        (b"X-Bytes", b"v"),
    ],
)
def test_bad_extra_headers_are_refused(header: tuple[str, str]) -> None:
    with pytest.raises(LocalProtocolError):
        upgrade_response(WebSocketUpgrade(ACCEPT, (), None), None, [header])


def test_only_an_offered_subprotocol_may_be_chosen() -> None:
    with pytest.raises(LocalProtocolError, match="offered"):
        upgrade_response(WebSocketUpgrade(ACCEPT, ("chat",), None), "other")


# -- Sec-WebSocket-Extensions syntax -------------------------------------------------------------------


def test_parse_extensions() -> None:
    assert parse_extensions(['permessage-deflate; a=1; B="x", other', " , foo ;bar", "baz"]) == [
        ("permessage-deflate", [("a", "1"), ("b", "x")]),
        ("other", []),
        ("foo", [("bar", None)]),
        ("baz", []),
    ]
    assert parse_extensions(['x; q="a\\bc"']) == [("x", [("q", "abc")])]
    assert parse_extensions([""]) == []


@pytest.mark.parametrize(
    "value",
    ["x;", "x; =1", "x; a=", 'x; a="b c"', 'x; a="', "x y", "x; a=1 2", "x;; a", "@x", "x, ;a", 'x; a=""'],
)
def test_malformed_extensions(value: str) -> None:
    assert parse_extensions([value]) is None


# -- permessage-deflate negotiation ----------------------------------------------------------------------

ALL_15 = DeflateOptions(server_max_window_bits=15, client_max_window_bits=15)


@pytest.mark.parametrize(
    ("offer", "options", "response"),
    [
        ("permessage-deflate", ALL_15, "permessage-deflate"),
        ("permessage-deflate", DeflateOptions(), "permessage-deflate; server_max_window_bits=12"),
        ("permessage-deflate; client_max_window_bits", ALL_15, "permessage-deflate"),
        (
            "permessage-deflate; client_max_window_bits",
            DeflateOptions(),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        ),
        ("permessage-deflate; client_max_window_bits=10", ALL_15, "permessage-deflate; client_max_window_bits=10"),
        ("permessage-deflate; client_max_window_bits=15", ALL_15, "permessage-deflate"),
        ("permessage-deflate; server_max_window_bits=10", ALL_15, "permessage-deflate; server_max_window_bits=10"),
        ("permessage-deflate; server_max_window_bits=15", ALL_15, "permessage-deflate; server_max_window_bits=15"),
        ("permessage-deflate; server_max_window_bits=8", ALL_15, "permessage-deflate; server_max_window_bits=8"),
        ("permessage-deflate; server_max_window_bits=\"9\"", ALL_15, "permessage-deflate; server_max_window_bits=9"),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            ALL_15,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            "permessage-deflate",
            DeflateOptions(server_no_context_takeover=True, client_no_context_takeover=True),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12",
        ),
        ("PerMessage-Deflate; Client_Max_Window_Bits", ALL_15, "permessage-deflate"),
        # Declined offers fall through to the next one.
        ("permessage-deflate; unknown, permessage-deflate", ALL_15, "permessage-deflate"),
        ("permessage-deflate; server_max_window_bits=7, permessage-deflate; client_max_window_bits=9", ALL_15,
         "permessage-deflate; client_max_window_bits=9"),
        ("x-webkit-deflate-frame, permessage-deflate", ALL_15, "permessage-deflate"),
    ],
)  # fmt: skip
def test_accepted_offers(offer: str, options: DeflateOptions, response: str) -> None:
    parameters = negotiate_deflate([offer], options)
    assert parameters is not None
    assert parameters.header_value() == response


@pytest.mark.parametrize(
    "offer",
    [
        "",
        "x-webkit-deflate-frame",
        "permessage-deflate; unknown",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=x",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; server_max_window_bits=1 0",
        "permessage-deflate; client_max_window_bits=8.0",
        "permessage-deflate; client_max_window_bits=-9",
        "permessage-deflate;",  # broken syntax declines the whole field
    ],
)
def test_declined_offers(offer: str) -> None:
    assert negotiate_deflate([offer], DeflateOptions()) is None


def test_offers_across_several_fields() -> None:
    parameters = negotiate_deflate(["foo", "permessage-deflate; client_no_context_takeover"], ALL_15)
    assert parameters == DeflateParameters(client_no_context_takeover=True)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("server_max_window_bits", 8),
        ("server_max_window_bits", 16),
        ("client_max_window_bits", 7),
        ("compress_level", 10),
        ("mem_level", 0),
        ("mem_level", "5"),
    ],
)
def test_deflate_options_are_validated(option: str, value: object) -> None:
    with pytest.raises((TypeError, ValueError), match=option):
        DeflateOptions(**{option: value})  # type: ignore[arg-type]


def test_negotiated_parameters_are_what_the_connection_uses() -> None:
    chosen: Optional[DeflateParameters] = negotiate_deflate(
        ["permessage-deflate; client_max_window_bits=9; server_max_window_bits=10"],
        DeflateOptions(compress_level=1, mem_level=3),
    )
    assert chosen == DeflateParameters(
        server_max_window_bits=10, client_max_window_bits=9, compress_level=1, mem_level=3
    )
