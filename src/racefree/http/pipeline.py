"""The request pipeline: one worker-thread hop per request that touches the database.

Why. The drivers are blocking, so database work runs in a worker thread; each
hand-off costs ~80-100 µs on a loaded 2-core machine (anyio's; this module's hop,
:mod:`racefree.http.hop`, costs about half). FastAPI makes one per sync
dependency, one per sync endpoint and one more to validate a response model: 3-5
per request, most of them doing a few microseconds of work (issue 11). So every
route that touches the database is an ``async def`` endpoint that gathers on the
event loop only what must be gathered there -- path, query and header parameters
(FastAPI parses them without a thread) and, for routes with a body, the body's
bytes up to ``RACEFREE_MAX_BODY_BYTES`` -- and hands one function to :func:`run`,
which makes exactly one hop. In that worker thread, in this order:

1. the kill switch guard (:func:`racefree.http.guard.check`: a database read of
   the state on every guarded request, no cache);
2. authentication, as the route declared it (:mod:`racefree.http.auth`: operator,
   session, either, or none);
3. the body limit for a body announced (``Content-Length``) or found larger than
   the limit: 413, after 1 and 2, so an unauthenticated 22 MB upload hears 401
   and is never read;
4. parsing and validating the JSON body -- only now, after the guard and
   authentication -- refusing control characters in its strings;
5. the handler, whose ``dict`` result is encoded to JSON right there (no
   response-model validation hop; ``response_model=`` still documents it).

A mutation sent with ``Idempotency-Key`` claims its key between 3 and 4 (a
replay is answered right there) and stores its answer after 5, in the same hop
(:mod:`racefree.http.idempotency`). A catalog error at any step becomes its
problem+json response in the same hop. Routes that touch no database
(``/livez``) make no hop; ``/metrics`` makes one (a bounded read of the kill
switch's state on a fresh connection and of the outbox lag,
:mod:`racefree.http.metrics`).

On PostgreSQL the hop holds one connection for all of it
(:meth:`racefree.core.db.Database.hold`): one checkout per request; the guard's
read and the session's lookup travel together in one round trip
(:meth:`racefree.core.db.Database.prefetch`).

On SQLite, brief requests make no hop at all. A route whose work is short and
local -- database work only, no executor, no sleep, no password hash -- declares
``brief=True``; on SQLite its whole request (guard, authentication, key, handler)
then runs on the event loop. A WAL-mode SQLite read never waits for a writer and
takes tens of microseconds, and a write by the one writer connection commits
without an fsync (``synchronous=NORMAL``): less than the hop would cost, and far
less on a loaded machine, where waking a worker thread waits for a time slice.
The loop never waits for a lock: the request runs inside
:meth:`racefree.core.db.Database.without_waiting`, so if the writer is taken (by
a background worker, or by another process such as the CLI) its first write
raises :class:`~racefree.core.exceptions.WriterBusy` before anything is
committed, and the request is served again from the start in a worker thread,
where it may wait (its guard ticket already redeemed: the state is read once).
A brief request that writes (not ``GET``) is served on the loop only while it is
the only request in the pipeline. Under concurrent requests the hop pays for
itself: in a worker thread SQLite's C code runs without the GIL, beside the
loop's HTTP work (8 clients: 922 submissions/s with the hop against 824 on the
loop); alone, nothing overlaps, and the hop is pure cost.
A later write in the same request -- after one has committed, starting over
would do it twice -- would wait on the loop, so a request with an
``Idempotency-Key`` (whose claim and stored answer are writes of their own)
always hops; a renewal and a payment make one write (a payment that the one
statement cannot make, a refusal, is served again in a worker thread before its
step path writes anything: :meth:`~racefree.core.db.Database.waits_ahead`).
The WAL is checkpointed in a thread of its own (:mod:`racefree.core.checkpoints`),
so no commit on the loop waits for an fsync. On PostgreSQL, where every read is a
network round trip, every request hops.

Routes are :class:`PipelineRoute`: FastAPI routes, so the OpenAPI document
describes them, but served by a lean ASGI handler instead of FastAPI's request
handler (which costs about as much as the rest of a ``/health`` request): it
validates path, query and header parameters with FastAPI's own
``request_params_to_args`` (400 on the loop, no hop), takes the route's declared
authentication (:mod:`racefree.http.auth`) from its dependencies once, at
startup, and awaits the endpoint. :func:`racefree.http.app.create_app` refuses
to build an app with any other kind of route, so nothing slips back to FastAPI's
per-dependency hops -- or past the guard, whose deferred check relies on it.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import annotated_types
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import (
    _get_param_aliases,
    _get_param_model,
    request_params_to_args,
)
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette import routing
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from racefree import sessions
from racefree.core.db import Dialect
from racefree.core.errors import RacefreeError, issue, validation_error
from racefree.core.exceptions import WriterBusy
from racefree.core.idempotency import HEADER as KEY_HEADER
from racefree.http import auth, edge, guard, hop, idempotency
from racefree.http.auth import Caller, SessionPrincipal
from racefree.http.problems import problem_response, pydantic_issues
from racefree.killswitch import status
from racefree.operators import Operator
from racefree.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the runtime, who is calling, the validated body, the request."""

    runtime: Runtime
    request: Request
    caller: Caller | None
    body: Any

    @property
    def headers(self) -> Headers:
        return self.request.headers

    @property
    def operator(self) -> Operator:
        assert isinstance(self.caller, Operator), "route not declared Auth.OPERATOR"
        return self.caller

    @property
    def session(self) -> SessionPrincipal:
        assert isinstance(self.caller, SessionPrincipal), "route not declared Auth.SESSION"
        return self.caller


