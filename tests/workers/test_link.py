"""The supervisor-worker link: JSON lines over a socket pair.

The reader is fed whole, byte by byte and at random split points; the writer is shown
never to block, to keep what does not fit, and to drop rather than grow without bound.
"""

from __future__ import annotations

import random
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waitress_like import workerlink
from waitress_like.workerlink import LinkError, LinkWriter, MessageReader, encode, receive

MESSAGES = [
    encode(workerlink.READY, pid=1234),
    encode(workerlink.HEARTBEAT, requests=120),
    encode(workerlink.BOOT_ERROR, reason="cannot import 'x':\nno module named 'x' \u2014 sorry"),
    encode("metrics", snapshot={"requests": [1, 2, 3], "nested": {"a": None}}),
]


def _decode_in_pieces(data: bytes, cuts: list[int]) -> list[dict]:
    reader = MessageReader()
    messages = []
    for start, end in zip([0, *cuts], [*cuts, len(data)]):
        messages += reader.feed(data[start:end])
    return messages


@pytest.mark.parametrize("seed", range(5))
def test_messages_survive_any_split(seed: int):
    data = b"".join(MESSAGES)
    whole = _decode_in_pieces(data, [])
    bytewise = _decode_in_pieces(data, list(range(1, len(data))))
    rng = random.Random(seed)
    split = _decode_in_pieces(data, sorted(rng.sample(range(1, len(data)), 7)))
    assert whole == bytewise == split
    assert [m["kind"] for m in whole] == ["ready", "heartbeat", "boot_error", "metrics"]
    assert whole[2]["reason"] == "cannot import 'x':\nno module named 'x' \u2014 sorry"
    assert whole[3]["snapshot"]["nested"] == {"a": None}


@given(st.lists(st.dictionaries(st.text(min_size=1), st.integers() | st.text()), max_size=5))
def test_any_fields_round_trip(fields_list: list[dict]):
    messages = [{**fields, "kind": "k"} for fields in fields_list]
    data = b"".join(encode(**message) for message in messages)
    assert _decode_in_pieces(data, []) == messages


@pytest.mark.parametrize(
    "line, problem",
    [
        (b"not json\n", "not JSON"),
        (b"[1, 2]\n", "object with a kind"),
        (b'{"no": "kind"}\n', "object with a kind"),
        (b'{"kind": 5}\n', "object with a kind"),
    ],
)
def test_a_malformed_message_is_a_link_error(line: bytes, problem: str):
    with pytest.raises(LinkError, match=problem):
        MessageReader().feed(line)


def test_an_endless_line_is_a_link_error_not_a_growing_buffer():
    reader = MessageReader()
    with pytest.raises(LinkError, match="longer than"):
        for _ in range(100):
            reader.feed(b"x" * 4096)


def test_a_message_over_the_limit_cannot_be_sent():
    with pytest.raises(ValueError, match="over the link's limit"):
        encode("big", data="x" * workerlink.MAX_MESSAGE_BYTES)


def test_the_writer_never_blocks_keeps_what_does_not_fit_and_then_drops():
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        right.setblocking(False)
        writer = LinkWriter(left)
        sent = 0
        while writer.send("filler", data="y" * 4000):  # nobody reads: the buffers fill
            sent += 1
        assert sent > 10
        assert not writer.flush()
        reader = MessageReader()
        received: list[dict] = []
        while len(received) < sent:
            messages = receive(right, reader)
            assert messages is not None
            received += messages
            writer.flush()
        assert len(received) == sent and all(m["kind"] == "filler" for m in received)


def test_receive_reports_the_peer_gone():
    left, right = socket.socketpair()
    right.setblocking(False)
    with right:
        assert receive(right, MessageReader()) == []
        left.close()
        assert receive(right, MessageReader()) is None
        writer = LinkWriter(right)
        assert not writer.send("ready", pid=1)
