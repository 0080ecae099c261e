"""CPU seconds a process, or every PostgreSQL process, has used (Linux ``/proc``).

A concurrent benchmark on a small machine is bound by CPU shared between the
server, the database and the load client; reporting each one's CPU per request
tells which of them a change moved.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def process_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and of its children that ended."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / _TICK


def postgres_s() -> float:
    """CPU seconds of every process named ``postgres*`` (backends, writers, the postmaster)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().startswith("postgres"):
                total += process_s(int(proc.name))
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return total
