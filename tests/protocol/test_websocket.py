"""WebSocketConnection: framing, masking, fragments, control frames, UTF-8, closing, limits.

Every input goes through :func:`receive`, which feeds it whole, byte by byte and at seeded
random split points and insists that all three give the same events, close code, state
and leftover byte count. The client side (masked frames, deflate) is written here, from
RFC 6455 and 7692, independently of the code under test; the other WebSocket test modules
import it from here.
"""

from __future__ import annotations

import os
import random
import struct
import zlib
from typing import Any, NamedTuple, Optional

import pytest

from waitress_like.errors import LocalProtocolError
from waitress_like.protocol.websocket import (
    BytesMessage,
    Close,
    CloseCode,
    Ping,
    Pong,
    TextMessage,
    WebSocketConnection,
    WebSocketEvent,
    WebSocketProtocolError,
    WebSocketState,
    unmask,
)
from waitress_like.protocol.ws_deflate import DeflateParameters

from .test_request_parser import random_pieces

MASK = b"\x37\xfa\x21\x3d"

# -- the client side ----------------------------------------------------------------------------


def client_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: Optional[bytes] = MASK,
    length_form: Optional[int] = None,
) -> bytes:
    """One client frame (RFC 6455 5.2). ``rsv`` is the 3 RSV bits (4 = RSV1); ``mask`` None
    sends it unmasked; ``length_form`` 126 or 127 forces a longer length encoding."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    form = length_form or (length if length < 126 else 126 if length < 65536 else 127)
    mask_bit = 0x80 if mask is not None else 0
    if form < 126:
        header = bytes((first, mask_bit | length))
    elif form == 126:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if mask is None:
        return header + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def text(message: str, **options: Any) -> bytes:
    return client_frame(0x1, message.encode("utf-8"), **options)


def binary(data: bytes, **options: Any) -> bytes:
    return client_frame(0x2, data, **options)


def close_frame(code: Optional[int] = 1000, reason: bytes = b"", **options: Any) -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return client_frame(0x8, payload, **options)


def fragments(opcode: int, payload: bytes, sizes: list[int], **options: Any) -> bytes:
    """A message cut into frames of the given payload sizes (the last takes the rest)."""
    frames = []
    position = 0
    for index, size in enumerate([*sizes, len(payload)]):
        piece = payload[position : position + size]
        position += len(piece)
        last = position >= len(payload) or index == len(sizes)
        frames.append(client_frame(opcode if index == 0 else 0x0, piece, fin=last, **options))
        if last:
            break
    return b"".join(frames)


class ClientDeflater:
    """The client half of permessage-deflate: compress our messages (RFC 7692 7.2.1)."""

    def __init__(self, window_bits: int = 15, context_takeover: bool = True) -> None:
        self.window_bits = window_bits
        self.context_takeover = context_takeover
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, -window_bits)

    def compress(self, data: bytes) -> bytes:
        if not self.context_takeover:
            self._compressor = zlib.compressobj(6, zlib.DEFLATED, -self.window_bits)
        output = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        assert output.endswith(b"\x00\x00\xff\xff")
        return output[:-4]

    def message(self, opcode: int, data: bytes) -> bytes:
        """A whole compressed message in one frame (RSV1 set)."""
        return client_frame(opcode, self.compress(data), rsv=4)


def _continuations(payload: bytes, sizes: list[int]) -> bytes:
    """Continuation frames carrying ``payload`` in pieces of the given sizes, the last FIN."""
    frames = []
    position = 0
    for size in [*sizes, len(payload)]:
        piece = payload[position : position + max(size, 1)]
        position += len(piece)
        frames.append(client_frame(0x0, piece, fin=position >= len(payload)))
        if position >= len(payload):
            break
    return b"".join(frames)


class ServerFrame(NamedTuple):
    fin: bool
    rsv: int
    opcode: int
    payload: bytes


def parse_server_frames(data: bytes) -> list[ServerFrame]:
    """Decode what the server sent; server frames must never be masked (RFC 6455 5.1)."""
    frames = []
    position = 0
    while position < len(data):
        first, second = data[position], data[position + 1]
        assert not second & 0x80, "a server frame is masked"
        length = second & 0x7F
        position += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, position)
            assert length >= 126, "length not minimally encoded"
            position += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, position)
            assert length >= 65536, "length not minimally encoded"
            position += 8
        payload = data[position : position + length]
        assert len(payload) == length, "truncated server frame"
        position += length
        frames.append(ServerFrame(bool(first & 0x80), (first >> 4) & 7, first & 0x0F, payload))
    return frames


class ClientInflater:
    """The client half of permessage-deflate: inflate the server's messages (RFC 7692 7.2.2)."""

    def __init__(self, window_bits: int = 15, context_takeover: bool = True) -> None:
        self.window_bits = window_bits
        self.context_takeover = context_takeover
        self._inflater = zlib.decompressobj(-window_bits)

    def inflate(self, payload: bytes) -> bytes:
        if not self.context_takeover:
            self._inflater = zlib.decompressobj(-self.window_bits)
        return self._inflater.decompress(payload + b"\x00\x00\xff\xff")


