"""A revocation reaches the serving process at its commit, not after GATEWAY_APP_GRANT_TTL: the
store announces every change to grants and token families (migration 0025) and the process
forgets what it kept (gateway.store.revocations). A red team used an erased person's app token
for the seconds the grant was kept, and their requests were logged after the erasure.

The gateway here keeps grants for an hour: only the notice can end a token within the test."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from gateway.auth import Principal, PrincipalKind
from gateway.store.apps import authorize_app, register_app, revoke_app

from harness import Gateway, running_gateway

ME = "{ me { id } }"
ERASE = "mutation Erase($user: ID!) { eraseUser(userId: $user) { appGrantsRevoked } }"
COMPLIANCE = Principal(PrincipalKind.COMPLIANCE, "dpo-1")
# Seconds the test waits for a notice to arrive: generous for a busy machine, far below the TTL.
NOTICE_DEADLINE = 30.0
LISTENER = "gateway:revocations"


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(database_url, app_grant_ttl=3600) as started:
        await asyncio.wait_for(started.state["revocations_heard"].wait(), NOTICE_DEADLINE)
        yield started


async def eventually_refused(gateway: Gateway, principal: Principal) -> float:
    """Seconds until the gateway refuses `principal` (asks again as soon as it answers)."""
    started = time.monotonic()
    while (status := (await gateway.graphql(ME, principal=principal)).status_code) == 200:
        assert time.monotonic() - started < NOTICE_DEADLINE, "the revocation never reached the process"
        await asyncio.sleep(0.01)
    assert status == 401
    return time.monotonic() - started


async def kept_grant(gateway: Gateway, admin: asyncpg.Connection, user: str) -> Principal:
    """An app principal for `user` whose grant the gateway now keeps."""
    app_id = await register_app(admin, f"App {uuid.uuid4().hex[:6]}")
    await authorize_app(admin, app_id, user, ["activity"])
    app = Principal(PrincipalKind.APP, user, frozenset({"activity"}), app_id=app_id)
    for _ in range(2):  # the first looks the grant up, the second is answered from what was kept
        assert (await gateway.graphql(ME, principal=app)).status_code == 200
    return app


async def revoked_by_cli(gateway: Gateway, admin: asyncpg.Connection, app: Principal) -> None:
    assert app.app_id is not None and app.id is not None
    await revoke_app(admin, app.app_id, app.id)


async def erased(gateway: Gateway, admin: asyncpg.Connection, app: Principal) -> None:
    response = await gateway.graphql(ERASE, {"user": app.id}, principal=COMPLIANCE)
    assert response.json()["data"]["eraseUser"]["appGrantsRevoked"] == 1, response.text


@pytest.mark.parametrize("revoke", [pytest.param(revoked_by_cli, id="apps-revoke"), pytest.param(erased, id="erasure")])
async def test_a_revoked_grant_is_refused_at_once_though_it_was_kept(
    gateway: Gateway, admin: asyncpg.Connection, revoke: Callable[[Gateway, asyncpg.Connection, Principal], Awaitable[None]]
) -> None:
    app = await kept_grant(gateway, admin, f"person-{uuid.uuid4().hex[:8]}")
    await revoke(gateway, admin, app)
    assert await eventually_refused(gateway, app) < NOTICE_DEADLINE


async def test_a_lost_listening_connection_is_replaced_and_forgets_what_it_may_have_missed(gateway: Gateway, admin: asyncpg.Connection) -> None:
    app = await kept_grant(gateway, admin, "person-rn1")
    listener = await admin.fetchval("SELECT pid FROM pg_stat_activity WHERE application_name = $1", LISTENER)
    assert listener is not None

    await admin.execute("SELECT pg_terminate_backend($1)", listener)
    # Revoked while nobody listens: the notice is lost, and the new connection forgets all kept.
    await revoke_app(admin, app.app_id or "", "person-rn1")

    assert await eventually_refused(gateway, app) < NOTICE_DEADLINE
    # Refused means the lost connection was noticed (and `revocations_heard` cleared): wait for the next.
    await asyncio.wait_for(gateway.state["revocations_heard"].wait(), NOTICE_DEADLINE)
    replaced = await admin.fetchval("SELECT pid FROM pg_stat_activity WHERE application_name = $1", LISTENER)
    assert replaced not in (None, listener)
    # And the new connection hears the next one.
    second = await kept_grant(gateway, admin, "person-rn2")
    await revoke_app(admin, second.app_id or "", "person-rn2")
    assert await eventually_refused(gateway, second) < NOTICE_DEADLINE


async def test_a_lookup_that_began_before_a_revocation_is_not_kept() -> None:
    """A grant read before the revocation committed, but returned after its notice, must not be
    kept for the TTL."""
    from gateway.auth import AppGrants
    from gateway.errors import Unauthenticated
    from gateway.store.apps import Grant

    generation = 0
    release = asyncio.Event()

    async def lookup(app_id: str, user_id: str) -> Grant:
        seen = generation
        await release.wait()
        return Grant(frozenset({"activity"}), seen)

    grants = AppGrants(lookup, ttl=3600)
    app = Principal(PrincipalKind.APP, "u", frozenset({"activity"}), app_id="a", grant_generation=0)
    pending = asyncio.create_task(grants.check(app))
    await asyncio.sleep(0)  # the lookup has read generation 0
    generation = 1  # revoked; its notice arrives before the lookup returns
    grants.forget()
    release.set()
    await pending  # this request was decided on what it read

    with pytest.raises(Unauthenticated):
        await grants.check(app)
