"""Events out: webhook delivery lag, and what delivering webhooks costs submissions.

Two real ``racefree serve`` processes per engine, each on its own database:

* **off** -- ``RACEFREE_WEBHOOK_DELIVERY_ENABLED=false``, no webhook;
* **on** -- one webhook for every event type (``*``: about four events per
  submission) to a receiver on 127.0.0.1, delivered by the server's deliverer.

Throughput: ``--clients`` threads submit INSTANT transactions for ``--seconds``
against one server, then the other, alternating for ``--rounds`` rounds (drift
on the shared machine hits both alike); ratio = on / off submissions per second.

Lag: on the *on* server, a second webhook for ``TRANSACTION_CONFIRMED`` only;
clients submit at a paced ``--rate`` (submissions/s) for ``--lag-seconds``. The
lag of one event is the receiver's arrival time minus the time the client got
the 200 for that transaction (after the commit, so the true commit-to-receiver
lag is at most this plus the response's own transfer time). The same-run
baseline is the lag at a light ``--baseline-rate`` on the same server just
before: what polling and one POST cost, without load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench._agents import exempt_from_auto_stop
from bench._receiver import ProcessReceiver
from bench.databases import database_url
from bench.harness import update_results_md, write_results
from racefree.testing import Server, start_server

NAME = "events"
BODY = {"type": "TRANSFER", "amount": "1", "destination": "acct:bench"}
KEY = "q7nX9qk5cV2m0yqz1Cw3hH3b9y8w4s4m1h1x6K0b2QE="


def _server(url: str, tmp: Path, on: bool) -> Server:
    return start_server(
        url,
        tmp,
        env={
            "RACEFREE_WORKERS_ENABLED": "false",
            "RACEFREE_WEBHOOK_DELIVERY_ENABLED": "true" if on else "false",
            "RACEFREE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
            "RACEFREE_WEBHOOK_SECRET_KEY": KEY,
        },
    )


def _sessions(server: Server, n: int) -> list[str]:
    """One agent with a large balance, ``n`` sessions (one per client thread)."""
    with server.client(headers=server.operator_headers()) as c:
        agent = c.post("/v1/agents", json={"name": "bench"}).json()["id"]
        exempt_from_auto_stop(c, agent)
        c.post(f"/v1/agents/{agent}/deposit", json={"amount": str(10**15)}).raise_for_status()
        return [c.post("/v1/sessions", json={"agent_id": agent}).json()["token"] for _ in range(n)]


def _webhook(server: Server, url: str, types: list[str]) -> None:
    with server.client(headers=server.operator_headers()) as c:
        c.post("/v1/webhooks", json={"url": url, "event_types": types}).raise_for_status()


def _submit_for(base_url: str, tokens: list[str], seconds: float) -> float:
    """Submissions per second with one thread per token, for ``seconds``."""
    counts = [0] * len(tokens)
    barrier = threading.Barrier(len(tokens) + 1)

    def run(i: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[i]}"}
        with httpx.Client(base_url=base_url, timeout=60, headers=headers) as c:
            c.get("/health")
            barrier.wait()
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                response = c.post("/v1/transactions", json=BODY)
                assert response.status_code == 200, response.text
                counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(tokens))]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def _paced(
    base_url: str, tokens: list[str], rate: float, seconds: float
) -> tuple[dict[str, float], float]:
    """Submit at ``rate``/s in total (or as fast as the server answers, if slower).

    Returns transaction id -> when its 200 arrived (monotonic), and the rate achieved.
    """
    answered: dict[str, float] = {}
    slots = itertools.count()
    lock = threading.Lock()
    start = time.monotonic() + 0.5
    total = int(rate * seconds)

    def run(token: str) -> None:
        with httpx.Client(
            base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as c:
            c.get("/health")
            while True:
                with lock:
                    slot = next(slots)
                if slot >= total:
                    return
                time.sleep(max(0.0, start + slot / rate - time.monotonic()))
                response = c.post("/v1/transactions", json=BODY)
                arrived = time.monotonic()
                assert response.status_code == 200, response.text
                answered[response.json()["transaction_id"]] = arrived

    threads = [threading.Thread(target=run, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = max(answered.values()) - start if answered else seconds
    return answered, len(answered) / max(elapsed, 1e-9)


def _quantile(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000, 1)


def run_engine(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        off_url = stack.enter_context(database_url(engine))
        on_url = stack.enter_context(database_url(engine))
        everything = stack.enter_context(ProcessReceiver(record=False))
        confirmed = stack.enter_context(ProcessReceiver())
        off = _server(off_url, tmp, on=False)
        stack.callback(off.stop)
        on = _server(on_url, tmp, on=True)
        stack.callback(on.stop)
        _webhook(on, everything.url, ["*"])
        tokens = {"off": _sessions(off, args.clients), "on": _sessions(on, args.clients)}
        servers = {"off": off, "on": on}
        rates: dict[str, list[float]] = {"off": [], "on": []}
        for r in range(args.rounds):
            for name in ("off", "on") if r % 2 == 0 else ("on", "off"):
                rates[name].append(_submit_for(servers[name].base_url, tokens[name], args.seconds))
        _webhook(on, confirmed.url, ["TRANSACTION_CONFIRMED"])
        light, light_rate = _lags(on, tokens["on"], confirmed, args.baseline_rate, args.lag_seconds)
        lags, achieved = _lags(on, tokens["on"], confirmed, args.rate, args.lag_seconds)
    off_rate, on_rate = statistics.mean(rates["off"]), statistics.mean(rates["on"])
    return {
        "engine": engine,
        "throughput_off": round(off_rate, 1),
        "throughput_on": round(on_rate, 1),
        "ratio_on_off": round(on_rate / off_rate, 3),
        "rounds_off": [round(x, 1) for x in rates["off"]],
        "rounds_on": [round(x, 1) for x in rates["on"]],
        "lag_rate_target": args.rate,
        "lag_rate_achieved": round(achieved, 1),
        "lag_events": len(lags),
        "lag_p50_ms": _quantile(lags, 50),
        "lag_p99_ms": _quantile(lags, 99),
        "lag_max_ms": round(max(lags) * 1000, 1),
        "baseline_rate_target": args.baseline_rate,
        "baseline_rate_achieved": round(light_rate, 1),
        "baseline_events": len(light),
        "baseline_p50_ms": _quantile(light, 50),
        "baseline_p99_ms": _quantile(light, 99),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }


def _lags(
    server: Server, tokens: list[str], receiver: ProcessReceiver, rate: float, seconds: float
) -> tuple[list[float], float]:
    """Commit-to-receiver lags (seconds) of submissions paced at ``rate``, and the rate reached."""
    answered, achieved = _paced(server.base_url, tokens, rate, seconds)
    receiver.wait_for(lambda got: got.keys() >= answered.keys(), timeout=120)
    arrived = receiver.arrivals()
    return [arrived[txn] - at for txn, at in answered.items()], achieved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench events", description=__doc__)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput round")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200.0, help="paced submissions/s")
    parser.add_argument("--lag-seconds", type=float, default=15.0)
    parser.add_argument(
        "--baseline-rate", type=float, default=20.0, help="the light paced rate (same run)"
    )
    args = parser.parse_args(argv)
    runs = [run_engine(e, args) for e in args.engines.split(",")]
    write_results(NAME, {"args": vars(args), "runs": runs})
    command = (
        f'make bench BENCH_ARGS="events --rounds {args.rounds} --seconds {args.seconds:g}'
        f" --clients {args.clients} --rate {args.rate:g} --lag-seconds {args.lag_seconds:g}"
        f' --baseline-rate {args.baseline_rate:g}"'
    )
    lines = [
        "## Events out: webhook delivery lag and the cost of delivering (issue 12)\n",
        "Two `racefree serve` processes per engine on their own databases: *off* (no",
        "webhook, deliverer disabled) and *on* (one webhook for every event type, about",
        "four events per INSTANT submission, delivered to a receiver on 127.0.0.1 by the",
        "server's deliverer; default poll interval `RACEFREE_EVENTS_POLL_INTERVAL_S=0.2`).",
        "Throughput: concurrent clients submitting, alternating rounds off/on. Lag: a",
        "second webhook for `TRANSACTION_CONFIRMED`; submissions paced at the target rate",
        "(the achieved rate is lower when the server cannot answer that fast);",
        "lag = receiver arrival - the client's 200 for that transaction (after commit).",
        "Baseline, same run and server, just before: the lag at a light paced rate.",
        "The receiver is a process of its own (HTTP/1.1 keep-alive), so it does not take",
        "the GIL from the submitting clients. The 2-core machine is shared with other work",
        "(and runs the receiver and the clients): compare within a run.",
        f"Command: `{command}`\n",
        "| engine | submissions/s off | on | on / off | paced rate (target) | events"
        " | lag p50 ms | lag p99 ms | max ms | baseline rate | baseline p50 / p99 ms"
        " | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run['engine']} | {run['throughput_off']:,.0f} | {run['throughput_on']:,.0f}"
            f" | **{run['ratio_on_off']}** | {run['lag_rate_achieved']}"
            f" ({run['lag_rate_target']:g})"
            f" | {run['lag_events']} | **{run['lag_p50_ms']}** | **{run['lag_p99_ms']}**"
            f" | {run['lag_max_ms']} | {run['baseline_rate_achieved']}"
            f" ({run['baseline_rate_target']:g}) | {run['baseline_p50_ms']} /"
            f" {run['baseline_p99_ms']} | {run['load_average'][0]} |"
        )
        print(json.dumps(run))
    update_results_md(NAME, "\n".join(lines))


if __name__ == "__main__":
    main()
