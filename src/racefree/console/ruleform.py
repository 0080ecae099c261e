"""The auto-stop rule edit form: one field per parameter, read back into the domain's shape.

A rule's parameters depend on its type (:data:`racefree.autostop.rules.PARAMS`),
so the form is built from the rule itself: one whole-number field per
parameter, named ``params.<name>`` (nested ones dotted, e.g.
``params.allowed_hours.start``), plus the action, the enabled flag and the
version the operator saw -- the edit's If-Match. Reading it back checks only
the form's shape (whole numbers, known choices); the domain validates the
values, so the console and the API accept exactly the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from racefree.autostop.rules import Action, Rule
from racefree.console import forms
from racefree.core.conditional import Precondition
from racefree.core.errors import invalid_field

PARAM_PREFIX = "params."
VERSION = "version"
ACTION = "action"
ENABLED = "enabled"
ENABLED_CHOICES = (("true", "Enabled"), ("false", "Disabled"))
ACTIONS = tuple(a.value for a in Action)

_WHOLE = re.compile(r"[0-9]{1,16}")  # amounts go up to 10^15


@dataclass(frozen=True, slots=True)
class ParamField:
    """One parameter of a rule as a form field."""

    name: str  # dotted for nested parameters: allowed_hours.start
    value: Any

    @property
    def input_name(self) -> str:
        return PARAM_PREFIX + self.name

    @property
    def label(self) -> str:
        return self.name.replace(".", " ").replace("_", " ")


@dataclass(frozen=True, slots=True)
class RuleEdit:
    """What the operator submitted for one rule."""

    seen: Precondition  # the version the form showed
    params: dict[str, Any]
    action: Action
    enabled: bool


def fields(params: BaseModel) -> list[ParamField]:
    """The rule's parameters as form fields, in the model's order."""
    return [ParamField(name, value) for name, value in _flatten(params.model_dump())]


def _flatten(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def scope_of(rule: Rule) -> str:
    return "global" if rule.is_global else f"agent {rule.agent_id}"


def describe(rule: Rule) -> str:
    """``the CONSECUTIVE_FAILURES rule (global)``."""
    return f"the {rule.type.value} rule ({scope_of(rule)})"


def seen_version(form: Mapping[str, str]) -> int | None:
    """The version the form showed, when it is one."""
    return forms.version(form.get(VERSION, ""))


def read(rule: Rule, form: Mapping[str, str]) -> RuleEdit:
    """The submitted edit of ``rule``; 400 ``VALIDATION_ERROR`` naming a malformed field."""
    seen = seen_version(form)
    if seen is None:
        raise invalid_field(VERSION, "the form lost the rule's version: reload the page")
    params: dict[str, Any] = {}
    for field in fields(rule.params):
        _put(params, field.name, _whole(form, field))
    return RuleEdit(Precondition((seen,)), params, _action(form), _enabled(form))


def _whole(form: Mapping[str, str], field: ParamField) -> int:
    raw = form.get(field.input_name, "").strip()
    if not _WHOLE.fullmatch(raw):
        raise invalid_field(field.name, f"{field.label} must be a whole number, not {raw[:20]!r}")
    return int(raw)


def _put(params: dict[str, Any], dotted: str, value: int) -> None:
    *parents, leaf = dotted.split(".")
    for parent in parents:
        params = params.setdefault(parent, {})
    params[leaf] = value


def _action(form: Mapping[str, str]) -> Action:
    raw = form.get(ACTION, "")
    if raw not in ACTIONS:
        raise invalid_field(ACTION, f"the action must be one of {', '.join(ACTIONS)}")
    return Action(raw)


def _enabled(form: Mapping[str, str]) -> bool:
    raw = form.get(ENABLED, "")
    if raw not in dict(ENABLED_CHOICES):
        raise invalid_field(ENABLED, "choose Enabled or Disabled")
    return raw == "true"
