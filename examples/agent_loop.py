"""An agent that spends from 8 threads through one SessionClient while its session renews.

    python examples/provision_agent.py --token rf_op_... --deposit 1000000 \\
        --max-tx-per-hour 20000 --token-file agent.token      # the operator, once
    python examples/agent_loop.py --url http://127.0.0.1:8000 \\
        --token-file agent.token --renewals 3                 # the agent

Every thread submits small transactions through the same client. The client
renews the session at its renewable point -- one renewal request however many
threads are calling -- and ``on_rotate`` writes each new token to
``--token-file`` *before* any thread uses it, so a restarted agent always
finds a valid token there (it starts from that file unless ``--token`` is
given). Prints a JSON summary on stdout.

This agent makes hundreds of transactions a minute: far past the global
AutoStop rule a first start seeds (``HOURLY_RATE``, 50 an hour), which would
suspend it and revoke its session within seconds. Its operator gives it its own
hourly rate (``provision_agent.py --max-tx-per-hour``); see that example.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

from racefree.client import ApiError, SessionClient


class TokenFile:
    """``on_rotate``: replace the token file atomically (write, then rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rotations: list[str] = []

    def __call__(self, token: str) -> None:
        partial = self.path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a secret
        with os.fdopen(fd, "w") as out:
            out.write(token)
        os.replace(partial, self.path)
        self.rotations.append(token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("RACEFREE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("RACEFREE_TOKEN"))
    parser.add_argument("--token-file", type=Path, default=Path("agent.token"))
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--renewals", type=int, default=3, help="stop after this many renewals")
    parser.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument("--amount", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.token and args.token_file.exists():
        args.token = args.token_file.read_text().strip()  # the last token persisted
    if not args.token:
        parser.error("--token (or RACEFREE_TOKEN, or an existing --token-file) is required")

    on_rotate = TokenFile(args.token_file)
    calls, failures = [0] * args.threads, []
    stop = threading.Event()
    deadline = time.monotonic() + args.max_seconds

    with SessionClient(args.url, args.token, on_rotate=on_rotate) as agent:

        def spend(i: int) -> None:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    agent.transactions.submit(args.amount, f"merchant-{i}")
                except ApiError as exc:
                    failures.append(exc.error_code)
                    stop.set()
                calls[i] += 1
                if len(on_rotate.rotations) >= args.renewals:
                    stop.set()

        threads = [threading.Thread(target=spend, args=(i,)) for i in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        session = agent.sessions.current()

    summary = {
        "calls": sum(calls),
        "renewals": len(on_rotate.rotations),
        "renewal_count": session.renewal_count,
        "spent": session.spent,
        "failures": failures,
        "session_id": session.session_id,
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0 if not failures and summary["renewals"] >= args.renewals else 1


if __name__ == "__main__":
    raise SystemExit(main())