Handler = Callable[[Call], Any]


class _TooLarge:
    """The body was not read: it is (or says it is) over the limit."""


TOO_LARGE: Final = _TooLarge()


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def run(
    request: Request,
    handler: Handler,
    *,
    body: type[BaseModel] | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    brief: bool = False,
) -> Response:
    """Serve ``request`` with ``handler`` in one worker-thread hop, or none for a
    ``brief`` route on SQLite (see the module doc)."""
    _InFlight.requests += 1
    try:
        raw: bytes | _TooLarge | None = None
        if body is not None:
            raw = await _read_body(request)
        args = (request, handler, body, raw, status_code, headers)
        runtime = runtime_of(request)
        if brief and on_loop(runtime) and (_reads(request) or _writes_alone(request)):
            served = _on_the_loop(runtime, _serve, *args)
            if not isinstance(served, _WouldWait):
                return served
        return await hop.run_sync(_serve, *args)
    finally:
        _InFlight.requests -= 1


class _InFlight:
    """Requests inside :func:`run` now (one event loop per process: no lock needed)."""

    requests = 0


def _reads(request: Request) -> bool:
    return request.method in guard.READ_METHODS


def _writes_alone(request: Request) -> bool:
    """The only request in flight, and one write: a key's claim and stored answer would
    be writes after the first, which wait for the writer (on the loop, see the module doc)."""
    return _InFlight.requests == 1 and KEY_HEADER not in request.headers


async def prepare(request: Request, handler: Handler, *, brief: bool = False) -> Any:
    """Guard, authentication and ``handler`` in one hop, like :func:`run`; its value, or
    the problem+json :class:`Response` of a catalog error.

    For a route that goes on to work on the event loop after its hop -- a stream
    (``GET /v1/events/stream``) subscribes and streams there, with no thread of its own.
    """
    runtime = runtime_of(request)
    if brief and on_loop(runtime):
        prepared = _on_the_loop(runtime, _prepared, request, handler)
        if not isinstance(prepared, _WouldWait):
            return prepared
    return await hop.run_sync(_prepared, request, handler)


class _WouldWait:
    """:func:`_on_the_loop` stopped before anything was committed: the writer was taken,
    or what came next may wait (:meth:`~racefree.core.db.Database.waits_ahead`)."""


WOULD_WAIT: Final = _WouldWait()
_T = TypeVar("_T")


def _on_the_loop(runtime: Runtime, serve: Callable[..., _T], *args: Any) -> _T | _WouldWait:
    """``serve(*args)`` on the event loop, whose first write may not wait for the writer;
    :data:`WOULD_WAIT` if it would have waited (then serve it again where it may)."""
    try:
        with runtime.db.without_waiting():
            return serve(*args)
    except WriterBusy:
        return WOULD_WAIT


def _prepared(request: Request, handler: Handler) -> Any:
    runtime = runtime_of(request)
    try:
        # one connection for the guard, the authentication and the handler (PostgreSQL)
        with runtime.db.hold():
            _read_ahead(runtime, request)
            guard.check(runtime, request.scope)
            caller = auth.authenticate(runtime, request.scope, request.headers)
            return handler(Call(runtime, request, caller, None))
    except RacefreeError as exc:
        return problem_response(exc)


