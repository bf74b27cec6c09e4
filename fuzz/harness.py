"""What the two fuzzers share: how an input picks its limits and split points, and the
checks every run must pass.

An input is only the bytes on the wire (so the seed corpus is plain requests). The split
points and the limits are derived from a CRC of the input: a mutation that changes the
bytes also moves the splits, and the same input always replays the same way.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable, List, Tuple

# Run as "python fuzz/fuzz_*.py" from anywhere: import waitress_like from this checkout.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import atheris  # noqa: E402

# Feed str.startswith/endswith comparisons to the fuzzer. (atheris's "RegEx" hook would
# help more, but its pattern proxy does not take search()'s pos/endpos arguments, which
# the parser uses.)
atheris.enabled_hooks.add("str")

with atheris.instrument_imports(include=["waitress_like.protocol", "waitress_like.errors"]):
    from waitress_like.errors import RemoteProtocolError
    from waitress_like.protocol import BodyChunk, ParserLimits

# Every status the request parser may answer with.
ALLOWED_STATUSES = frozenset({400, 413, 414, 431, 501, 505})
BYTE_BY_BYTE_MAX = 512  # inputs up to this size are also fed one byte at a time

Outcome = Tuple[Any, ...]


def limits_for(data: bytes, head_room: int = 0) -> ParserLimits:
    """The default limits for three inputs in four, small ones derived from the CRC
    otherwise (``head_room`` is added to the head limit, for a head the harness adds)."""
    crc = zlib.crc32(data)
    if crc & 3:
        return ParserLimits()
    return ParserLimits(
        max_header_bytes=head_room + 16 + (crc >> 2) % 400,
        max_body_bytes=(crc >> 5) % 200,
        max_request_line_bytes=8 + (crc >> 9) % 300,
        max_field_bytes=4 + (crc >> 13) % 200,
        max_header_count=1 + (crc >> 17) % 12,
        max_chunk_line_bytes=1 + (crc >> 21) % 64,
    )


def splittings(data: bytes) -> Iterable[List[bytes]]:
    """Ways to cut ``data`` besides whole: at one and two CRC-derived points, and byte by
    byte when it is small."""
    crc = zlib.crc32(data, 0x5EED)
    length = len(data)
    first = crc % (length + 1)
    second = (crc >> 16) % (length + 1)
    low, high = min(first, second), max(first, second)
    yield [data[:first], data[first:]]
    yield [data[:low], data[low:high], data[high:]]
    if length <= BYTE_BY_BYTE_MAX:
        yield [data[index : index + 1] for index in range(length)]


def merge_body_chunks(events: List[Any], event: Any) -> None:
    """Append ``event``; adjacent BodyChunks merge (their boundaries follow the reads)."""
    if type(event) is BodyChunk:
        if not event.data:
            raise AssertionError("empty BodyChunk")
        if events and type(events[-1]) is BodyChunk:
            events[-1] = BodyChunk(events[-1].data + event.data)
            return
    events.append(event)


def check_error(error: RemoteProtocolError) -> int:
    status = error.status_hint
    if status not in ALLOWED_STATUSES:
        raise AssertionError(f"unexpected status {status} for {error!r}")
    if not str(error):
        raise AssertionError("an error without a message")
    return status


def check_all_splits_agree(data: bytes, run: Callable[[List[bytes]], Outcome]) -> Outcome:
    """Run ``data`` whole and split every way; all outcomes must be equal.

    Any exception other than RemoteProtocolError escapes from ``run`` and is a finding.
    """
    whole = run([data])
    for pieces in splittings(data):
        other = run(pieces)
        if other != whole:
            sizes = [len(piece) for piece in pieces][:20]
            raise AssertionError(f"split {sizes} gave\n  {other!r}\ninstead of\n  {whole!r}")
    return whole
