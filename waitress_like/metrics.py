"""Metrics: counters, gauges and histograms with labels, and the Prometheus text format.

Recording never takes a lock shared between threads. Each thread that records gets its
own :class:`Shard` (a ``threading.local`` slot) and only that thread writes to it; the
loop thread, each worker thread and any other recorder each write their own. Reading is
the slow side: :meth:`Registry.snapshot` adds every shard up under the registry's lock,
copying each shard's tables with one ``dict.copy()`` (a single step for other threads,
so a concurrent write is either in the copy or left for the next one). A shard whose
thread has ended is folded into a retired total, so pool threads that come and go
neither lose their counts nor pile up.

A *snapshot* is plain data, ready for JSON or pickle::

    {"format": 1, "metrics": {name: [[label values], value], ...}}

where ``value`` is a number for counters and gauges, and for histograms the list of
per-bucket counts (not cumulative; the last bucket is +Inf) followed by the sum.
:func:`merge` adds snapshots up (gauges too: every gauge here is a sum over processes),
and :class:`Aggregate` keeps the latest snapshot of each worker process, so a supervisor
can serve their total: see its docstring for what happens when a worker is replaced.
:func:`render_text` writes the Prometheus text exposition format (version 0.0.4).

Thread contract: :meth:`Registry.shard` (and recording into the shard it returns) from
any thread, each into its own; :meth:`Registry.snapshot` and everything else from any
thread. :class:`Aggregate` is for one thread (the supervisor's).
"""

from __future__ import annotations

import bisect
import collections
import logging
import math
import threading
from typing import Any, Hashable, Iterable, Mapping, NamedTuple, Optional, Sequence

__all__ = [
    "COUNTER",
    "GAUGE",
    "HISTOGRAM",
    "CONTENT_TYPE",
    "Aggregate",
    "MetricSpec",
    "Registry",
    "Shard",
    "empty_snapshot",
    "merge",
    "render_text",
]

log = logging.getLogger("waitress_like")

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"

SNAPSHOT_FORMAT = 1
#: The Content-Type of :func:`render_text`'s output.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple  # label values, in the order of the spec's label names (all str)


class MetricSpec(NamedTuple):
    """One metric family: a row of a metrics table.

    ``name`` is the full exposed name (counters end in ``_total``). ``buckets`` are a
    histogram's upper bounds, increasing, without +Inf. ``initial`` lists label values
    exposed as 0 before anything is recorded, so a rate over them exists from the start
    (a family without labels always shows its one series).
    """

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    initial: tuple[Labels, ...] = ()


class Shard:
    """One thread's running totals. Only the owning thread writes to it.

    ``values`` maps ``(name, label values)`` to a number (a counter's count, a gauge's
    net change); ``histograms`` maps it to bucket counts plus the sum, as in snapshots.
    ``samples``, when the registry keeps them, holds recent raw observations (for
    statsd timers); it is a bounded deque, so a reader may pop from another thread.
    """

    __slots__ = ("values", "histograms", "samples", "thread")

    def __init__(self, thread: Optional[threading.Thread], sample_limit: int) -> None:
        self.values: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], list[float]] = {}
        self.samples: Optional[collections.deque[float]] = (
            collections.deque(maxlen=sample_limit) if sample_limit else None
        )
        self.thread = thread

    def add(self, name: str, labels: Labels = (), amount: float = 1) -> None:
        """Add ``amount`` to a counter (or to a gauge's net change; may be negative)."""
        values = self.values
        key = (name, labels)
        values[key] = values.get(key, 0) + amount

    def observe(self, name: str, bounds: Sequence[float], value: float, labels: Labels = ()) -> None:
        """Count ``value`` in histogram ``name``, whose bucket bounds are ``bounds``."""
        key = (name, labels)
        cell = self.histograms.get(key)
        if cell is None:
            cell = self.histograms[key] = [0] * (len(bounds) + 1) + [0.0]
        # bisect_left: the first bound >= value, as Prometheus buckets are "less or equal".
        cell[bisect.bisect_left(bounds, value)] += 1
        cell[-1] += value


