"""The GraphQL tests' harness: the real app with its lifespan running, and HTTP clients of it as any principal."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from gateway.auth import ANONYMOUS, Principal, PrincipalKind, create_app_token, create_token
from gateway.ingest.ndjson import parse_objects
from gateway.store.ingest import BatchResult, EventWriter
from gateway.store.pools import Store

__all__ = ["APP_SECRET", "FIELD_TEST_TERMS", "Gateway", "authorization", "field_test_privacy", "policies_with", "serve"]

SHIPPED_POLICIES = Path(__file__).parents[2] / "policies"

# The field tests check what each field computes from a hand-counted fixture of a few people,
# so they run under the shipped policy with its thresholds off: no k, no delay after a bucket
# closes. What the thresholds do is tested in tests/privacy and tests/attacks, under the
# shipped terms.
FIELD_TEST_TERMS = {"k_threshold": 0, "bucket_delay_seconds": 0}

def field_test_privacy(floor: str, suppressed_cells: int = 0) -> dict[str, Any]:
    """`extensions.privacy` of an answer under FIELD_TEST_TERMS to a principal without noise."""
    return {"k": 0, "granularityFloor": floor, "suppressedCells": suppressed_cells, "noised": False, "epsilonSpent": 0.0, "budgetLeft": None}


# The app signs with a secret long enough for HS256 (PyJWT warns, an error here, below 32 bytes).
APP_SECRET = "graphql-tests-app-secret-" + "0123456789abcdef" * 2


@dataclass
class Gateway:
    """The app's lifespan state (its store), and a client that sends the app requests as a principal."""

    state: dict[str, Any]
    http: httpx.AsyncClient

    @property
    def store(self) -> Store:
        store: Store = self.state["store"]
        return store

    async def ingest(self, events: Iterable[dict[str, Any]]) -> BatchResult:
        """Stores events the way `POST /events` does: validated, then one batch through the app's writer."""
        batch = parse_objects(events)
        batch.raise_if_invalid()
        writer: EventWriter = self.state["writer"]
        return await writer.write(batch.records)

    async def graphql(self, query: str, variables: dict[str, Any] | None = None, *, principal: Principal = ANONYMOUS) -> httpx.Response:
        """POST /graphql as `principal` (a bearer token signed with the app's secret, none for anonymous)."""
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.http.post("/graphql", json=body, headers=authorization(principal))


def authorization(principal: Principal) -> dict[str, str]:
    if principal.kind is PrincipalKind.ANONYMOUS:
        return {}
    assert principal.id is not None
    if principal.kind is PrincipalKind.APP:
        app_id = principal.app_id or "app-tests"
        token = create_app_token(APP_SECRET, app_id, principal.id, sorted(principal.scopes) or ["stats"], ttl_seconds=300)
    else:
        token = create_token(APP_SECRET, principal.kind, principal.id, ttl_seconds=300, scopes=principal.scopes)
    return {"Authorization": f"Bearer {token}"}


def policies_with(target: Path, terms: dict[str, Any]) -> Path:
    """A copy of the shipped policies in `target` whose obligations set `terms` for every principal kind."""
    # The shipped Rego tests pin the shipped figures; a policy with other figures goes without them.
    shutil.copytree(SHIPPED_POLICIES, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*_test.rego"))
    data_file = target / "data.json"
    data = json.loads(data_file.read_text())
    obligations = data["obligations"]
    obligations["defaults"].update(terms)
    for overrides in obligations["principals"].values():
        overrides.update(terms)
    data_file.write_text(json.dumps(data, indent=2))
    return target


@contextlib.asynccontextmanager
async def serve(app: Starlette, state: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` whose requests see the lifespan `state`."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        # As an ASGI server does: each request's scope carries a copy of the lifespan state.
        await app({**scope, "state": dict(state)}, receive, send)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://gateway") as http:
        yield http
