"""Turn raw runs into medians, a text table, results JSON and a bar chart.

The results document (see README.md) is plain JSON; ``summarize`` adds each cell's
``median`` and its ``ratio`` to the baseline server's median in the same scenario.
"""

from __future__ import annotations

import json
import math
import statistics
import textwrap
from pathlib import Path
from typing import Any

KIB_PER_MIB = 1024


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every number all runs share; errors (a dict of counts) are summed."""
    median: dict[str, Any] = {}
    for key in runs[0]:
        values = [run.get(key) for run in runs]
        numbers = [item for item in values if isinstance(item, (int, float)) and not isinstance(item, bool)]
        if len(numbers) == len(values):
            median[key] = statistics.median(numbers)
    if "errors" in runs[0]:
        totals: dict[str, int] = {}
        for run in runs:
            for name, count in run["errors"].items():
                totals[name] = totals.get(name, 0) + count
        median["errors_summed"] = totals
    return median


def summarize(document: dict[str, Any], baseline: str) -> None:
    """Fill in ``median``, ``rounds``, ``spread`` and ``ratio`` (to ``baseline``) of every
    cell, in place.

    ``rounds`` is the scenario's metric in each repetition, in run order; ``spread`` is
    their largest divided by their smallest (1.0 for a steady server; None without two
    rounds to compare).
    """
    for scenario in document["scenarios"]:
        metric = scenario["metric"]
        for cell in scenario["results"].values():
            cell["median"] = _median_of(cell["runs"]) if cell["runs"] else {}
            cell["rounds"] = [run[metric] for run in cell["runs"] if metric in run]
            cell["spread"] = _spread(cell["rounds"])
        reference = scenario["results"].get(baseline, {}).get("median", {}).get(metric)
        for cell in scenario["results"].values():
            value = cell["median"].get(metric)
            cell["ratio"] = value / reference if value is not None and reference else None


def _spread(values: list[float]) -> float | None:
    if len(values) < 2 or min(values) <= 0:
        return None
    return max(values) / min(values)


def _rounds_text(cell: dict[str, Any]) -> str:
    """Each round's figure, in run order, for the table ("-" before any round ran)."""
    rounds = cell.get("rounds") or []
    if not rounds:
        return "-"
    digits = 0 if max(rounds) >= 100 else 1
    return " / ".join(f"{value:,.{digits}f}" for value in rounds)


