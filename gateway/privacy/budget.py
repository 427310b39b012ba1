"""The daily ε budget: each (app, user) may spend `epsilon_budget_per_day` per UTC day.

A request's noisy releases are charged after its resolvers ran and before
anything is sent, in one call to `spend_epsilon()` (migration 0007), which
serialises per (app, user): a request that would overspend releases nothing
and gets BUDGET_EXHAUSTED with the moment the budget resets. A release already
charged today (the same question about the same data) costs nothing again.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import asyncpg

from gateway.auth import Principal
from gateway.errors import BudgetExhausted
from gateway.privacy.layer import PrivacyLayer
from gateway.privacy.release import truncate
from gateway.store.queries import Granularity

__all__ = ["charge"]


def _decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)


async def charge(pool: asyncpg.Pool, layer: PrivacyLayer, principal: Principal) -> None:
    """Charge `layer`'s releases to the principal's budget for today; BudgetExhausted when they do not fit."""
    budget = layer.terms.budget_per_day
    if budget is None:
        return
    day_start = truncate(layer.now, Granularity.DAY)
    releases = list(layer.releases.items())
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT allowed, charged, spent FROM spend_epsilon($1, $2, $3, $4::bytea[], $5::numeric[], $6)",
            principal.app_id or principal.kind.value,
            principal.id or "",
            day_start.date(),
            [digest for digest, _ in releases],
            [_decimal(cost) for _, cost in releases],
            _decimal(budget),
        )
    spent = Fraction(row["spent"])
    left = max(Fraction(0), budget - spent)
    layer.budget_left = left
    if not row["allowed"]:
        raise BudgetExhausted(
            f"this question needs ε {float(Fraction(row['charged'])):g} and {float(left):g} is left of today's budget",
            resets_at=day_start + timedelta(days=1),
            budget_left=float(left),
        )
    layer.epsilon_spent = Fraction(row["charged"])