# -- the three-ways helper ---------------------------------------------------------------------


class Outcome(NamedTuple):
    events: list[WebSocketEvent]
    close_code: Optional[int]  # close_code of the WebSocketProtocolError raised, if any
    state: WebSocketState
    buffered: int
    error: Optional[WebSocketProtocolError]

    def comparable(self) -> tuple[Any, ...]:
        return (self.events, self.close_code, self.state, self.buffered)


def run_pieces(pieces: list[bytes], **options: Any) -> Outcome:
    """Feed ``pieces`` one ``receive_data`` at a time, draining events after each."""
    connection = WebSocketConnection(**options)
    events: list[WebSocketEvent] = []
    error: Optional[WebSocketProtocolError] = None
    for piece in pieces:
        connection.receive_data(piece)
        try:
            while (event := connection.next_event()) is not None:
                events.append(event)
        except WebSocketProtocolError as raised:
            error = raised
            break
    if error is not None:
        _check_failed_state(connection, error)
    return Outcome(
        events, error.close_code if error else None, connection.state, connection.buffered_byte_count(), error
    )


def _check_failed_state(connection: WebSocketConnection, error: WebSocketProtocolError) -> None:
    """After an error the connection stays FAILED: input is ignored, next_event raises again."""
    assert connection.state is WebSocketState.FAILED
    assert len(error.reason.encode("utf-8")) <= 123
    connection.receive_data(text("more"))
    assert connection.buffered_byte_count() == 0
    for _ in range(2):
        with pytest.raises(WebSocketProtocolError) as again:
            connection.next_event()
        assert again.value.close_code == error.close_code


def receive(data: bytes, *, seed: int = 0, random_runs: int = 2, **options: Any) -> Outcome:
    """Receive ``data`` whole, byte by byte and at random splits; all must agree."""
    whole = run_pieces([data], **options)
    splittings = [[data[index : index + 1] for index in range(len(data))]]
    rng = random.Random(seed)
    splittings += [random_pieces(data, rng) for _ in range(random_runs)]
    for pieces in splittings:
        other = run_pieces(pieces, **options)
        assert other.comparable() == whole.comparable(), (
            f"split {[len(piece) for piece in pieces][:20]}... gave {other.comparable()!r:.300} "
            f"instead of {whole.comparable()!r:.300} (error {other.error!r} vs {whole.error!r})"
        )
    return whole


def receive_error(data: bytes, close_code: int, **options: Any) -> Outcome:
    outcome = receive(data, **options)
    assert outcome.close_code == close_code, outcome.error
    assert outcome.state is WebSocketState.FAILED
    return outcome


# -- unmasking ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 4095, 4096, 4097, 70001])
def test_unmask_matches_the_rfc_definition(size: int) -> None:
    data = os.urandom(size)
    mask = os.urandom(4)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert bytes(unmask(data, mask)) == expected
    assert bytes(unmask(bytearray(data), bytearray(mask))) == expected


