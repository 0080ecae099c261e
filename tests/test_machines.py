"""The state-machine documentation is generated from the transition tables and kept current."""

from __future__ import annotations

from pathlib import Path

from racefree.machines import MACHINES, document

DOCS = Path(__file__).resolve().parents[1] / "docs" / "state-machines.md"


def test_docs_match_the_transition_tables() -> None:
    assert DOCS.read_text() == document(), "regenerate: racefree machines > docs/state-machines.md"


def test_every_machine_is_documented_with_every_transition() -> None:
    text = DOCS.read_text()
    for machine in MACHINES:
        for t in machine.transitions.values():
            for source in t.sources:
                assert f"    {source} --> {t.target}: {t.name}\n" in text


def test_every_domain_lifecycle_is_a_table_including_owners_and_sessions() -> None:
    names = {machine.name for machine in MACHINES}
    assert names == {"kill_switch", "transaction", "agent", "owner", "session"}
