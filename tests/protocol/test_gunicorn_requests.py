"""The reader of gunicorn's request corpus (:mod:`tests.protocol.gunicorn_requests`)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from .corpus import CASES
from .gunicorn_requests import CorpusFormatError, http_bytes, load_case, run_expectation

# The JSON copy of the corpus some machines keep beside the clone. It was made from an
# earlier gunicorn release; gunicorn 27 moved two of its valid cases to the invalid ones
# and added six more.
SHARED_COPY = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "gunicorn-requests" / "corpus.json"
ONLY_IN_SHARED_COPY = {"valid/009", "valid/027"}
NEW_IN_GUNICORN_27 = {
    "invalid/rfc9112_bare_lf_01",
    "invalid/rfc9112_leading_crlf_02",
    "invalid/rfc9112_target_non_ascii_01",
    "invalid/rfc9112_target_non_ascii_02",
    "invalid/rfc9112_target_nul_01",
    "invalid/rfc9112_te_identity_with_cl_01",
    "invalid/rfc9112_te_not_chunked_final_01",
    "valid/rfc9112_leading_crlf_01",
}


def test_layout_newlines_are_dropped_and_escapes_decoded() -> None:
    text = b"GET / HTTP/1.1\\r\\n\nA: \\t1\\0\\n\\r\\n\n\\x0D\\x0a\\xFF"
    assert http_bytes(text) == b"GET / HTTP/1.1\r\nA: \t1\x00\n\r\n\r\n\xff"


@pytest.mark.parametrize("text", [b"\\r", b"a\\\\b", b"\\x4", b"\\q", b"end\\"])
def test_an_unknown_escape_is_an_error(text: bytes) -> None:
    with pytest.raises(CorpusFormatError, match="unknown escape"):
        http_bytes(text, source="case.http")


def test_expectations_run_with_stand_ins_for_gunicorn() -> None:
    namespace = run_expectation(
        "from gunicorn.config import Config\n"
        "from gunicorn.http.errors import InvalidHeader as Bad\n"
        "cfg = Config()\n"
        "cfg.set('proxy_protocol', True)\n"
        "cfg.set('forwarded_allow_ips', '*,10.0.0.1')\n"
        "cfg.set('limit_request_fields', 2)\n"
        "request = Bad\n"
        "target = uri('/a?b')\n",
        "case.py",
    )
    assert namespace["cfg"].settings == {
        "proxy_protocol": "auto",
        "forwarded_allow_ips": ["*", "10.0.0.1"],
        "limit_request_fields": 2,
    }
    assert namespace["request"].name == "InvalidHeader"
    assert namespace["target"] == {"raw": "/a?b"}


@pytest.mark.parametrize("line", ["import os", "from os import path", "from gunicorn.util import x"])
def test_other_imports_are_refused(line: str) -> None:
    with pytest.raises(CorpusFormatError):
        run_expectation(line + "\n", "case.py")


def test_a_case_from_its_two_files(tmp_path: Path) -> None:
    (tmp_path / "x.http").write_bytes(b"GET /a HTTP/1.1\\r\\n\nHost: h\\r\\n\n\\r\\n\n")
    (tmp_path / "x.py").write_text(
        "req = {'method': 'GET', 'uri': uri('/a'), 'version': (1, 1),\n"
        "       'headers': [('HOST', 'h')], 'body': b'', 'trailers': [('A', 'b')]}\n"
        "request = [req, dict(req, body='')]\n"
    )
    request = {
        "method": "GET",
        "target": "/a",
        "version": [1, 1],
        "headers": [["HOST", "h"]],
        "body_b64": "",
        "trailers": [["A", "b"]],
    }
    assert load_case("valid", tmp_path / "x.http") == {
        "name": "valid/x",
        "kind": "valid",
        "raw_b64": base64.b64encode(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n").decode(),
        "gunicorn_settings": {},
        "requests": [request, request],
    }


def test_the_corpus_is_all_there() -> None:
    kinds = [case["kind"] for case in CASES.values()]
    assert (kinds.count("valid"), kinds.count("invalid")) == (62, 81)


@pytest.mark.skipif(not SHARED_COPY.exists(), reason=f"no JSON copy of the corpus at {SHARED_COPY}")
def test_the_cases_match_the_shared_json_copy() -> None:
    shared = {case["name"]: case for case in json.loads(SHARED_COPY.read_text())}
    assert set(shared) - set(CASES) == ONLY_IN_SHARED_COPY
    assert set(CASES) - set(shared) == NEW_IN_GUNICORN_27
    for name in set(shared) & set(CASES):
        assert CASES[name] == shared[name], name
