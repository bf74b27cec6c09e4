"""Read gunicorn's request corpus out of its source distribution, as plain case dicts.

gunicorn (MIT licence, ``LICENSE`` and ``NOTICE`` at the top of the sdist) keeps its
HTTP/1.x request corpus in ``tests/requests/{valid,invalid}``: for each case a ``NAME.http``
file with the bytes a client sends, written as text, and a ``NAME.py`` file with what
gunicorn must make of them. :func:`load_cases` turns an unpacked sdist
(``tests.sdists.fetch_sdist(GUNICORN)``) into a list of dicts, one per case:

``name``
    ``valid/NAME`` or ``invalid/NAME``.
``kind``
    ``valid`` or ``invalid``.
``raw_b64``
    The exact bytes, base64.
``gunicorn_settings``
    Every setting the ``.py`` file sets, with the value gunicorn stores for it (gunicorn
    normalises ``proxy_protocol=True`` to ``"auto"`` and splits ``forwarded_allow_ips``).
``requests`` (valid cases)
    One dict per request in the bytes: ``method``, ``target`` (the raw request-target),
    ``version`` ``[major, minor]``, ``headers`` ``[[NAME, value], ...]``, ``body_b64``, and
    ``trailers`` when the ``.py`` file lists any.
``error`` (invalid cases)
    The name of the gunicorn exception the bytes must cause.

How the text files encode bytes (gunicorn's own reader, ``tests/treq.py``, does the
same): line breaks in the file are layout and are dropped; the escapes ``\\r\\n`` (CRLF),
``\\n``, ``\\t``, ``\\0`` and ``\\xHH`` stand for bytes; any other backslash is an error.

The ``.py`` files are small Python modules that expect a ``uri()`` helper and import
``Config`` and exception classes from gunicorn. They are run here without gunicorn: their
``from gunicorn... import`` lines are replaced by stand-ins (a ``Config`` that records
``set()`` calls, exceptions known by name), and any other import is refused. Running them
is acceptable because the archive is pinned by SHA-256 (``tests/sdists.py``).
"""

from __future__ import annotations

import ast
import base64
import re
from pathlib import Path
from typing import Any, Callable

__all__ = ["CorpusFormatError", "load_cases", "http_bytes"]

REQUESTS_FOLDER = Path("tests") / "requests"
KINDS = ("valid", "invalid")


class CorpusFormatError(ValueError):
    """A corpus file this reader does not understand (a newer gunicorn, say)."""


# -- the .http files -----------------------------------------------------------------------------

_ESCAPE = re.compile(rb"\\(r\\n|n|t|0|x[0-9A-Fa-f]{2})?")
_ESCAPED = {b"r\\n": b"\r\n", b"n": b"\n", b"t": b"\t", b"0": b"\x00"}


def http_bytes(text: bytes, *, source: str = "<corpus>") -> bytes:
    """The bytes a ``.http`` file stands for (see the module docstring)."""
    escaped = text.replace(b"\n", b"")

    def replace(match: re.Match[bytes]) -> bytes:
        escape = match.group(1)
        if escape is None:
            found = escaped[match.start() : match.start() + 4]
            raise CorpusFormatError(f"{source}: unknown escape {found!r}")
        if escape.startswith(b"x"):
            return bytes([int(escape[1:], 16)])
        return _ESCAPED[escape]

    return _ESCAPE.sub(replace, escaped)


# -- the .py files ---------------------------------------------------------------------------------


def _proxy_protocol(value: Any) -> Any:
    if isinstance(value, bool):
        return "auto" if value else "off"
    aliases = {"true": "auto", "1": "auto", "false": "off", "0": "off", "none": "off"}
    text = str(value).strip().lower()
    return aliases.get(text, text)


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item]
    return value


# setting -> how gunicorn's validator stores a value (settings not listed are kept as set)
_STORED_AS: dict[str, Callable[[Any], Any]] = {
    "proxy_protocol": _proxy_protocol,
    "forwarded_allow_ips": _comma_list,
}


class _RecordingConfig:
    """Stands in for ``gunicorn.config.Config``: remembers what the case sets."""

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}

    def set(self, name: str, value: Any) -> None:
        self.settings[name] = _STORED_AS.get(name, lambda kept: kept)(value)


class _GunicornError:
    """Stands in for a gunicorn exception class: only its name matters."""

    def __init__(self, name: str) -> None:
        self.name = name


def _uri(raw: str) -> dict[str, str]:
    return {"raw": raw}


def _stand_in(module: str, name: str, source: str) -> Any:
    if module == "gunicorn.config" and name == "Config":
        return _RecordingConfig
    if module == "gunicorn.http.errors":
        return _GunicornError(name)
    raise CorpusFormatError(f"{source}: cannot stand in for 'from {module} import {name}'")


def run_expectation(source_text: str, source: str) -> dict[str, Any]:
    """Run one ``.py`` file with stand-ins for its gunicorn imports; its namespace."""
    tree = ast.parse(source_text, filename=source)
    namespace: dict[str, Any] = {"uri": _uri, "cfg": _RecordingConfig()}
    body = []
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and (statement.module or "").startswith("gunicorn"):
            for alias in statement.names:
                namespace[alias.asname or alias.name] = _stand_in(statement.module or "", alias.name, source)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            raise CorpusFormatError(f"{source}: unexpected import on line {statement.lineno}")
        else:
            body.append(statement)
    tree.body = body
    exec(compile(tree, source, "exec"), namespace)
    return namespace


# -- cases -----------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _as_bytes(body: Any) -> bytes:
    # Two files write an empty body as '' rather than b''.
    return body if isinstance(body, bytes) else body.encode("latin-1")


def _request(expected: dict[str, Any]) -> dict[str, Any]:
    request = {
        "method": expected["method"],
        "target": expected["uri"]["raw"],
        "version": list(expected["version"]),
        "headers": [[name, value] for name, value in expected["headers"]],
        "body_b64": _b64(_as_bytes(expected["body"])),
    }
    if "trailers" in expected:
        request["trailers"] = [[name, value] for name, value in expected["trailers"]]
    return request


def load_case(kind: str, http_path: Path) -> dict[str, Any]:
    """The case of one ``.http`` file and the ``.py`` file beside it."""
    expectation_path = http_path.with_suffix(".py")
    namespace = run_expectation(expectation_path.read_text(encoding="utf-8"), str(expectation_path))
    case: dict[str, Any] = {
        "name": f"{kind}/{http_path.stem}",
        "kind": kind,
        "raw_b64": _b64(http_bytes(http_path.read_bytes(), source=str(http_path))),
        "gunicorn_settings": namespace["cfg"].settings,
    }
    expected = namespace["request"]
    if kind == "invalid":
        if not isinstance(expected, _GunicornError):
            raise CorpusFormatError(f"{expectation_path}: an invalid case must name an exception")
        case["error"] = expected.name
    else:
        listed = expected if isinstance(expected, list) else [expected]
        case["requests"] = [_request(request) for request in listed]
    return case


def load_cases(sdist_root: Path) -> list[dict[str, Any]]:
    """Every case under ``<sdist_root>/tests/requests``, valid ones first, by name."""
    cases = []
    for kind in KINDS:
        folder = sdist_root / REQUESTS_FOLDER / kind
        http_paths = sorted(folder.glob("*.http"))
        if not http_paths:
            raise CorpusFormatError(f"no .http files in {folder}")
        cases += [load_case(kind, path) for path in http_paths]
    return cases
