"""``python -m tests.chaos`` (``make chaos``): the chaos suite on PostgreSQL and SQLite.

Environment: ``RACEFREE_CHAOS_SEED`` (replay a run), ``RACEFREE_CHAOS_ENGINES``
(``postgresql,sqlite``), ``RACEFREE_CHAOS_DURATION_S`` (per engine, default
75), ``RACEFREE_CHAOS_CLIENTS`` (6), ``RACEFREE_CHAOS_REPLICAS`` (3, PostgreSQL
only). Exit status 1 when any invariant was violated.
"""

from __future__ import annotations

import os
import random
import sys

from tests.chaos.run import print_result, run


def main() -> int:
    seed = int(os.environ.get("RACEFREE_CHAOS_SEED") or random.SystemRandom().randrange(10**9))
    engines = os.environ.get("RACEFREE_CHAOS_ENGINES", "postgresql,sqlite").split(",")
    duration = float(os.environ.get("RACEFREE_CHAOS_DURATION_S", "75"))
    clients = int(os.environ.get("RACEFREE_CHAOS_CLIENTS", "6"))
    replicas = int(os.environ.get("RACEFREE_CHAOS_REPLICAS", "3"))
    print(f"chaos: seed {seed} (replay with RACEFREE_CHAOS_SEED={seed})", flush=True)
    failed = False
    for engine in engines:
        result = run(engine.strip(), seed, duration, clients=clients, replicas=replicas)
        print_result(result)
        failed = failed or bool(result.report.violations)
    if failed:
        print(f"chaos: FAILED -- replay with RACEFREE_CHAOS_SEED={seed} make chaos")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
