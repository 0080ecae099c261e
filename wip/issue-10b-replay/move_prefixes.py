#!/usr/bin/env python3
"""Issue 10b, move 0: token prefixes to their owners (idempotent; run before move_codes.py).

``OPERATOR_PREFIX`` -> racefree.operators (module or package __init__),
``SESSION_PREFIX`` -> racefree.sessions.model; every ``tokens.X_PREFIX`` user imports it.
"""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path("src/racefree")
OWNERS = {"OPERATOR_PREFIX": "racefree.operators", "SESSION_PREFIX": "racefree.sessions.model"}


def main() -> None:
    tokens = SRC / "core/tokens.py"
    t = tokens.read_text()
    t = t.replace('OPERATOR_PREFIX = "rf_op_"\nSESSION_PREFIX = "rf_sess_"\n\n', "")
    marker = "Each kind of token has its owner's prefix"
    if marker not in t:
        t = t.replace(
            "<6 chars checksum>``.\n",
            "<6 chars checksum>``.\n\nEach kind of token has its owner's prefix"
            " (``operators.OPERATOR_PREFIX``,\n``sessions.model.SESSION_PREFIX``); this"
            " module only mints and checks them.\n",
            1,
        )
    tokens.write_text(t)
    ops = SRC / "operators.py"
    if not ops.exists():
        ops = SRC / "operators/__init__.py"
    o = ops.read_text()
    if "OPERATOR_PREFIX = " not in o:
        o = o.replace(
            'MASTER_PASSWORD_KEY = "master_password_hash"',
            '#: the prefix of every operator token\nOPERATOR_PREFIX = "rf_op_"\n'
            'MASTER_PASSWORD_KEY = "master_password_hash"',
            1,
        )
        ops.write_text(o)
    model = SRC / "sessions/model.py"
    m = model.read_text()
    if "SESSION_PREFIX = " not in m:
        i = m.index("\n\n\n", m.index("\nfrom racefree"))
        m = m[:i] + '\n\n#: the prefix of every session token\nSESSION_PREFIX = "rf_sess_"' + m[i:]
        model.write_text(m)
    for root in ("src", "tests", "bench", "examples"):
        for f in Path(root).rglob("*.py"):
            if f.resolve() == tokens.resolve():
                continue
            text = f.read_text()
            if not re.search(r"tokens\.(OPERATOR|SESSION)_PREFIX", text):
                continue
            new = re.sub(r"\btokens\.(OPERATOR_PREFIX|SESSION_PREFIX)\b", r"\1", text)
            imports = ""
            for name, module in OWNERS.items():
                if name in new and f"import {name}" not in new and f"{name} = " not in new:
                    if f.resolve() == ops.resolve() and name == "OPERATOR_PREFIX":
                        continue
                    if f.resolve() == model.resolve():
                        continue
                    imports += f"from {module} import {name}\n"
            anchor = "from __future__ import annotations\n"
            if imports:
                new = new.replace(anchor, anchor + "\n" + imports, 1) if anchor in new else imports + new
            f.write_text(new)
            print("rewrote", f)


if __name__ == "__main__":
    main()
