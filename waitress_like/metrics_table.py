"""The metrics table: every metric waitress_like exposes, named under one prefix.

One row per metric family (name, kind, help, labels). The Prometheus exposition, the
statsd mapping to gunicorn's names and the documentation (docs/production.rst, checked
by a test) all follow this table. Pure data: no I/O, no state.
"""

from __future__ import annotations

from .metrics import COUNTER, GAUGE, HISTOGRAM, MetricSpec

__all__ = ["METRICS", "PREFIX", "GAUGE_NAMES"]

#: Every metric's name starts with this.
PREFIX = "waitress_like_"

# Request durations: from a fast in-memory answer to a slow back end.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

CONNECTION_STATES = ("reading", "in_service", "idle", "websocket", "closing")
#: Why the server answered a request itself: status -> reason (503s say which limit).
REJECTION_REASONS = {
    400: "bad_request",
    408: "timeout",
    413: "body_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
    501: "not_implemented",
    505: "version_not_supported",
}
DEADLINES = ("head", "body", "send", "proxy_header")
RESTART_REASONS = ("exited", "timeout", "max_requests", "reload")
LOG_LEVELS = ("warning", "error", "critical", "exception")
# Methods outside this set are counted as "other": a client chooses the method, and a
# label must not grow without bound.
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"))

REQUESTS = PREFIX + "requests_total"
RESPONSES = PREFIX + "responses_total"
DURATION = PREFIX + "request_duration_seconds"
RECEIVED = PREFIX + "received_bytes_total"
SENT = PREFIX + "sent_bytes_total"
ACCEPTED = PREFIX + "connections_accepted_total"
CONNECTIONS = PREFIX + "connections"
IN_SERVICE = PREFIX + "requests_in_service"
QUEUED = PREFIX + "requests_queued"
THREADS = PREFIX + "threads"
THREADS_BUSY = PREFIX + "threads_busy"
REJECTED = PREFIX + "requests_rejected_total"
SLOW_CLIENTS = PREFIX + "slow_clients_cut_total"
EVICTED = PREFIX + "connections_evicted_total"
WORKERS = PREFIX + "workers"
RESTARTS = PREFIX + "worker_restarts_total"
LOG_MESSAGES = PREFIX + "log_messages_total"

_REJECTED_INITIAL = tuple((str(status), reason) for status, reason in REJECTION_REASONS.items()) + (
    ("503", "overload"),
    ("503", "address_limit"),
)

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(REQUESTS, COUNTER,
               "Requests that reached the application, by method and status class (2xx...).",
               ("method", "status")),
    MetricSpec(RESPONSES, COUNTER,
               "Requests that reached the application, by exact status code.", ("code",)),
    MetricSpec(DURATION, HISTOGRAM,
               "Time from handing a request to the application to its last byte queued for sending.",
               buckets=DURATION_BUCKETS),
    MetricSpec(RECEIVED, COUNTER, "Bytes received from clients."),
    MetricSpec(SENT, COUNTER, "Bytes sent to clients."),
    MetricSpec(ACCEPTED, COUNTER, "Connections accepted."),
    MetricSpec(CONNECTIONS, GAUGE, "Open connections, by what they are doing.", ("state",),
               initial=tuple((state,) for state in CONNECTION_STATES)),
    MetricSpec(IN_SERVICE, GAUGE,
               "Requests handed to the application whose response is not completely sent."),
    MetricSpec(QUEUED, GAUGE, "Requests waiting for a free worker thread."),
    MetricSpec(THREADS, GAUGE, "Worker threads."),
    MetricSpec(THREADS_BUSY, GAUGE, "Worker threads running a request."),
    MetricSpec(REJECTED, COUNTER,
               "Requests the server answered itself, without the application, by status and reason.",
               ("status", "reason"), initial=_REJECTED_INITIAL),
    MetricSpec(SLOW_CLIENTS, COUNTER,
               "Connections closed because the client missed a deadline, by deadline.",
               ("deadline",), initial=tuple((deadline,) for deadline in DEADLINES)),
    MetricSpec(EVICTED, COUNTER,
               "Connections closed at connection_limit to make room for a new one."),
    MetricSpec(WORKERS, GAUGE, "Worker processes serving (1 for a server without a supervisor)."),
    MetricSpec(RESTARTS, COUNTER, "Worker processes replaced, by reason.", ("reason",),
               initial=tuple((reason,) for reason in RESTART_REASONS)),
    MetricSpec(LOG_MESSAGES, COUNTER,
               "Messages the server logged at warning level or above, by level.", ("level",),
               initial=tuple((level,) for level in LOG_LEVELS)),
)  # fmt: skip

#: The gauges, which a supervisor drops when a worker is replaced.
GAUGE_NAMES = frozenset(spec.name for spec in METRICS if spec.kind == GAUGE)