# -- data frames -------------------------------------------------------------------------------


def test_text_and_binary_messages() -> None:
    outcome = receive(text("hello") + binary(b"\x00\xff") + text("") + binary(b""))
    assert outcome.events == [
        TextMessage("hello"),
        BytesMessage(b"\x00\xff"),
        TextMessage(""),
        BytesMessage(b""),
    ]
    assert outcome.state is WebSocketState.OPEN
    assert outcome.buffered == 0
    assert type(outcome.events[1].data) is bytes  # type: ignore[union-attr]


@pytest.mark.parametrize("size", [125, 126, 127, 65535, 65536, 70000])
def test_length_encodings(size: int) -> None:
    data = os.urandom(size)
    assert receive(binary(data), random_runs=1).events == [BytesMessage(data)]


@pytest.mark.parametrize("form", [126, 127])
def test_longer_length_encoding_than_needed_is_accepted(form: int) -> None:
    assert receive(text("hi", length_form=form)).events == [TextMessage("hi")]


def test_the_mask_rotates_correctly_across_any_split() -> None:
    payload = bytes(range(256)) * 40
    outcome = receive(binary(payload, mask=b"\x01\x02\x03\x04"), random_runs=5)
    assert outcome.events == [BytesMessage(payload)]


def test_large_message_in_big_pieces() -> None:
    payload = os.urandom(300_000)
    frame = binary(payload)
    pieces = [frame[index : index + 65536] for index in range(0, len(frame), 65536)]
    assert run_pieces(pieces).events == [BytesMessage(payload)]


def test_partial_input_waits() -> None:
    frame = text("hello")
    for cut in range(len(frame)):
        outcome = run_pieces([frame[:cut]])
        assert outcome.events == [] and outcome.close_code is None


def test_fragmented_messages_are_joined() -> None:
    message = "fragmented κόσμε message"
    data = fragments(0x1, message.encode("utf-8"), [3, 1, 0, 7]) + fragments(0x2, b"abcdef", [1, 1])
    assert receive(data).events == [TextMessage(message), BytesMessage(b"abcdef")]


def test_utf8_sequences_split_across_fragments() -> None:
    encoded = "€𝄞é".encode()
    for cut in range(1, len(encoded)):
        data = fragments(0x1, encoded, [cut])
        assert receive(data, random_runs=1).events == [TextMessage("€𝄞é")]


def test_control_frames_inside_a_fragmented_message() -> None:
    data = (
        client_frame(0x1, b"he", fin=False)
        + client_frame(0x9, b"ping")
        + client_frame(0x0, b"ll", fin=False)
        + client_frame(0xA, b"pong")
        + client_frame(0x0, b"o")
    )
    assert receive(data).events == [Ping(b"ping"), Pong(b"pong"), TextMessage("hello")]


def test_many_small_messages() -> None:
    data = b"".join(text(f"message {index}") for index in range(300))
    events = receive(data, random_runs=1).events
    assert events == [TextMessage(f"message {index}") for index in range(300)]


