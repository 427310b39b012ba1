"""Persisted documents over HTTP, against the real app and store: Apollo's automatic persisted
queries (a document named by its SHA-256), the documents registered for an app, and the obligation
that confines an app to them."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from gateway.errors import PersistedQueryNotFound, StoreUnavailable
from gateway.graphql.persisted import PersistedDocuments
from gateway.graphql.schema import build_schema
from gateway.routes.graphql import GRAPHQL_RESPONSE, JSON
from gateway.store.documents import register_document

from harness import SHIPPED_POLICIES, Gateway, authorization, running_gateway, serve

CONFINED = "app_confined"  # the policy lets it run only its registered documents
FREE = "app_free"  # no such obligation
RULE = "obligations.registered_documents_only"
USER = Principal(PrincipalKind.USER, "u1")


def app(app_id: str, user_id: str = "u1") -> Principal:
    return Principal(PrincipalKind.APP, user_id, frozenset({"stats"}), app_id)


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def persisted(document: str) -> dict[str, Any]:
    """The extensions an Apollo client sends to name `document` by its hash."""
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256(document)}}


def confining(target: Path, app_ids: list[str]) -> Path:
    """A copy of the shipped policies whose data confines `app_ids` to their registered documents."""
    shutil.copytree(SHIPPED_POLICIES, target, dirs_exist_ok=True)
    data_file = target / "data.json"
    data = json.loads(data_file.read_text())
    data["obligations"]["apps"] = {app_id: {"registered_documents_only": True} for app_id in app_ids}
    data_file.write_text(json.dumps(data, indent=2))
    return target


@pytest.fixture(scope="module")
async def gateway(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    admin = await asyncpg.connect(database_url)
    try:
        await admin.executemany("INSERT INTO apps (app_id, name) VALUES ($1, $2)", [(CONFINED, "Confined"), (FREE, "Free")])
    finally:
        await admin.close()
    # What the store says of registered documents is not trusted from memory: a document registered works at once.
    async with running_gateway(database_url, policy_dir=confining(tmp_path_factory.mktemp("policies"), [CONFINED]), app_documents_ttl=0) as started:
        yield started


async def post(
    gateway: Gateway, body: dict[str, Any], principal: Principal = ANONYMOUS, accept: str = JSON
) -> httpx.Response:
    return await gateway.http.post("/graphql", json=body, headers={**authorization(principal), "Accept": accept})


async def get(gateway: Gateway, params: dict[str, Any], principal: Principal = ANONYMOUS) -> httpx.Response:
    encoded = {name: json.dumps(value) if isinstance(value, dict) else value for name, value in params.items()}
    return await gateway.http.get("/graphql", params=encoded, headers=authorization(principal))


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json().get("errors", [])]


# -- automatic persisted queries ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_apq_a_hash_unknown_is_not_found_then_sent_with_its_document_it_is_remembered(gateway: Gateway, method: str) -> None:
    document = f"query Remembered{method} {{ __typename }}"
    send = post if method == "POST" else get

    missed = await send(gateway, {"extensions": persisted(document)})
    registered = await send(gateway, {"query": document, "extensions": persisted(document)})
    hit = await send(gateway, {"extensions": persisted(document)})

    assert missed.status_code == 200
    assert missed.json() == {"errors": [{"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]}
    assert missed.headers["cache-control"] == "private, no-cache, must-revalidate"
    assert registered.json()["data"] == {"__typename": "Query"}
    assert hit.status_code == 200
    assert hit.json()["data"] == {"__typename": "Query"}


async def test_apq_a_document_remembered_by_post_is_served_by_get(gateway: Gateway) -> None:
    document = "query ForTheCdn { __typename }"
    await post(gateway, {"query": document, "extensions": persisted(document)})

    hit = await get(gateway, {"extensions": persisted(document)})

    assert hit.status_code == 200
    assert hit.json()["data"] == {"__typename": "Query"}


async def test_apq_not_found_is_404_under_the_graphql_response_media_type(gateway: Gateway) -> None:
    missed = await post(gateway, {"extensions": persisted("query NeverSent { __typename }")}, accept=GRAPHQL_RESPONSE)

    assert missed.status_code == 404
    assert missed.headers["content-type"] == GRAPHQL_RESPONSE
    assert codes(missed) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert "data" not in missed.json()


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_apq_a_hash_that_is_not_the_documents_is_refused_and_nothing_is_remembered(gateway: Gateway, accept: str) -> None:
    document, other = "query Mismatched { __typename }", "query Other { __typename }"

    refused = await post(gateway, {"query": document, "extensions": persisted(other)}, accept=accept)
    later = await post(gateway, {"extensions": persisted(other)})

    assert refused.status_code == 400
    assert codes(refused) == ["BAD_USER_INPUT"]
    assert "provided sha does not match query" in refused.json()["errors"][0]["message"]
    assert codes(later) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize(
    ("persisted_query", "complaint"),
    [
        pytest.param({"version": 2, "sha256Hash": "0" * 64}, "Unsupported persisted query version", id="version-2"),
        pytest.param({"version": "1", "sha256Hash": "0" * 64}, "Unsupported persisted query version", id="version-as-text"),
        pytest.param({"version": True, "sha256Hash": "0" * 64}, "Unsupported persisted query version", id="version-as-boolean"),
        pytest.param({"sha256Hash": "0" * 64}, "Unsupported persisted query version", id="no-version"),
        pytest.param({"version": 1}, "sha256Hash must be a SHA-256", id="no-hash"),
        pytest.param({"version": 1, "sha256Hash": "A" * 64}, "sha256Hash must be a SHA-256", id="uppercase"),
        pytest.param({"version": 1, "sha256Hash": "abc"}, "sha256Hash must be a SHA-256", id="short"),
        pytest.param("abc", "extensions.persistedQuery must be an object", id="not-an-object"),
    ],
)
async def test_apq_a_malformed_persisted_query_is_bad_user_input(gateway: Gateway, persisted_query: Any, complaint: str) -> None:
    refused = await post(gateway, {"query": "{ __typename }", "extensions": {"persistedQuery": persisted_query}})

    assert refused.status_code == 400
    assert codes(refused) == ["BAD_USER_INPUT"]
    assert complaint in refused.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("document", "code"),
    [
        pytest.param("query Junk { __typename", "GRAPHQL_PARSE_FAILED", id="does-not-parse"),
        pytest.param("query Invalid { noSuchField }", "GRAPHQL_VALIDATION_FAILED", id="does-not-validate"),
        pytest.param("query TooManyAliases { " + "a: __typename " * 40 + "}", "QUERY_TOO_COMPLEX", id="over-a-limit"),
    ],
)
async def test_apq_a_document_the_gateway_would_not_run_is_not_remembered(gateway: Gateway, document: str, code: str) -> None:
    sent = await post(gateway, {"query": document, "extensions": persisted(document)})
    later = await post(gateway, {"extensions": persisted(document)})

    assert codes(sent) == [code]
    assert codes(later) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_apq_a_mutation_sent_by_get_with_its_hash_is_still_refused(gateway: Gateway) -> None:
    document = "mutation Change { __typename }"

    refused = await get(gateway, {"query": document, "extensions": persisted(document)})

    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"


async def test_a_request_with_neither_query_nor_persisted_query_is_bad_user_input(gateway: Gateway) -> None:
    refused = await post(gateway, {"extensions": {"tracing": True}})

    assert refused.status_code == 400
    assert codes(refused) == ["BAD_USER_INPUT"]
    assert "`query` must be a non-empty string" in refused.json()["errors"][0]["message"]


# -- registered documents, and the obligation to run only those ----------------------------------


@pytest.mark.parametrize("user_id", ["u1", "u2"])
async def test_a_confined_app_runs_its_registered_document_by_hash_and_by_text(gateway: Gateway, admin: asyncpg.Connection, user_id: str) -> None:
    document = f"query Registered{user_id} {{ __typename }}"
    await register_document(admin, CONFINED, document, [f"Registered{user_id}"])

    by_hash = await post(gateway, {"extensions": persisted(document)}, app(CONFINED, user_id))
    by_text = await post(gateway, {"query": document}, app(CONFINED, user_id))
    by_both = await get(gateway, {"query": document, "extensions": persisted(document)}, app(CONFINED, user_id))

    assert [response.json().get("data") for response in (by_hash, by_text, by_both)] == [{"__typename": "Query"}] * 3


@pytest.mark.parametrize("user_id", ["u1", "u2"])
@pytest.mark.parametrize("sent", ["text", "text-and-hash", "hash"])
async def test_a_confined_app_is_refused_a_document_not_registered_for_it_naming_the_rule(gateway: Gateway, sent: str, user_id: str) -> None:
    document = "query Unregistered { __typename }"
    await post(gateway, {"query": document, "extensions": persisted(document)})  # remembered: anyone may now send its hash
    body = {"query": document} if sent == "text" else {"query": document, "extensions": persisted(document)} if sent == "text-and-hash" else {"extensions": persisted(document)}

    refused = await post(gateway, body, app(CONFINED, user_id))

    assert refused.status_code == 200
    answer = refused.json()
    assert answer["data"] is None
    assert answer["errors"] == [
        {
            "message": f"{CONFINED} may run only the documents registered for it ({RULE}); document {sha256(document)} is not one of them",
            "extensions": {"code": "FORBIDDEN", "rule": RULE},
        }
    ]


async def test_a_document_registered_for_another_app_does_not_count(gateway: Gateway, admin: asyncpg.Connection) -> None:
    document = "query RegisteredForTheOther { __typename }"
    await register_document(admin, FREE, document, ["RegisteredForTheOther"])

    refused = await post(gateway, {"query": document}, app(CONFINED))

    assert codes(refused) == ["FORBIDDEN"]


@pytest.mark.parametrize("principal", [pytest.param(app(FREE), id="another-app"), pytest.param(USER, id="user"), pytest.param(ANONYMOUS, id="anonymous")])
async def test_principals_the_policy_does_not_confine_run_any_document(gateway: Gateway, principal: Principal) -> None:
    answer = (await post(gateway, {"query": "query Anything { __typename }"}, principal)).json()

    assert answer["data"] == {"__typename": "Query"}
    assert "errors" not in answer


async def test_an_apps_registered_documents_are_sent_by_hash_by_that_app_only(gateway: Gateway, admin: asyncpg.Connection) -> None:
    document = "query OnlyForFree { __typename }"
    await register_document(admin, FREE, document, ["OnlyForFree"])

    own = await post(gateway, {"extensions": persisted(document)}, app(FREE))
    others = [await post(gateway, {"extensions": persisted(document)}, principal) for principal in (app(CONFINED), USER, ANONYMOUS)]

    assert own.json()["data"] == {"__typename": "Query"}
    assert [codes(response) for response in others] == [["PERSISTED_QUERY_NOT_FOUND"]] * 3


async def test_a_confined_app_whose_documents_cannot_be_read_is_refused_as_unavailable(gateway: Gateway) -> None:
    async def unreachable(app_id: str, sha256: str) -> str | None:
        raise StoreUnavailable("the event store is unavailable; try again shortly")

    documents = PersistedDocuments(build_schema()._schema, unreachable, remember_bytes=0, registered_ttl=0)
    async with serve(gateway.app, {**gateway.state, "persisted": documents}) as client:
        confined = await client.post("/graphql", json={"query": "{ __typename }"}, headers=authorization(app(CONFINED)))
        free = await client.post("/graphql", json={"query": "{ __typename }"}, headers=authorization(app(FREE)))

    assert confined.status_code == 503
    assert codes(confined) == ["STORE_UNAVAILABLE"]
    assert confined.json()["data"] is None
    assert free.json()["data"] == {"__typename": "Query"}, "an app without the obligation never asks the store"


# -- the per-process caches ----------------------------------------------------------------------


async def test_what_the_store_says_of_a_registered_document_is_trusted_for_the_ttl() -> None:
    lookups: list[tuple[str, str]] = []
    now = [0.0]
    registered: dict[tuple[str, str], str] = {}

    async def lookup(app_id: str, digest: str) -> str | None:
        lookups.append((app_id, digest))
        return registered.get((app_id, digest))

    documents = PersistedDocuments(build_schema()._schema, lookup, remember_bytes=0, registered_ttl=5, clock=lambda: now[0])
    key = (CONFINED, sha256("{ __typename }"))

    assert await documents.registered(*key) is None
    registered[key] = "{ __typename }"
    now[0] = 4.9
    assert await documents.registered(*key) is None, "not registered, as far as this process knows, within the ttl"
    now[0] = 5.1
    assert await documents.registered(*key) == "{ __typename }"
    assert lookups == [key, key]


async def test_remembered_documents_are_bounded_in_bytes_oldest_used_first_out() -> None:
    async def nothing_registered(app_id: str, digest: str) -> str | None:
        return None

    documents = PersistedDocuments(build_schema()._schema, nothing_registered, remember_bytes=1_200, registered_ttl=0)
    # Each weighs a little over 500 bytes with its entry's overhead: two fit, three do not.
    sent = [f"query Q{n} {{ {'a: __typename ' * 20}}}" for n in range(4)]
    for document in sent:
        await documents.document(ANONYMOUS, document, persisted(document))

    for forgotten in sent[:2]:
        with pytest.raises(PersistedQueryNotFound):
            await documents.document(ANONYMOUS, None, persisted(forgotten))
    assert [await documents.document(ANONYMOUS, None, persisted(document)) for document in sent[2:]] == sent[2:]
