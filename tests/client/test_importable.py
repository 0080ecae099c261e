"""``racefree.client`` imports with only httpx, pydantic and tenacity (the ``client`` extra)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Everything else is refused by an import hook, so a stray server import fails loudly
ALLOWED = {
    "racefree",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "sniffio",
    "idna",
    "certifi",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "typing_inspection",
    "tenacity",
}
SERVER_ONLY = ("fastapi", "starlette", "sqlalchemy", "psycopg", "alembic", "uvicorn", "argon2")

PROGRAM = textwrap.dedent(
    """
    import importlib.abc, sys

    allowed = set(sys.argv[1].split(","))

    class OnlyTheClientExtra(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names or top in allowed or top.startswith("_"):
                return None
            raise ImportError(f"not in the client extra: {name}")

    sys.meta_path.insert(0, OnlyTheClientExtra())
    import racefree.client
    from racefree.client import AsyncClient, Client, SessionClient, errors, models
    Client("http://127.0.0.1:9", "rf_op_x").close()
    racefree.client.OwnerSigner  # the signer class itself imports without cryptography
    server = [m for m in sys.modules if m.startswith("racefree.") and
              not m.startswith("racefree.client")]
    print(",".join(server))
    """
)


def test_the_client_imports_without_any_server_dependency() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, ",".join(sorted(ALLOWED))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"server modules imported: {result.stdout}"


def test_the_hook_would_catch_a_server_import() -> None:
    probe = PROGRAM.replace("import racefree.client\n", "import racefree.core.db\n")
    result = subprocess.run(
        [sys.executable, "-c", probe, ",".join(sorted(ALLOWED))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert any(name in result.stderr for name in SERVER_ONLY)