# -- protocol errors (1002) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(text("x", mask=None), id="unmasked"),
        pytest.param(client_frame(0x9, b"", mask=None), id="unmasked-control"),
        pytest.param(text("x", rsv=4), id="rsv1-without-extension"),
        pytest.param(text("x", rsv=2), id="rsv2"),
        pytest.param(text("x", rsv=1), id="rsv3"),
        pytest.param(client_frame(0x9, b"", rsv=4), id="rsv1-on-ping"),
        *[pytest.param(client_frame(opcode, b"x"), id=f"opcode-{opcode}") for opcode in (3, 4, 5, 6, 7)],
        *[pytest.param(client_frame(opcode, b""), id=f"opcode-{opcode}") for opcode in (11, 12, 13, 14, 15)],
        pytest.param(client_frame(0x9, b"x", fin=False), id="fragmented-ping"),
        pytest.param(client_frame(0x8, b"", fin=False), id="fragmented-close"),
        pytest.param(client_frame(0x9, b"x" * 126), id="ping-over-125"),
        pytest.param(client_frame(0xA, b"x" * 126), id="pong-over-125"),
        pytest.param(client_frame(0x9, b"x" * 5, length_form=126), id="ping-with-16-bit-length"),
        pytest.param(client_frame(0x0, b"x"), id="continuation-without-message"),
        pytest.param(text("a", fin=False) + text("b"), id="text-inside-a-message"),
        pytest.param(text("a", fin=False) + binary(b"b"), id="binary-inside-a-message"),
        pytest.param(text("whole") + client_frame(0x0, b"x"), id="continuation-after-a-message"),
        pytest.param(b"\x82\xff" + b"\x80" + b"\x00" * 7 + MASK, id="length-msb-set"),
        pytest.param(client_frame(0x8, b"\x03"), id="close-1-byte"),
    ],
)
def test_protocol_errors_close_with_1002(data: bytes) -> None:
    receive_error(data, 1002)


def test_errors_are_found_from_the_frame_start_alone() -> None:
    # The first two bytes of a frame decide these: no need to wait for the mask or payload.
    for data in (b"\x81\x05", b"\x83\x85", b"\x89\x7e", b"\x09\x80", b"\x00\x80", b"\xc1\x85"):
        assert run_pieces([data]).close_code == 1002, data


def test_events_before_an_error_are_delivered() -> None:
    outcome = receive_error(text("first") + client_frame(0x9, b"p") + text("x", mask=None), 1002)
    assert outcome.events == [TextMessage("first"), Ping(b"p")]


# -- UTF-8 (1007) -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff",
        b"\xc0\xaf",  # overlong "/"
        b"\xe0\x80\xaf",  # overlong, 3 bytes
        b"\xed\xa0\x80",  # UTF-16 surrogate
        b"\xed\xbf\xbf",
        b"\xf4\x90\x80\x80",  # above U+10FFFF
        b"\xf5\x80\x80\x80",
        b"\x80",
        b"hello\xce",  # truncated at the end of the message
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    ],
)
def test_invalid_utf8_in_text_closes_with_1007(payload: bytes) -> None:
    receive_error(client_frame(0x1, payload), 1007)
    receive_error(fragments(0x1, payload, [1] * len(payload)), 1007)


def test_invalid_utf8_fails_fast_inside_a_fragmented_message() -> None:
    # The message never ends, so only checking fragments as they come can find it.
    outcome = receive(client_frame(0x1, b"valid", fin=False) + client_frame(0x0, b"\xce\xba\xff", fin=False))
    assert outcome.close_code == 1007


@pytest.mark.parametrize("prefix", [b"\xed\xa0", b"\xed\xbf", b"\xf4\x90", b"\xe0\x80", b"\xf0\x8f"])
def test_invalid_utf8_fails_fast_at_the_first_impossible_byte(prefix: bytes) -> None:
    # Half a frame: the payload so far can no longer be the start of valid UTF-8.
    frame = client_frame(0x1, b"ok" + prefix + b"\x80\x80\x80")
    outcome = receive(frame[: 6 + 2 + len(prefix)])
    assert outcome.close_code == 1007


def test_valid_utf8_prefixes_do_not_fail_early() -> None:
    for prefix, rest in (
        (b"\xed\x9f", b"\xbf"),
        (b"\xf4\x8f\xbf", b"\xbf"),
        (b"\xe0\xa0", b"\x80"),
        (b"\xf0\x90", b"\x80\x80"),
    ):
        frame = client_frame(0x1, b"ok" + prefix + rest + b"!")
        assert run_pieces([frame[: 6 + 2 + len(prefix)]]).close_code is None
        assert receive(frame).events == [TextMessage((b"ok" + prefix + rest + b"!").decode())]


def test_binary_payloads_are_not_checked_as_utf8() -> None:
    assert receive(binary(b"\xff\xed\xa0\x80")).events == [BytesMessage(b"\xff\xed\xa0\x80")]


