"""The daily ε budget, kept in Postgres (real server, through the reader pool as the gateway uses it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from fractions import Fraction
from typing import cast

import asyncpg
import pytest

from gateway.auth import Principal, PrincipalKind
from gateway.errors import BudgetExhausted
from gateway.privacy.budget import BudgetLedger
from gateway.privacy.disclosure import Disclosure
from gateway.privacy.terms import PrivacyTerms
from gateway.store.pools import Store
from gateway.store.releases import ReleaseReader

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
TERMS = PrivacyTerms.parse(
    {"k_threshold": 50, "granularity_floor": "DAY", "bucket_delay_seconds": 3600, "epsilon": {"views": 0.5, "shares": 0.25}, "epsilon_budget_per_day": 1.0}
)


# The budget reads no release: only what a request's privacy service drew.
NO_READER = cast(ReleaseReader, None)


def layer_for(principal: Principal, *draws: tuple[str, int], now: datetime = NOW) -> Disclosure:
    """A request's privacy service after it released the draws of (metric, release) pairs, each
    costing the metric's ε (the budget treats a set of draws by its name only)."""
    layer = Disclosure(TERMS, NO_READER, b"k" * 32, now)
    for metric, release in draws:
        layer.draws[f"video-1/{metric}/{release}".encode()] = TERMS.epsilon[metric]
    return layer


def app(user: str = "user-1", app_id: str = "app-1") -> Principal:
    return Principal(PrincipalKind.APP, user, frozenset({"stats"}), app_id=app_id)


async def spent_rows(admin: asyncpg.Connection) -> int:
    count: int = await admin.fetchval("SELECT count(*) FROM privacy_spend")
    return count


async def test_draws_are_charged_and_the_rest_is_reported(store: Store) -> None:
    layer = layer_for(app(user="u-charged"), ("views", 100), ("shares", 10))
    await BudgetLedger(store.reader).charge(layer, app(user="u-charged"))
    assert (layer.epsilon_spent, layer.budget_left) == (Fraction(3, 4), Fraction(1, 4))
    assert layer.report()["epsilonSpent"] == 0.75 and layer.report()["budgetLeft"] == 0.25


async def test_the_same_draws_released_again_cost_nothing(store: Store) -> None:
    principal = app(user="u-repeat")
    for _ in range(5):
        layer = layer_for(principal, ("views", 100))
        await BudgetLedger(store.reader).charge(layer, principal)
    assert (layer.epsilon_spent, layer.budget_left) == (0, Fraction(1, 2))


async def test_the_draws_of_a_new_release_are_charged(store: Store) -> None:
    principal = app(user="u-changed")
    await BudgetLedger(store.reader).charge(layer_for(principal, ("views", 100)), principal)
    layer = layer_for(principal, ("views", 101))
    await BudgetLedger(store.reader).charge(layer, principal)
    assert layer.epsilon_spent == Fraction(1, 2) and layer.budget_left == 0


async def test_overspending_releases_nothing_and_says_when_the_budget_resets(store: Store, admin: asyncpg.Connection) -> None:
    principal = app(user="u-over")
    await BudgetLedger(store.reader).charge(layer_for(principal, ("views", 1)), principal)
    await BudgetLedger(store.reader).charge(layer_for(principal, ("shares", 1)), principal)
    before = await spent_rows(admin)
    with pytest.raises(BudgetExhausted) as refused:
        await BudgetLedger(store.reader).charge(layer_for(principal, ("views", 2), ("shares", 2)), principal)
    assert refused.value.resets_at == datetime(2026, 11, 28, tzinfo=UTC)
    assert refused.value.budget_left == 0.25
    assert await spent_rows(admin) == before  # nothing of the refused request was recorded
    # What was answered before is still free to ask again.
    layer = layer_for(principal, ("views", 1))
    await BudgetLedger(store.reader).charge(layer, principal)
    assert layer.epsilon_spent == 0


async def test_budgets_are_per_app_per_user_per_day(store: Store) -> None:
    for principal, now in [
        (app(user="u-split", app_id="app-a"), NOW),
        (app(user="u-split", app_id="app-b"), NOW),
        (app(user="u-split-2", app_id="app-a"), NOW),
        (app(user="u-split", app_id="app-a"), datetime(2026, 11, 28, 9, tzinfo=UTC)),
    ]:
        layer = layer_for(principal, ("views", 1), ("shares", 1), now=now)
        await BudgetLedger(store.reader).charge(layer, principal)
        assert layer.epsilon_spent == Fraction(3, 4), (principal, now)


async def test_concurrent_requests_cannot_both_fit_in_what_is_left(store: Store) -> None:
    principal = app(user="u-race")
    layers = [layer_for(principal, ("views", value)) for value in range(10, 16)]  # six distinct draws of ε 0.5
    results = await asyncio.gather(*(BudgetLedger(store.reader).charge(layer, principal) for layer in layers), return_exceptions=True)
    allowed = [result for result in results if result is None]
    refused = [result for result in results if isinstance(result, BudgetExhausted)]
    assert (len(allowed), len(refused)) == (2, 4)


async def test_the_reader_cannot_read_or_write_the_ledger(store: Store) -> None:
    async with store.reader.acquire() as conn:
        for statement in ("SELECT * FROM privacy_spend", "DELETE FROM privacy_spend", "INSERT INTO privacy_spend VALUES ('a', 'u', now(), 'x', 0)"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)


async def test_a_ledger_skips_the_round_trip_for_what_it_saw_charged(store: Store, admin: asyncpg.Connection) -> None:
    ledger = BudgetLedger(store.reader)
    principal = app(user="u-memory")
    await ledger.charge(layer_for(principal, ("views", 100)), principal)
    await admin.execute("DELETE FROM privacy_spend WHERE user_id = 'u-memory'")  # were it asked, the server would charge again
    layer = layer_for(principal, ("views", 100))
    await ledger.charge(layer, principal)
    assert (layer.epsilon_spent, layer.budget_left) == (0, Fraction(1, 2))
    assert await admin.fetchval("SELECT count(*) FROM privacy_spend WHERE user_id = 'u-memory'") == 0
    # Anything new goes to the server.
    layer = layer_for(principal, ("views", 100), ("shares", 3))
    await ledger.charge(layer, principal)
    assert layer.epsilon_spent == Fraction(3, 4)


async def test_principals_without_a_budget_are_not_charged(store: Store, admin: asyncpg.Connection) -> None:
    before = await spent_rows(admin)
    owner_terms = PrivacyTerms.parse({"k_threshold": 5, "granularity_floor": "HOUR", "bucket_delay_seconds": 3600})
    user = Principal(PrincipalKind.USER, "creator-1")
    layer = Disclosure(owner_terms, NO_READER, b"k" * 32, NOW)
    await BudgetLedger(store.reader).charge(layer, user)
    assert layer.budget_left is None and await spent_rows(admin) == before


async def test_an_unreachable_ledger_refuses_the_request_as_store_unavailable(database_url: str) -> None:
    from conftest import SECRET

    from gateway.errors import StoreUnavailable

    closed = await Store.open(database_url, SECRET)
    await closed.close()
    principal = app(user="u-unreachable")
    with pytest.raises(StoreUnavailable, match="ε budget"):
        await BudgetLedger(closed.reader).charge(layer_for(principal, ("views", 1)), principal)
