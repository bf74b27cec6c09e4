"""The registry, snapshots, merging and the exposition format (waitress_like.metrics).

The exposition is read back with prometheus_client's own parser, so the format is checked
against a real consumer, not against our idea of it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from waitress_like.metrics import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    Aggregate,
    MetricSpec,
    Registry,
    empty_snapshot,
    merge,
    render_text,
)

SPECS = (
    MetricSpec("t_requests_total", COUNTER, "Requests.", ("method",)),
    MetricSpec("t_open", GAUGE, "Open things."),
    MetricSpec("t_seconds", HISTOGRAM, "Durations.", buckets=(0.1, 1.0)),
    MetricSpec("t_rejected_total", COUNTER, "Rejected.", ("reason",), initial=(("overload",), ("timeout",))),
)


def series(snapshot: dict[str, Any], name: str) -> dict[tuple, Any]:
    return {tuple(labels): value for labels, value in snapshot["metrics"].get(name, ())}


def parsed(text: str) -> dict[str, Any]:
    """{family name: {(sample name, sorted label items): value}} as prometheus_client reads it."""
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value for sample in family.samples
        }
        families[family.name + ":type"] = family.type
        families[family.name + ":help"] = family.documentation
    return families


# --------------------------------------------------------------------------- recording


def test_counts_from_many_threads_add_up_exactly_while_snapshots_are_taken():
    registry = Registry(SPECS)
    per_thread, thread_count = 20_000, 4
    start = threading.Barrier(thread_count + 1)

    def record() -> None:
        start.wait()
        shard = registry.shard()
        for _ in range(per_thread):
            shard.add("t_requests_total", ("GET",))

    threads = [threading.Thread(target=record) for _ in range(thread_count)]
    for thread in threads:
        thread.start()
    start.wait()
    seen = []
    while any(thread.is_alive() for thread in threads):
        seen.append(series(registry.snapshot(), "t_requests_total").get(("GET",), 0))
    for thread in threads:
        thread.join()
    assert seen == sorted(seen)  # a reader never sees a count go down
    assert series(registry.snapshot(), "t_requests_total") == {("GET",): per_thread * thread_count}


def test_each_thread_records_into_its_own_shard():
    registry = Registry(SPECS)
    shards = []
    thread = threading.Thread(target=lambda: shards.append(registry.shard()))
    thread.start()
    thread.join()
    assert registry.shard() is registry.shard()
    assert shards[0] is not registry.shard()


def test_a_finished_threads_counts_are_kept_and_its_shard_folded():
    registry = Registry(SPECS)

    def record() -> None:
        registry.shard().add("t_requests_total", ("POST",), 3)
        registry.shard().observe("t_seconds", (0.1, 1.0), 0.5)

    for _ in range(5):
        thread = threading.Thread(target=record)
        thread.start()
        thread.join()
    snapshot = registry.snapshot()
    assert series(snapshot, "t_requests_total") == {("POST",): 15}
    assert series(snapshot, "t_seconds") == {(): [0, 5, 0, 2.5]}
    assert len(registry._shards) == 0  # five threads came and went; nothing piles up
    assert series(registry.snapshot(), "t_requests_total") == {("POST",): 15}  # folded once


def test_histogram_buckets_count_values_up_to_and_including_their_bound():
    registry = Registry(SPECS)
    shard = registry.shard()
    for value in (0.0, 0.1, 0.1000001, 1.0, 5.0):
        shard.observe("t_seconds", (0.1, 1.0), value)
    (cell,) = series(registry.snapshot(), "t_seconds").values()
    assert cell[:3] == [2, 2, 1]  # le=0.1 holds 0 and 0.1; le=1 holds 0.1000001 and 1; +Inf 5
    assert cell[3] == pytest.approx(6.2000001)


def test_gauges_given_at_snapshot_time_are_added():
    registry = Registry(SPECS)
    assert series(registry.snapshot({"t_open": {(): 7}}), "t_open") == {(): 7}
    assert series(registry.snapshot(), "t_open") == {}


def test_samples_are_kept_per_thread_and_drained_once():
    registry = Registry(SPECS, sample_limit=3)
    for value in (1.0, 2.0, 3.0, 4.0):
        registry.shard().samples.append(value)  # type: ignore[union-attr]
    assert registry.drain_samples() == [2.0, 3.0, 4.0]  # bounded: the oldest went
    assert registry.drain_samples() == []


def test_a_table_with_a_name_twice_or_unordered_buckets_is_refused():
    with pytest.raises(ValueError, match="twice"):
        Registry([SPECS[0], SPECS[0]])
    with pytest.raises(ValueError, match="increase"):
        Registry([MetricSpec("h", HISTOGRAM, "h", buckets=(1.0, 0.5))])


def test_a_snapshot_is_plain_data_that_survives_json():
    registry = Registry(SPECS)
    registry.shard().add("t_requests_total", ("GET",), 2)
    registry.shard().observe("t_seconds", (0.1, 1.0), 0.05)
    snapshot = registry.snapshot({"t_open": {(): 1}})
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert merge([json.loads(json.dumps(snapshot))]) == merge([snapshot])


# --------------------------------------------------------------------------- merging


def _snapshot(requests: int, open_now: int, durations: tuple[float, ...] = ()) -> dict[str, Any]:
    registry = Registry(SPECS)
    shard = registry.shard()
    shard.add("t_requests_total", ("GET",), requests)
    for duration in durations:
        shard.observe("t_seconds", (0.1, 1.0), duration)
    return registry.snapshot({"t_open": {(): open_now}})


def test_merge_adds_counters_gauges_and_histogram_buckets():
    total = merge([_snapshot(2, 1, (0.05,)), _snapshot(3, 4, (0.5, 2.0)), empty_snapshot()])
    assert series(total, "t_requests_total") == {("GET",): 5}
    assert series(total, "t_open") == {(): 5}
    assert series(total, "t_seconds") == {(): [1, 1, 1, 2.55]}


def test_merge_skips_unknown_formats_and_mismatched_buckets(caplog: pytest.LogCaptureFixture):
    odd = {"format": 1, "metrics": {"t_seconds": [[[], [1, 1, 0.5]]]}}  # one bucket fewer
    total = merge([_snapshot(1, 0, (0.05,)), odd, {"format": 99, "metrics": {}}])
    assert series(total, "t_seconds") == {(): [1, 0, 0, 0.05]}
    assert "unknown format" in caplog.text


def test_a_replaced_worker_is_counted_exactly_once():
    aggregate = Aggregate(gauge_names=["t_open"])
    aggregate.update(1, _snapshot(5, 2))
    aggregate.update(2, _snapshot(1, 1))
    aggregate.update(1, _snapshot(8, 3))  # cumulative: replaces worker 1's 5, adds nothing
    assert series(aggregate.snapshot(), "t_requests_total") == {("GET",): 9}
    assert series(aggregate.snapshot(), "t_open") == {(): 4}
    aggregate.retire(1)  # killed: its 8 requests stay, its open connections are gone
    assert series(aggregate.snapshot(), "t_requests_total") == {("GET",): 9}
    assert series(aggregate.snapshot(), "t_open") == {(): 1}
    aggregate.update(3, _snapshot(4, 1))  # its replacement starts from zero
    assert series(aggregate.snapshot(), "t_requests_total") == {("GET",): 13}
    assert aggregate.update(1, _snapshot(9, 3)) is False  # a late message from the dead one
    aggregate.retire(1)  # and a second notice of its death
    assert series(aggregate.snapshot(), "t_requests_total") == {("GET",): 13}
    assert sorted(aggregate.live_workers) == [2, 3]


def test_totals_never_go_down_across_replacements():
    aggregate = Aggregate(gauge_names=["t_open"])
    totals = []
    for worker in range(1, 6):
        for requests in (1, 4, 6):
            aggregate.update(worker, _snapshot(requests, 1, (0.2,) * requests))
            totals.append(series(aggregate.snapshot(), "t_requests_total")[("GET",)])
        aggregate.retire(worker)
        totals.append(series(aggregate.snapshot(), "t_requests_total")[("GET",)])
    assert totals == sorted(totals)
    assert totals[-1] == 30
    assert series(aggregate.snapshot(), "t_seconds")[()][1] == 30


def test_the_supervisors_own_metrics_join_the_workers():
    aggregate = Aggregate(gauge_names=["t_open"])
    aggregate.update("w1", _snapshot(2, 0))
    supervisor = Registry(SPECS).snapshot({"t_open": {(): 0}})
    assert series(aggregate.snapshot(supervisor), "t_requests_total") == {("GET",): 2}


# --------------------------------------------------------------------------- exposition


def test_the_exposition_reads_back_with_prometheus_client():
    registry = Registry(SPECS)
    shard = registry.shard()
    shard.add("t_requests_total", ("GET",), 3)
    shard.add("t_requests_total", ("POST",))
    shard.add("t_rejected_total", ("timeout",), 2)
    for value in (0.05, 0.5, 3.0):
        shard.observe("t_seconds", (0.1, 1.0), value)
    families = parsed(render_text(SPECS, registry.snapshot({"t_open": {(): 2}})))
    assert families["t_requests:type"] == "counter"
    assert families["t_requests"] == {
        ("t_requests_total", (("method", "GET"),)): 3,
        ("t_requests_total", (("method", "POST"),)): 1,
    }
    assert families["t_open"] == {("t_open", ()): 2}
    assert families["t_rejected"] == {  # "overload" is exposed before it ever happens
        ("t_rejected_total", (("reason", "overload"),)): 0,
        ("t_rejected_total", (("reason", "timeout"),)): 2,
    }
    histogram = families["t_seconds"]
    assert families["t_seconds:type"] == "histogram"
    assert histogram[("t_seconds_bucket", (("le", "0.1"),))] == 1
    assert histogram[("t_seconds_bucket", (("le", "1.0"),))] == 2
    assert histogram[("t_seconds_bucket", (("le", "+Inf"),))] == 3
    assert histogram[("t_seconds_count", ())] == 3
    assert histogram[("t_seconds_sum", ())] == pytest.approx(3.55)


def test_an_empty_family_still_says_what_it_is():
    text = render_text(SPECS, empty_snapshot())
    assert "# TYPE t_requests_total counter\n" in text
    families = parsed(text)
    assert families["t_seconds"][("t_seconds_count", ())] == 0


def test_label_values_and_help_are_escaped():
    specs = (MetricSpec("t_odd_total", COUNTER, 'Help with \\ and\nnewline "quoted".', ("path",)),)
    registry = Registry(specs)
    registry.shard().add("t_odd_total", ('a"b\\c\nd',))
    text = render_text(specs, registry.snapshot())
    assert 't_odd_total{path="a\\"b\\\\c\\nd"} 1' in text
    assert len(text.splitlines()) == 3
    families = parsed(text)
    assert families["t_odd"] == {("t_odd_total", (("path", 'a"b\\c\nd'),)): 1}
    assert families["t_odd:help"] == 'Help with \\ and\nnewline "quoted".'


def test_the_samples_of_a_finished_thread_are_still_drained():
    registry = Registry(SPECS, sample_limit=10)
    thread = threading.Thread(target=lambda: registry.shard().samples.append(0.25))  # type: ignore[union-attr]
    thread.start()
    thread.join()
    registry.snapshot()  # folds the finished thread's shard
    assert registry.drain_samples() == [0.25]