# -- closing ------------------------------------------------------------------------------------------


def test_close_with_code_and_reason() -> None:
    outcome = receive(close_frame(1001, "going κ".encode()))
    assert outcome.events == [Close(1001, "going κ")]
    assert outcome.state is WebSocketState.REMOTE_CLOSING


def test_close_without_payload_reports_1005() -> None:
    assert receive(close_frame(None)).events == [Close(CloseCode.NO_STATUS, "")]


@pytest.mark.parametrize(
    "code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
)
def test_valid_close_codes(code: int) -> None:
    assert receive(close_frame(code)).events == [Close(code, "")]


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_invalid_close_codes_close_with_1002(code: int) -> None:
    receive_error(close_frame(code), 1002)


def test_invalid_utf8_in_a_close_reason_closes_with_1007() -> None:
    receive_error(close_frame(1000, b"\xce\xba\xff"), 1007)


def test_a_close_reason_may_use_all_123_bytes() -> None:
    assert receive(close_frame(1000, b"r" * 123)).events == [Close(1000, "r" * 123)]


def test_bytes_after_a_close_are_discarded() -> None:
    outcome = receive(text("a") + close_frame(1000) + text("b") + b"\xff\xff garbage")
    assert outcome.events == [TextMessage("a"), Close(1000, "")]
    assert outcome.buffered == 0
    connection = WebSocketConnection()
    connection.receive_data(close_frame(1000))
    assert connection.events() == [Close(1000, "")]
    connection.receive_data(text("late"))
    assert connection.buffered_byte_count() == 0
    assert connection.next_event() is None


def test_a_close_inside_a_fragmented_message_drops_the_message() -> None:
    outcome = receive(client_frame(0x1, b"part", fin=False) + close_frame(1000))
    assert outcome.events == [Close(1000, "")]


def test_client_initiated_closing_handshake() -> None:
    connection = WebSocketConnection()
    connection.receive_data(close_frame(1000, b"bye"))
    (event,) = connection.events()
    assert connection.state is WebSocketState.REMOTE_CLOSING
    assert connection.close_received and not connection.close_sent
    reply = connection.reply_to(event)
    assert parse_server_frames(reply) == [ServerFrame(True, 0, 0x8, b"\x03\xe8")]
    assert connection.state is WebSocketState.CLOSED
    assert connection.close_sent
    assert connection.reply_to(event) == b""


def test_answering_a_close_without_code_sends_none() -> None:
    connection = WebSocketConnection()
    connection.receive_data(close_frame(None))
    (event,) = connection.events()
    assert parse_server_frames(connection.reply_to(event)) == [ServerFrame(True, 0, 0x8, b"")]


def test_server_initiated_closing_handshake() -> None:
    connection = WebSocketConnection()
    frame = connection.send_close(1001, "restart")
    assert parse_server_frames(frame) == [ServerFrame(True, 0, 0x8, b"\x03\xe9restart")]
    assert connection.state is WebSocketState.LOCAL_CLOSING
    # Messages still in flight from the client are delivered until its Close comes.
    connection.receive_data(text("late") + close_frame(1001))
    assert connection.events() == [TextMessage("late"), Close(1001, "")]
    assert connection.state is WebSocketState.CLOSED
    assert connection.reply_to(Close(1001, "")) == b""


def test_ping_gets_a_pong_with_the_same_payload() -> None:
    connection = WebSocketConnection()
    connection.receive_data(client_frame(0x9, b"\x00heartbeat" * 11 + b"12345"))
    (event,) = connection.events()
    assert event == Ping(b"\x00heartbeat" * 11 + b"12345")
    assert parse_server_frames(connection.reply_to(event)) == [ServerFrame(True, 0, 0xA, event.payload)]  # type: ignore[union-attr]
    assert connection.reply_to(Pong(b"")) == b""
    assert connection.reply_to(TextMessage("x")) == b""
    connection.send_close()
    assert connection.reply_to(event) == b""


