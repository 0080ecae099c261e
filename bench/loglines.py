"""Log lines (issue 11): the CPU a caller spends writing one line, racefree's format.

Every request writes an access line on the event loop, and every committed audit
row a domain-event line (four for an INSTANT payment), so a line's cost is paid
several times per request. Measured in process, through ``logging`` as the server
calls it (:func:`racefree.logs.configure`, one handler writing to a file), against
a baseline on the same handler in the same run: the stdlib's bare formatter
(``%(message)s``). Rounds alternate between the two.

Each checkout is measured in child processes (``--src DIR``: racefree imported
from another checkout's ``src``, for before/after), taking turns; each cell is the
best of all its rounds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import update_results_md, write_results

NAME = "loglines"
#: A committed audit row as :func:`racefree.core.audit.record` logs it.
EVENT = {
    "at": 1796133235,
    "event_type": "TRANSACTION_CONFIRMED",
    "severity": "info",
    "actor": "executor",
    "agent_id": "01a231e2-2637-74ca-a11f-ed54bfac0621",
    "session_id": "01a231e2-2652-72ce-b3d6-3510400e1e6c",
    "transaction_id": "01a231e2-29c0-7759-865c-95e35cd4e58f",
    "request_id": "req_01a231e229bf776bb80e587b777c252d",
    "details": '{"from":"SUBMITTED","settled":1,"to":"CONFIRMED"}',
}


def _lines() -> dict[str, Callable[[], None]]:
    """The server's own calls: the access line and a committed audit row's line."""
    from racefree.core import audit
    from racefree.http import middleware

    request_id = "req_01a231e67fb87437beb00233f0467351"
    return {
        "access line": lambda: middleware._access(
            request_id, "POST", "/v1/transactions", 200, 0.00152
        ),
        "domain-event line": lambda: audit._log_event(EVENT),
    }


def _cpu_us(line: Callable[[], None], n: int) -> float:
    started = time.thread_time_ns()
    for _ in range(n):
        line()
    return (time.thread_time_ns() - started) / n / 1000


def measure(rounds: int, n: int) -> dict[str, dict[str, float]]:
    """Per format and line: racefree's and the bare formatter's best round, in µs."""
    from racefree import logs

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log", "w") as sink:
        for fmt in ("text", "json"):
            logs.configure(fmt, "info")
            handler = logging.getLogger().handlers[0]
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(sink)
            formatters = {"racefree": handler.formatter, "bare": logging.Formatter("%(message)s")}
            for name, line in _lines().items():
                best = dict.fromkeys(formatters, float("inf"))
                for r in range(rounds):
                    order = list(formatters) if r % 2 == 0 else list(reversed(formatters))
                    for who in order:
                        handler.setFormatter(formatters[who])
                        best[who] = min(best[who], _cpu_us(line, n))
                results[f"{fmt}: {name}"] = {who: round(us, 1) for who, us in best.items()}
            handler.setFormatter(formatters["racefree"])
    return results


def _measure_in(src: str | None, rounds: int, n: int) -> dict[str, dict[str, float]]:
    """:func:`measure` in a child process, racefree imported from ``src`` (or installed)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve())
    code = (
        "import json; from bench.loglines import measure;"
        f" print(json.dumps(measure({rounds}, {n})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result: dict[str, dict[str, float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def alternating(
    srcs: dict[str, str | None], repeats: int, rounds: int, n: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Each checkout measured ``repeats`` times, in alternating order; the best of each cell."""
    best: dict[str, dict[str, dict[str, float]]] = {}
    labels = list(srcs)
    for r in range(repeats):
        for label in labels if r % 2 == 0 else list(reversed(labels)):
            got = _measure_in(srcs[label], rounds, n)
            mine = best.setdefault(label, got)
            for line, cells in got.items():
                for who, us in cells.items():
                    mine[line][who] = min(mine[line][who], us)
    return best


def table(runs: dict[str, dict[str, dict[str, float]]]) -> str:
    """One row per line; per checkout its line's CPU, and its bare baseline's beside it."""
    labels = list(runs)
    head = "| line |" + "".join(f" {label}: racefree µs | bare µs | ratio |" for label in labels)
    lines = [head, "|---|" + "---:|---:|---:|" * len(labels)]
    for line in runs[labels[0]]:
        cells = ""
        for label in labels:
            mine, bare = runs[label][line]["racefree"], runs[label][line]["bare"]
            cells += f" {mine} | {bare} | {mine / bare:.2f}x |"
        lines.append(f"| {line} |{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench loglines", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--lines", type=int, default=5000, help="lines per round")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--src", help="also measure racefree's logging from this src directory")
    parser.add_argument("--src-label", default="before")
    parser.add_argument("--repeats", type=int, default=4, help="child processes per checkout")
    args = parser.parse_args(argv)
    srcs: dict[str, str | None] = {args.label: None}
    if args.src:
        srcs[args.src_label] = args.src
    runs: dict[str, Any] = alternating(srcs, args.repeats, args.rounds, args.lines)
    key = f"{NAME}-{args.label.replace(' ', '-')}"
    write_results(key, {"args": vars(args), "runs": runs})
    argv_text = shlex.join(argv if argv is not None else sys.argv[1:])
    markdown = (
        f"## Log lines, {args.label} (issue 11)\n\n"
        f"Command: `.venv/bin/python -m bench loglines {argv_text}`  \n"
        "CPU of the logging call per line (best of alternating rounds): racefree's format,"
        " and the stdlib's bare `%(message)s` formatter on the same handler in the same"
        " process (each checkout's logging set up as its server sets it up).\n\n"
        + table(runs)
        + "\n"
    )
    print(markdown)
    update_results_md(key, markdown)


if __name__ == "__main__":
    main()
