"""The connection table: accept order, the per-address count, and whom to close first."""

from __future__ import annotations

from typing import Optional

from waitress_like.admission import ConnectionTable


class _Connection:
    def __init__(self, rank: Optional[tuple[float, ...]]) -> None:
        self.rank = rank
        self.evicted = False

    def eviction_rank(self, now: float) -> Optional[tuple[float, ...]]:
        return self.rank

    def evict(self) -> None:
        self.evicted = True


def test_full_at_the_limit_and_not_before() -> None:
    table = ConnectionTable(limit=2)
    table.add(_Connection(None), "a")
    assert not table.full
    table.add(_Connection(None), "a")
    assert table.full


def test_the_per_address_count_follows_adds_and_discards() -> None:
    table = ConnectionTable(limit=10, per_address_limit=2)
    first, second = _Connection(None), _Connection(None)
    table.add(first, "192.0.2.1")
    table.add(second, "192.0.2.1")
    assert table.address_full("192.0.2.1")
    assert not table.address_full("192.0.2.2")
    table.discard(first)
    assert not table.address_full("192.0.2.1")
    table.discard(first)  # twice: no effect
    table.add(_Connection(None), "192.0.2.1")
    assert table.address_full("192.0.2.1")


def test_no_per_address_cap_by_default() -> None:
    table = ConnectionTable(limit=10)
    for _ in range(5):
        table.add(_Connection(None), "192.0.2.1")
    assert not table.address_full("192.0.2.1")


def test_the_victim_is_the_lowest_rank_and_never_one_being_served() -> None:
    table = ConnectionTable(limit=4)
    served = _Connection(None)
    slow = _Connection((2.0, 3.0, 100.0))
    idle = _Connection((1.0, 50.0))
    young = _Connection((3.0, 200.0))
    for connection in (served, slow, idle, young):
        table.add(connection, "a")
    assert table.victim(now=300.0) is idle
    table.discard(idle)
    assert table.victim(now=300.0) is slow
    table.discard(slow)
    assert table.victim(now=300.0) is young
    table.discard(young)
    assert table.victim(now=300.0) is None