def test_after_an_error_a_close_can_still_be_sent() -> None:
    connection = WebSocketConnection()
    connection.receive_data(text("x", mask=None))
    with pytest.raises(WebSocketProtocolError) as caught:
        connection.next_event()
    frame = connection.send_close(caught.value.close_code, caught.value.reason)
    (sent,) = parse_server_frames(frame)
    assert sent.payload[:2] == b"\x03\xea"
    assert connection.state is WebSocketState.FAILED
    assert connection.close_sent


# -- size limit (1009) ------------------------------------------------------------------------------


def test_message_of_exactly_max_size_is_accepted() -> None:
    assert receive(binary(b"x" * 100), max_size=100).events == [BytesMessage(b"x" * 100)]
    assert receive(fragments(0x1, b"y" * 100, [40, 40]), max_size=100).events == [TextMessage("y" * 100)]


def test_oversized_frame_is_refused_from_its_header() -> None:
    frame = binary(b"x" * 101)
    # Only the two header bytes: the payload is never waited for, let alone buffered.
    assert run_pieces([frame[:2]], max_size=100).close_code == 1009
    receive_error(frame, 1009, max_size=100)


def test_huge_declared_length_is_refused_before_any_payload() -> None:
    header = b"\x82\xff" + struct.pack("!Q", 2**40)
    assert run_pieces([header], max_size=16 * 1024 * 1024).close_code == 1009


def test_fragmented_message_over_max_size_is_refused_at_the_frame_that_overflows() -> None:
    data = client_frame(0x2, b"x" * 60, fin=False) + client_frame(0x0, b"x" * 41)
    outcome = run_pieces([data[: len(data) - 41]], max_size=100)
    assert outcome.close_code == 1009
    receive_error(data, 1009, max_size=100)


def test_control_frames_do_not_count_against_the_message_size() -> None:
    data = (
        client_frame(0x2, b"x" * 60, fin=False) + client_frame(0x9, b"p" * 100) + client_frame(0x0, b"x" * 40)
    )
    assert receive(data, max_size=100).events == [Ping(b"p" * 100), BytesMessage(b"x" * 100)]


def test_max_size_is_validated() -> None:
    with pytest.raises(ValueError, match="max_size"):
        WebSocketConnection(max_size=0)
    with pytest.raises(TypeError, match="max_size"):
        WebSocketConnection(max_size=1.5)  # type: ignore[arg-type]


# -- sending -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_sent_frames_are_unmasked_and_minimally_encoded(size: int) -> None:
    connection = WebSocketConnection()
    payload = os.urandom(size)
    assert parse_server_frames(connection.send_bytes(payload)) == [ServerFrame(True, 0, 0x2, payload)]
    assert parse_server_frames(connection.send_text("é" * size)) == [
        ServerFrame(True, 0, 0x1, "é".encode() * size)
    ]


def test_send_bytes_accepts_bytes_like_objects() -> None:
    connection = WebSocketConnection()
    for data in (bytearray(b"ab"), memoryview(b"ab")):
        assert parse_server_frames(connection.send_bytes(data))[0].payload == b"ab"


def test_ping_and_pong_frames() -> None:
    connection = WebSocketConnection()
    assert parse_server_frames(connection.send_ping(b"123")) == [ServerFrame(True, 0, 0x9, b"123")]
    assert parse_server_frames(connection.send_pong()) == [ServerFrame(True, 0, 0xA, b"")]
    with pytest.raises(LocalProtocolError, match="125"):
        connection.send_ping(b"x" * 126)


def test_nothing_may_be_sent_after_a_close() -> None:
    connection = WebSocketConnection()
    connection.send_close()
    for send in (
        lambda: connection.send_text("x"),
        lambda: connection.send_bytes(b"x"),
        lambda: connection.send_ping(),
        lambda: connection.send_pong(),
        lambda: connection.send_close(),
    ):
        with pytest.raises(LocalProtocolError):
            send()


@pytest.mark.parametrize("code", [0, 999, 1004, 1006, 1015, 2999, 5000])
def test_close_codes_that_may_not_be_sent(code: int) -> None:
    with pytest.raises(LocalProtocolError, match="close code"):
        WebSocketConnection().send_close(code)


