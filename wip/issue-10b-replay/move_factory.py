#!/usr/bin/env python3
"""Issue 10b (b): rewrite test users of the old seeding helpers to tests/factory.py.

Old vocabularies: tests/killswitch/seed.py (seed.agent/session/transaction/world),
tests/transactions/conftest.py (insert_agent, insert_session, OWNER_KEY, OWNER_PUBLIC, DAY),
tests/sessions/conftest.py (POLICY, open_session). Run on any test file; then ruff.
"""

from __future__ import annotations

import re
from pathlib import Path


def rewrite(p: Path) -> bool:
    s = p.read_text()
    o = s
    if "from tests.killswitch import seed" in s:
        s = s.replace("from tests.killswitch import seed", "from tests import factory")
        s = re.sub(r"\bseed\.", "factory.", s)
        s = s.replace("owner_public_key=", "owner=")
    if "from tests.sessions.conftest import" in s:
        m = re.search(r"from tests\.sessions\.conftest import ([^\n]*)\n", s)
        assert m
        names = [n.strip() for n in m.group(1).split(",")]
        new = "from tests import factory\n" if "open_session" in names else ""
        keep = [n for n in names if n not in ("open_session",)]
        if keep:
            new += f"from tests.factory import {', '.join(keep)}\n"
        s = s[: m.start()] + new + s[m.end() :]
        s = re.sub(r"\bopen_session\(", "factory.issue_session(", s)
    if re.search(r"\binsert_agent\(|\binsert_session\(|OWNER_KEY|OWNER_PUBLIC", s):
        s = re.sub(r"\binsert_agent\(db, ", "factory.agent(db, owner=OWNER_PUBLIC, ", s)
        s = re.sub(r"\binsert_agent\(db\)", "factory.agent(db, owner=OWNER_PUBLIC)", s)
        s = re.sub(
            r"insert_session\(db, ([^,]+), ([^,()]+(?:\(\))?(?:\([^()]*\))?), \*\*constraints\)",
            r"factory.session(db, \1, now=\2, constraints=constraints)",
            s,
        )
        s = re.sub(
            r"insert_session\(db, ([^,]+), clock\.now\(\), (\w+)=(\w+)\)",
            r'factory.session(db, \1, now=clock.now(), constraints={"\2": \3})',
            s,
        )
        s = re.sub(
            r"insert_session\(db, (factory\.agent\([^()]*\)|[\w]+), "
            r"(clock\.now\(\)|int\(time\.time\(\)\)|\w+)\)",
            r"factory.session(db, \1, now=\2)",
            s,
        )
        # what is left: an agent argument that is itself a call (one level of parentheses)
        arg = r"((?:[^(),]|\([^()]*\))+)"
        now = r"(clock\.now\(\)|int\(time\.time\(\)\)|\w+)"
        s = re.sub(
            rf"\binsert_session\(db, {arg}, {now}, (\w+)=(\w+)\)",
            r'factory.session(db, \1, now=\2, constraints={"\3": \4})',
            s,
        )
        s = re.sub(rf"\binsert_session\(db, {arg}, {now}\)", r"factory.session(db, \1, now=\2)", s)
        m = re.search(r"from tests\.transactions\.conftest import (\([^)]*\)|[^\n]*)\n", s)
        if m and not re.search(r"insert_agent|insert_session|OWNER_KEY|OWNER_PUBLIC|\bDAY\b", m.group(1)):
            m = None
        if m:
            names = [
                n.strip() for n in m.group(1).strip("()").replace("\n", " ").split(",") if n.strip()
            ]
            moved = [n for n in names if n in ("OWNER_KEY", "OWNER_PUBLIC", "DAY")]
            keep = [
                n
                for n in names
                if n not in ("insert_agent", "insert_session", "OWNER_KEY", "OWNER_PUBLIC", "DAY")
            ]
            rest = s[: m.start()] + s[m.end() :]
            if "OWNER_PUBLIC" in rest and "OWNER_PUBLIC" not in moved:
                moved.append("OWNER_PUBLIC")
            new = ""
            if "factory." in rest and "from tests import factory" not in rest:
                new += "from tests import factory\n"
            if moved and "from tests.factory import" not in rest:
                new += f"from tests.factory import {', '.join(sorted(set(moved)))}\n"
            if keep:
                new += f"from tests.transactions.conftest import {', '.join(keep)}\n"
            s = s[: m.start()] + new + s[m.end() :]
    if s != o:
        p.write_text(s)
        return True
    return False


def main() -> None:
    for p in sorted(Path("tests").rglob("*.py")):
        if p.name == "factory.py":
            continue
        if rewrite(p):
            print("rewrote", p)
    left = [
        str(p)
        for p in Path("tests").rglob("*.py")
        if re.search(r"insert_agent|insert_session|\bopen_session\(db|killswitch import seed", p.read_text())
        and p.name != "factory.py"
    ]
    if left:
        print("LEFT (by hand):", left)


if __name__ == "__main__":
    main()
