"""Coverage-guided fuzzing of RequestParser (atheris + libFuzzer).

Each input is the bytes a client sends. It is parsed whole and cut at input-derived
points (see harness.py); a run fails if anything but RemoteProtocolError escapes, if an
error carries a status the parser must never give, or if two ways of cutting the same
bytes give different events, errors, states or leftover counts.

    python fuzz/fuzz_request_parser.py -max_total_time=300 -dict=fuzz/http.dict fuzz/corpus/

(fuzz/README.md has more.)
"""

from __future__ import annotations

import sys
from typing import Any, List

import harness
from harness import RemoteProtocolError, check_all_splits_agree, check_error, limits_for, merge_body_chunks

# harness imported (and instrumented) waitress_like.protocol already.
from waitress_like.protocol import EndOfRequest, ParserLimits, ParserState, RequestHead, RequestParser


def parse(pieces: List[bytes], limits: ParserLimits) -> harness.Outcome:
    parser = RequestParser(limits)
    events: List[Any] = []
    status = None
    for piece in pieces:
        parser.feed(piece)
        try:
            while True:
                event = parser.next_event()
                if event is None:
                    break
                merge_body_chunks(events, event)
        except RemoteProtocolError as error:
            status = check_error(error)
            if parser.state is not ParserState.ERROR:
                raise AssertionError("an error left the parser out of its ERROR state") from error
            break
    check_event_order(events)
    return (events, status, parser.state, parser.buffered_byte_count())


def check_event_order(events: List[Any]) -> None:
    """RequestHead, then BodyChunk*, then EndOfRequest, for every request."""
    in_request = False
    for event in events:
        if type(event) is RequestHead:
            if in_request:
                raise AssertionError("a RequestHead before the previous request ended")
            in_request = True
        elif not in_request:
            raise AssertionError(f"{type(event).__name__} outside a request")
        elif type(event) is EndOfRequest:
            in_request = False


def test_one_input(data: bytes) -> None:
    limits = limits_for(data)
    check_all_splits_agree(data, lambda pieces: parse(pieces, limits))


def main() -> None:
    harness.atheris.Setup(sys.argv, test_one_input)
    harness.atheris.Fuzz()


if __name__ == "__main__":
    main()
