"""``racefree --help`` lists every command; every command has help; completion installs."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from racefree.cli import exits
from racefree.cli.app import LOCAL_ONLY, OFFLINE, build, command_paths
from tests.cli.conftest import Run, racefree_process

PATHS = command_paths(build())


def _flat(text: str) -> str:
    """Help text with the box drawing and line wrapping taken out."""
    return " ".join(text.replace("│", " ").split())


def test_the_tree_has_every_command_operators_asked_for() -> None:
    expected = {
        ("serve",),
        ("db", "upgrade"),
        ("master-password", "rotate"),
        ("settings", "show"),
        ("settings", "set"),
        ("deposit",),
        ("agents", "create"),
        ("agents", "list"),
        ("agents", "show"),
        ("agents", "suspend"),
        ("agents", "activate"),
        ("agents", "deposit"),
        ("sessions", "list"),
        ("sessions", "revoke"),
        ("sessions", "cleanup"),
        ("transactions", "list"),
        ("transactions", "show"),
        ("transactions", "approve"),
        ("transactions", "reject"),
        ("operator", "create-token"),
        ("operator", "list"),
        ("operator", "revoke"),
        ("kill-switch", "status"),
        ("kill-switch", "activate"),
        ("kill-switch", "nonce"),
        ("kill-switch", "recover"),
        ("audit", "tail"),
        ("audit", "verify"),
        ("locks", "list"),
        ("rules", "list"),
        ("rules", "set"),
        ("rules", "delete"),
        ("webhooks", "list"),
        ("webhooks", "add"),
        ("webhooks", "remove"),
        ("events", "tail"),
        ("docs",),
        ("machines",),
    }
    assert set(PATHS) == expected
    assert expected >= LOCAL_ONLY | OFFLINE


def test_racefree_help_lists_every_command_and_the_exit_statuses() -> None:
    result = racefree_process("--help")
    assert result.code == 0, result.err
    shown = _flat(result.out)
    groups: dict[str, list[str]] = {}
    for path in PATHS:
        groups.setdefault(path[0], []).append(" ".join(path[1:]))
    for name, subcommands in groups.items():
        assert f"racefree {name} {'|'.join(subcommands)}".strip() in shown
    for code, meaning in exits.TABLE:
        assert _flat(f"{int(code)} {meaning}") in shown
    assert "before or after the command" in shown


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_command_has_help(run: Run, path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.code == 0, result.err
    shown = _flat(result.out)
    assert f"Usage: racefree {' '.join(path)}" in shown
    if path in LOCAL_ONLY:
        assert "--url is refused" in shown
    elif path not in OFFLINE:
        assert "--url and --token" in shown


def test_a_group_without_its_command_shows_its_help_and_exits_2(run: Run) -> None:
    result = run("agents")
    assert result.code == exits.ExitCode.USAGE
    assert "Usage: racefree agents" in _flat(result.out)


def _in_bash(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``command`` run by bash, so the shell that completion is for can be detected.

    As a compound command: bash would exec a lone simple one, and the command's parent
    would be pytest, not bash (detection would then depend on a bash further up).
    """
    return subprocess.run(
        ["/bin/bash", "-c", f"{command}; exit $?"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _racefree() -> str:
    return f"{shlex.quote(sys.executable)} -m racefree"


def test_the_completion_script_is_shown_and_completes_commands(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    shown = _in_bash(f"{_racefree()} --show-completion", env)
    assert shown.returncode == 0, shown.stderr
    assert "_RACEFREE_COMPLETE=complete_bash" in shown.stdout
    assert "complete -o default -F _racefree_completion racefree" in shown.stdout

    # what the script asks at a TAB: the candidates for the word being completed
    asked = {**env, "_RACEFREE_COMPLETE": "complete_bash", "COMP_CWORD": "2"}
    asked["COMP_WORDS"] = "racefree kill-switch "
    candidates = _in_bash(_racefree(), asked)
    assert candidates.stdout.split() == ["status", "activate", "nonce", "recover"]
    asked |= {"COMP_WORDS": "racefree agents list --st", "COMP_CWORD": "3"}
    assert _in_bash(_racefree(), asked).stdout.split() == ["--status"]


def test_completion_installs_for_the_shell(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    installed = _in_bash(f"{_racefree()} --install-completion", env)
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "racefree.sh"
    assert "_racefree_completion" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
