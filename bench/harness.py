"""Benchmark harness: interleaved rounds against a baseline in the same run.

Each benchmark gives :func:`interleaved` a set of contestants (zero-argument
callables doing one operation). Rounds alternate between contestants so that
drift on a shared machine (other processes, disk, CPU frequency) hits them
alike; per-operation latencies are pooled over rounds. Results go to
``bench/results/<name>.json`` and a section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"


@dataclass(frozen=True)
class Stats:
    ops: int
    seconds: float
    ops_per_s: float
    p50_us: float
    p99_us: float
    mean_us: float


def summarize(latencies_ns: list[int]) -> Stats:
    ordered = sorted(latencies_ns)
    total_s = sum(ordered) / 1e9
    quantiles = statistics.quantiles(ordered, n=100, method="inclusive")
    return Stats(
        ops=len(ordered),
        seconds=round(total_s, 4),
        ops_per_s=round(len(ordered) / total_s, 1),
        p50_us=round(quantiles[49] / 1000, 1),
        p99_us=round(quantiles[98] / 1000, 1),
        mean_us=round(total_s * 1e6 / len(ordered), 1),
    )


def interleaved(
    contestants: Mapping[str, Callable[[], Any]],
    *,
    rounds: int = 7,
    ops_per_round: int = 500,
    warmup: int = 100,
) -> dict[str, Stats]:
    """Run each contestant ``rounds`` times, alternating, ``ops_per_round`` ops a round."""
    for op in contestants.values():
        for _ in range(warmup):
            op()
    samples: dict[str, list[int]] = {name: [] for name in contestants}
    order = list(contestants.items())
    for r in range(rounds):
        for name, op in order if r % 2 == 0 else reversed(order):
            bucket = samples[name]
            clock = time.perf_counter_ns
            for _ in range(ops_per_round):
                started = clock()
                op()
                bucket.append(clock() - started)
    return {name: summarize(lat) for name, lat in samples.items()}


def ratio(subject: Stats, baseline: Stats) -> float:
    """How many times longer ``subject`` takes per operation than ``baseline`` (mean)."""
    return round(subject.mean_us / baseline.mean_us, 3)


def machine() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=BENCH_DIR
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_results(name: str, payload: Mapping[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {"benchmark": name, "machine": machine(), **payload}
    path.write_text(json.dumps(document, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Stats):
        return asdict(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def stats_table(rows: Mapping[str, Stats], baseline: str | None = None) -> str:
    """A Markdown table of ``rows``, with the ratio to ``baseline`` when given."""
    head = "| contestant | ops/s | p50 µs | p99 µs | mean µs |"
    rule = "|---|---:|---:|---:|---:|"
    if baseline:
        head += f" x {baseline} |"
        rule += "---:|"
    lines = [head, rule]
    for name, s in rows.items():
        line = f"| {name} | {s.ops_per_s:,.0f} | {s.p50_us} | {s.p99_us} | {s.mean_us} |"
        if baseline:
            line += f" {ratio(s, rows[baseline])} |"
        lines.append(line)
    return "\n".join(lines)


def update_results_md(name: str, markdown: str) -> None:
    """Replace (or append) the section of ``bench/RESULTS.md`` owned by benchmark ``name``."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmark results\n"
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS_MD.write_text(text)
