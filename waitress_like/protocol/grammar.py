"""The HTTP grammar pieces every parser and checker here is built from (RFC 9110 5.5, 5.6).

Regular-expression source text, as ``str`` for latin-1 decoded text and as ``bytes`` for raw
bytes, plus the compiled forms several modules share. One copy, so the request parser, the
response checks, the WebSocket handshake and the Forwarded parser cannot drift apart.
"""

from __future__ import annotations

import re

__all__ = [
    "TCHAR",
    "TOKEN",
    "TOKEN_BYTES",
    "FIELD_VCHAR",
    "QUOTED_STRING",
    "QUOTED_STRING_BYTES",
    "TOKEN_RE",
    "FIELD_VALUE_RE",
    "QUOTED_PAIR_RE",
]

#: tchar (RFC 9110 5.6.2), as the inside of a character class.
TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
#: token = 1*tchar
TOKEN = rf"[{TCHAR}]+"
TOKEN_BYTES = TOKEN.encode("ascii")
#: field-vchar = VCHAR / obs-text (RFC 9110 5.5), as the inside of a character class.
FIELD_VCHAR = r"\x21-\x7e\x80-\xff"
#: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 5.6.4), obs-text included.
QUOTED_STRING = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
QUOTED_STRING_BYTES = QUOTED_STRING.encode("latin-1")

#: A whole token (use ``fullmatch``).
TOKEN_RE = re.compile(TOKEN)
#: A whole field value: no CTL but HTAB (use ``fullmatch``; empty is allowed).
FIELD_VALUE_RE = re.compile(rf"[\t {FIELD_VCHAR}]*")
#: One quoted-pair inside a quoted-string's content, for unquoting with ``sub(r"\1", ...)``.
QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
