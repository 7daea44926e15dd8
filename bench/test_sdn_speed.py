"""How fast the SDN reader parses a large configuration-like file (10,000 lines)."""

from __future__ import annotations

from typing import Any

from gpubench.config.sdn import Table, parse

TARGET_LINES = 10_000


def _section(index: int) -> list[str]:
    """One top-level section (25 lines) mixing every SDN form a real file uses."""
    return [
        f"# section {index}: generated for the parser benchmark",
        f"section_{index}:",
        f'    device: "cuda:{index % 8}"   # the GPU for this section',
        "    dtype: f32",
        f"    seed: {index}",
        "    ratio: 0.125",
        "    enabled: true",
        "    title: Simple Test Coverage",
        "    version: 1.0.0-beta.8",
        "    point: {x: 1, y: 2, tags: [a, b]}",
        "",
        "    # nested block with an array",
        "    devices:",
        "        cuda:0",
        "        cuda:1",
        "        {name: worker, rank: 3}",
        f"features_{index} = [auth, logging, metrics, {{level: {index}}}]",
        f"limits_{index} |endpoint, requests, window|",
        "    /api/login, 5, 60",
        '    /api/search, 100, "60, maybe"',
        "    /api/upload, -, 300",
        f"samples_{index}: table{{i32, f64, str}}",
        "    1, 0.5, first",
        "    (2, 1.25, second)",
        f"weights_{index}: table{{u8, bool}} = [(1, true), (255, false)]",
    ]


def _document() -> tuple[str, int, int]:
    """The benchmark text, its line count and its number of top-level keys."""
    lines: list[str] = []
    sections = 0
    while len(lines) < TARGET_LINES:
        lines.extend(_section(sections))
        sections += 1
    return "\n".join(lines) + "\n", len(lines), sections * 5


def test_parse_10k_lines(benchmark: Any) -> None:
    text, line_count, key_count = _document()
    document = benchmark(parse, text, "bench.sdn")
    value = document.value
    assert len(value) == key_count
    assert value["section_0"]["devices"] == ["cuda:0", "cuda:1", {"name": "worker", "rank": 3}]
    assert value["limits_1"][1]["window"] == "60, maybe"
    assert isinstance(value["samples_2"], Table)
    assert value["samples_2"] == [(1, 0.5, "first"), (2, 1.25, "second")]
    last = key_count // 5 - 1
    assert document.locations[(f"weights_{last}",)].line == line_count
    benchmark.extra_info["lines"] = line_count
    benchmark.extra_info["device"] = "cpu"
    if benchmark.stats is not None:  # None under --benchmark-disable
        lines_per_second = round(line_count / benchmark.stats.stats.median)
        benchmark.extra_info["lines_per_second"] = lines_per_second
        # The project's throughput column reads items_per_s; here an item is a line.
        benchmark.extra_info["items_per_s"] = lines_per_second
