"""An app token is held to the user's grant as it stands: revoking the app, or withdrawing a scope,
ends the tokens issued before, over HTTP, against the real app and store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from gateway.auth import AppGrants, Principal, PrincipalKind, create_app_token
from gateway.errors import NotFound, StoreUnavailable, Unauthenticated
from gateway.store.apps import Grant, authorize_app, register_app, revoke_app

from harness import APP_SECRET, Gateway, running_gateway, serve

ME = "query { me { id } }"


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    # No grant is trusted from memory: every request looks it up.
    async with running_gateway(database_url, app_grant_ttl=0) as started:
        yield started


@pytest.fixture
def http(gateway: Gateway) -> httpx.AsyncClient:
    return gateway.http


async def ask(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {token}"})


async def authorized(admin: asyncpg.Connection, app_id: str, user_id: str, scopes: list[str]) -> str:
    generation = await authorize_app(admin, app_id, user_id, scopes)
    return create_app_token(APP_SECRET, app_id, user_id, scopes, ttl_seconds=300, generation=generation)


async def test_revoking_ends_the_tokens_issued_before_and_reauthorizing_issues_working_ones(
    http: httpx.AsyncClient, admin: asyncpg.Connection
) -> None:
    app_id = await register_app(admin, "Acme")
    before = await authorized(admin, app_id, "u1", ["activity"])
    assert (await ask(http, before)).json()["data"] == {"me": {"id": "u1"}}

    await revoke_app(admin, app_id, "u1")
    refused = await ask(http, before)
    after = await authorized(admin, app_id, "u1", ["activity"])

    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "revoked" in refused.json()["errors"][0]["message"]
    assert (await ask(http, after)).json()["data"] == {"me": {"id": "u1"}}
    assert (await ask(http, before)).status_code == 401, "re-authorizing does not bring an old token back"


async def test_withdrawing_a_scope_ends_tokens_that_carry_it(http: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    app_id = await register_app(admin, "Acme")
    broad = await authorized(admin, app_id, "u2", ["activity", "stats"])

    narrow = await authorized(admin, app_id, "u2", ["activity"])
    refused = await ask(http, broad)

    assert refused.status_code == 401
    assert refused.json()["errors"][0]["message"] == "u2 no longer grants this app: stats"
    assert (await ask(http, narrow)).json()["data"] == {"me": {"id": "u2"}}


async def test_a_grant_is_per_app_and_user(http: httpx.AsyncClient, admin: asyncpg.Connection) -> None:
    first, second = await register_app(admin, "First"), await register_app(admin, "Second")
    tokens = {(app_id, user): await authorized(admin, app_id, user, ["activity"]) for app_id in (first, second) for user in ("u3", "u4")}

    await revoke_app(admin, first, "u3")

    statuses = {key: (await ask(http, token)).status_code for key, token in tokens.items()}
    assert statuses == {(first, "u3"): 401, (first, "u4"): 200, (second, "u3"): 200, (second, "u4"): 200}


async def test_a_grant_that_cannot_be_looked_up_refuses_the_request_as_unavailable(
    gateway: Gateway, admin: asyncpg.Connection
) -> None:
    token = await authorized(admin, await register_app(admin, "Acme"), "u5", ["activity"])

    async def unreachable(app_id: str, user_id: str) -> Grant:
        raise StoreUnavailable("the app's grant could not be checked: connection refused")

    async with serve(gateway.app, {**gateway.state, "grants": AppGrants(unreachable, ttl=0)}) as client:
        response = await ask(client, token)

    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "STORE_UNAVAILABLE"
    assert "data" not in response.json()


async def test_revoking_what_was_never_granted_is_not_found(admin: asyncpg.Connection) -> None:
    app_id = await register_app(admin, "Acme")

    with pytest.raises(NotFound, match="u9 has not authorized"):
        await revoke_app(admin, app_id, "u9")


async def test_a_grant_is_looked_up_once_per_ttl() -> None:
    lookups: list[tuple[str, str]] = []
    now = [0.0]

    async def lookup(app_id: str, user_id: str) -> Grant:
        lookups.append((app_id, user_id))
        return Grant(frozenset({"stats"}), 1)

    grants = AppGrants(lookup, ttl=5, clock=lambda: now[0])
    current = Principal(PrincipalKind.APP, "u1", frozenset({"stats"}), "a1", grant_generation=1)
    stale = Principal(PrincipalKind.APP, "u1", frozenset({"stats"}), "a1", grant_generation=0)

    await grants.check(current)
    now[0] = 4.9
    await grants.check(current)
    with pytest.raises(Unauthenticated):
        await grants.check(stale)
    await grants.check(Principal(PrincipalKind.USER, "u1"))
    assert lookups == [("a1", "u1")], "one lookup within the ttl, none for a user"

    now[0] = 5.1
    await grants.check(current)
    assert lookups == [("a1", "u1")] * 2, "looked up again once the ttl has passed"
