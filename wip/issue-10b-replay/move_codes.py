#!/usr/bin/env python3
"""Issue 10b, move 1: domain error codes out of core/errors.py into the layers that own them.

Run from the repository root on a tree in the OLD layout (core/errors.py holding
``ErrorCode`` + ``CATALOG``). Idempotence is not a goal: run once, then
``ruff check --fix``, ``ruff format``, mypy, lint-imports. Unknown codes stop the
script: add them to OVERRIDES or DOMAIN_HOME.

Homes (module -> enum): the lowest layer that raises the code.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

SRC = Path("src/racefree")

# home key -> (file, import module, enum name, docstring)
HOMES = {
    "core": (SRC / "core/errors.py", "racefree.core.errors", None, None),
    "operators": (
        SRC / "operators/errors.py",
        "racefree.operators.errors",
        "AuthCode",
        "Authentication codes (domain AUTH) of operator tokens, the master password and"
        " route access; sessions and owners add their own AUTH codes.",
    ),
    "owners": (
        SRC / "owners/errors.py",
        "racefree.owners.errors",
        "OwnerCode",
        "Codes of owners: signatures and nonces (AUTH), ownership (OWNER), and the agent"
        " whose owner columns are asked for (AGENT_NOT_FOUND).",
    ),
    "system": (
        SRC / "system/errors.py",
        "racefree.system.errors",
        "SystemCode",
        "The system-wide refusal while the kill switch is engaged.",
    ),
    "sessions": (
        SRC / "sessions/errors.py",
        "racefree.sessions.errors",
        "SessionCode",
        "Session codes: renewal, limits, revocation, and the session-token AUTH answers.",
    ),
    "agents": (
        SRC / "agents/errors.py",
        "racefree.agents.errors",
        "AgentCode",
        "Agent availability codes (AGENT_NOT_FOUND is the owners', who look agents up first).",
    ),
    "killswitch": (
        SRC / "killswitch/errors.py",
        "racefree.killswitch.errors",
        "KillSwitchCode",
        "Kill switch and recovery conflicts (domain SYSTEM).",
    ),
    "transactions": (
        SRC / "transactions/errors.py",
        "racefree.transactions.errors",
        "TransactionCode",
        "Transaction codes (domain TX); INVALID_STATE_TRANSITION is core's (every machine).",
    ),
    "plans": (
        SRC / "plans/errors.py",
        "racefree.plans.errors",
        "PlanCode",
        "Plan group codes.",
    ),
    "autostop": (
        SRC / "autostop/errors.py",
        "racefree.autostop.errors",
        "AutoStopCode",
        "AutoStop codes.",
    ),
    "events": (
        SRC / "events/errors.py",
        "racefree.events.errors",
        "EventCode",
        "Event and webhook codes.",
    ),
}
#: core's own enums, by domain (in core/errors.py)
CORE_ENUMS = {
    "GENERAL": "GeneralCode",
    "LOCK": "LockCode",
    "MACHINE": "MachineCode",
    "IDEMPOTENCY": "IdempotencyCode",
}

DOMAIN_HOME = {
    "GENERAL": "core",
    "LOCK": "core",
    "AUTH": "operators",
    "SYSTEM": "killswitch",
    "SESSION": "sessions",
    "AGENT": "agents",
    "OWNER": "owners",
    "TX": "transactions",
    "PLAN": "plans",
    "AUTO_STOP": "autostop",
    "AUTOSTOP": "autostop",
    "EVENTS": "events",
    "EVENT": "events",
}
OVERRIDES = {
    "TOKEN_EXPIRED": "sessions",
    "SESSION_REVOKED": "sessions",
    "TOKEN_REUSED": "sessions",
    "INVALID_SIGNATURE": "owners",
    "INVALID_NONCE": "owners",
    "AGENT_NOT_FOUND": "owners",
    "SYSTEM_LOCKED": "system",
    "INVALID_STATE_TRANSITION": "core:MACHINE",
    # added by the branches merged before 10b (check where each is raised after the move)
    "NOT_READY": "system",
    # issues 9/12/14/15: only plans raise it (domain GENERAL in the catalog)
    "QUOTA_EXCEEDED": "plans",
    # issue 14: core.idempotency (every POST's Idempotency-Key) raises them
    "IDEMPOTENCY_KEY_IN_USE": "core:IDEMPOTENCY",
    "IDEMPOTENCY_KEY_MISMATCH": "core:IDEMPOTENCY",
}


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


def parse_errors(path: Path) -> tuple[str, list[dict], dict[str, tuple[int, int]]]:
    text = path.read_text()
    tree = ast.parse(text)
    ranges: dict[str, tuple[int, int]] = {}
    specs: list[dict] = []
    for node in tree.body:
        name = None
        if isinstance(node, ast.ClassDef) and node.name in ("ErrorCode", "Domain"):
            name = node.name
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("_C", "_D", "_missing"):
                name = node.targets[0].id
        elif isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "CATALOG":
            name = "CATALOG"
            for call in ast.walk(node.value):
                if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "ErrorSpec":
                    specs.append(spec_of_call(call))
        elif isinstance(node, ast.If) and "_missing" in ast.unparse(node.test):
            name = "_missing_if"
        if name:
            start = node.lineno
            if isinstance(node, ast.ClassDef) and node.decorator_list:
                start = node.decorator_list[0].lineno
            ranges[name] = (start, node.end_lineno or node.lineno)
    # a comment line right above CATALOG ("#: The catalog ...") goes with it
    return text, specs, ranges


FIELDS = ("code", "status", "domain", "retryable", "title", "detail")


def spec_of_call(call: ast.Call) -> dict:
    values: dict = {}
    for name, arg in zip(FIELDS, call.args, strict=False):
        values[name] = arg
    for kw in call.keywords:
        values[kw.arg] = kw.value
    out = {}
    for name in FIELDS:
        node = values[name]
        if name in ("code", "domain"):
            out[name] = node.attr if isinstance(node, ast.Attribute) else ast.literal_eval(node)
        else:
            out[name] = ast.literal_eval(node)
    return out


def home_of(spec: dict) -> tuple[str, str]:
    """(home key, enum name)"""
    home = OVERRIDES.get(spec["code"]) or DOMAIN_HOME.get(spec["domain"])
    if home is None:
        sys.exit(f"no home for {spec['code']} (domain {spec['domain']}): add it to the tables")
    if home.startswith("core"):
        key = home.split(":")[1] if ":" in home else spec["domain"]
        return "core", CORE_ENUMS[key]
    return home, HOMES[home][2]


def lit(text: str) -> str:
    """A string literal that fits the line (implicit concatenation when long)."""
    if len(repr(text)) <= 84:
        return repr(text)
    parts = textwrap.wrap(text, 70, drop_whitespace=False)
    return "(\n" + "".join(f"            {p!r}\n" for p in parts) + "        )"


def spec_text(enum: str, spec: dict) -> str:
    return (
        f"    ErrorSpec(\n        {enum}.{spec['code']},\n        {spec['status']},\n"
        f"        {spec['domain']!r},\n        {spec['retryable']},\n"
        f"        {lit(spec['title'])},\n        {lit(spec['detail'])},\n    ),\n"
    )


def enum_text(enum: str, doc: str, specs: list[dict]) -> str:
    members = "".join(f'    {s["code"]} = "{s["code"]}"\n' for s in specs)
    return f'class {enum}(Code):\n    """{doc}"""\n\n{members}\n\nregister(\n' + "".join(
        spec_text(enum, s) for s in specs
    ) + ")\n"


MECHANISM = '''class Code(StrEnum):
    """A catalog code. Each layer declares its codes as a subclass and registers them.

    Members are their own names (``AgentCode.AGENT_SUSPENDED == "AGENT_SUSPENDED"``);
    a code is declared once, in the lowest layer that raises it.
    """
'''

REGISTRY = '''

_REGISTRY: dict[str, ErrorSpec] = {}


def register(*specs: ErrorSpec) -> None:
    """Add a layer's codes to the catalog; every member of their enums needs a spec."""
    for spec in specs:
        known = _REGISTRY.get(spec.code.value)
        if known is not None and known != spec:  # pragma: no cover - a definition error
            raise RuntimeError(f"error code {spec.code.value} is declared twice")
        _REGISTRY[spec.code.value] = spec
    missing = {c.value for s in specs for c in type(s.code)} - set(_REGISTRY)
    if missing:  # pragma: no cover - a definition error, caught on import
        raise RuntimeError(f"error codes without a catalog entry: {sorted(missing)}")


