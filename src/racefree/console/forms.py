"""Form fields of the console's POSTs: bounded, and the CSRF token on every one."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Form

CsrfField = Annotated[str, Form(max_length=128)]
Secret = Annotated[str, Form(max_length=1000)]
Text = Annotated[str, Form(max_length=4096)]

# free text may keep tab and newline; other control characters are refused (as in the API)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(text: str) -> bool:
    return bool(_CONTROL.search(text))


_VERSION = re.compile(r"[0-9]{1,18}")


def version(raw: str) -> int | None:
    """The version a form showed (a hidden field), when it is one."""
    raw = raw.strip()
    return int(raw) if _VERSION.fullmatch(raw) else None
