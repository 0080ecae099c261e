#!/usr/bin/env python3
"""Issue 10b (d)+(e) re-applied on main's routes: one pagination convention, plan rules once.

Use after `git checkout --theirs` of a conflicted route file (or on any route file):
* list routes: ``after_id``/``limit`` query annotations -> ``paging.AfterId``/``paging.Limit``,
  every ``next_after_id`` computation -> ``paging.next_after_id(found, after_id)``;
* plans: drop PlanGroupIn's model validator; the route calls ``plans.validate`` before its write.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROUTES = Path("src/racefree/http/routes")
PAGING = Path("src/racefree/http/paging.py")


def paging(path: Path) -> None:
    s = path.read_text()
    o = s
    s = re.sub(
        r"after_id: Annotated\[str \| None, Query\(max_length=36\)\] = None",
        "after_id: AfterId = None",
        s,
    )
    s = re.sub(r"limit: Annotated\[int, Query\(ge=1, le=\d+\)\] = 100", "limit: Limit = 100", s)
    s = re.sub(
        r"found\[-1\]\.id if len\(found\) == limit else None", "next_after_id(found, after_id)", s
    )
    s = re.sub(r"found\[-1\]\.id if found else after_id", "next_after_id(found, after_id)", s)
    if s == o:
        return
    names = [n for n in ("AfterId", "Limit", "next_after_id") if re.search(rf"\b{n}\b", s)]
    imp = f"from racefree.http.paging import {', '.join(names)}\n"
    if "from racefree.http.paging import" in s:
        s = re.sub(r"from racefree\.http\.paging import [^\n]*\n", imp, s)
    else:
        m = re.search(r"^from racefree\.http\.", s, re.MULTILINE)
        if m is None:
            sys.exit(f"{path}: place the paging import by hand")
        s = s[: m.start()] + imp + s[m.start() :]  # ruff sorts it
    path.write_text(s)
    print("paging:", path)


def plans(path: Path) -> None:
    s = path.read_text()
    m = re.search(
        r"\n    @model_validator\(mode=\"after\"\)\n    def _period_and_names\(self\)[^\n]*\n"
        r"(?:        [^\n]*\n|\n(?=        ))*",
        s,
    )
    if m:
        s = s[: m.start()] + "\n" + s[m.end() :]
        s = s.replace(", model_validator", "")
        s = s.replace(
            "from racefree.plans.groups import MAX_DAYS, MAX_ITEMS, MAX_UNITS",
            "from racefree.plans.groups import MAX_ITEMS, MAX_UNITS",
        )
        s = s.replace("from racefree.plans.spread import days_between\n", "")
        s = s.replace(
            "class PlanGroupIn(BaseModel):\n",
            'class PlanGroupIn(BaseModel):\n    """The body\'s shape; the group\'s rules'
            ' (period, unique names) are plans.validate\'s."""\n\n',
            1,
        )
    if "plans.validate(" not in s:
        old = re.search(
            r"( +)agent_id = caller\.agent_id if isinstance\(caller, SessionPrincipal\) else None\n"
            r"(\1with runtime\.db\.write\(\) as tx:\n\1    group = plans\.create\(\n(?:.*\n)*?)"
            r"\1        items=\[Item\(i\.name, i\.units\) for i in body\.items\],\n",
            s,
        )
        if not old:
            sys.exit(f"{path}: add the plans.validate call by hand")
        ind = old.group(1)
        s = (
            s[: old.start()]
            + f"{ind}agent_id = caller.agent_id if isinstance(caller, SessionPrincipal) else None\n"
            + f"{ind}items = [Item(i.name, i.units) for i in body.items]\n"
            + f"{ind}plans.validate(body.start_date, body.end_date, items)"
            "  # before the write transaction opens\n"
            + old.group(2)
            + f"{ind}        items=items,\n"
            + s[old.end() :]
        )
    path.write_text(s)
    print("plans:", path)


def main() -> None:
    for name in ("agents.py", "sessions.py", "transactions.py", "audit.py"):
        paging(ROUTES / name)
    plans(ROUTES / "plans.py")
    for p in ROUTES.glob("*.py"):
        t = p.read_text()
        if re.search(r"next_after_id\"?: ?found|le=500\)\] = 100", t):
            print("CHECK by hand:", p)


if __name__ == "__main__":
    main()