class Registry:
    """The metric families of one process, and the shards recording into them.

    ``sample_limit`` above 0 makes each shard keep that many recent raw samples (see
    :meth:`drain_samples`).
    """

    def __init__(self, specs: Iterable[MetricSpec], sample_limit: int = 0) -> None:
        self.specs: dict[str, MetricSpec] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise ValueError(f"metric {spec.name!r} is defined twice")
            if spec.kind == HISTOGRAM and list(spec.buckets) != sorted(set(spec.buckets)):
                raise ValueError(f"histogram {spec.name!r}: buckets must increase")
            self.specs[spec.name] = spec
        self._sample_limit = sample_limit
        self._local = threading.local()
        self._lock = threading.Lock()  # readers only: shard creation and snapshots
        self._shards: list[Shard] = []
        self._retired = Shard(None, sample_limit)  # what threads that have ended recorded

    def shard(self) -> Shard:
        """The calling thread's shard (made on its first use). Record only into your own."""
        try:
            return self._local.shard
        except AttributeError:
            return self._new_shard()

    def _new_shard(self) -> Shard:
        shard = Shard(threading.current_thread(), self._sample_limit)
        with self._lock:
            self._shards.append(shard)
        self._local.shard = shard
        return shard

    def drain_samples(self) -> list[float]:
        """Any thread: take every raw sample kept so far (oldest first within a thread)."""
        taken: list[float] = []
        with self._lock:
            shards = [*self._shards, self._retired]
        for shard in shards:
            samples = shard.samples
            while samples:
                try:
                    taken.append(samples.popleft())
                except IndexError:  # pragma: no cover - emptied between the test and the pop
                    break
        return taken

    def snapshot(self, gauges: Optional[Mapping[str, Mapping[Labels, float]]] = None) -> dict[str, Any]:
        """Any thread: the totals so far, as plain data (see the module docstring).

        ``gauges`` are values read at this moment (``{name: {label values: value}}``);
        they are added to whatever the shards recorded under the same name.
        """
        values: dict[tuple[str, Labels], float] = {}
        histograms: dict[tuple[str, Labels], list[float]] = {}
        with self._lock:
            self._retire_finished_threads()
            for shard in (*self._shards, self._retired):
                _add_values(values, shard.values.copy())
                _add_histograms(histograms, shard.histograms.copy())
        for name, series in (gauges or {}).items():
            for labels, value in series.items():
                values[(name, labels)] = values.get((name, labels), 0) + value
        return self._as_snapshot(values, histograms)

    def _retire_finished_threads(self) -> None:
        """Fold the shards of threads that have ended into the retired totals (locked)."""
        alive = []
        for shard in self._shards:
            if shard.thread is not None and not shard.thread.is_alive():
                _add_values(self._retired.values, shard.values)
                _add_histograms(self._retired.histograms, shard.histograms)
                if shard.samples:
                    self._retired.samples.extend(shard.samples)  # type: ignore[union-attr]
            else:
                alive.append(shard)
        self._shards = alive

    def _as_snapshot(
        self, values: Mapping[tuple[str, Labels], float], histograms: Mapping[tuple[str, Labels], list[float]]
    ) -> dict[str, Any]:
        metrics: dict[str, list[list[Any]]] = {name: [] for name in self.specs}
        for (name, labels), value in values.items():
            if name in metrics:
                metrics[name].append([list(labels), value])
        for (name, labels), cell in histograms.items():
            if name in metrics:
                metrics[name].append([list(labels), list(cell)])
        return {"format": SNAPSHOT_FORMAT, "metrics": metrics}


def _add_values(into: dict[tuple[str, Labels], float], values: Mapping[tuple[str, Labels], float]) -> None:
    for key, value in values.items():
        into[key] = into.get(key, 0) + value


def _add_histograms(
    into: dict[tuple[str, Labels], list[float]], histograms: Mapping[tuple[str, Labels], list[float]]
) -> None:
    for key, cell in histograms.items():
        cell = list(cell)  # the owner may be writing: copy before adding up
        total = into.get(key)
        if total is None:
            into[key] = cell
        elif len(total) == len(cell):
            for index, count in enumerate(cell):
                total[index] += count


# --------------------------------------------------------------------------- snapshots


def empty_snapshot() -> dict[str, Any]:
    return {"format": SNAPSHOT_FORMAT, "metrics": {}}