def _read_ahead(runtime: Runtime, request: Request) -> None:
    """PostgreSQL: the guard's read and the session's lookup in one round trip.

    Both are made below as ever (the guard first, the session only if it lets the
    request on); they find their rows already read, at this same point.
    """
    if runtime.db.dialect is not Dialect.POSTGRESQL:
        return
    ticket: guard.Ticket | None = request.scope.get(guard.TICKET)
    if ticket is None or ticket.redeemed:
        return
    if request.scope.get(auth.REQUIREMENT) not in (
        auth.Auth.SESSION,
        auth.Auth.OPERATOR_OR_SESSION,
    ):
        return
    try:
        lookup = sessions.lookup(auth.bearer_token(request.headers))
    except RacefreeError:
        return  # the authentication says why, after the guard
    if lookup is not None:
        runtime.db.prefetch([status.GUARD_VIEW_READ, lookup])


def on_loop(runtime: Runtime) -> bool:
    """Whether brief requests are served on the event loop (SQLite; see the module doc)."""
    return runtime.db.dialect is Dialect.SQLITE


async def _read_body(request: Request) -> bytes | _TooLarge:
    """The body's bytes, or TOO_LARGE; reading stops at the limit (``edge.limit_body``)."""
    chunks = []
    try:
        async for chunk in request.stream():
            chunks.append(chunk)
    except edge.BodyTooLarge:
        return TOO_LARGE
    return b"".join(chunks)


def _serve(
    request: Request,
    handler: Handler,
    model: type[BaseModel] | None,
    raw: bytes | _TooLarge | None,
    status_code: int,
    headers: Mapping[str, str] | None,
) -> Response:
    runtime = runtime_of(request)
    # one connection for the guard, the authentication, the key and the handler (PostgreSQL)
    with runtime.db.hold():
        _read_ahead(runtime, request)
        return _served(runtime, request, handler, model, raw, status_code, headers)


def _served(
    runtime: Runtime,
    request: Request,
    handler: Handler,
    model: type[BaseModel] | None,
    raw: bytes | _TooLarge | None,
    status_code: int,
    headers: Mapping[str, str] | None,
) -> Response:
    claim: idempotency.Claim | None = None
    try:
        guard.check(runtime, request.scope)
        caller = auth.authenticate(runtime, request.scope, request.headers)
        if not isinstance(raw, _TooLarge):  # 413 below claims nothing
            started = idempotency.begin(runtime, request, raw or b"")
            if isinstance(started, Response):
                return started  # the stored answer, replayed
            claim = started
        # the body only after the guard, authentication and the key's claim
        body = None if model is None else _parse(model, raw, runtime)
        result = handler(Call(runtime, request, caller, body))
        response = (
            result
            if isinstance(result, Response)
            else JSONResponse(result, status_code=status_code, headers=headers)
        )
    except RacefreeError as exc:
        response = problem_response(exc)
    except BaseException:
        if claim is not None:  # a failure (a 500 outside): the retry must run again
            idempotency.finish(runtime, claim, None)
        raise
    if claim is not None:
        idempotency.finish(runtime, claim, response)
    return response


def _parse(model: type[BaseModel], raw: bytes | _TooLarge | None, runtime: Runtime) -> BaseModel:
    if isinstance(raw, _TooLarge):
        raise edge.too_large(runtime.settings.max_body_bytes)
    if not raw:
        raise validation_error([issue("body", msg="Field required", type="missing")])
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        position = getattr(exc, "pos", 0)
        raise validation_error(
            [{"loc": ["body", position], "msg": "JSON decode error", "type": "json_invalid"}]
        ) from None
    return validated(model, value)


_M = TypeVar("_M", bound=BaseModel)


def validated(model: type[_M], value: Any) -> _M:
    """``value`` (decoded JSON) checked as a body of ``model``: control characters, then
    the model; 400 ``VALIDATION_ERROR`` naming where (never echoing the input)."""
    edge.check_text(value, ["body"])
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise validation_error(
            pydantic_issues([{**e, "loc": ("body", *e["loc"])} for e in errors])
        ) from None


# -- the route -------------------------------------------------------------------------------

_REQUIREMENTS = {
    auth.require_operator: auth.Auth.OPERATOR,
    auth.require_session: auth.Auth.SESSION,
    auth.require_operator_or_session: auth.Auth.OPERATOR_OR_SESSION,
}


