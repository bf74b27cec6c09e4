"""The fixed rules every connection of one listener follows, built once from the settings.

A :class:`ChannelPolicy` is immutable: limits, deadlines, buffer sizes and the proxy
policy a channel applies. What changes while the server runs (the loop, whether it
drains, how many requests are in service) is not here: the channel asks its
:class:`~waitress_like.channel.ChannelOwner` for that.

Thread contract: built on any thread; read-only afterwards, so any thread may read it.
"""

from __future__ import annotations

from typing import NamedTuple

from .config import Settings
from .protocol import ParserLimits
from .proxy import ProxyPolicy

__all__ = ["ChannelPolicy"]

# While a body streams in the channel reads at least this much per recv (see Channel._read).
_BODY_RECV_BYTES = 256 * 1024


class ChannelPolicy(NamedTuple):
    """Per-channel policy; field names follow the settings they come from."""

    proxy: ProxyPolicy  # which peers are trusted proxies; PROXY protocol readers
    parser_limits: ParserLimits
    recv_bytes: int
    body_recv_bytes: int
    inbuf_overflow: int
    outbuf_overflow: int
    outbuf_high_watermark: int
    server_header: str  # the Server header of responses the server writes itself; "" for none
    keepalive_timeout: float
    max_connection_age: float
    max_requests_per_connection: int
    retry_after: str
    request_head_timeout: float
    request_body_timeout: float
    request_min_rate: int
    request_min_rate_grace: float
    send_timeout: float
    log_socket_errors: bool
    # Requests parsed ahead of the one in service. At least one, so a client closing its
    # side is noticed while its request runs (client_disconnected).
    max_ready_requests: int

    @classmethod
    def from_settings(cls, settings: Settings, proxy: ProxyPolicy | None = None) -> ChannelPolicy:
        return cls(
            proxy=proxy if proxy is not None else ProxyPolicy.from_settings(settings),
            parser_limits=ParserLimits(
                max_header_bytes=settings.max_request_header_size,
                max_body_bytes=settings.max_request_body_size,
                max_header_count=settings.limit_request_fields,
            ),
            recv_bytes=settings.recv_bytes,
            body_recv_bytes=max(settings.recv_bytes, _BODY_RECV_BYTES),
            inbuf_overflow=settings.inbuf_overflow,
            outbuf_overflow=settings.outbuf_overflow,
            outbuf_high_watermark=settings.outbuf_high_watermark,
            server_header=(settings.ident or "") if settings.server_header else "",
            keepalive_timeout=settings.keepalive_timeout,
            max_connection_age=settings.max_connection_age,
            max_requests_per_connection=settings.max_requests_per_connection,
            retry_after=str(settings.retry_after),
            request_head_timeout=settings.request_head_timeout,
            request_body_timeout=settings.request_body_timeout,
            request_min_rate=settings.request_min_rate,
            request_min_rate_grace=settings.request_min_rate_grace,
            send_timeout=settings.send_timeout,
            log_socket_errors=settings.log_socket_errors,
            max_ready_requests=max(1, settings.channel_request_lookahead),
        )