def test_close_payload_rules() -> None:
    assert parse_server_frames(WebSocketConnection().send_close(1005))[0].payload == b""
    assert (
        parse_server_frames(WebSocketConnection().send_close(4000, "é" * 61 + "x"))[0].payload[2:]
        == ("é" * 61 + "x").encode()
    )
    with pytest.raises(LocalProtocolError, match="123"):
        WebSocketConnection().send_close(1000, "é" * 62)
    with pytest.raises(LocalProtocolError, match="reason"):
        WebSocketConnection().send_close(1005, "why")
    with pytest.raises(LocalProtocolError, match="surrogate"):
        WebSocketConnection().send_close(1000, "\ud800")
    with pytest.raises(LocalProtocolError):
        WebSocketConnection().send_close("1000")  # type: ignore[arg-type]


def test_text_with_a_lone_surrogate_cannot_be_sent() -> None:
    with pytest.raises(LocalProtocolError, match="surrogate"):
        WebSocketConnection().send_text("\udc80")


def test_sending_in_remote_closing_is_allowed() -> None:
    # RFC 6455 5.5.1: an endpoint may finish sending its message before answering a Close.
    connection = WebSocketConnection()
    connection.receive_data(close_frame(1000))
    connection.events()
    assert parse_server_frames(connection.send_text("last"))[0].payload == b"last"


# -- permessage-deflate on the wire ---------------------------------------------------------------------


def deflate_options(**parameters: Any) -> dict[str, Any]:
    return {"deflate": DeflateParameters(**parameters)}


def test_compressed_messages_with_context_takeover() -> None:
    client = ClientDeflater()
    messages = ["compress me " * 20, "compress me " * 20 + "again", ""]
    data = b"".join(client.message(0x1, message.encode()) for message in messages)
    data += client.message(0x2, b"\x00" * 1000)
    outcome = receive(data, **deflate_options())
    assert outcome.events == [*map(TextMessage, messages), BytesMessage(b"\x00" * 1000)]


def test_compressed_and_plain_messages_mix() -> None:
    client = ClientDeflater()
    data = client.message(0x1, b"zipped") + text("plain") + client.message(0x2, b"zipped too")
    outcome = receive(data, **deflate_options())
    assert outcome.events == [TextMessage("zipped"), TextMessage("plain"), BytesMessage(b"zipped too")]


def test_compressed_fragmented_message() -> None:
    client = ClientDeflater()
    payload = ("fragmented and compressed κόσμε " * 50).encode()
    compressed = client.compress(payload)
    data = client_frame(0x1, compressed[:10], fin=False, rsv=4) + _continuations(compressed[10:], [7, 1, 30])
    assert receive(data, **deflate_options()).events == [TextMessage(payload.decode())]


def test_rsv1_on_a_continuation_frame_closes_with_1002() -> None:
    client = ClientDeflater()
    compressed = client.compress(b"some data to compress")
    data = client_frame(0x2, compressed[:5], fin=False, rsv=4) + client_frame(0x0, compressed[5:], rsv=4)
    receive_error(data, 1002, **deflate_options())


def test_client_no_context_takeover() -> None:
    client = ClientDeflater(context_takeover=False)
    data = client.message(0x1, b"abcabcabc") + client.message(0x1, b"abcabcabc")
    events = receive(data, **deflate_options(client_no_context_takeover=True)).events
    assert events == [TextMessage("abcabcabc")] * 2


def test_client_window_bits() -> None:
    client = ClientDeflater(window_bits=9)
    data = b"".join(client.message(0x2, os.urandom(100) * 20) for _ in range(3))
    events = receive(data, random_runs=1, **deflate_options(client_max_window_bits=9)).events
    assert len(events) == 3