def _requirement(path: str, dependant: Dependant) -> auth.Auth:
    found = auth.Auth.NONE
    for dependency in dependant.dependencies:
        if dependency.call not in _REQUIREMENTS:
            raise TypeError(f"{path}: a pipeline route takes only an auth declaration")
        found = _REQUIREMENTS[dependency.call]
    if dependant.body_params or dependant.cookie_params:
        raise TypeError(f"{path}: read the body with pipeline.run(body=Model)")
    return found


def _optional_headers(dependant: Dependant) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """Header parameters that are all optional: the header names they read, and what
    FastAPI's validation gives them when none of those headers is sent (the defaults)."""
    names: list[str] = []
    defaults: dict[str, Any] = {}
    for field in dependant.header_params:
        if _get_param_model(field) is not None or field.field_info.is_required():
            return None
        names.extend(alias.lower() for _, alias in _get_param_aliases(field))
        defaults[field.name] = field.default
    return tuple(names), defaults


#: A path parameter validated by hand: its name, and the least and most characters it may have.
_PlainPath = tuple[str, int, int]


def _plain_path(dependant: Dependant) -> tuple[_PlainPath, ...] | None:
    """Path parameters that are all plain strings with at most a length range, or None.

    FastAPI's validation of such a parameter is the length check alone (a path
    parameter is always a string, and always there), so the route does it by hand
    and calls FastAPI only to word the error of one that fails it.
    """
    plain = []
    for field in dependant.path_params:
        info = field.field_info
        if info.annotation is not str or field.alias != field.name:
            return None
        least, most = 0, sys.maxsize
        for constraint in info.metadata:
            if isinstance(constraint, annotated_types.MinLen):
                least = constraint.min_length
            elif isinstance(constraint, annotated_types.MaxLen):
                most = constraint.max_length
            else:
                return None
        plain.append((field.name, least, most))
    return tuple(plain)


class PipelineRoute(APIRoute):
    """A FastAPI route served by a lean handler (see the module doc)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.requirement = _requirement(path, self.dependant)
        self.optional_headers = _optional_headers(self.dependant)
        self.plain_path = _plain_path(self.dependant)
        self.app = self._serve

    def matches(self, scope: Scope) -> tuple[routing.Match, Scope]:
        match, child_scope = routing.Route.matches(self, scope)
        if match != routing.Match.NONE:
            child_scope["route"] = self
        return match, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await routing.Route.handle(self, scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        scope[auth.REQUIREMENT] = self.requirement
        dependant = self.dependant
        values: dict[str, Any] = {}
        errors: list[Any] = []
        for fields, source in (
            (dependant.path_params, "path_params"),
            (dependant.query_params, "query_params"),
            (dependant.header_params, "headers"),
        ):
            if not fields:
                continue  # nothing parsed for a route that takes none (no query string split)
            received = getattr(request, source)
            if source == "path_params" and self._plain_path_fits(received, values):
                continue
            if source == "headers" and self._no_header_sent(received):
                assert self.optional_headers is not None
                values.update(copy.deepcopy(self.optional_headers[1]))
                continue
            found, wrong = request_params_to_args(fields, received)
            values.update(found)
            errors.extend(wrong)
        if errors:
            response = problem_response(validation_error(pydantic_issues(errors)))
        else:
            if dependant.request_param_name:
                values[dependant.request_param_name] = request
            response = await self.endpoint(**values)
        await response(scope, receive, send)

    def _plain_path_fits(self, received: dict[str, Any], values: dict[str, Any]) -> bool:
        """Every path parameter is a plain string of the right length: taken as it is."""
        if self.plain_path is None:
            return False
        for name, least, most in self.plain_path:
            value = received.get(name)
            if not isinstance(value, str) or not least <= len(value) <= most:
                return False
        values.update((name, received[name]) for name, _, _ in self.plain_path)
        return True

    def _no_header_sent(self, headers: Headers) -> bool:
        """None of the route's optional header parameters was sent: their defaults stand,
        as FastAPI's validation would have found (it validates only what is sent)."""
        optional = self.optional_headers
        return optional is not None and not any(name in headers for name in optional[0])


# -- OpenAPI ---------------------------------------------------------------------------------

#: Body models of pipeline routes, added to ``components.schemas`` by the app's OpenAPI.
BODY_MODELS: dict[str, type[BaseModel]] = {}


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra=`` for a route whose body ``model`` the pipeline parses itself."""
    BODY_MODELS[model.__name__] = model
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def document_bodies(schema: dict[str, Any]) -> dict[str, Any]:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in BODY_MODELS.items():
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(found.pop("$defs", {}))
        schemas[name] = found
    return schema
