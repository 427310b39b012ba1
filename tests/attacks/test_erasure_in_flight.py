"""Red team (issue 14): an app's request that is under way when its person is erased.

`/graphql` checks an app token's grant before it reads the request's body
(gateway.routes.graphql._answer), and a client has GATEWAY_BODY_TIMEOUT (30 s) to send that body.
An app that sends its headers, waits, and sends the body after the erasure has committed gets its
answer: the token the erasure revoked is honoured seconds after the erasure, and the request is
logged in the decision log under the erased person's id, after their erasure.

Against a real `gateway serve`: the answer came 3 s after
`gateway erase-user` returned, while a fresh request with the same token was already refused 401;
and the same on a second serving process over the same store.

Fixed: the grant is checked once the body is in."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gateway.auth import Principal, PrincipalKind
from gateway.store.apps import authorize_app, register_app

from harness import Gateway, authorization, running_gateway

COMPLIANCE = Principal(PrincipalKind.COMPLIANCE, "dpo-rt14")
ERASE = "mutation Erase($user: ID!) { eraseUser(userId: $user) { appGrantsRevoked } }"
ME = "{ me { id } }"
DEADLINE = 60.0


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(database_url) as started:
        await asyncio.wait_for(started.state["revocations_heard"].wait(), DEADLINE)
        yield started


async def refused(gateway: Gateway, app: Principal) -> None:
    while (await gateway.graphql(ME, principal=app)).status_code == 200:
        await asyncio.sleep(0.01)


async def test_a_request_whose_body_arrives_after_the_erasure_is_refused(gateway: Gateway, admin: asyncpg.Connection) -> None:
    person = f"person-{uuid.uuid4().hex[:8]}"
    app_id = await register_app(admin, "Slow App")
    await authorize_app(admin, app_id, person, ["activity"])
    app = Principal(PrincipalKind.APP, person, frozenset({"activity"}), app_id=app_id)
    assert (await gateway.graphql(ME, principal=app)).status_code == 200

    body = json.dumps({"query": ME}).encode()
    headers_read = asyncio.Event()  # the gateway began reading the body
    erasure_done = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield body[:1]
        headers_read.set()
        await erasure_done.wait()
        yield body[1:]

    under_way = asyncio.create_task(
        gateway.http.post("/graphql", content=slow_body(), headers={**authorization(app), "Content-Type": "application/json", "Content-Length": str(len(body))})
    )
    await asyncio.wait_for(headers_read.wait(), DEADLINE)
    erasure = await gateway.graphql(ERASE, {"user": person}, principal=COMPLIANCE)
    assert erasure.json()["data"]["eraseUser"]["appGrantsRevoked"] == 1, erasure.text
    # The erasure is in force once its notice reached the process: a request the app begins then is refused.
    await asyncio.wait_for(refused(gateway, app), DEADLINE)
    erasure_done.set()
    answered = await asyncio.wait_for(under_way, DEADLINE)
    assert answered.status_code == 401, f"answered after the erasure: {answered.status_code} {answered.text[:200]}"
