"""`/graphql` as the GraphQL-over-HTTP draft has it: the media type a client accepts, the status codes
that go with it, and what the body of a request may hold. (tests/conformance runs the graphql-http
audit against a real server; these pin the same behaviour in-process, with reasons.)"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.routes.graphql import GRAPHQL_RESPONSE, JSON, response_media_type

from harness import Gateway, running_gateway

TYPENAME = "{ __typename }"
TYPED = "query($name: String!) { __type(name: $name) { name } }"


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(database_url) as started:
        yield started


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        pytest.param(None, JSON, id="none"),
        pytest.param("*/*", JSON, id="anything"),
        pytest.param("application/json", JSON, id="json"),
        pytest.param("application/graphql-response+json", GRAPHQL_RESPONSE, id="graphql-response"),
        pytest.param("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE, id="preferred"),
        pytest.param("application/json, application/graphql-response+json;q=0.5", JSON, id="json-preferred"),
        pytest.param("application/graphql-response+json, application/json", GRAPHQL_RESPONSE, id="tie"),
        pytest.param("application/graphql-response+json;q=0", JSON, id="refused"),
        pytest.param("application/graphql-response+json;q=x, */*", JSON, id="bad-weight"),
        pytest.param("Application/GraphQL-Response+JSON; charset=utf-8", GRAPHQL_RESPONSE, id="case-and-parameters"),
    ],
)
def test_the_media_type_is_the_one_the_client_prefers(accept: str | None, chosen: str) -> None:
    assert response_media_type(accept) == chosen


async def post(gateway: Gateway, body: Any, accept: str | None) -> tuple[int, str, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **({"Accept": accept} if accept else {})}
    response = await gateway.http.post("/graphql", content=json.dumps(body), headers=headers)
    return response.status_code, response.headers["content-type"], response.json()


UNEXECUTABLE = [
    pytest.param({"query": "{ video(id: "}, "GRAPHQL_PARSE_FAILED", id="parse"),
    pytest.param({"query": "{ nothingHere }"}, "GRAPHQL_VALIDATION_FAILED", id="validation"),
    pytest.param({"query": TYPED, "variables": {"name": 7}}, "BAD_USER_INPUT", id="variable-coercion"),
    pytest.param({"query": TYPED}, "BAD_USER_INPUT", id="variable-missing"),
]


@pytest.mark.parametrize(("body", "code"), UNEXECUTABLE)
@pytest.mark.parametrize(
    ("accept", "status"),
    [pytest.param(GRAPHQL_RESPONSE, 400, id="spec-media-type-400"), pytest.param(JSON, 200, id="plain-json-200")],
)
async def test_a_request_that_cannot_run_has_no_data_and_the_status_of_its_media_type(
    gateway: Gateway, body: dict[str, Any], code: str, accept: str, status: int
) -> None:
    answered_status, media_type, answer = await post(gateway, body, accept)

    assert (answered_status, media_type) == (status, accept)
    assert "data" not in answer
    assert [error["extensions"]["code"] for error in answer["errors"]][:1] == [code]


async def test_an_answer_is_200_under_either_media_type(gateway: Gateway) -> None:
    for accept in (GRAPHQL_RESPONSE, JSON, None):
        status, media_type, answer = await post(gateway, {"query": TYPED, "variables": {"name": "Video"}}, accept)
        assert (status, media_type) == (200, accept or JSON)
        assert answer["data"] == {"__type": {"name": "Video"}}


async def test_a_field_the_policy_refuses_is_an_executed_request_under_either_media_type(gateway: Gateway) -> None:
    """A refusal is the operation's answer (data null), not a malformed request: 200 either way."""
    for accept in (GRAPHQL_RESPONSE, JSON):
        status, _, answer = await post(gateway, {"query": '{ video(id: "v1") { stats { likeRatio } } }'}, accept)
        assert status == 200
        assert answer["data"] is None
        assert [error["extensions"]["code"] for error in answer["errors"]] == ["FORBIDDEN"]


@pytest.mark.parametrize("extensions", ["a string", 7, True, ["a", "list"]], ids=["string", "number", "boolean", "list"])
@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
async def test_extensions_that_are_not_an_object_are_refused(gateway: Gateway, extensions: Any, accept: str) -> None:
    status, _, answer = await post(gateway, {"query": TYPENAME, "extensions": extensions}, accept)

    assert status == 400
    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "`extensions` must be a JSON object" in answer["errors"][0]["message"]


async def test_extensions_that_are_an_object_are_taken_by_post_and_get(gateway: Gateway) -> None:
    status, _, answer = await post(gateway, {"query": TYPENAME, "extensions": {"some": "value"}}, JSON)
    assert status == 200 and answer["data"] == {"__typename": "Query"}

    response = await gateway.http.get("/graphql", params={"query": TYPENAME, "extensions": json.dumps({"some": "value"})})
    assert response.status_code == 200 and response.json()["data"] == {"__typename": "Query"}

    refused = await gateway.http.get("/graphql", params={"query": TYPENAME, "extensions": "[1]"})
    assert refused.status_code == 400
