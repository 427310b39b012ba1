"""The daily ε budget: each (app, user) may spend `epsilon_budget_per_day` per UTC day.

The budget counts the distinct draws of noise a request releases
(gateway.privacy.disclosure): a set of draws already charged today, whatever
field, question or earlier request released it, costs nothing again. They are
charged after the resolvers ran and before anything is sent, in one call to
`spend_epsilon()` (migration 0007), which serialises per (app, user): a request
that would overspend releases nothing and gets BUDGET_EXHAUSTED with the moment
the budget resets.

A charged set of draws stays charged for its day, so each process remembers
what it has seen charged and skips the round trip when a request asks nothing
new (an app polling one dashboard). The `budgetLeft` it then reports is what
was left when this process last charged: other replicas may have spent since.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import asyncpg
from cachetools import LRUCache

from gateway.auth import Principal
from gateway.errors import BudgetExhausted, StoreUnavailable
from gateway.privacy.disclosure import Disclosure
from gateway.privacy.release import Granularity, truncate
from gateway.store.failures import STORE_FAILURES

__all__ = ["BudgetLedger"]


def _decimal(value: Fraction) -> Decimal:
    return Decimal(value.numerator) / Decimal(value.denominator)


ZERO = Fraction(0)


@dataclass
class _Charged:
    draws: set[bytes] = field(default_factory=set)
    left: Fraction = ZERO  # of the day's budget, when this process last charged


class BudgetLedger:
    """Charges requests' draws through one pool (one database), remembering per (app, user,
    day) what it has seen charged and the day's spend then."""

    MEMORY_SIZE = 10_000

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._charged: LRUCache[tuple[str, str, date], _Charged] = LRUCache(self.MEMORY_SIZE)
        # For /metrics: requests refused for want of budget.
        self.refused = 0

    async def charge(self, disclosure: Disclosure, principal: Principal) -> None:
        """Charge the draws `disclosure` released to the principal's budget for today; BudgetExhausted when they do not fit."""
        budget = disclosure.terms.budget_per_day
        if budget is None:
            return
        day_start = truncate(disclosure.now, Granularity.DAY)
        account = (principal.app_id or principal.kind.value, principal.id or "", day_start.date())
        known = self._charged.get(account)
        if known is not None and known.draws.issuperset(disclosure.draws):
            disclosure.budget_left = known.left
            disclosure.epsilon_spent = ZERO
            return
        draws = list(disclosure.draws.items())
        try:
            async with self._pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT allowed, charged, spent FROM spend_epsilon($1, $2, $3, $4::bytea[], $5::numeric[], $6)",
                    *account,
                    [digest for digest, _ in draws],
                    [_decimal(cost) for _, cost in draws],
                    _decimal(budget),
                )
        except STORE_FAILURES as exc:
            # Unanswered, the request releases nothing: better refused than served unaccounted.
            raise StoreUnavailable(f"the ε budget could not be checked: the store is unavailable ({type(exc).__name__})") from exc
        spent = Fraction(row["spent"])
        left = max(Fraction(0), budget - spent)
        disclosure.budget_left = left
        remembered = self._charged.setdefault(account, _Charged())
        remembered.left = left
        if not row["allowed"]:
            self.refused += 1
            raise BudgetExhausted(
                # Not how much the answer needed: that would say how many of its cells were shown.
                f"what is left of today's ε budget ({float(left):g}) does not cover this answer",
                resets_at=day_start + timedelta(days=1),
                budget_left=float(left),
            )
        remembered.draws.update(disclosure.draws)
        disclosure.epsilon_spent = Fraction(row["charged"])
