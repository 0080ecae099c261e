"""An operator's kill-switch drill: activate, start recovery, complete it.

    python examples/operator_drill.py --url http://127.0.0.1:8000 --token rf_op_... \\
        --master-password '...' --reason "drill"

Activation stops everything at once (sessions revoked, open transactions
cancelled, agents suspended). Recovery needs the master password, and
completes only after the server's recovery wait: the client waits it out
(``RECOVERY_WAIT_REQUIRED`` is retryable with ``Retry-After``) within
``--wait`` seconds. Prints one JSON line per step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from racefree.client import ApiError, Client, RetryPolicy


def step(name: str, result: object) -> None:
    payload = result.model_dump() if hasattr(result, "model_dump") else result
    sys.stdout.write(json.dumps({"step": name, **payload}) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("RACEFREE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("RACEFREE_TOKEN"))
    parser.add_argument("--master-password", default=os.environ.get("RACEFREE_MASTER_PASSWORD"))
    parser.add_argument("--reason", default="drill")
    parser.add_argument("--wait", type=float, default=120, help="longest recovery wait to sit out")
    args = parser.parse_args(argv)
    if not args.token or not args.master_password:
        parser.error("--token and --master-password are required")

    with Client(args.url, args.token, retry=RetryPolicy(deadline=args.wait)) as ops:
        try:
            step("activate", ops.kill_switch.activate(args.reason))
            step("start_recovery", ops.kill_switch.start_recovery(args.master_password))
            step("complete_recovery", ops.kill_switch.complete_recovery(args.master_password))
            step("status", ops.kill_switch.status())
        except ApiError as exc:
            sys.stderr.write(f"drill stopped: {exc}\n")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
