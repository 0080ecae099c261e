"""Running ``racefree`` in-process (``cli.main``) and as a process, in either mode."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from racefree import cli
from racefree.cli.options import TOKEN_ENV, URL_ENV
from racefree.testing import Server, start_server

#: settings of the servers these tests start: recovery completes at once
SERVER_ENV = {"RACEFREE_RECOVERY_WAIT_S": "0", "RACEFREE_RECOVERY_WAIT_OWNER_S": "0"}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


Run = Callable[..., Result]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run(*argv)``: ``racefree`` in this process, its exit status and output."""
    for name in (URL_ENV, TOKEN_ENV, "RACEFREE_MASTER_PASSWORD", "RACEFREE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*argv: str) -> Result:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


def racefree_process(
    *argv: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Result:
    """``racefree`` as its own process (``python -m racefree``)."""
    done = subprocess.run(
        [sys.executable, "-m", "racefree", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A real server on this test's database (both engines), recovery waits at 0."""
    server = start_server(db_url, tmp_path, env=SERVER_ENV)
    yield server
    server.stop()


def remote(server: Server) -> list[str]:
    """The global options of remote mode against ``server``."""
    return ["--url", server.base_url, "--token", server.operator_token]
