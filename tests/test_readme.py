"""The README's quickstart, run as written against a fresh real server: it cannot drift.

The first shell block of the Quickstart starts the server; its ``RACEFREE_*``
assignments are the environment this test starts ``racefree serve`` with. Every
other shell block of the section runs, in order, in one ``bash -euo pipefail``
script (an undefined variable or a failing command fails the test), against the
test's server instead of port 8000.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from racefree.testing import start_server

README = Path(__file__).resolve().parent.parent / "README.md"
DEFAULT_BASE = "http://127.0.0.1:8000"
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SETTING = re.compile(r"\b(RACEFREE_[A-Z_]+)=('[^']*'|\S+)")


def quickstart_blocks() -> list[str]:
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return _BLOCK.findall(section)


def server_settings(block: str) -> dict[str, str]:
    return {name: value.strip("'") for name, value in _SETTING.findall(block)}


def _racefree_command(workdir: Path) -> None:
    """``.venv/bin/racefree`` in ``workdir``, as the README's reader has after ``make run``."""
    script = workdir / ".venv" / "bin" / "racefree"
    script.parent.mkdir(parents=True)
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m racefree "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_the_quickstart_starts_with_the_server_and_then_walks_the_whole_flow() -> None:
    server_block, *steps = quickstart_blocks()
    assert "make run" in server_block
    flow = "\n".join(steps)
    for step in (
        "/v1/agents",
        "/deposit",
        "/v1/sessions",
        "/v1/transactions",
        "/renew",
        "/v1/kill-switch/activate",
        "/v1/kill-switch/recovery",
        "/v1/kill-switch/recovery/complete",
    ):
        assert step in flow


@pytest.mark.server
def test_the_readme_quickstart_runs_against_a_fresh_server(db_url: str, tmp_path: Path) -> None:
    for tool in ("bash", "curl", "jq"):
        assert shutil.which(tool), f"the quickstart needs {tool} (.ci/run installs it)"
    server_block, *steps = quickstart_blocks()
    settings = server_settings(server_block)
    master_password = settings.pop("RACEFREE_MASTER_PASSWORD")
    server = start_server(db_url, tmp_path, env=settings, master_password=master_password)
    try:
        _racefree_command(tmp_path)
        script = "\n".join(steps).replace(DEFAULT_BASE, server.base_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RACEFREE_")}
        env["RACEFREE_DATABASE_URL"] = db_url  # what `make run` and the CLI share: ./racefree.db
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.stop()
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    out = run.stdout
    expected_in_order = [
        '"kill_switch"',  # health
        '"balance": "5000"',  # deposit
        '"renewal_count": 0',  # the session, as the agent sees it
        '"status": "CONFIRMED"',  # the transaction
        "4750",  # the balance after it
        "1",  # renewal_count after the renewal
        '"state": "ACTIVATED"',
        "SYSTEM_LOCKED",  # a transaction while the switch is engaged
        '"state": "RECOVERING"',
        '"state": "NORMAL"',
        "ACTIVE",  # the agent, re-activated
        "KILL_SWITCH_ACTIVATED",  # in the audit log
    ]
    position = 0
    for snippet in expected_in_order:
        found = out.find(snippet, position)
        assert found >= 0, f"{snippet!r} not found after position {position} in:\n{out}"
        position = found + len(snippet)
