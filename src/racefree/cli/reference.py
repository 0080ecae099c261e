"""``racefree docs`` and ``racefree machines``: the references generated from the code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from racefree.cli import output


def docs(
    out: Annotated[Path, typer.Option(help="the docs directory")] = Path("docs"),
) -> None:
    """Write the generated reference (errors, HTTP API, settings) into docs/."""
    from racefree import reference

    for path in reference.write(out):
        output.write(str(path))


def machines() -> None:
    """Print every state machine's transition table as Markdown + Mermaid."""
    from racefree.machines import document

    sys.stdout.write(document())
