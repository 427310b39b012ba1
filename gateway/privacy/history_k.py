"""Keeps the release history's k equal to the smallest k the policy in force gives any principal.

Releases are made at ingest (gateway.store.ingest), which has no policy of its
own: it reads the history's k from the store. The server asks the policy for
each principal kind's obligations when it starts and whenever a new revision
comes into force, and stores the smallest k. A principal given a larger k sees
only the releases at which the count of people crossed a multiple of its k.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg

from gateway.auth import PrincipalKind
from gateway.errors import GatewayError
from gateway.policy.decision import PolicyEngine, parse_decision
from gateway.privacy.terms import terms_of
from gateway.store.failures import STORE_FAILURES
from gateway.store.history import set_history_k

__all__ = ["keeping_history_k", "smallest_k", "sync_history_k"]

log = logging.getLogger(__name__)

# How often the server looks for a new policy revision.
CHECK_EVERY = 2.0


async def smallest_k(engine: PolicyEngine) -> int:
    """The smallest `k_threshold` the policy in force gives any principal kind."""
    found = []
    for kind in PrincipalKind:
        probe = {
            "principal": {"kind": kind.value, "id": None if kind is PrincipalKind.ANONYMOUS else "probe", "scopes": []},
            "operation": {"name": None, "type": "query", "hash": ""},
            "fields": [],
        }
        found.append(terms_of(parse_decision(await engine.evaluate(probe), []).obligations).k)
    return min(found)


async def sync_history_k(engine: PolicyEngine, pool: asyncpg.Pool) -> int | None:
    """Stores the policy's smallest k as the history's; None (and a warning) when the policy or the store cannot say."""
    try:
        k = await smallest_k(engine)
        async with pool.acquire() as conn:
            if await set_history_k(conn, k):
                log.info("the release history now advances in steps of %d new people (policy %s)", k, engine.revision[:12])
    except (GatewayError, asyncpg.PostgresError, *STORE_FAILURES) as exc:
        log.warning("the release history keeps its k: %s", exc)
        return None
    return k


@contextlib.asynccontextmanager
async def keeping_history_k(engine: PolicyEngine, pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Syncs the history's k now, then whenever the policy's revision changes, until the block exits."""
    await sync_history_k(engine, pool)

    async def watch(synced: str) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY)
            if engine.revision and engine.revision != synced:
                synced = engine.revision
                await sync_history_k(engine, pool)

    task = asyncio.create_task(watch(engine.revision))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
