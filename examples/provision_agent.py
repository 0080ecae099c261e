"""An operator provisions an agent: funds, AutoStop limits sized for its work, a session.

    python examples/provision_agent.py --url http://127.0.0.1:8000 --token rf_op_... \\
        --name looper --deposit 1000000 --max-tx-per-hour 20000 --token-file agent.token

A first start seeds global AutoStop rules that suspend any agent making more
than 50 transactions an hour (``HOURLY_RATE``) or failing 3 in a row
(``CONSECUTIVE_FAILURES``). They are a safety net for every agent, so they stay.
An agent that is *meant* to spend faster -- like ``agent_loop.py``, thousands of
small transactions an hour -- gets its own ``HOURLY_RATE`` rule, which replaces
the global one for that agent only: a ceiling that says how fast this agent may
go, instead of an exemption, and no change for the other agents.

The session token goes to ``--token-file`` (mode 0600), never to stdout; the
summary printed on stdout is JSON without secrets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from racefree.client import ApiError, Client


def write_secret(path: Path, value: str) -> None:
    """Create ``path`` readable by its owner only, then rename it into place."""
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("RACEFREE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("RACEFREE_TOKEN"), help="operator")
    parser.add_argument("--name", default="agent")
    parser.add_argument("--deposit", type=int, default=0, help="minor units")
    parser.add_argument(
        "--max-tx-per-hour", type=int, help="this agent's own HOURLY_RATE (default: the global)"
    )
    parser.add_argument("--token-file", type=Path, default=Path("agent.token"))
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token (or RACEFREE_TOKEN) is required: an operator token")

    with Client(args.url, args.token) as ops:
        try:
            agent = ops.agents.create(args.name)
            if args.deposit:
                ops.agents.deposit(agent.id, args.deposit)
            if args.max_tx_per_hour is not None:
                ops.auto_stop.set(
                    "HOURLY_RATE", {"max_tx_per_hour": args.max_tx_per_hour}, agent_id=agent.id
                )
            effective = ops.auto_stop.agent(agent.id)
            session = ops.sessions.open(agent.id)
        except ApiError as exc:
            sys.stderr.write(f"provisioning stopped: {exc}\n")
            return 1
    write_secret(args.token_file, session.token)
    summary = {
        "agent_id": agent.id,
        "session_id": session.session_id,
        "token_file": str(args.token_file),
        "auto_stop": {
            r.type: {"scope": r.scope, "action": r.action, **r.params} for r in effective.rules
        },
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