def spec_of(code: str) -> ErrorSpec:
    """The spec of a registered code (``KeyError`` if no imported layer declares it)."""
    return _REGISTRY[code]


def find(code: str | None) -> ErrorSpec | None:
    """The spec of ``code`` if an imported layer declares it (e.g. a code read back from a row)."""
    return _REGISTRY.get(code) if code is not None else None


def registered() -> dict[Code, ErrorSpec]:
    """Every code registered so far; ``racefree.catalog`` imports every layer first."""
    return {spec.code: spec for spec in _REGISTRY.values()}
'''

DOC_OLD = """There is one exception type, :class:`RacefreeError`, and it always carries an
:class:`ErrorCode`. Everything else about an error -- HTTP status, domain,
whether a retry can help, title, type URI -- is looked up in :data:`CATALOG`, so
a code means the same thing in the library, over HTTP and in the CLI::"""
DOC_NEW = """There is one exception type, :class:`RacefreeError`, and it always carries a
:class:`Code`. Everything else about an error -- HTTP status, domain, whether a
retry can help, title, type URI -- is its :class:`ErrorSpec`, so a code means the
same thing in the library, over HTTP and in the CLI. This module is the
mechanism (and core's own GENERAL, LOCK and state-machine codes); each layer
declares its codes beside its code (``racefree.<layer>.errors``) and
:func:`register`\\s them, and ``racefree.catalog`` assembles them all::"""


def rewrite_core(text: str, ranges: dict[str, tuple[int, int]], core_specs: dict[str, list]) -> str:
    lines = text.splitlines(keepends=True)
    cut = sorted(ranges.values())
    start_code = ranges["ErrorCode"][0]
    out: list[str] = []
    i = 1
    for a, b in cut:
        while i < a:
            out.append(lines[i - 1])
            i += 1
        if a == start_code:
            out.append(MECHANISM)
        # drop a "#: ..." comment directly above a removed block
        while out and out[-1].lstrip().startswith("#:"):
            out.pop()
        i = b + 1
    out.extend(lines[i - 1 :])
    new = "".join(out)
    # the registry goes right after the ErrorSpec class
    m = re.search(r"\nclass ErrorSpec:\n(?:    .*\n|\n(?=    ))*", new)
    if m is None:
        sys.exit("no ErrorSpec class")
    new = new[: m.end()] + REGISTRY + new[m.end() :]
    new = new.replace("    domain: Domain\n", "    domain: str\n")
    if DOC_OLD not in new:
        print("WARNING: core/errors.py docstring changed; fix its first paragraph by hand")
    new = new.replace(DOC_OLD, DOC_NEW)
    new = new.replace("code: ErrorCode", "code: Code")
    new = new.replace("CATALOG[self.code]", "spec_of(self.code)")
    new = new.replace("CATALOG[code]", "spec_of(code)")
    new = new.replace("spec.domain.value", "spec.domain")
    for enum, specs in core_specs.items():
        for s in specs:
            new = new.replace(f"ErrorCode.{s['code']}", f"{enum}.{s['code']}")
    new = re.sub(r"\bErrorCode\b", "Code", new)
    new = re.sub(r"\n{3,}", "\n\n\n", new)
    docs = {
        "GeneralCode": "Codes any layer may answer with.",
        "LockCode": "The lock mechanism's codes.",
        "MachineCode": "The state machine mechanism's refusal (its catalog domain is TX).",
        "IdempotencyCode": "The Idempotency-Key mechanism's codes (their catalog domain is TX).",
    }
    tail = "\n\n# -- core's own codes " + "-" * 60 + "\n\n\n"
    tail += "\n\n".join(enum_text(e, docs[e], s) for e, s in core_specs.items())
    return new.rstrip("\n") + "\n" + tail


def owner_module(home: str, specs: list[dict]) -> str:
    _, _, enum, doc = HOMES[home]
    wrapped = "\n".join(textwrap.wrap(doc, 96))
    return (
        f'"""{wrapped}\n"""\n\nfrom __future__ import annotations\n\n'
        "from racefree.core.errors import Code, ErrorSpec, register\n\n\n"
        + enum_text(enum, doc.split(";")[0].split("(")[0].strip().rstrip(".") + ".", specs)
    )


IMPORT_RE = re.compile(
    r"^from racefree\.core\.errors import (\((?:[^)]*)\)|[^\n]*)\n", re.MULTILINE
)
ROOT_IMPORT_RE = re.compile(r"^from racefree import (\((?:[^)]*)\)|[^\n]*)\n", re.MULTILINE)


def names_of(group: str) -> list[str]:
    return [n.strip() for n in group.strip("()").replace("\n", " ").split(",") if n.strip()]


def rewrite_user(path: Path, code_home: dict[str, tuple[str, str]]) -> bool:
    text = path.read_text()
    if "ErrorCode" not in text and "CATALOG" not in text and "Domain." not in text:
        return False
    new = text
    needed: dict[str, set[str]] = defaultdict(set)

    def code_ref(m: re.Match[str]) -> str:
        code = m.group(1)
        if code not in code_home:
            sys.exit(f"{path}: unknown code {code}")
        home, enum = code_home[code]
        needed[HOMES[home][1]].add(enum)
        return f"{enum}.{code}"

    new = re.sub(r"\bErrorCode\.([A-Z_]+)\b", code_ref, new)
    new = re.sub(r"\bis not Domain\.([A-Z_]+)\b", r'!= "\1"', new)
    new = re.sub(r"\bis Domain\.([A-Z_]+)\b", r'== "\1"', new)
    new = re.sub(r"(?<![\w.])Domain\.([A-Z_]+)\b", r'"\1"', new)
    if re.search(r"\bErrorCode\(", new):
        new = re.sub(r"\bErrorCode\(((?:[^()\[\]]|\[[^\]]*\])*)\)", r"spec_of(\1).code", new)
        needed["racefree.core.errors"].add("spec_of")
    if re.search(r"\bErrorCode\b", IMPORT_RE.sub("", new)):
        new = re.sub(r"(?<![\w.\"'])ErrorCode\b(?![\"'])", "Code", new)
        needed["racefree.core.errors"].add("Code")
    uses_catalog = bool(re.search(r"\bCATALOG\b", IMPORT_RE.sub("", new)))

    def fix_import(m: re.Match[str]) -> str:
        dropped = ("ErrorCode", "CATALOG", "Domain", "Code")
        names = [n for n in names_of(m.group(1)) if n not in dropped]
        names = [n if n != "ErrorCode" else "Code" for n in names]
        names += sorted(needed.pop("racefree.core.errors", set()) - set(names))
        if not names:
            return ""
        return f"from racefree.core.errors import {', '.join(names)}\n"

    new = IMPORT_RE.sub(fix_import, new)
    extra = "".join(
        f"from {module} import {', '.join(sorted(enums))}\n"
        for module, enums in sorted(needed.items())
    )
    if uses_catalog and "from racefree.catalog import CATALOG" not in new:
        extra += "from racefree.catalog import CATALOG\n"
    if extra:
        anchor = "from __future__ import annotations\n"
        if anchor in new:
            new = new.replace(anchor, anchor + "\n" + extra, 1)
        else:
            m = re.search(r"^(?:from|import) ", new, re.MULTILINE)
            pos = m.start() if m else 0
            new = new[:pos] + extra + new[pos:]
    if new != text:
        path.write_text(new)
        return True
    return False


CATALOG_MODULE = '''"""The whole error catalog, assembled: every layer's codes, walkable in one place.

Each layer declares its codes beside its code (``racefree.<layer>.errors``) and
registers them with the mechanism in :mod:`racefree.core.errors`; importing this
module imports every layer, so :data:`CATALOG` holds every code racefree can
answer with (``docs/errors.md`` is generated from it).
"""

