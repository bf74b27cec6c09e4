"""Hypothesis properties of WebSocketConnection.

(a) Any sequence of messages a client sends (masked with any keys, fragmented anyhow,
    with Pings between fragments, compressed or not) is received as exactly those
    messages, however the bytes are split.
(b) Arbitrary frame-shaped bytes only ever raise WebSocketProtocolError, and the events,
    close code and state do not depend on how the bytes are split.
(c) Any sequence of messages the server sends decodes, on the client side, to the same
    messages, with or without permessage-deflate and its negotiated parameters.
"""

from __future__ import annotations

import zlib
from typing import Any, Union

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waitress_like.protocol.websocket import BytesMessage, Ping, TextMessage, WebSocketConnection
from waitress_like.protocol.ws_deflate import DeflateParameters

from .test_parser_properties import split
from .test_websocket import ClientInflater, client_frame, parse_server_frames, run_pieces

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Message = Union[str, bytes]

messages = st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=300)), max_size=8)
split_sizes = st.lists(st.integers(1, 64), max_size=10)
masks = st.binary(min_size=4, max_size=4)


@st.composite
def client_stream(draw: Any, compress: bool) -> tuple[bytes, list[Any]]:
    """The bytes of some client messages, and the events they must give."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15) if compress else None
    data = []
    expected: list[Any] = []
    for message in draw(messages):
        opcode = 0x1 if isinstance(message, str) else 0x2
        payload = message.encode("utf-8") if isinstance(message, str) else message
        compressed = compressor is not None and draw(st.booleans())
        if compressed:
            assert compressor is not None
            payload = (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
        pieces = [payload[start:end] for start, end in zip([0, *cuts], [*cuts, len(payload)])]
        for index, piece in enumerate(pieces):
            frame_opcode = opcode if index == 0 else 0x0
            rsv = 4 if compressed and index == 0 else 0
            last = index == len(pieces) - 1
            data.append(client_frame(frame_opcode, piece, fin=last, rsv=rsv, mask=draw(masks)))
            if not last and draw(st.booleans()):
                ping = draw(st.binary(max_size=125))
                data.append(client_frame(0x9, ping, mask=draw(masks)))
                expected.append(Ping(ping))
        expected.append(TextMessage(message) if isinstance(message, str) else BytesMessage(message))
    return b"".join(data), expected


@PROPERTY_SETTINGS
@given(stream=client_stream(compress=False), sizes=split_sizes)
def test_client_messages_round_trip(stream: tuple[bytes, list[Any]], sizes: list[int]) -> None:
    data, expected = stream
    for pieces in ([data], split(data, sizes)):
        outcome = run_pieces(pieces)
        assert outcome.close_code is None, outcome.error
        assert outcome.events == expected


@PROPERTY_SETTINGS
@given(stream=client_stream(compress=True), sizes=split_sizes)
def test_compressed_client_messages_round_trip(stream: tuple[bytes, list[Any]], sizes: list[int]) -> None:
    data, expected = stream
    for pieces in ([data], split(data, sizes)):
        outcome = run_pieces(pieces, deflate=DeflateParameters())
        assert outcome.close_code is None, outcome.error
        assert outcome.events == expected


# Frames with random header bits (mostly masked, mostly known opcodes) around payloads made
# of UTF-8 edge cases and deflate pieces, plus raw bytes, so random streams reach every state.
PAYLOAD_PIECES = [
    b"", b"abc", b"\xce\xba", b"\xce", b"\xba", b"\xed\xa0\x80", b"\xf4\x90", b"\xff", b"\x03\xe8", b"\x03\xed",
    b"\x0f\xa0", b"\x00\x00\xff\xff", b"\xf2\x48\xcd\xc9\xc9\x07\x00", b"\x4a\x4c\x4a\x06\x00",
]  # fmt: skip
payloads = st.lists(st.one_of(st.sampled_from(PAYLOAD_PIECES), st.binary(max_size=8)), max_size=6).map(
    b"".join
)


@st.composite
def frame_like(draw: Any) -> bytes:
    rare = draw(st.integers(0, 19)) == 0  # one frame in 20 breaks a header rule at random
    opcode = draw(st.integers(0, 15) if rare else st.sampled_from([0x0, 0x1, 0x1, 0x2, 0x2, 0x8, 0x9, 0xA]))
    frame = client_frame(
        opcode,
        draw(payloads),
        fin=draw(st.booleans()) if rare or opcode < 8 else True,
        rsv=draw(st.integers(0, 7) if rare else st.sampled_from([0, 0, 4])),
        mask=None if rare and draw(st.booleans()) else draw(masks),
        length_form=draw(st.sampled_from([None, None, None, 126, 127])) if rare or opcode < 8 else None,
    )
    if draw(st.integers(0, 19)) == 0:
        frame = frame[: draw(st.integers(0, len(frame)))]  # a truncated frame: the rest is misread
    return frame


garbage = st.lists(
    st.one_of(frame_like(), frame_like(), frame_like(), st.binary(max_size=4)), max_size=12
).map(b"".join)


@PROPERTY_SETTINGS
@given(data=garbage, sizes=split_sizes, deflate=st.booleans(), max_size=st.sampled_from([1, 5, 100, 2**24]))
def test_arbitrary_bytes_split_anyhow_give_the_same_outcome(
    data: bytes, sizes: list[int], deflate: bool, max_size: int
) -> None:
    options: dict[str, Any] = {"max_size": max_size, "deflate": DeflateParameters() if deflate else None}
    whole = run_pieces([data], **options)
    for pieces in (split(data, sizes), [data[index : index + 1] for index in range(len(data))]):
        assert run_pieces(pieces, **options).comparable() == whole.comparable()


deflate_parameters = st.one_of(
    st.none(),
    st.builds(
        DeflateParameters,
        server_no_context_takeover=st.booleans(),
        server_max_window_bits=st.one_of(st.none(), st.integers(8, 15)),
        compress_level=st.integers(-1, 9),
        mem_level=st.integers(1, 9),
    ),
)


@PROPERTY_SETTINGS
@given(sent=messages, parameters=deflate_parameters)
def test_server_messages_round_trip(sent: list[Message], parameters: DeflateParameters | None) -> None:
    connection = WebSocketConnection(deflate=parameters)
    inflater = None
    if parameters is not None:
        inflater = ClientInflater(
            window_bits=parameters.server_max_window_bits or 15,
            context_takeover=not parameters.server_no_context_takeover,
        )
    for message in sent:
        frame_bytes = (
            connection.send_text(message) if isinstance(message, str) else connection.send_bytes(message)
        )
        (frame,) = parse_server_frames(frame_bytes)
        payload = frame.payload
        if frame.rsv == 4:
            assert inflater is not None
            payload = inflater.inflate(payload)
        else:
            assert frame.rsv == 0
            # Only an 8-bit window (zlib cannot compress with it) leaves messages plain.
            assert parameters is None or parameters.server_max_window_bits == 8
        assert frame.fin and frame.opcode == (0x1 if isinstance(message, str) else 0x2)
        assert payload == (message.encode("utf-8") if isinstance(message, str) else message)
