"""Declarative state machines whose every move is a CAS.

A machine is its transition table: each :class:`Transition` names the states
it leaves, the state it enters, the audit event it writes and the catalog code
a loser gets. The table is checked when the machine is defined (unknown
states, states nothing reaches, duplicate names, exits from terminal states)
and renders as a Mermaid diagram, so the table *is* the documentation.

:meth:`StateMachine.transition` runs, in the caller's write transaction:

1. the CAS -- ``UPDATE <table> SET <state> = :target, ... WHERE <key> = :key
   AND <state> IN (<sources>) RETURNING *`` -- as the first write;
2. on 0 rows, one SELECT that classifies the miss (not found, or a conflict
   code chosen by the current state) and raises it;
3. the cascade callbacks, in order, each given the transaction and new row;
4. one audit row carrying the callbacks' results.

Any exception rolls the whole transaction back, so a cascade that fails midway
leaves no trace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from racefree.core import audit
from racefree.core.audit import Severity
from racefree.core.cas import cas_update
from racefree.core.condition import Condition, Expr
from racefree.core.db import Row, Tx
from racefree.core.errors import Code, GeneralCode, RacefreeError
from racefree.core.exceptions import MachineDefinitionError as MachineDefinitionError  # noqa: PLC0414 (re-export)

Cascade = Callable[[Tx, Row], Any]


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the table: ``sources -> target`` under ``name``."""

    name: str
    sources: tuple[str, ...]
    target: str
    conflict: Code
    #: Per-current-state overrides of ``conflict`` (e.g. NORMAL -> KILL_SWITCH_NOT_ACTIVE).
    conflict_by_state: Mapping[str, Code] = field(default_factory=dict)
    audit_event: str | None = None
    severity: Severity = Severity.INFO

    def conflict_for(self, current: str) -> Code:
        return self.conflict_by_state.get(current, self.conflict)


def move(
    name: str,
    sources: str | Iterable[str],
    target: str,
    *,
    conflict: Code,
    conflict_by_state: Mapping[str, Code] | None = None,
    audit_event: str | None = None,
    severity: Severity = Severity.INFO,
) -> Transition:
    """Build a :class:`Transition`; ``sources`` may be one state or several."""
    srcs = (sources,) if isinstance(sources, str) else tuple(sources)
    return Transition(
        name, srcs, target, conflict, dict(conflict_by_state or {}), audit_event, severity
    )


