"""The request pipeline: one worker-thread hop per request that touches the database.

Why. The drivers are blocking, so database work runs in a worker thread; each
hand-off costs ~80-100 µs on a loaded 2-core machine. FastAPI makes one per sync
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

A catalog error at any step becomes its problem+json response in the same hop.
Routes that touch no database (``/metrics``) are plain ``async def``: no hop.
:func:`racefree.http.app.create_app` refuses to build an app where a route is
not ``async def`` or has a sync dependency, so nothing can slip back to FastAPI's
per-dependency hops (or past the guard, which relies on it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from anyio import to_thread
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from racefree.core.errors import ErrorCode, RacefreeError
from racefree.http import auth, edge, guard
from racefree.http.auth import Caller, SessionPrincipal
from racefree.http.problems import problem_response
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
) -> Response:
    """Serve ``request`` with ``handler`` in one worker-thread hop (see the module doc)."""
    raw: bytes | _TooLarge | None = None
    if body is not None:
        raw = await _read_body(request)
    return await to_thread.run_sync(_serve, request, handler, body, raw, status_code, headers)


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
    try:
        guard.check(runtime, request.scope)
        caller = auth.authenticate(runtime, request.scope, request.headers)
        parsed = None if model is None else _parse(model, raw, runtime)
        result = handler(Call(runtime, request, caller, parsed))
    except RacefreeError as exc:
        return problem_response(exc)
    if isinstance(result, Response):
        return result
    return JSONResponse(result, status_code=status_code, headers=headers)


def _parse(model: type[BaseModel], raw: bytes | _TooLarge | None, runtime: Runtime) -> BaseModel:
    if isinstance(raw, _TooLarge):
        raise edge.too_large(runtime.settings.max_body_bytes)
    if not raw:
        raise _invalid([{"loc": ["body"], "msg": "Field required", "type": "missing"}])
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        position = getattr(exc, "pos", 0)
        raise _invalid(
            [{"loc": ["body", position], "msg": "JSON decode error", "type": "json_invalid"}]
        ) from None
    edge.check_text(value, ["body"])
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise _invalid(
            [
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
        ) from None


def _invalid(issues: list[dict[str, Any]]) -> RacefreeError:
    return RacefreeError(ErrorCode.VALIDATION_ERROR, details={"issues": issues})


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
