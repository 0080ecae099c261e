#!/usr/bin/env python3
"""Issue 10b: AuditContext names no domain (subjects mapping); audit.record takes ``subjects``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

SRC = Path("src/racefree")


def sub(path: Path, old: str, new: str) -> None:
    s = path.read_text()
    if old not in s:
        sys.exit(f"{path}: not found: {old[:80]!r}")
    path.write_text(s.replace(old, new))


def main() -> None:
    machine = SRC / "core/machine.py"
    sub(
        machine,
        '''    """Who did it and what the audit row should say beyond the cascade counts."""

    actor: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    transaction_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)''',
        '''    """Who did it, what it concerns and what the audit row says beyond the cascade counts.

    ``subjects`` are the audit row's subject columns, named by the domain that
    moves (``{"agent_id": ...}``); the machine knows none of them.
    """

    actor: str | None = None
    subjects: Mapping[str, str | None] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)''',
    )
    s = machine.read_text()
    s = re.sub(
        r"( +)agent_id=ctx\.agent_id,\n +session_id=ctx\.session_id,\n"
        r" +transaction_id=ctx\.transaction_id,\n",
        r"\1subjects=ctx.subjects,\n",
        s,
    )
    if "subjects=ctx.subjects" not in s:
        sys.exit("core/machine.py: pass subjects=ctx.subjects to audit.record by hand")
    machine.write_text(s)

    audit = SRC / "core/audit.py"
    s = audit.read_text()
    if "subjects: Mapping[str, str | None] | None = None" not in s:
        s = s.replace(
            "    transaction_id: str | None = None,\n    details: dict[str, Any] | None = None,\n) -> None:\n",
            "    transaction_id: str | None = None,\n    details: dict[str, Any] | None = None,\n"
            "    subjects: Mapping[str, str | None] | None = None,\n) -> None:\n",
            1,
        )
        # the docstring may span lines (main's does since issue 9's chain)
        if "subjects: Mapping[str, str | None] | None = None" not in s:
            sys.exit("core/audit.py: record()'s signature changed: add subjects= to it by hand")
        m = re.search(r'\ndef record\([^)]*\) -> None:\n    """(?:[^"]|"(?!""))*"""\n', s)
        if m is None:
            sys.exit("core/audit.py: add the subjects handling to record() by hand")
        s = (
            s[: m.end()]
            + "    if subjects:  # a machine's generic subjects are these columns\n"
            + '        unknown = set(subjects) - {"agent_id", "session_id", "transaction_id"}\n'
            + "        if unknown:\n"
            + '            raise ValueError(f"audit_log has no subject columns {sorted(unknown)}")\n'
            + '        agent_id = subjects.get("agent_id", agent_id)\n'
            + '        session_id = subjects.get("session_id", session_id)\n'
            + '        transaction_id = subjects.get("transaction_id", transaction_id)\n'
            + s[m.end() :]
        )
        if not re.search(r"^from collections\.abc import [^\n]*\bMapping\b", s, re.M):
            s = s.replace("import json\n", "import json\nfrom collections.abc import Mapping\n", 1)
        audit.write_text(s)
    for f in SRC.rglob("*.py"):
        t = f.read_text()
        if "AuditContext(" not in t or f == machine:
            continue
        n = t
        n = re.sub(
            r"AuditContext\(actor=actor, agent_id=agent_id",
            'AuditContext(actor=actor, subjects={"agent_id": agent_id}',
            n,
        )
        n = re.sub(
            r"(\n +)agent_id=txn\.agent_id,\n +session_id=txn\.session_id,\n +transaction_id=txn\.id,",
            r'\1subjects={"agent_id": txn.agent_id, "session_id": txn.session_id,'
            r' "transaction_id": txn.id},',
            n,
        )
        if n != t:
            f.write_text(n)
            print("rewrote", f)
        if re.search(r"AuditContext\([^)]*\b(agent_id|session_id|transaction_id)=", n, re.S):
            print("CHECK by hand:", f)


if __name__ == "__main__":
    main()