from __future__ import annotations

{imports}
from racefree.core.errors import ErrorSpec, registered

#: Every code -> its spec, in code order.
CATALOG: dict[Code, ErrorSpec] = dict(sorted(registered().items()))

__all__ = [
    "CATALOG",
{names}
]
'''


SPECIAL = {
    # the root package stays light: no catalog import (it would import every layer)
    "src/racefree/__init__.py": [
        ("from racefree.catalog import CATALOG\n", ""),
        ("\nfrom racefree.core.errors import Code\n", "\n"),  # the root re-exports lazily
        (
            "    from racefree.core.errors import CATALOG, Domain, Code, RacefreeError\n",
            "    from racefree.catalog import CATALOG\n"
            "    from racefree.core.errors import Code, ErrorSpec, RacefreeError\n",
        ),
        ('    "CATALOG": "racefree.core.errors",\n', '    "CATALOG": "racefree.catalog",\n'),
        ('    "Domain": "racefree.core.errors",\n', ""),
        (
            '    "ErrorCode": "racefree.core.errors",\n',
            '    "Code": "racefree.core.errors",\n    "ErrorSpec": "racefree.core.errors",\n',
        ),
        ('    "Domain",\n', ""),
        ('    "ErrorCode",\n', '    "Code",\n    "ErrorSpec",\n'),
    ],
    # a layer below the catalog looks codes up in the registry
    "src/racefree/transactions/idempotency.py": [
        ("from racefree.catalog import CATALOG\n", ""),
        ("CATALOG[code].status", "spec_of(code).status"),
        ("CATALOG[TransactionCode.EXECUTOR_UNAVAILABLE]", "spec_of(TransactionCode.EXECUTOR_UNAVAILABLE)"),
        ("    code = spec_of(txn.error).code if txn.error in _CODES else "
         "TransactionCode.EXECUTOR_UNAVAILABLE",
         "    found = find(txn.error)  # a code stored by this or another process\n"
         "    code = found.code if found else TransactionCode.EXECUTOR_UNAVAILABLE"),
        ("\n\n_CODES = frozenset(c.value for c in Code)\n", "\n"),
    ],
    "src/racefree/reference.py": [("s.domain.value", "s.domain"), ("spec.domain.value", "spec.domain")],
    "src/racefree/client_codegen.py": [
        ('f\'    domain = "{spec.domain.value}"\'', 'f\'    domain = "{spec.domain}"\''),
        ("(:data:`racefree.core.errors.CATALOG`)", "(:data:`racefree.catalog.CATALOG`)"),
        (
            "    from racefree.core.errors import CATALOG  # the server",
            "    from racefree.catalog import CATALOG  # the server",
        ),
    ],
    "tests/client/test_generated.py": [
        ("{code.value for code in Code}", "{code.value for code in CATALOG}"),
        ("spec.domain.value", "spec.domain"),
    ],
    "tests/test_layers.py": [('("operators.py", ', '("operators/__init__.py", ')],
    "tests/core/test_errors.py": [
        ("CATALOG[spec_of(code).code]", "CATALOG[code]"),
        ("Domain(domain)", "domain"),
    ],
}


CORE_NAMES = {
    "src/racefree/transactions/idempotency.py": ({"find", "spec_of"}, {"Code"}),
}


def set_core_names(name: str, add: set[str], drop: set[str]) -> None:
    path = Path(name)
    text = path.read_text()

    def fix(m: re.Match[str]) -> str:
        names = (set(names_of(m.group(1))) | add) - drop
        return f"from racefree.core.errors import {', '.join(sorted(names))}\n"

    path.write_text(IMPORT_RE.sub(fix, text, count=1))


def apply_special() -> None:
    for name, (add, drop) in CORE_NAMES.items():
        set_core_names(name, add, drop)
    for name, pairs in SPECIAL.items():
        path = Path(name)
        text = path.read_text()
        for old, new in pairs:
            if old not in text:
                print(f"WARNING: {name}: not found: {old!r}")
            text = text.replace(old, new)
        path.write_text(text)


def main() -> None:
    if (SRC / "operators.py").exists():
        (SRC / "operators").mkdir(exist_ok=True)
        run("git", "mv", str(SRC / "operators.py"), str(SRC / "operators/__init__.py"))
    errors_py = SRC / "core/errors.py"
    text, specs, ranges = parse_errors(errors_py)
    for needed in ("ErrorCode", "CATALOG", "Domain"):
        if needed not in ranges:
            sys.exit(f"core/errors.py: no {needed} (already moved?)")
    by_home: dict[str, list[dict]] = defaultdict(list)
    core_specs: dict[str, list[dict]] = defaultdict(list)
    code_home: dict[str, tuple[str, str]] = {}
    for spec in specs:
        home, enum = home_of(spec)
        code_home[spec["code"]] = (home, enum)
        if home == "core":
            core_specs[enum].append(spec)
        else:
            by_home[home].append(spec)
    print({h: [s["code"] for s in v] for h, v in by_home.items()})
    print({h: [s["code"] for s in v] for h, v in core_specs.items()})
    errors_py.write_text(rewrite_core(text, ranges, dict(core_specs)))
    for home, home_specs in by_home.items():
        path = HOMES[home][0]
        if not path.parent.exists():
            sys.exit(f"{path.parent} does not exist: where do {home}'s codes go?")
        path.write_text(owner_module(home, home_specs))
    enums = sorted({HOMES[h][2] for h in by_home} | set(core_specs))
    imports = "".join(
        f"from {HOMES[h][1]} import {HOMES[h][2]}\n" for h in sorted(by_home)
    ) + f"from racefree.core.errors import {', '.join(sorted(core_specs))}\n"
    (SRC / "catalog.py").write_text(
        CATALOG_MODULE.format(imports=imports, names="".join(f'    "{e}",\n' for e in enums).rstrip("\n")).replace(
            "from racefree.core.errors import ErrorSpec, registered",
            "from racefree.core.errors import Code, ErrorSpec, registered",
        )
    )
    generated = {HOMES[h][0].resolve() for h in by_home} | {errors_py.resolve()}
    for root in ("src", "tests", "bench", "examples"):
        for path in sorted(Path(root).rglob("*.py")):
            if path.resolve() in generated or path.name == "catalog.py" and "racefree" in path.parts:
                continue
            if rewrite_user(path, code_home):
                print("rewrote", path)
    apply_special()
    pyproject = Path("pyproject.toml")
    text = pyproject.read_text()
    text = text.replace('  "racefree.runtime",\n', '  "racefree.runtime : racefree.catalog",\n')
    if "racefree -> racefree.catalog" not in text:
        text = text.replace(
            '  "racefree.core",\n]\n',
            '  "racefree.core",\n]\n'
            "# the root package re-exports lazily (PEP 562): its TYPE_CHECKING imports of the\n"
            "# assembled catalog (and settings) are no dependency of a layer that imports it\n"
            'ignore_imports = ["racefree -> racefree.catalog"]\n',
            1,
        )
    text = text.replace(
        '"src/racefree/core/errors.py" = ["S105"]', '"src/racefree/**/errors.py" = ["S105"]'
    )
    pyproject.write_text(text)


if __name__ == "__main__":
    main()
