"""Coverage-guided fuzzing of the chunked body reader (atheris + libFuzzer).

Each input is a chunked message body (chunks, last-chunk, trailer section) fed straight to
a ChunkedReader, whole and cut at input-derived points (see harness.py). A run fails if
anything but RemoteProtocolError escapes, if an error has a status the reader must never
give, if two ways of cutting the input disagree, or if a body that decoded does not
decode again to the same body and trailers once re-encoded as one chunk.

    python fuzz/fuzz_chunked.py -max_total_time=300 -dict=fuzz/http.dict fuzz/corpus_chunked/

(fuzz/README.md has more.)
"""

from __future__ import annotations

import sys
from typing import Any, List

import harness
from harness import RemoteProtocolError, check_all_splits_agree, check_error, limits_for, merge_body_chunks

# harness imported (and instrumented) waitress_like.protocol already.
from waitress_like.protocol import BodyChunk, EndOfRequest, ParserLimits
from waitress_like.protocol.body import ChunkedReader


def decode(pieces: List[bytes], limits: ParserLimits) -> harness.Outcome:
    reader = ChunkedReader(limits)
    buffer = bytearray()
    events: List[Any] = []
    status = None
    finished = False
    for piece in pieces:
        buffer += piece
        if finished:
            continue  # what follows the body belongs to the next request, not the reader
        try:
            while True:
                event = reader.read(buffer)
                if event is None:
                    break
                merge_body_chunks(events, event)
                if type(event) is EndOfRequest:
                    finished = True
                    break
        except RemoteProtocolError as error:
            status = check_error(error)
            break
    return (events, status, finished, bytes(buffer) if finished else None)


def check_round_trip(outcome: harness.Outcome) -> None:
    """Re-encode a decoded body as one chunk and decode it again, with default limits
    (the small limits an input may have chosen can refuse the longer size line)."""
    events, status, finished, _ = outcome
    if status is not None or not finished:
        return
    body = b"".join(event.data for event in events if type(event) is BodyChunk)
    trailers = events[-1].trailers
    encoded = b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in trailers)
    message = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n" + encoded + b"\r\n"
    again = decode([message], ParserLimits())
    if again[1] is not None or not again[2]:
        raise AssertionError(f"re-encoded body was refused: {again!r}")
    again_body = b"".join(event.data for event in again[0] if type(event) is BodyChunk)
    if again_body != body or again[0][-1].trailers != trailers:
        raise AssertionError(f"round trip changed the body or trailers: {again!r}")


def test_one_input(data: bytes) -> None:
    limits = limits_for(data)
    outcome = check_all_splits_agree(data, lambda pieces: decode(pieces, limits))
    check_round_trip(outcome)


def main() -> None:
    harness.atheris.Setup(sys.argv, test_one_input)
    harness.atheris.Fuzz()


if __name__ == "__main__":
    main()
