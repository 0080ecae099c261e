#!/usr/bin/env python3
"""Issue 10b, last move: the hand-written docs say where codes, tables, settings and prefixes
live now, and how the tests seed and wait (idempotent; after every other move).

Only docs/concepts.md and docs/testing.md (the generated docs are ``racefree docs``'s).
A paragraph it cannot place is reported (``CHECK by hand``).
"""

from __future__ import annotations

from pathlib import Path

CONCEPTS = Path("docs/concepts.md")
TESTING = Path("docs/testing.md")

LAYERS_OLD_APP = "app         runtime (composition root), workers, http/, cli, machines, reference\n"
LAYERS_NEW_APP = (
    "app         runtime (composition root), workers, http/, cli, console, machines, reference;\n"
    "            the assemblies: catalog (every error code), schema (every table), settings\n"
)
PROCESSES_OLD = "processes   killswitch, transactions (+ executors), plans\n"
PROCESSES_NEW = "processes   killswitch, transactions (+ executors), plans, events, autostop\n"
CORE_OLD = "            errors (the catalog mechanism), exceptions\n```\n"
CORE_NEW = (
    "            errors (the catalog mechanism), exceptions, audit, idempotency, tokens,\n"
    "            schema (the shared MetaData)\n```\n\n"
    "`core` holds no domain's code, table, setting or token prefix: each layer declares its\n"
    "error codes in `<layer>/errors.py`, its tables in `<layer>/tables.py` (on core's shared\n"
    "`MetaData`) and its settings in `<layer>/settings.py`, and owns its token prefix\n"
    "(`operators.OPERATOR_PREFIX`, `sessions.model.SESSION_PREFIX`). The app assembles them:\n"
    "`racefree.catalog.CATALOG`, `racefree.schema.metadata`, `racefree.settings.Settings`.\n"
)
SCHEMA_OLD = "(`src/racefree/core/schema.py`) and created by the Alembic migrations\n"
SCHEMA_NEW = (
    "(each layer's `tables.py`, assembled by `src/racefree/schema.py`) and created by the\n"
    "Alembic migrations\n"
)
CATALOG_OLD = "One catalog (`racefree.core.errors.CATALOG`, listed in [errors.md](errors.md)) maps every\n"
CATALOG_NEW = "One catalog (`racefree.catalog.CATALOG`, listed in [errors.md](errors.md)) maps every\n"
RAISE_OLD = "`src/racefree/core/exceptions.py`. HTTP answers are RFC 9457 problem documents built from\n"
RAISE_NEW = (
    "`src/racefree/core/exceptions.py`. A code is declared once, by the lowest layer that\n"
    "raises it (`racefree.sessions.errors.SessionCode.RENEWAL_CONFLICT`), and registered with\n"
    "the mechanism in `racefree.core.errors`. HTTP answers are RFC 9457 problem documents\n"
    "built from\n"
)

SEEDS = (
    "* Seeds come from one module, `tests/factory.py`: rows in any state (`factory.agent`,\n"
    "  `factory.session`, `factory.transaction`, the kill switch `factory.world`) into a\n"
    "  `Database` or an open `Tx`, and real sessions issued by the domain\n"
    "  (`factory.issue_session`). Core's tests create their own test-only tables.\n"
    "* Gates, not clocks: a test that needs a request to stay in flight opens a gate when it is\n"
    "  ready instead of sleeping and hoping -- plan generation waits on\n"
    "  `RACEFREE_PLAN_GENERATION_GATE` (each file the test creates lets one generation write),\n"
    "  a waiting lock acquisition shows in the `racefree_lock_waiters` gauge, a lease holder\n"
    "  process renews its lease until the test kills it.\n"
)
SEEDS_BEFORE = "* HTTP behaviour is tested through the real app"

#: references to a design document the repository does not contain -> what the repository says
OUTSIDE = {
    Path("pyproject.toml"): [
        (
            "# The layers of DESIGN section 3, enforced by",
            "# The layers of docs/concepts.md (Layers), enforced by",
        )
    ],
    Path("Makefile"): [
        (
            "then DESIGN 5's invariants (RACEFREE_CHAOS_SEED replays)",
            "then the invariants of tests/chaos/checker.py (RACEFREE_CHAOS_SEED replays)",
        )
    ],
    Path(".ci/run"): [
        ("DESIGN 5's invariants (bounded", "the invariants of tests/chaos/checker.py (bounded")
    ],
    Path("src/racefree/plans/generation.py"): [
        (
            "An ``_epoch`` field (DESIGN 10): epoch seconds",
            "An ``_epoch`` field (README, HTTP conventions): epoch seconds",
        )
    ],
}


def replace(path: Path, old: str, new: str, text: str) -> str:
    if new in text:
        return text
    if old not in text:
        print(f"CHECK by hand: {path}: not found: {old.strip()[:70]!r}")
        return text
    return text.replace(old, new, 1)


def main() -> None:
    text = CONCEPTS.read_text()
    for old, new in (
        (LAYERS_OLD_APP, LAYERS_NEW_APP),
        (PROCESSES_OLD, PROCESSES_NEW),
        (CORE_OLD, CORE_NEW),
        (SCHEMA_OLD, SCHEMA_NEW),
        (CATALOG_OLD, CATALOG_NEW),
        (RAISE_OLD, RAISE_NEW),
    ):
        text = replace(CONCEPTS, old, new, text)
    CONCEPTS.write_text(text)

    text = TESTING.read_text()
    if "tests/factory.py" not in text:
        if SEEDS_BEFORE not in text:
            print(f"CHECK by hand: {TESTING}: where do the seeds and gates go?")
        else:
            text = text.replace(SEEDS_BEFORE, SEEDS + SEEDS_BEFORE, 1)
    TESTING.write_text(text)

    for path, pairs in OUTSIDE.items():
        if not path.exists():
            continue
        text = path.read_text()
        for old, new in pairs:
            text = text.replace(old, new)
        path.write_text(text)


if __name__ == "__main__":
    main()
