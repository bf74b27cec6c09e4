"""Every metric is documented in docs/production.rst, with its type and labels."""

from __future__ import annotations

import re
from pathlib import Path

from waitress_like.metrics_table import METRICS

PRODUCTION = Path(__file__).resolve().parents[2] / "docs" / "production.rst"


def _rows() -> dict[str, tuple[str, str]]:
    """metric name -> (type, labels) from the list-table of docs/production.rst."""
    text = PRODUCTION.read_text(encoding="utf-8")
    rows = {}
    for match in re.finditer(r"   \* - ``(waitress_like_\w+)``\n     - (\w+)\n     -(.*)\n", text):
        rows[match.group(1)] = (match.group(2), match.group(3).strip())
    return rows


def test_each_metric_has_a_row_with_its_type_and_labels() -> None:
    rows = _rows()
    assert set(rows) == {spec.name for spec in METRICS}
    for spec in METRICS:
        kind, labels = rows[spec.name]
        assert kind == spec.kind, spec.name
        assert labels == ", ".join(f"``{label}``" for label in spec.labels), spec.name


def test_each_label_value_known_in_advance_is_named() -> None:
    text = PRODUCTION.read_text(encoding="utf-8")
    for spec in METRICS:
        for labels in spec.initial:
            for value in labels:
                assert f"``{value}``" in text, (spec.name, value)
