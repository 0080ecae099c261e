#!/usr/bin/env python3
"""Issue 10b, move 2: tables out of core/schema.py into the packages that own them.

Run from the repository root on the OLD layout (every table in core/schema.py),
after move_codes.py (which makes ``operators`` a package). core/schema.py keeps
the shared MetaData, the column helpers (public now) and core's own tables;
``racefree/schema.py`` (app layer) imports every table module, so migrations and
the drift test see the whole schema. Unknown tables stop the script.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path("src/racefree")

#: table name -> owning package (None: core's own)
OWNER = {
    "system_settings": "system",
    "operators": "operators",
    "audit_log": None,
    "audit_chain": None,
    "locks": None,
    "lock_tokens": None,
    "idempotency_keys": None,
    "agents": "agents",
    "accounts": "agents",
    "sessions": "sessions",
    "kill_switch": "killswitch",
    "transactions": "transactions",
    "ledger_entries": "transactions",
    "plan_groups": "plans",
    "plans": "plans",
    "nonces": "owners",
    # added by the branches merged before 10b
    "webhooks": "events",
    "webhook_deliveries": "events",
    "auto_stop_rules": "autostop",
    "agent_figures": "autostop",
    "console_sessions": "console",
    "session_retired_tokens": "sessions",
    "plan_group_quota": "plans",
}

DOC = {
    "system": "The system's tables: settings stored at first start.",
    "operators": "The operators' table: token digests.",
    "agents": "The agents' tables: agents and their accounts.",
    "sessions": "The sessions' table.",
    "killswitch": "The kill switch's table: one row per scope.",
    "transactions": "The transactions' tables: transactions and the ledger.",
    "plans": "The plans' tables: plan groups and their generated plans.",
    "owners": "The owners' table: single-use signature nonces.",
    "events": "The events' tables.",
    "autostop": "The AutoStop tables.",
    "console": "The console's tables.",
}

HELPERS = {"_epoch": "epoch", "_id": "id_column"}


def main() -> None:
    path = SRC / "core/schema.py"
    text = path.read_text()
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    moved: dict[str, list[str]] = defaultdict(list)
    names: dict[str, list[str]] = defaultdict(list)
    cut: list[tuple[int, int]] = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        if ast.unparse(call.func) != "sa.Table":
            continue
        table = ast.literal_eval(call.args[0])
        if table not in OWNER:
            sys.exit(f"core/schema.py: no owner for table {table!r}: add it to OWNER")
        owner = OWNER[table]
        if owner is None:
            continue
        start = node.lineno
        # comment lines directly above go with the table
        while start > 1 and lines[start - 2].lstrip().startswith("#"):
            start -= 1
        block = "".join(lines[start - 1 : node.end_lineno])
        moved[owner].append(block)
        names[owner].append(node.targets[0].id)  # type: ignore[attr-defined]
        cut.append((start, node.end_lineno or node.lineno))
    keep: list[str] = []
    i = 1
    for a, b in sorted(cut):
        keep.extend(lines[i - 1 : a - 1])
        i = b + 1
    keep.extend(lines[i - 1 :])
    core = "".join(keep)
    for old, new in HELPERS.items():
        core = re.sub(rf"\b{old}\(", f"{new}(", core)
        core = core.replace(f"def {new}(", f"def {new}(")
    core = re.sub(r"\n{3,}", "\n\n\n", core)
    old_doc = core[: core.index("Conventions:")]
    core = core.replace(
        old_doc,
        '"""The shared MetaData, its column helpers, and core\'s own tables.\n\n'
        "Every layer defines its tables beside its code (``racefree.<layer>.tables``) on\n"
        ":data:`metadata`; ``racefree.schema`` imports them all. Core's own tables are the\n"
        "mechanisms' (the audit log, lease locks and their fencing tokens). Alembic\n"
        "migrations create the schema; ``tests/migrations/test_schema.py`` checks they agree.\n\n",
    )
    path.write_text(core)
    for owner, blocks in moved.items():
        target = SRC / owner / "tables.py"
        if not target.parent.is_dir():
            sys.exit(f"{target.parent} is not a package")
        body = "\n\n".join(b.rstrip("\n") + "\n" for b in blocks)
        for old, new in HELPERS.items():
            body = re.sub(rf"\b{old}\(", f"{new}(", body)
        used = [h for h in ("BigInt", "epoch", "id_column") if re.search(rf"\b{h}\b", body)]
        imports = ", ".join([*used, "metadata"])
        target.write_text(
            f'"""{DOC.get(owner, owner)} Defined on core\'s shared MetaData."""\n\n'
            "from __future__ import annotations\n\nimport sqlalchemy as sa\n\n"
            f"from racefree.core.schema import {imports}\n\n\n{body}"
        )
        print(target, names[owner])
    owners = sorted(moved)
    (SRC / "schema.py").write_text(
        '"""The whole schema: core\'s tables and every layer\'s, on one MetaData.\n\n'
        "Each layer defines its tables beside its code (``racefree.<layer>.tables``) on\n"
        "the MetaData of :mod:`racefree.core.schema`; importing this module imports them\n"
        "all, so Alembic (``migrations/env.py``) and the drift test see every table.\n"
        '"""\n\nfrom __future__ import annotations\n\n'
        + "".join(f"import racefree.{o}.tables  # noqa: F401 - defines its tables\n" for o in owners)
        + "from racefree.core.schema import metadata\n\n"
        + '__all__ = ["metadata"]\n'
    )
    env = SRC / "migrations/env.py"
    env.write_text(
        env.read_text().replace(
            "from racefree.core.schema import metadata", "from racefree.schema import metadata"
        )
    )
    for test in Path("tests").rglob("*.py"):
        t = test.read_text()
        if "racefree.core.schema" in t:
            test.write_text(t.replace("from racefree.core.schema import metadata",
                                      "from racefree.schema import metadata"))
            print("rewrote", test)
    pyproject = Path("pyproject.toml")
    text = pyproject.read_text()
    # the schema imports app-level tables too (console): it sits with migrations
    text = re.sub(r'^(  "racefree\.http : [^"\n]*)"', r'\1 : racefree.schema"', text, count=1, flags=re.M)
    pyproject.write_text(text)


if __name__ == "__main__":
    main()