def merge(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Add snapshots up: each series' counters, gauges and histogram buckets are summed.

    Snapshots of an unknown format are skipped, as are histogram series whose bucket
    count differs from the first one seen (a worker of another version): a supervisor
    must keep serving whatever its workers send.
    """
    totals: dict[str, dict[Labels, Any]] = {}
    for snapshot in snapshots:
        if snapshot.get("format") != SNAPSHOT_FORMAT:
            log.warning("ignoring a metrics snapshot of unknown format %r", snapshot.get("format"))
            continue
        for name, series in snapshot["metrics"].items():
            family = totals.setdefault(name, {})
            for labels, value in series:
                _merge_sample(family, tuple(labels), value)
    return {
        "format": SNAPSHOT_FORMAT,
        "metrics": {
            name: [[list(labels), value] for labels, value in family.items()]
            for name, family in totals.items()
        },
    }


def _merge_sample(family: dict[Labels, Any], labels: Labels, value: Any) -> None:
    total = family.get(labels)
    if isinstance(value, list):
        if total is None:
            family[labels] = list(value)
        elif isinstance(total, list) and len(total) == len(value):
            family[labels] = [a + b for a, b in zip(total, value)]
    elif total is None:
        family[labels] = value
    elif not isinstance(total, list):
        family[labels] = total + value


class Aggregate:
    """The metrics of several worker processes, as one: for a supervisor.

    Each worker sends its own cumulative snapshot now and then; :meth:`update` keeps the
    latest one per worker (replacing, never adding, so a worker is never counted twice).
    When a worker exits or is replaced, :meth:`retire` moves its last counters and
    histograms into a retired total, once, and drops its gauges (its connections and
    threads are gone). A snapshot that arrives for a retired worker afterwards is
    ignored. So totals never go down when a worker is replaced; what a killed worker
    counted after its last snapshot is lost (at most one reporting interval).

    ``gauge_names`` says which metrics are gauges (dropped on retirement). Worker ids
    must be unique for the supervisor's lifetime (e.g. a spawn counter, not a pid).
    """

    def __init__(self, gauge_names: Iterable[str]) -> None:
        self._gauge_names = frozenset(gauge_names)
        self._live: dict[Hashable, Mapping[str, Any]] = {}
        self._retired_ids: set[Hashable] = set()
        self._retired: dict[str, Any] = empty_snapshot()

    @property
    def live_workers(self) -> list[Hashable]:
        return list(self._live)

    def update(self, worker: Hashable, snapshot: Mapping[str, Any]) -> bool:
        """Keep ``snapshot`` as ``worker``'s latest; False (and ignored) if it was retired."""
        if worker in self._retired_ids:
            return False
        self._live[worker] = snapshot
        return True

    def retire(self, worker: Hashable) -> None:
        """``worker`` has exited: keep its counters and histograms once, forget its gauges."""
        if worker in self._retired_ids:
            return
        self._retired_ids.add(worker)
        last = self._live.pop(worker, None)
        if last is None or last.get("format") != SNAPSHOT_FORMAT:
            return
        kept = {name: series for name, series in last["metrics"].items() if name not in self._gauge_names}
        self._retired = merge([self._retired, {"format": SNAPSHOT_FORMAT, "metrics": kept}])

    def snapshot(self, *others: Mapping[str, Any]) -> dict[str, Any]:
        """Retired totals + every live worker's latest + ``others`` (e.g. the supervisor's own)."""
        return merge([self._retired, *self._live.values(), *others])


# --------------------------------------------------------------------------- exposition


def render_text(specs: Iterable[MetricSpec], snapshot: Mapping[str, Any]) -> str:
    """The Prometheus text exposition format (0.0.4) of ``snapshot``, family by family.

    Every family in ``specs`` is written (HELP and TYPE even when it has no sample yet),
    in the order given; series come sorted by label values, histogram buckets cumulative.
    """
    metrics = snapshot.get("metrics", {})
    lines: list[str] = []
    for spec in specs:
        lines.append(f"# HELP {spec.name} {_escape_help(spec.help)}")
        lines.append(f"# TYPE {spec.name} {spec.kind}")
        # A family without labels has exactly one series: shown (as 0) from the start.
        initial = spec.initial if spec.labels else ((),)
        series: dict[Labels, Any] = {tuple(labels): None for labels in initial}
        for labels, value in metrics.get(spec.name, ()):
            series[tuple(labels)] = value
        for labels in sorted(series):
            value = series[labels]
            if spec.kind == HISTOGRAM:
                lines.extend(_histogram_lines(spec, labels, value))
            else:
                lines.append(f"{spec.name}{_label_text(spec.labels, labels)} {_number(value or 0)}")
    return "\n".join(lines) + "\n"


def _histogram_lines(spec: MetricSpec, labels: Labels, cell: Optional[list[float]]) -> list[str]:
    if cell is None or len(cell) != len(spec.buckets) + 2:
        cell = [0] * (len(spec.buckets) + 1) + [0.0]
    lines = []
    cumulative = 0.0
    for bound, count in zip((*spec.buckets, math.inf), cell):
        cumulative += count
        bucket_labels = _label_text((*spec.labels, "le"), (*labels, _bound(bound)))
        lines.append(f"{spec.name}_bucket{bucket_labels} {_number(cumulative)}")
    label_text = _label_text(spec.labels, labels)
    lines.append(f"{spec.name}_sum{label_text} {_number(cell[-1])}")
    lines.append(f"{spec.name}_count{label_text} {_number(cumulative)}")
    return lines


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{name}="{_escape_label(str(value))}"' for name, value in zip(names, values))
    return "{" + pairs + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _bound(bound: float) -> str:
    """A bucket's ``le`` as Prometheus clients write it: ``0.5``, ``1.0``, ``+Inf``."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _number(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value))
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))
