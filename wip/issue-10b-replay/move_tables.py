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

#: module-level indexes (``sa.Index(name, table.c.x, ...)``) -> owning package, when the
#: owner is not the indexed table's (default: the table's owner)
INDEX_OWNER = {
    # issue 12: the figures AutoStop rules count in SQL
    "ix_transactions_agent_id_created_at": "autostop",
    "ix_transactions_agent_id_destination_confirmed_at": "autostop",
    # fastpath (0013): an agent's unfinished transactions, which DAILY_LIMIT adds at admission
    "ix_transactions_agent_id_open": "autostop",
}

HELPERS = {"_epoch": "epoch", "_id": "id_column", "_version": "version_column"}


def main() -> None:
    path = SRC / "core/schema.py"
    text = path.read_text()
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    moved: dict[str, list[str]] = defaultdict(list)
    names: dict[str, list[str]] = defaultdict(list)
    cut: list[tuple[int, int]] = []
    table_owner: dict[str, str | None] = {}  # python name -> owner
    #: per owner: tables of other owners its blocks use (python name -> owner)
    borrowed: dict[str, dict[str, str]] = defaultdict(dict)
    kept_starts: list[int] = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            if ast.unparse(call.func) != "sa.Index":
                continue
            used_tables = [
                n.value.id
                for n in ast.walk(call)
                if isinstance(n, ast.Attribute)
                and n.attr == "c"
                and isinstance(n.value, ast.Name)
            ]
            index_name = ast.literal_eval(call.args[0]) if call.args else None
            if not used_tables:
                sys.exit(f"core/schema.py:{node.lineno}: index on which table?")
            owner = INDEX_OWNER.get(index_name, table_owner.get(used_tables[0]))
            if owner is None:
                kept_starts.append(node.lineno)
                continue
            for t in used_tables:
                if table_owner.get(t) != owner:
                    borrowed[owner][t] = table_owner[t] or "core"
            start = node.lineno
            while start > 1 and lines[start - 2].lstrip().startswith("#"):
                start -= 1
            moved[owner].append("".join(lines[start - 1 : node.end_lineno]))
            cut.append((start, node.end_lineno or node.lineno))
            continue
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        if ast.unparse(call.func) != "sa.Table":
            continue
        table = ast.literal_eval(call.args[0])
        if table not in OWNER:
            sys.exit(f"core/schema.py: no owner for table {table!r}: add it to OWNER")
        owner = OWNER[table]
        table_owner[node.targets[0].id] = owner  # type: ignore[attr-defined]
        if owner is None:
            kept_starts.append(node.lineno)
            continue
        start = node.lineno
        # comment lines directly above go with the table
        while start > 1 and lines[start - 2].lstrip().startswith("#"):
            start -= 1
        block = "".join(lines[start - 1 : node.end_lineno])
        moved[owner].append(block)
        names[owner].append(node.targets[0].id)  # type: ignore[attr-defined]
        cut.append((start, node.end_lineno or node.lineno))
    # a section header ("# -- issue 12: ...") whose section lost a table goes: what stays
    # in core is core's own, and the moved tables' sections are their modules now
    headers = [n for n, line in enumerate(lines, 1) if line.startswith("# -- ")]
    for k, h in enumerate(headers):
        end = headers[k + 1] if k + 1 < len(headers) else len(lines) + 1
        if any(h < a < end for a, _ in cut):
            cut.append((h, h))
    # a module-level value (``_OPEN = sa.text(...)``) that only moved blocks use goes with the
    # first of them; one core still uses stays (and is reported if a moved block uses it too)
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if name in table_owner or name == "metadata" or name[:1].isupper():
            continue
        start = node.lineno
        while start > 1 and lines[start - 2].lstrip().startswith("#"):
            start -= 1
        users = [
            o for o, blocks in moved.items() if any(re.search(rf"\b{name}\b", b) for b in blocks)
        ]
        kept = "".join(
            line
            for n, line in enumerate(lines, 1)
            if not any(a <= n <= b for a, b in cut) and not start <= n <= (node.end_lineno or 0)
        )
        if not users:
            continue
        if re.search(rf"\b{name}\b", kept) or len(users) > 1:
            print(f"CHECK by hand: {name} is used by core and/or several owners: {users}")
            continue
        block = "".join(lines[start - 1 : node.end_lineno])
        first = next(i for i, b in enumerate(moved[users[0]]) if re.search(rf"\b{name}\b", b))
        moved[users[0]].insert(first, block)
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
        ":data:`metadata`; ``racefree.schema`` imports them all. Core's own tables are its\n"
        "mechanisms': the audit log and its chain head, lease locks and their fencing tokens,\n"
        "and stored Idempotency-Key replies. Alembic migrations create the schema;\n"
        "``tests/migrations/test_schema.py`` checks they agree.\n\n",
    )
    path.write_text(core)
    for owner, blocks in moved.items():
        target = SRC / owner / "tables.py"
        if not target.parent.is_dir():
            sys.exit(f"{target.parent} is not a package")
        body = "\n\n".join(b.rstrip("\n") + "\n" for b in blocks)
        for old, new in HELPERS.items():
            body = re.sub(rf"\b{old}\(", f"{new}(", body)
        helpers = ("BigInt", "epoch", "id_column", "version_column")
        used = [h for h in helpers if re.search(rf"\b{h}\b", body)]
        imports = ", ".join([*used, "metadata"])
        core_modules = "from racefree.core import amounts\n" if "amounts." in body else ""
        for t, other in sorted(borrowed[owner].items()):
            core_modules += f"from racefree.{other}.tables import {t}\n"
        target.write_text(
            f'"""{DOC.get(owner, owner)} Defined on core\'s shared MetaData."""\n\n'
            "from __future__ import annotations\n\nimport sqlalchemy as sa\n\n"
            f"{core_modules}from racefree.core.schema import {imports}\n\n\n{body}"
        )
        print(target, names[owner])
    owners = sorted(moved)
    (SRC / "schema.py").write_text(
        '"""The whole schema: core\'s tables and every layer\'s, on one MetaData.\n\n'
        "Each layer defines its tables beside its code (``racefree.<layer>.tables``) on\n"
        "the MetaData of :mod:`racefree.core.schema`; importing this module imports them\n"
        "all, so Alembic (``migrations/env.py``) and the drift test see every table.\n"
        '"""\n\nfrom __future__ import annotations\n\n'
        + "# importing a layer's tables module defines its tables on the shared MetaData\n"
        + "".join(f"import racefree.{o}.tables  # noqa: F401\n" for o in owners)
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
