"""`/graphql`'s rate limits: the policy's `rate_limit` obligation for the principal, counted in a moving
window of a minute per key (an app per user it acts for, a user, a signed-out address), exact under
concurrent requests, with the RateLimit headers on every counted response and 429 RATE_LIMITED over it.

Time is the test's: `time_machine` stops the clock the limiter's storage reads (the wall clock) and
moves it past a window, so no test waits a minute."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
from limits.aio.storage import MemoryStorage

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from gateway.routes.graphql import GRAPHQL_RESPONSE, JSON

from harness import Gateway, authorization, policies_with, running_gateway

# Each kind's limit in this module's policy (tighter than the shipped ones, so that a test reaches them).
LIMITS = {"anonymous": 3, "user": 49, "compliance": 50, "app": 4}
# An app granted `insights` is held to this (the policy's rate_limit_by_scope), whatever its kind's.
INSIGHTS_LIMIT = 2
PROXIES = "10.0.0.0/8"
TYPENAME = {"query": "{ __typename }"}


def set_rate_limits(policy_dir: Path, limits: dict[str, Any]) -> None:
    data_file = policy_dir / "data.json"
    data = json.loads(data_file.read_text())
    principals = data["obligations"]["principals"]
    for kind, limit in limits.items():
        principals[kind]["rate_limit"] = {"requests_per_minute": limit}
    principals["app"]["rate_limit_by_scope"] = {"insights": {"requests_per_minute": INSIGHTS_LIMIT}}
    data_file.write_text(json.dumps(data, indent=2))


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = policies_with(tmp_path_factory.mktemp("policies"), {})
    set_rate_limits(target, LIMITS)
    return target


@pytest.fixture(scope="module")
async def gateway(database_url: str, policy_dir: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(database_url, policy_dir=policy_dir, trusted_proxies=PROXIES) as started:
        yield started


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """The wall clock, stopped: every request of the test is counted at the same moment until the
    test moves it."""
    with time_machine.travel(int(time.time()), tick=False) as traveller:
        yield traveller


# Every test counts against keys of its own: addresses and principals no other test uses.
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def new_address() -> str:
    return next(_addresses)


def new_principal(kind: PrincipalKind, *scopes: str, app_id: str | None = None, user: str | None = None) -> Principal:
    return Principal(kind, user or f"{kind.value}-{uuid.uuid4().hex[:8]}", frozenset(scopes), app_id)


async def ask(http: httpx.AsyncClient, principal: Principal = ANONYMOUS, *, headers: dict[str, str] | None = None) -> httpx.Response:
    return await http.post("/graphql", json=TYPENAME, headers={**authorization(principal), **(headers or {})})


async def statuses(http: httpx.AsyncClient, count: int, principal: Principal = ANONYMOUS, **options: Any) -> list[int]:
    return [(await ask(http, principal, **options)).status_code for _ in range(count)]


# --- the limit is the policy's, and exact ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "refused"),
    [
        pytest.param(PrincipalKind.USER, 1, id="limit-49-one-429"),
        pytest.param(PrincipalKind.COMPLIANCE, 0, id="limit-50-none"),
    ],
)
async def test_limit_is_exact_under_50_concurrent_requests(gateway: Gateway, clock: time_machine.Traveller, kind: PrincipalKind, refused: int) -> None:
    principal = new_principal(kind)

    answers = await asyncio.gather(*(ask(gateway.http, principal) for _ in range(50)))

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] * (50 - refused) + [429] * refused
    remaining = sorted(int(answer.headers["ratelimit"].split(";r=")[1].split(";")[0]) for answer in answers)
    assert remaining == [0] * (refused + 1) + list(range(1, 50 - refused))


async def test_window_frees_a_slot_when_its_oldest_request_is_a_minute_old(gateway: Gateway, clock: time_machine.Traveller) -> None:
    async with gateway.from_address(new_address()) as http:
        assert await statuses(http, 3) == [200, 200, 200]
        clock.shift(30)
        refused = await ask(http)
        clock.shift(29)  # the first three are 59 s old
        still = await ask(http)
        clock.shift(2)  # … and 61 s
        freed = await ask(http)

    assert (refused.status_code, refused.headers["retry-after"]) == (429, "30")
    assert (still.status_code, still.headers["retry-after"]) == (429, "1")
    assert freed.status_code == 200
    assert freed.headers["ratelimit"] == '"minute";r=2;t=60'


async def test_headers_say_the_limit_what_is_left_and_when_a_slot_frees(gateway: Gateway, clock: time_machine.Traveller) -> None:
    async with gateway.from_address(new_address()) as http:
        first = await ask(http)
        clock.shift(20)
        second = await ask(http)
        clock.shift(15)
        third = await ask(http)

    assert [response.status_code for response in (first, second, third)] == [200, 200, 200]
    assert {response.headers["ratelimit-policy"] for response in (first, second, third)} == {'"minute";q=3;w=60'}
    # t: until the oldest request counted (the first, at 0 s) leaves the window.
    assert [response.headers["ratelimit"] for response in (first, second, third)] == [
        '"minute";r=2;t=60',
        '"minute";r=1;t=40',
        '"minute";r=0;t=25',
    ]
    assert "retry-after" not in third.headers


@pytest.mark.parametrize(("accept", "media_type"), [pytest.param(JSON, JSON, id="json"), pytest.param(GRAPHQL_RESPONSE, GRAPHQL_RESPONSE, id="graphql-response")])
async def test_over_the_limit_is_429_rate_limited_with_no_data(gateway: Gateway, clock: time_machine.Traveller, accept: str, media_type: str) -> None:
    async with gateway.from_address(new_address()) as http:
        await statuses(http, 3)
        clock.shift(12)
        response = await ask(http, headers={"Accept": accept})

    assert response.status_code == 429
    assert response.headers["content-type"] == media_type
    assert response.json() == {
        "errors": [
            {
                "message": "rate limit of 3 requests a minute reached; retry in 48 s",
                "extensions": {"code": "RATE_LIMITED", "limit": 3, "retryAfter": 48},
            }
        ]
    }
    assert response.headers["retry-after"] == "48"
    assert response.headers["ratelimit-policy"] == '"minute";q=3;w=60'
    assert response.headers["ratelimit"] == '"minute";r=0;t=48'


async def test_refusals_are_counted_for_operators(gateway: Gateway, clock: time_machine.Traveller) -> None:
    def refusals(exposition: str) -> float:
        [line] = [line for line in exposition.splitlines() if line.startswith("gateway_rate_limit_refusals_total ")]
        return float(line.split()[1])

    before = refusals(await gateway.scrape())
    async with gateway.from_address(new_address()) as http:
        await statuses(http, 5)

    assert refusals(await gateway.scrape()) == before + 2


async def test_scope_that_sets_its_own_limit_tightens_the_apps(gateway: Gateway, clock: time_machine.Traveller) -> None:
    insights = new_principal(PrincipalKind.APP, "stats", "insights", app_id="app-tight")
    stats = new_principal(PrincipalKind.APP, "stats", app_id="app-tight")

    assert await statuses(gateway.http, INSIGHTS_LIMIT + 1, insights) == [200] * INSIGHTS_LIMIT + [429]
    assert await statuses(gateway.http, LIMITS["app"] + 1, stats) == [200] * LIMITS["app"] + [429]


# --- who is counted together ----------------------------------------------------------------------


async def test_two_users_are_counted_apart(gateway: Gateway, clock: time_machine.Traveller) -> None:
    first, second = new_principal(PrincipalKind.USER), new_principal(PrincipalKind.USER)

    assert await statuses(gateway.http, LIMITS["user"] + 1, first) == [200] * LIMITS["user"] + [429]
    assert (await ask(gateway.http, second)).status_code == 200


async def test_an_app_is_counted_per_user_it_acts_for(gateway: Gateway, clock: time_machine.Traveller) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    app_for_user = new_principal(PrincipalKind.APP, "stats", app_id="app-a", user=user)
    app_for_another = new_principal(PrincipalKind.APP, "stats", app_id="app-a")
    another_app_for_user = new_principal(PrincipalKind.APP, "stats", app_id="app-b", user=user)

    assert await statuses(gateway.http, LIMITS["app"] + 1, app_for_user) == [200] * LIMITS["app"] + [429]
    assert (await ask(gateway.http, app_for_another)).status_code == 200
    assert (await ask(gateway.http, another_app_for_user)).status_code == 200
    # The user, signed in themselves, has a window of their own.
    assert (await ask(gateway.http, Principal(PrincipalKind.USER, user))).status_code == 200


async def test_signed_out_clients_are_counted_by_address(gateway: Gateway, clock: time_machine.Traveller) -> None:
    async with gateway.from_address(new_address()) as first, gateway.from_address(new_address()) as second:
        assert await statuses(first, 4) == [200, 200, 200, 429]
        assert await statuses(second, 1) == [200]
        # A user signing in from the exhausted address is counted as the user.
        assert (await ask(first, new_principal(PrincipalKind.USER))).status_code == 200


async def test_ipv6_clients_are_counted_by_their_64(gateway: Gateway, clock: time_machine.Traveller) -> None:
    async with (
        gateway.from_address("2001:db8:7::1") as one,
        gateway.from_address("2001:db8:7::2") as same_network,
        gateway.from_address("2001:db8:7:1::1") as another_network,
    ):
        assert await statuses(one, 2) == [200, 200]
        assert await statuses(same_network, 2) == [200, 429]
        assert await statuses(another_network, 1) == [200]


async def test_forwarded_for_is_believed_from_a_trusted_proxy(gateway: Gateway, clock: time_machine.Traveller) -> None:
    client = new_address()
    forwarded = {"X-Forwarded-For": client}
    async with gateway.from_address("10.0.0.7") as proxy, gateway.from_address("10.20.0.8") as other_proxy, gateway.from_address(client) as direct:
        assert await statuses(proxy, 3, headers=forwarded) == [200, 200, 200]
        # The same client through another proxy, or straight to the gateway, is the same client.
        assert await statuses(other_proxy, 1, headers=forwarded) == [429]
        assert await statuses(direct, 1) == [429]
        # The proxy's own requests are its own.
        assert await statuses(proxy, 1) == [200]


async def test_forwarded_for_from_anyone_else_is_ignored(gateway: Gateway, clock: time_machine.Traveller) -> None:
    async with gateway.from_address(new_address()) as spoofer:
        answers = [await ask(spoofer, headers={"X-Forwarded-For": new_address()}) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]


async def test_forwarded_for_that_is_not_an_address_counts_the_proxy(gateway: Gateway, clock: time_machine.Traveller) -> None:
    async with gateway.from_address("10.0.0.42") as proxy:
        garbage = [await ask(proxy, headers={"X-Forwarded-For": f"{new_address()}, not-an-address"}) for _ in range(3)]
        plain = await ask(proxy)

    assert [answer.status_code for answer in garbage] == [200, 200, 200]
    assert plain.status_code == 429


# --- what is counted ------------------------------------------------------------------------------


async def test_bad_tokens_are_counted_against_their_address(gateway: Gateway, clock: time_machine.Traveller) -> None:
    bad = {"Authorization": "Bearer not-a-token"}
    async with gateway.from_address(new_address()) as http:
        refused = [await ask(http, headers=bad) for _ in range(4)]
        signed_out = await ask(http)

    assert [response.status_code for response in refused] == [401, 401, 401, 429]
    assert [response.headers["ratelimit"] for response in refused[:3]] == ['"minute";r=2;t=60', '"minute";r=1;t=60', '"minute";r=0;t=60']
    assert refused[0].json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert signed_out.status_code == 429


async def test_requests_refused_for_their_body_are_counted(gateway: Gateway, clock: time_machine.Traveller) -> None:
    async with gateway.from_address(new_address()) as http:
        not_json = [await http.post("/graphql", content=b"{", headers={"Content-Type": "application/json"}) for _ in range(2)]
        not_parsing = await http.post("/graphql", json={"query": "{ video(id: "})
        then = await ask(http)

    assert [response.status_code for response in not_json] == [400, 400]
    assert not_parsing.status_code == 200  # a document that does not parse, under plain JSON
    assert [response.headers["ratelimit"] for response in (*not_json, not_parsing)] == [
        '"minute";r=2;t=60',
        '"minute";r=1;t=60',
        '"minute";r=0;t=60',
    ]
    assert then.status_code == 429


@pytest.mark.parametrize(
    ("method", "path"),
    [pytest.param("GET", "/healthz", id="healthz"), pytest.param("GET", "/readyz", id="readyz"), pytest.param("GET", "/", id="dashboard")],
)
async def test_other_routes_are_not_limited(gateway: Gateway, clock: time_machine.Traveller, method: str, path: str) -> None:
    async with gateway.from_address(new_address()) as http:
        await statuses(http, 3)
        answers = [await http.request(method, path) for _ in range(5)]

    assert [answer.status_code for answer in answers] == [200] * 5
    assert not any("ratelimit" in answer.headers for answer in answers)


# --- the policy decides the limit -----------------------------------------------------------------


async def test_limit_changed_in_the_policy_applies_on_reload(gateway: Gateway, policy_dir: Path, clock: time_machine.Traveller) -> None:
    async with gateway.from_address(new_address()) as http:
        assert await statuses(http, 4) == [200, 200, 200, 429]
        try:
            set_rate_limits(policy_dir, {**LIMITS, "anonymous": 5})
            await gateway.policy_in_force()
            # The requests counted already count under the new limit: two more, not five.
            raised = await statuses(http, 3)
            set_rate_limits(policy_dir, {**LIMITS, "anonymous": 1})
            await gateway.policy_in_force()
            lowered = await ask(http)
        finally:
            set_rate_limits(policy_dir, LIMITS)
            await gateway.policy_in_force()

    assert raised == [200, 200, 429]
    assert (lowered.status_code, lowered.headers["ratelimit-policy"]) == (429, '"minute";q=1;w=60')


async def test_policy_setting_no_limit_fails_closed(gateway: Gateway, policy_dir: Path) -> None:
    try:
        set_rate_limits(policy_dir, {**LIMITS, "anonymous": "many"})
        await gateway.policy_in_force()
        response = await ask(gateway.http)
    finally:
        set_rate_limits(policy_dir, LIMITS)
        await gateway.policy_in_force()

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["data"] is None
    assert [error["extensions"]["code"] for error in body["errors"]] == ["POLICY_UNAVAILABLE"]
    assert "ratelimit" not in response.headers


class UnreachableStorage(MemoryStorage):
    """A shared storage that cannot be reached (a Redis server gone away): every count fails with
    the storage's own error, as `limits` passes it on."""

    STORAGE_SCHEME = ["async+unreachable"]

    @property
    def base_exceptions(self) -> type[Exception]:
        return ConnectionError

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        raise ConnectionError("connection refused")


async def test_storage_that_cannot_be_reached_lets_nothing_through(database_url: str, policy_dir: Path) -> None:
    async with running_gateway(database_url, policy_dir=policy_dir, rate_limit_storage="unreachable://") as unreachable:
        response = await ask(unreachable.http)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"errors": [{"message": "the rate limits cannot be counted just now; try again shortly", "extensions": {"code": "STORE_UNAVAILABLE"}}]}
