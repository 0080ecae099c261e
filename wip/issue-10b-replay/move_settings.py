#!/usr/bin/env python3
"""Issue 10b, move 3: domain settings out of core/settings.py; a composed Settings for the app.

Run from the repository root on the OLD layout (one ``Settings`` in core/settings.py).
Each field goes to a group by its name (GROUPS, first match); a domain group becomes
``<pkg>/settings.py`` with ``<Name>Settings``; the service and worker fields stay
with the app in ``racefree/settings.py``, whose ``Settings`` composes every group in
the order the fields had (so docs/settings.md keeps its order when the groups do
not interleave). Domain modules take their own class; everything else the composed one.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

SRC = Path("src/racefree")

#: (group, class, module or None for the app module, name patterns)
GROUPS = [
    ("sessions", "SessionSettings", "racefree.sessions.settings", [r"^session_"]),
    ("killswitch", "KillSwitchSettings", "racefree.killswitch.settings", [r"^recovery_"]),
    (
        "transactions",
        "TransactionSettings",
        "racefree.transactions.settings",
        [r"^tier_", r"^executor"],
    ),
    ("plans", "PlanSettings", "racefree.plans.settings", [r"^plan_", r"^plans_", r"^lock_ttl_s$"]),
    ("events", "EventSettings", "racefree.events.settings", [r"^events_", r"^webhook_", r"^outbox"]),
    ("autostop", "AutoStopSettings", "racefree.autostop.settings", [r"^autostop", r"^auto_stop"]),
    ("workers", "WorkerSettings", None, [r"^worker"]),
    # the HTTP edge's conditional and idempotent requests (issue 14): between sessions and
    # recovery in the old order, so their own group keeps docs/settings.md's order
    ("edge", "EdgeSettings", None, [r"^require_if_match$", r"^idempotency_"]),
    ("service", "ServiceSettings", None, [r".*"]),
]
DOCS = {
    "SessionSettings": "Session lifetimes and renewal (``RACEFREE_SESSION_*``).",
    "KillSwitchSettings": "Recovery waits, stored at first start (``RACEFREE_RECOVERY_*``).",
    "TransactionSettings": "Tiers, their timeouts, the executor and its retries.",
    "PlanSettings": "Plan generation: its lease TTL, simulated latency and test gate.",
    "EventSettings": "Events: the outbox, webhooks and the stream.",
    "AutoStopSettings": "AutoStop triggers.",
    "WorkerSettings": "The background workers of ``racefree serve``.",
    "EdgeSettings": "Conditional (``If-Match``) and idempotent (``Idempotency-Key``) requests.",
    "ServiceSettings": "The service: database, listener, logging, the master password.",
}
CONFIG = '    model_config = SettingsConfigDict(env_prefix="RACEFREE_", extra="ignore")\n'


def group_of(name: str) -> tuple[str, str, str | None]:
    for group, cls, module, patterns in GROUPS:
        if any(re.search(p, name) for p in patterns):
            if group == "service" and name not in KNOWN_SERVICE:
                print(f"NOTE: {name} -> ServiceSettings (app); move it if a domain owns it")
            return group, cls, module
    raise AssertionError(name)


KNOWN_SERVICE = {
    "database_url",
    "host",
    "port",
    "master_password",
    "log_level",
    "db_pool_size",
    "sqlite_busy_timeout_ms",
    "log_format",
    "max_body_bytes",
}


def header(text: str) -> str:
    """The imports a class body needs."""
    lines = ["from __future__ import annotations\n\n"]
    stdlib = []
    if "Path" in text:
        stdlib.append("from pathlib import Path\n")
    if "Literal[" in text:
        stdlib.append("from typing import Literal\n")
    if stdlib:
        lines.extend([*stdlib, "\n"])
    names = [n for n in ("Field", "SecretStr") if re.search(rf"\b{n}\b", text)]
    if names:
        lines.append(f"from pydantic import {', '.join(names)}\n")
    lines.append("from pydantic_settings import BaseSettings, SettingsConfigDict\n")
    return "".join(lines)


def main() -> None:
    path = SRC / "core/settings.py"
    text = path.read_text()
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings"]
    order: list[str] = []
    bodies: dict[str, list[str]] = {}
    meta: dict[str, tuple[str, str | None]] = {}
    for stmt in cls.body:
        if not isinstance(stmt, ast.AnnAssign):
            continue  # model_config
        name = stmt.target.id  # type: ignore[attr-defined]
        start = stmt.lineno
        while lines[start - 2].lstrip().startswith("#"):
            start -= 1
        block = "".join(lines[start - 1 : stmt.end_lineno]).lstrip("\n")
        group, cname, module = group_of(name)
        if cname not in bodies:
            order.append(cname)
            bodies[cname] = []
            meta[cname] = (group, module)
        bodies[cname].append(block)
    # classes
    app_classes: list[str] = []
    for cname in order:
        group, module = meta[cname]
        body = "".join(bodies[cname])
        cls_text = f'class {cname}(BaseSettings):\n    """{DOCS[cname]}"""\n\n{CONFIG}\n{body}'
        if module is None:
            app_classes.append(cls_text)
            continue
        target = SRC / group / "settings.py"
        if target.exists():
            sys.exit(f"{target} exists")
        target.write_text(f'"""{DOCS[cname]}"""\n\n{header(body)}\n\n{cls_text}')
        print(target, cname)
    domain_imports = "".join(
        f"from {meta[c][1]} import {c}\n" for c in sorted(order) if meta[c][1] is not None
    )
    app_body = "".join("".join(bodies[c]) for c in order if meta[c][1] is None)
    composed = ", ".join(reversed(order))
    app = (
        '"""Settings from the environment (``RACEFREE_`` prefix), docs/settings.md.\n\n'
        "Each layer declares the settings it reads beside its code (``racefree.<layer>.settings``)\n"
        "and takes only those; the app's :class:`Settings` composes them with its own\n"
        "(service and workers), in the order docs/settings.md lists them.\n"
        '"""\n\n'
        + header(app_body + "Path" * ("Path" in app_body))
        + "\n"
        + domain_imports
        + "\n\n"
        + "\n\n".join(app_classes)
        + f'\n\nclass Settings({composed}):\n    """Every setting of a racefree process."""\n\n'
        + CONFIG
    )
    (SRC / "settings.py").write_text(app)
    path.unlink()
    # users
    domain_of = {meta[c][0]: c for c in order if meta[c][1] is not None}
    for root in ("src", "tests", "bench", "examples"):
        for f in Path(root).rglob("*.py"):
            t = f.read_text()
            if "racefree.core.settings" not in t:
                continue
            parts = f.parts
            pkg = parts[2] if parts[0] == "src" and len(parts) > 3 else None
            if pkg in domain_of:
                cname = domain_of[pkg]
                t = t.replace(
                    "from racefree.core.settings import Settings",
                    f"from racefree.{pkg}.settings import {cname}",
                )
                t = re.sub(r"(?<![\w.])Settings\b", cname, t)
            else:
                t = t.replace("racefree.core.settings", "racefree.settings")
            f.write_text(t)
            print("rewrote", f)
    # the root package re-exports lazily (PEP 562): Settings stays, from racefree.settings
    pyproject = Path("pyproject.toml")
    t = pyproject.read_text()
    t = t.replace(
        '"racefree.runtime : racefree.catalog"',
        '"racefree.runtime : racefree.catalog : racefree.settings"',
    )
    t = t.replace(
        'ignore_imports = ["racefree -> racefree.catalog"]',
        'ignore_imports = ["racefree -> racefree.catalog", "racefree -> racefree.settings"]',
    )
    pyproject.write_text(t)
    for doc in [Path("README.md"), *Path("docs").glob("*.md")]:
        t = doc.read_text()
        if "core/settings.py" in t or "core.settings" in t:
            doc.write_text(
                t.replace("core/settings.py", "settings.py").replace("core.settings", "settings")
            )
            print("rewrote", doc)


if __name__ == "__main__":
    main()