@dataclass(frozen=True, slots=True)
class TransitionResult:
    row: Row
    effects: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who did it, what it concerns and what the audit row says beyond the cascade counts.

    ``subjects`` are the audit row's subject columns, named by the domain that
    moves (``{"agent_id": ...}``); the machine knows none of them.
    """

    actor: str | None = None
    subjects: Mapping[str, str | None] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)


class TransitionTable:
    """A checked transition table: states, moves, the loser's code per move.

    Used alone for lifecycles whose state is *derived* from several columns
    (an owner's ``NONE | GRACE | LOCKED``, a session's ``ACTIVE | EXPIRED |
    REVOKED``): the domain's own CASes apply it, and take their refusal codes
    from it. :class:`StateMachine` adds the persisted state column.
    """

    def __init__(
        self,
        name: str,
        *,
        table: str,
        state_column: str,
        states: Sequence[str],
        initial: str,
        transitions: Sequence[Transition],
    ) -> None:
        self.name = name
        self.table = table
        self.state_column = state_column
        self.states = tuple(states)
        self.initial = initial
        self.transitions = {t.name: t for t in transitions}
        self._validate(transitions)
        self.terminal = frozenset(
            s for s in self.states if not any(s in t.sources for t in transitions)
        )

    def _validate(self, transitions: Sequence[Transition]) -> None:
        known = set(self.states)
        if len(known) != len(self.states):
            raise MachineDefinitionError(f"{self.name}: duplicate states")
        if self.initial not in known:
            raise MachineDefinitionError(f"{self.name}: unknown initial state {self.initial!r}")
        if len(self.transitions) != len(transitions):
            raise MachineDefinitionError(f"{self.name}: duplicate transition names")
        for t in transitions:
            unknown = {*t.sources, t.target, *t.conflict_by_state} - known
            if unknown:
                raise MachineDefinitionError(
                    f"{self.name}.{t.name}: unknown states {sorted(unknown)}"
                )
            if not t.sources:
                raise MachineDefinitionError(f"{self.name}.{t.name}: no source state")
        reached = {self.initial}
        frontier = [self.initial]
        while frontier:
            state = frontier.pop()
            for t in transitions:
                if state in t.sources and t.target not in reached:
                    reached.add(t.target)
                    frontier.append(t.target)
        unreachable = known - reached
        if unreachable:
            raise MachineDefinitionError(f"{self.name}: unreachable states {sorted(unreachable)}")

    # -- the table, read -------------------------------------------------

    def allowed(self, state: str) -> list[str]:
        """Names of the transitions that may leave ``state``."""
        return [t.name for t in self.transitions.values() if state in t.sources]

    def targets(self, state: str) -> list[str]:
        """States reachable from ``state`` in one move."""
        return sorted({t.target for t in self.transitions.values() if state in t.sources})

    def check(self, current: str, name: str) -> Transition:
        """The transition ``name`` if it may leave ``current``; its conflict error otherwise."""
        t = self._get(name)
        if current not in t.sources:
            raise self._conflict(t, current)
        return t

    def to_mermaid(self) -> str:
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        for t in self.transitions.values():
            lines.extend(f"    {s} --> {t.target}: {t.name}" for s in t.sources)
        lines.extend(f"    {s} --> [*]" for s in self.states if s in self.terminal)
        return "\n".join(lines) + "\n"

    def _conflict(self, t: Transition, current: str) -> RacefreeError:
        return RacefreeError(t.conflict_for(current), details=self._details(t, current))

    def _details(self, t: Transition, current: str) -> dict[str, Any]:
        return {"current": current, "requested": t.target, "allowed": self.targets(current)}

    def _get(self, name: str) -> Transition:
        try:
            return self.transitions[name]
        except KeyError:
            raise MachineDefinitionError(f"{self.name}: no transition named {name!r}") from None


class StateMachine(TransitionTable):
    """A persisted state machine over one table; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        table: str,
        key_column: str,
        state_column: str,
        states: Sequence[str],
        initial: str,
        transitions: Sequence[Transition],
        not_found: Code = GeneralCode.NOT_FOUND,
        version_column: str | None = None,
        updated_at_column: str | None = "updated_at",
        on_commit: Callable[[Transition, Row], None] | None = None,
    ) -> None:
        """``on_commit(transition, row)`` runs after a move's transaction commits
        (metrics of the moves that happened; never for a move that rolled back)."""
        super().__init__(
            name,
            table=table,
            state_column=state_column,
            states=states,
            initial=initial,
            transitions=transitions,
        )
        self.key_column = key_column
        self.not_found = not_found
        self.version_column = version_column
        self.updated_at_column = updated_at_column
        self.on_commit = on_commit

    # -- the table, applied ----------------------------------------------

    def transition(
        self,
        tx: Tx,
        name: str,
        key: Any,
        *,
        now: int,
        values: Mapping[str, Any] | None = None,
        where: Condition | None = None,
        cascades: Mapping[str, Cascade] | None = None,
        audit_context: AuditContext | None = None,
        classify: Callable[[Tx, Transition], RacefreeError] | None = None,
    ) -> TransitionResult:
        """Apply transition ``name`` to the row ``key`` inside ``tx``.

        ``values`` are further columns to set: plain values are bound as
        parameters, an :class:`~racefree.core.condition.Expr` is computed in
        SQL (``Expr("attempts + 1")``); ``where`` is an extra
        :class:`~racefree.core.condition.Condition` ANDed into the CAS.
        ``cascades`` run after the CAS, in order; their results are returned
        as ``effects`` and written into the audit row's details.
        """
        t = self._get(name)
        values = dict(values or {})
        sql, params = self._cas_sql(t, key, now, values, where)

        def default_classify(inner: Tx) -> RacefreeError:
            return self._classify(inner, t, key)

        row = cas_update(
            tx,
            sql,
            params,
            classify=(lambda inner: classify(inner, t)) if classify else default_classify,
        )
        effects = {label: fn(tx, row) for label, fn in (cascades or {}).items()}
        if t.audit_event:
            ctx = audit_context or AuditContext()
            audit.record(
                tx,
                t.audit_event,
                at=now,
                severity=t.severity,
                actor=ctx.actor,
                subjects=ctx.subjects,
                details={
                    "from": "|".join(t.sources),
                    "to": t.target,
                    **ctx.details,
                    **effects,
                },
            )
        if self.on_commit is not None:
            tx.after_commit(functools.partial(self.on_commit, t, row))
        return TransitionResult(row, effects)

    def current(self, tx: Tx, key: Any) -> str | None:
        state: str | None = tx.scalar(
            f"SELECT {self.state_column} FROM {self.table} WHERE {self.key_column} = :key",
            {"key": key},
        )
        return state

    def _cas_sql(
        self, t: Transition, key: Any, now: int, values: dict[str, Any], where: Condition | None
    ) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"_key": key, "_target": t.target}
        sets = [f"{self.state_column} = :_target"]
        if self.version_column:
            sets.append(f"{self.version_column} = {self.version_column} + 1")
        if self.updated_at_column and self.updated_at_column not in values:
            values[self.updated_at_column] = now
        for column, value in values.items():
            if isinstance(value, Expr):
                sets.append(f"{column} = {value.sql}")
            else:
                sets.append(f"{column} = :_v_{column}")
                params[f"_v_{column}"] = value
        sources = []
        for i, source in enumerate(t.sources):
            params[f"_s{i}"] = source
            sources.append(f":_s{i}")
        cas = f"{self.key_column} = :_key AND {self.state_column} IN ({', '.join(sources)})"
        if where is not None:
            # a Condition's parameters are namespaced (c<N>_...): they cannot collide with ours
            cas += f" AND ({where.sql})"
            params.update(where.params)
        return f"UPDATE {self.table} SET {', '.join(sets)} WHERE {cas}", params

    def _classify(self, tx: Tx, t: Transition, key: Any) -> RacefreeError:
        current = self.current(tx, key)
        if current is None:
            return RacefreeError(self.not_found, details={"key": key})
        if current in t.sources:
            # the state matched, so the caller's extra guard is what failed
            return RacefreeError(t.conflict, details=self._details(t, current))
        return self._conflict(t, current)