def _notes(scenario: dict[str, Any], cell: dict[str, Any]) -> str:
    median, notes = cell["median"], []
    if scenario["load"] == "upload" and "rss_growth_kib" in median:
        notes.append(f"RSS +{median['rss_growth_kib'] / KIB_PER_MIB:.1f} MiB over idle")
    if scenario["load"] == "idle" and "idle_still_open" in median:
        per_connection = median.get("rss_per_idle_connection_kib")
        notes.append(
            f"open {median['idle_still_open']:.0f}/{median['idle_requested']:.0f}"
            + (f", {per_connection:.1f} KiB/idle conn" if per_connection is not None else "")
            + f", set up in {median['idle_setup_seconds']:.0f} s"
        )
    errors = {name: count for name, count in median.get("errors_summed", {}).items() if count}
    if errors:
        notes.append("wrk errors: " + ", ".join(f"{name} {count}" for name, count in errors.items()))
    if cell["failures"]:
        attempts = len(cell["failures"]) + len(cell["runs"])
        notes.append(f"FAILED {len(cell['failures'])}/{attempts}: {cell['failures'][0][:160]}")
    return "; ".join(notes)


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def format_table(document: dict[str, Any], baseline: str) -> str:
    """A fixed-width table: one row per (scenario, server): the median over the repeats,
    each round's figure in run order, and the spread (largest round / smallest)."""
    header = (
        "scenario",
        "server",
        "value",
        "unit",
        "rounds",
        "spread",
        f"x {baseline}",
        "p50 ms",
        "p99 ms",
        "peak RSS MiB",
        "CPU %",
        "per CPU-s",
        "client CPU %",
        "per total CPU-s",
        "notes",
    )
    rows = [header]
    for scenario in document["scenarios"]:
        for cell in scenario["results"].values():
            median = cell["median"]
            peak = median.get("peak_rss_kib")
            rows.append(
                (
                    scenario["name"],
                    cell["label"],
                    _number(median.get(scenario["metric"])),
                    scenario["unit"],
                    _rounds_text(cell),
                    "-" if cell.get("spread") is None else f"{cell['spread']:.2f}",
                    "-" if cell["ratio"] is None else f"{cell['ratio']:.2f}",
                    _number(median.get("p50_ms"), 2),
                    _number(median.get("p99_ms"), 2),
                    _number(None if peak is None else peak / KIB_PER_MIB),
                    _number(median.get("server_cpu_percent"), 0),
                    _number(median.get("per_server_cpu_second"), 0),
                    _number(median.get("client_cpu_percent"), 0),
                    _number(median.get("per_total_cpu_second"), 0),
                    _notes(scenario, cell),
                )
            )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    right_aligned = {2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
    lines = []
    for row in rows:
        cells = [
            text.rjust(width) if column in right_aligned else text.ljust(width)
            for column, (text, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells + [row[-1]]).rstrip())
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def write_json(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def write_chart(document: dict[str, Any], path: Path, baseline: str) -> None:
    """One bar group per scenario, one bar per server (median, min-max whiskers).

    Scenarios differ by orders of magnitude, so each has its own axis; the ratio to
    ``baseline`` is written above each bar. Uses matplotlib's Agg backend (no display).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    scenarios = [
        scenario
        for scenario in document["scenarios"]
        if any(cell["runs"] for cell in scenario["results"].values())
    ]
    if not scenarios:
        return
    server_names = list(dict.fromkeys(name for s in scenarios for name in s["results"]))
    colors = {name: f"C{index}" for index, name in enumerate(server_names)}
    columns = min(4, len(scenarios))
    rows = math.ceil(len(scenarios) / columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(4.2 * columns, 3.8 * rows), squeeze=False)
    widest = max(len(scenario["results"]) for scenario in scenarios)
    for axis, scenario in zip(axes.flat, scenarios):
        _draw_scenario(axis, scenario, colors)
        axis.set_xlim(-0.6, widest - 0.4)  # the same bar width in every panel
    for axis in list(axes.flat)[len(scenarios) :]:
        axis.set_visible(False)
    machine, settings = document["machine"], document["settings"]
    lines = [
        f"{document.get('created', '')[:10]}, {machine['cpu_model']}, {machine['cores']} cores, "
        f"Python {machine['python']}",
        f"{settings['threads']} threads, {settings['connections']} connections, "
        f"{settings['upload_mib']} MiB uploads, {settings['idle_connections']} idle conns",
        f"median of {settings['repeat']} x {settings['duration_seconds']} s, dots: each round, "
        f"whiskers: min-max; ratio to {baseline} above bars",
        *textwrap.wrap(_versions_line(document), width=55 * columns),
    ]
    figure.suptitle("\n".join(lines), fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.075 * len(lines) / (3.8 * rows)))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def _versions_line(document: dict[str, Any]) -> str:
    """The measured packages and their versions, for the chart's title."""
    versions: dict[str, str] = {}
    for description in document.get("servers", {}).values():
        versions.update(description.get("versions", {}))
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def _draw_scenario(axis: Any, scenario: dict[str, Any], colors: dict[str, str]) -> None:
    """Bars of one scenario; a server without a figure gets an empty slot marked "failed"."""
    metric = scenario["metric"]
    cells = list(scenario["results"].items())
    positions = list(range(len(cells)))
    values = [cell["median"].get(metric, 0.0) for _, cell in cells]
    spreads = [
        [
            value - min((run[metric] for run in cell["runs"]), default=0.0)
            for value, (_, cell) in zip(values, cells)
        ],
        [
            max((run[metric] for run in cell["runs"]), default=0.0) - value
            for value, (_, cell) in zip(values, cells)
        ],
    ]
    bars = axis.bar(positions, values, yerr=spreads, capsize=3, color=[colors[name] for name, _ in cells])
    for position, (_, cell) in zip(positions, cells):
        rounds = [run[metric] for run in cell["runs"] if metric in run]
        axis.scatter([position] * len(rounds), rounds, s=9, color="black", zorder=3)
    for bar, (_, cell) in zip(bars, cells):
        if metric not in cell["median"]:
            label = "failed"
        else:
            label = "" if cell["ratio"] is None else f"{cell['ratio']:.2f}x"
        axis.annotate(
            label,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    axis.set_xticks(positions, [cell["label"] for _, cell in cells], rotation=25, ha="right", fontsize=8)
    axis.set_title(scenario["title"], fontsize=10)
    axis.set_ylabel(scenario["unit"])
    axis.margins(y=0.15)