def test_client_sending_a_final_deflate_block() -> None:
    # RFC 7692 7.2.3.4 allows ending a message with BFINAL set; the next starts a new stream.
    def final_block_message(payload: bytes) -> bytes:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        return client_frame(0x1, compressor.compress(payload) + compressor.flush(zlib.Z_FINISH), rsv=4)

    data = final_block_message(b"first") + final_block_message(b"second")
    assert receive(data, **deflate_options()).events == [TextMessage("first"), TextMessage("second")]


def test_data_after_a_final_deflate_block_closes_with_1007() -> None:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = compressor.compress(b"first") + compressor.flush(zlib.Z_FINISH) + b"\x01\x02"
    receive_error(client_frame(0x1, payload, rsv=4), 1007, **deflate_options())


def test_corrupt_compressed_data_closes_with_1007() -> None:
    receive_error(client_frame(0x2, b"\xff\xff\xff\xff", rsv=4), 1007, **deflate_options())


def test_invalid_utf8_inside_compressed_text_closes_with_1007() -> None:
    client = ClientDeflater()
    receive_error(client.message(0x1, b"valid then \xed\xa0\x80"), 1007, **deflate_options())


def test_decompression_bomb_is_stopped_at_max_size() -> None:
    client = ClientDeflater()
    bomb = client.message(0x2, b"\x00" * (4 * 1024 * 1024))  # about 4 KiB on the wire
    assert len(bomb) < 10_000
    outcome = run_pieces([bomb], max_size=64 * 1024, **deflate_options())
    assert outcome.close_code == 1009
    pieces = [bomb[index : index + 100] for index in range(0, len(bomb), 100)]
    assert run_pieces(pieces, max_size=64 * 1024, **deflate_options()).close_code == 1009


def test_compressed_message_of_exactly_max_size() -> None:
    client = ClientDeflater()
    data = client.message(0x1, b"a" * 1000) + client.message(0x1, b"a" * 1001)
    outcome = receive(data, max_size=1000, **deflate_options())
    assert outcome.events == [TextMessage("a" * 1000)]
    assert outcome.close_code == 1009


def test_oversized_compressed_text_reports_bad_utf8_before_the_limit_first() -> None:
    # Whole or byte by byte, the UTF-8 error inside the first max_size bytes wins.
    client = ClientDeflater()
    data = client.message(0x1, b"ok\xff" + b"a" * 5000)
    receive_error(data, 1007, max_size=1000, **deflate_options())


def test_compressed_frame_larger_than_any_compressed_message_is_refused_from_its_header() -> None:
    header = b"\xc2\xfe" + struct.pack("!H", 2000) + MASK
    assert run_pieces([header], max_size=1000, **deflate_options()).close_code == 1009


def test_sent_messages_are_compressed_with_context_takeover() -> None:
    connection = WebSocketConnection(**deflate_options(server_max_window_bits=12))
    client = ClientInflater(window_bits=12)
    message = "the same text, again and again " * 10
    sizes = []
    for _ in range(3):
        (frame,) = parse_server_frames(connection.send_text(message))
        assert frame.rsv == 4 and frame.opcode == 0x1
        assert client.inflate(frame.payload) == message.encode()
        sizes.append(len(frame.payload))
    assert sizes[1] < sizes[0]  # the second message refers back to the first


def test_sent_messages_without_server_context_takeover_inflate_alone() -> None:
    connection = WebSocketConnection(**deflate_options(server_no_context_takeover=True))
    for payload in (b"abc" * 100, b"abc" * 100, b""):
        (frame,) = parse_server_frames(connection.send_bytes(payload))
        assert frame.rsv == 4
        assert ClientInflater(context_takeover=False).inflate(frame.payload) == payload


def test_an_8_bit_server_window_sends_uncompressed_messages() -> None:
    connection = WebSocketConnection(**deflate_options(server_max_window_bits=8))
    assert parse_server_frames(connection.send_text("plain")) == [ServerFrame(True, 0, 0x1, b"plain")]
    # Receiving compressed messages still works.
    connection.receive_data(ClientDeflater(window_bits=9).message(0x1, b"zipped"))
    assert connection.events() == [TextMessage("zipped")]
