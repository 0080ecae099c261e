"""The layer contract (docs/concepts.md, Layers) holds, and it catches an upward import.

``lint-imports`` reads the contracts from ``pyproject.toml``; ``make lint`` (and
hence CI) runs it on the real tree. Here it runs on the real tree and on a copy
with one deliberate upward import, which must break the contract.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(src: Path, config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("layers")
    shutil.copytree(
        ROOT / "src" / "racefree",
        base / "src" / "racefree",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", base / "pyproject.toml")
    return base


def test_the_tree_keeps_every_contract(copy: Path) -> None:
    result = _lint(copy / "src", copy / "pyproject.toml", copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("core/ids.py", "import racefree.agents"),  # core may import no domain
        ("agents/model.py", "import racefree.killswitch"),  # an entity above a process
        ("operators/__init__.py", "import racefree.sessions"),  # identity above an entity
        ("transactions/tiers.py", "import racefree.http"),  # a process above the app
        ("core/clock.py", "import fastapi"),  # core imports no web framework
    ],
)
def test_an_upward_import_breaks_the_contract(copy: Path, module: str, upward: str) -> None:
    target = copy / "src" / "racefree" / module
    original = target.read_text()
    target.write_text(original + f"\n{upward}  # deliberate violation\n")
    try:
        result = _lint(copy / "src", copy / "pyproject.toml", copy)
    finally:
        target.write_text(original)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
