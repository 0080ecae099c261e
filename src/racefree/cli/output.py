"""What a command prints: a table for people, the API's JSON for scripts.

Data is printed as JSON -- the API's response shape, the same in local and
remote mode -- with ``--json``, or by default when stdout is not a terminal;
as a table (lists) or aligned ``field  value`` lines (one object) on a
terminal or with ``--table``. Commands whose answer is one value (a token, a
revision, a count) print it as text unless ``--json`` asks for the object.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from racefree.cli.options import Globals

#: (header, field path such as ``owner.state``)
Columns = Sequence[tuple[str, str]]

EMPTY = "-"


def write(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def wants_json(options: Globals) -> bool:
    if options.json is not None:
        return options.json
    return not sys.stdout.isatty()


def as_json(value: BaseModel) -> str:
    indent = 2 if sys.stdout.isatty() else None
    return json.dumps(value.model_dump(mode="json"), indent=indent, ensure_ascii=False)


def show(options: Globals, value: BaseModel) -> None:
    """One object: JSON, or its fields one per line."""
    write(as_json(value) if wants_json(options) else fields(value.model_dump(mode="json")))


def show_list(
    options: Globals, page: BaseModel, items: Iterable[BaseModel], columns: Columns
) -> None:
    """A list answer: the page as JSON, or its items as a table."""
    if wants_json(options):
        write(as_json(page))
    else:
        write(table([item.model_dump(mode="json") for item in items], columns))


def show_value(options: Globals, text: str, value: BaseModel) -> None:
    """A one-value answer: ``text``, or the object with ``--json``."""
    write(as_json(value) if options.json else text)


def cell(row: Mapping[str, Any], path: str) -> str:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return " ".join(str(value).split())


def table(rows: Sequence[Mapping[str, Any]], columns: Columns) -> str:
    cells = [[cell(row, path) for _, path in columns] for row in rows]
    headers = [header for header, _ in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [_row(headers, widths), *(_row(r, widths) for r in cells)]
    if not cells:
        lines.append("(none)")
    return "\n".join(lines)


def _row(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()


def fields(data: Mapping[str, Any]) -> str:
    flat = list(_flatten(data))
    width = max((len(key) for key, _ in flat), default=0)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in flat)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, str]]:
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", cell({"v": value}, "v")
