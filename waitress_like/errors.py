"""The exceptions waitress_like raises, split by whose fault the problem is.

* :class:`ConfigError` - the operator gave a bad setting.
* :class:`RemoteProtocolError` - the client sent bytes that break HTTP/1.1; it carries
  the status code to answer with (``status_hint``).
* :class:`LocalProtocolError` - the application (or we) tried to send something that
  would break HTTP/1.1, e.g. a header value with a newline.

Nothing in this module does I/O, so every layer (the sans-I/O protocol included) may
import it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "WaitressLikeError",
    "ConfigError",
    "ProtocolError",
    "RemoteProtocolError",
    "LocalProtocolError",
    "describe_exception",
]


class WaitressLikeError(Exception):
    """Base class of every exception this package raises on purpose."""


class ConfigError(WaitressLikeError, ValueError):
    """A setting has an unknown name, a bad value, or conflicts with another setting.

    ``setting`` names the offending setting and ``value`` is what was given, so the CLI,
    PasteDeploy and ``serve()`` can all report the same one-line message.
    """

    def __init__(self, setting: str, value: Any, reason: str) -> None:
        self.setting = setting
        self.value = value
        self.reason = reason
        super().__init__(f"setting {setting!r}: {reason} (got {value!r})")


class ProtocolError(WaitressLikeError):
    """An HTTP/1.1 rule was broken. ``status_hint`` is the status code to answer with."""

    status_hint = 400

    def __init__(self, message: str, status_hint: int | None = None) -> None:
        super().__init__(message)
        if status_hint is not None:
            self.status_hint = status_hint


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol. The connection must be answered (4xx/5xx) and closed."""


class LocalProtocolError(ProtocolError):
    """We (or the application) tried to send something HTTP/1.1 does not allow."""

    status_hint = 500


def describe_exception(error: BaseException) -> str:
    """``"TypeName: message"`` (or the type name alone) on one line, for a one-line report."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
