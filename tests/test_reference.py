"""The generated reference in docs/ (errors, HTTP API, settings) matches the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from racefree import reference
from racefree.catalog import CATALOG

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return reference.generated()


@pytest.mark.parametrize("name", ["errors.md", "http-api.md", "settings.md"])
def test_the_generated_docs_are_current(generated: dict[str, str], name: str) -> None:
    assert (DOCS / name).read_text() == generated[name], "regenerate: racefree docs"


def test_every_catalog_code_is_in_the_error_reference() -> None:
    text = (DOCS / "errors.md").read_text()
    for code in CATALOG:
        assert f"| `{code.value}` |" in text


def test_the_readme_links_docs_and_no_file_outside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/" in readme
    for path in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+)", path.read_text()):
            if target.startswith("http"):
                continue
            assert (path.parent / target).exists(), f"{path.name} links a missing {target}"


def test_no_source_file_refers_to_a_design_file_outside_the_repository() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("src", "tests", "bench")
        for p in (ROOT / folder).rglob("*.py")
        if re.search(r"\bDESIGN(\.md| section)", p.read_text())
    ]
    assert offenders == []
