"""Write the seed corpora the fuzzers start from (generated; ignored by git).

* ``fuzz/corpus/``: every raw request of gunicorn's corpus (read in place from
  ``../shared/corpora/gunicorn-requests``, whose LICENSE and NOTICE cover it), and, for
  HTTP/1.1 requests without a Host field, a copy with ``Host: h`` inserted so the seed
  gets past the Host check into the rest of the parser.
* ``fuzz/corpus_chunked/``: the chunked bodies of those requests (everything after the
  head of a request with ``Transfer-Encoding: chunked``), for ``fuzz_chunked.py``.

Files are named by the SHA-1 of their content, as libFuzzer names the inputs it adds, so
running the script again adds nothing twice.

    python fuzz/build_seed_corpus.py
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(FUZZ_DIR.parent))

from tests.protocol.corpus import CASES, CORPUS, raw_bytes, with_host_for_invalid  # noqa: E402

_CHUNKED_HEAD = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked[^\r\n]*\r\n", re.IGNORECASE)


def write_seed(folder: Path, data: bytes) -> bool:
    path = folder / hashlib.sha1(data).hexdigest()
    if path.exists():
        return False
    path.write_bytes(data)
    return True


def chunked_body(data: bytes) -> bytes | None:
    head, separator, rest = data.partition(b"\r\n\r\n")
    if not separator or _CHUNKED_HEAD.search(head + b"\r\n") is None:
        return None
    return rest


def main() -> int:
    if not CASES:
        print(f"request corpus not found at {CORPUS}", file=sys.stderr)
        return 1
    requests_dir = FUZZ_DIR / "corpus"
    chunked_dir = FUZZ_DIR / "corpus_chunked"
    requests_dir.mkdir(exist_ok=True)
    chunked_dir.mkdir(exist_ok=True)
    written = {requests_dir: 0, chunked_dir: 0}
    for case in CASES.values():
        raw = raw_bytes(case)
        for data in {raw, with_host_for_invalid(raw)}:
            written[requests_dir] += write_seed(requests_dir, data)
            body = chunked_body(data)
            if body:
                written[chunked_dir] += write_seed(chunked_dir, body)
    for folder, count in written.items():
        total = sum(1 for _ in folder.iterdir())
        print(f"{folder.relative_to(FUZZ_DIR.parent)}: {count} new seeds, {total} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
