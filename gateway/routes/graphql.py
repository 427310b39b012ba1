"""`/graphql`: GraphQL over HTTP (the spec's current draft). POST for any operation, GET for queries only.

A client that accepts `application/graphql-response+json` (at least as much as `application/json`)
gets it, with the spec's status codes: a request that could not be executed (a document that does
not parse or validate, variables that do not fit it) is 400 and has no `data`. Everyone else gets
`application/json`, where such requests are 200 as they always were."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, OperationType
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.auth import ANONYMOUS, Principal, authenticate
from gateway.clock import to_minute
from gateway.errors import BadUserInput, BudgetExhausted, GatewayError, PayloadTooLarge, PersistedQueryNotFound, PolicyUnavailable, RequestTimeout, StoreUnavailable, Unauthenticated
from gateway.graphql.context import RequestContext
from gateway.graphql.documents import parse_document, validate_query
from gateway.graphql.errors import format_error, gateway_error_of
from gateway.graphql.policy_guard import InvalidVariables, decide
from gateway.graphql.responses import ResponseCache, answer_digest, keepable
from gateway.policy.fields import select_operation
from gateway.routes.bodies import read_body
from gateway.routes.clients import count_request
from gateway.store.answer_version import AnswerVersion
from gateway.store.failures import STORE_FAILURES, store_unavailable
from gateway.telemetry.request_ids import current_request_id

__all__ = ["GRAPHQL_RESPONSE", "JSON", "graphql_endpoint", "response_media_type"]

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


def response_media_type(accept: str | None) -> str:
    """GRAPHQL_RESPONSE when the client accepts it at least as much as JSON; JSON otherwise, for
    `*/*` and no Accept too (the spec's legacy clients)."""
    if not accept:
        return JSON
    weights = {GRAPHQL_RESPONSE: 0.0, JSON: 0.0}
    for item in accept.split(","):
        media_type, *parameters = (part.strip().lower() for part in item.split(";"))
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if media_type == GRAPHQL_RESPONSE:
            weights[GRAPHQL_RESPONSE] = max(weights[GRAPHQL_RESPONSE], weight)
        elif media_type in (JSON, "application/*", "*/*"):
            weights[JSON] = max(weights[JSON], weight)
    return GRAPHQL_RESPONSE if weights[GRAPHQL_RESPONSE] > 0 and weights[GRAPHQL_RESPONSE] >= weights[JSON] else JSON


async def graphql_endpoint(request: Request) -> Response:
    """Counts the request against its rate limit before anything of its body is read (a request
    refused later counts too), then answers it; every response to a counted request says where its
    key stands (the RateLimit headers)."""
    media_type = response_media_type(request.headers.get("accept"))
    unauthenticated: Unauthenticated | None = None
    try:
        principal = authenticate(request.headers.get("authorization"), request.state.secret, request.state.issued)
    except Unauthenticated as exc:
        # Counted against its address, as if signed out, before it is refused: guessing tokens is not free.
        principal, unauthenticated = ANONYMOUS, exc
    try:
        verdict = await count_request(request, principal)
    except PolicyUnavailable as exc:
        # As the policy guard refuses a request the policy could not decide (fail closed).
        return FastJSONResponse({"data": None, "errors": [_coded(exc)]}, status_code=exc.status_code, headers=exc.headers(), media_type=media_type)
    except StoreUnavailable as exc:
        return _errors([_coded(exc)], exc.status_code, media_type, exc.headers())
    refusal = verdict.refusal() if not verdict.allowed else unauthenticated
    if refusal is not None:
        response = _errors([_coded(refusal)], refusal.status_code, media_type, refusal.headers())
    else:
        response = await _answer(request, principal, media_type)
    response.headers.update(verdict.headers())
    return response


async def _answer(request: Request, principal: Principal, media_type: str) -> Response:
    request_id = current_request_id()  # the telemetry middleware's: the one every log line carries
    # A request that cannot be executed: 400 under the spec's media type, 200 under plain JSON.
    unexecutable = 400 if media_type == GRAPHQL_RESPONSE else 200
    try:
        sent, variables, operation_name, extensions = await _read_operation(request, request.state.settings.max_body)
        # Once the body is in, not before: a client may take GATEWAY_BODY_TIMEOUT to send it, and a
        # revocation (an erasure) in between must not be honoured after its commit.
        await request.state.grants.check(principal)
        query = await request.state.persisted.document(principal, sent, extensions)  # the text sent, or the one its hash names
    except (Unauthenticated, StoreUnavailable, BadUserInput, PayloadTooLarge, RequestTimeout) as exc:
        return _errors([_coded(exc)], exc.status_code, media_type, exc.headers())
    except PersistedQueryNotFound as exc:
        # Apollo's clients send the document on this error; under plain JSON they expect it with 200.
        return _errors([_coded(exc)], exc.status_code if media_type == GRAPHQL_RESPONSE else 200, media_type, exc.headers())

    schema = request.state.schema
    try:
        document = parse_document(query)
    except GraphQLError as error:
        return _errors([format_error(error, request_id)], unexecutable, media_type)
    operation = select_operation(document, operation_name)
    request.state.operation_type = operation.operation.value if operation is not None else "none"  # the latency histogram's label
    if request.method == "GET" and (operation is None or operation.operation is not OperationType.QUERY):
        return _errors([_coded(BadUserInput("only queries may be sent with GET; use POST"))], 405, media_type, {"Allow": "POST"})
    errors = validate_query(schema._schema, query)
    if errors:
        return _errors([format_error(error, request_id) for error in errors], unexecutable, media_type)
    if operation is None:
        named = f"no operation named {operation_name!r}" if operation_name else "several operations and no operationName"
        return _errors([_coded(BadUserInput(f"the document has {named}"))], 400, media_type)

    arrived = request.state.clock()
    context = RequestContext(
        principal=principal,
        pools=request.state.store,
        reader=request.state.releases,
        request_id=request_id,
        decider=request.state.decider,
        budget=request.state.budget,
        noise_key=request.state.noise_key,
        erasure_key=request.state.erasure_key,
        now=to_minute(arrived),
        arrived=arrived,
        clock=request.state.clock,
        documents=request.state.persisted,
        revoked=request.state.grants.forget,
    )
    responses: ResponseCache | None = request.state.responses
    if responses is None:  # no policy guard (the benchmark's baseline): its extension answers under fixed terms
        result = await schema.execute(query, variable_values=variables, context_value=context, operation_name=operation_name)
        return _respond(result, context, request.state.clock(), media_type)
    try:
        refusal = await decide(context, schema._schema, query, document, operation, variables)
    except InvalidVariables as exc:
        return _errors([format_error(error, request_id, uncoded="BAD_USER_INPUT") for error in exc.errors], unexecutable, media_type)
    if refusal is not None:
        return _respond(ExecutionResult(data=None, errors=refusal, extensions=_privacy_report(context)), context, request.state.clock(), media_type)

    digest = None
    terms = context.privacy().terms
    if responses.enabled and operation.operation is OperationType.QUERY and not terms.noised and keepable(context.coordinates):
        try:
            version = await _answer_version(request.state.answer_version)
        except StoreUnavailable as exc:
            return _errors([_coded(exc)], exc.status_code, media_type, exc.headers())
        context.reader.at_epoch(version[1])
        digest = answer_digest(query, operation_name, variables, terms, context.owner_only, context.policy_revision, version)
    if digest is not None:
        kept = responses.get(principal, context.now, digest)
        if kept is not None:
            return Response(kept, media_type=media_type)
    result = await schema.execute(query, variable_values=variables, context_value=context, operation_name=operation_name)
    response = _respond(result, context, request.state.clock(), media_type)
    if digest is not None and not result.errors and context.catalogue_only and context.privacy().final:
        responses.put(principal, context.now, digest, response.body)
    return response


async def _answer_version(versions: AnswerVersion) -> tuple[int, int]:
    """What kept answers are checked against; StoreUnavailable when the store cannot be read (then
    nothing can be answered: the request is refused as a whole, 503)."""
    try:
        return await versions.current()
    except STORE_FAILURES as exc:
        raise store_unavailable() from exc


def _respond(result: ExecutionResult, context: RequestContext, now: datetime, media_type: str) -> Response:
    body: dict[str, Any] = {"data": result.data}
    status_code = 200
    headers: dict[str, str] = {}
    if result.errors:
        body["errors"] = [format_error(error, context.request_id, uncoded="BAD_USER_INPUT") for error in result.errors]
        # Answered: some root field has a value. One whose every root field is null (the store failed
        # under each) answered nothing, and is refused as a whole like a store failing before it ran.
        answered = result.data is not None and any(value is not None for value in result.data.values())
        refusal = _request_refusal(result.errors, answered=answered)
        # A field the store failed under (the rest answered) may be asked again shortly: say when.
        waits = [cause.retry_after for cause in map(gateway_error_of, result.errors) if cause is not None and cause.retry_after]
        if waits:
            headers["Retry-After"] = str(max(waits))
        if refusal is not None:
            status_code = refusal.status_code  # fail closed (503), or out of budget (429): say so to load balancers and clients
            headers.update(refusal.headers())
            if isinstance(refusal, BudgetExhausted):
                headers["Retry-After"] = str(max(1, int((refusal.resets_at - now).total_seconds())))
    if result.extensions:
        body["extensions"] = result.extensions
    return FastJSONResponse(body, status_code=status_code, headers=headers, media_type=media_type)


def _privacy_report(context: RequestContext) -> dict[str, Any]:
    """What the schema's extension reports, for an operation refused before it ran."""
    return {} if context.disclosure is None else {"privacy": context.disclosure.report()}


def _request_refusal(errors: list[GraphQLError], *, answered: bool) -> GatewayError | None:
    """The error that refused the request as a whole, if one did: it sets the HTTP status. (A
    store failure under one field of an answer is that field's error, not the request's.)"""
    refusing: tuple[type[GatewayError], ...] = (PolicyUnavailable, BudgetExhausted) if answered else (PolicyUnavailable, BudgetExhausted, StoreUnavailable)
    for error in errors:
        refusal = gateway_error_of(error)
        if isinstance(refusal, refusing):
            return refusal
    return None


class FastJSONResponse(JSONResponse):
    """orjson renders a dashboard's response several times faster than the json module."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def _read_operation(request: Request, max_body: int) -> tuple[str | None, dict[str, Any] | None, str | None, dict[str, Any] | None]:
    """The request's query (None when it names a persisted document instead), variables, operation name and extensions."""
    if request.method == "GET":
        params: dict[str, Any] = dict(request.query_params)
        for name in ("variables", "extensions"):
            if name in params:
                params[name] = _json(params[name], name)
    else:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise BadUserInput("POST /graphql takes Content-Type: application/json")
        params = _json(await read_body(request, max_body, "send a shorter query or smaller variables"), "the body")
    if not isinstance(params, dict):
        raise BadUserInput("the body must be a JSON object with `query`")
    query, variables, operation_name = params.get("query"), params.get("variables"), params.get("operationName")
    if query is not None and (not isinstance(query, str) or not query.strip()):
        raise BadUserInput("`query` must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise BadUserInput("`variables` must be a JSON object")
    if variables:
        _check_variables(variables)
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadUserInput("`operationName` must be a string")
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise BadUserInput("`extensions` must be a JSON object")
    return query, variables, operation_name, extensions


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# 19 digits or more in a row: perhaps an integer beyond 64 bits.
_LONG_NUMBER = re.compile(rb"\d{19}")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is beyond the range of a number")
    return number


def _json(text: str | bytes, what: str) -> Any:
    # orjson refuses all that the json module is told to refuse below (and is several times
    # faster): NaN, Infinity, 1e400, a lone surrogate, nesting beyond its depth limit. But it reads
    # an integer beyond 64 bits as a float (an ID sent as 30 digits would change): those bodies,
    # and what it refuses, go to the json module, which keeps the integer or says what is wrong.
    if _LONG_NUMBER.search(text if isinstance(text, bytes) else text.encode()) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        # NaN, Infinity and 1e400: not numbers the schema takes (nor JSON, for the first two).
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadUserInput(f"{what} is not valid JSON") from exc
    except RecursionError as exc:
        raise BadUserInput(f"{what} is nested too deeply") from exc
    try:
        # A lone surrogate (`"\udfff"`) is valid JSON text but no Unicode string: nothing after
        # this (the policy's input, the decision log) could encode it.
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise BadUserInput(f"{what} holds a string that is not Unicode (a lone surrogate)") from exc
    return value


# No argument of the schema takes more than a few ids, dates and a cursor.
MAX_VARIABLES_BYTES = 16 * 1024
MAX_VARIABLES_DEPTH = 8


def _check_variables(variables: dict[str, Any]) -> None:
    """Variables small and shallow enough to key caches on and to hand to the policy."""
    level: list[Any] = [variables]
    for _ in range(MAX_VARIABLES_DEPTH):
        level = [child for value in level for child in (value.values() if isinstance(value, dict) else value if isinstance(value, list) else ())]
        if not level:
            break
    else:
        raise BadUserInput(f"`variables` are nested more than {MAX_VARIABLES_DEPTH} levels deep")
    try:
        size = len(orjson.dumps(variables))
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, as the json module reads one
        size = len(json.dumps(variables, separators=(",", ":")))
    if size > MAX_VARIABLES_BYTES:
        raise BadUserInput(f"`variables` take more than {MAX_VARIABLES_BYTES // 1024} KB")


def _coded(exc: GatewayError) -> dict[str, Any]:
    return {"message": exc.message, "extensions": {"code": exc.code, **exc.extensions()}}


def _errors(errors: list[dict[str, Any]], status_code: int, media_type: str, headers: dict[str, str] | None = None) -> Response:
    """A response with no `data`: the request was not executed. (Its X-Request-Id is the telemetry
    middleware's to set, on every route.)"""
    return JSONResponse({"errors": errors}, status_code=status_code, headers=headers, media_type=media_type)
