"""The GraphQL tests' harness: the real app with its lifespan running, and HTTP clients of it as any principal."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from gateway.auth import ANONYMOUS, Principal, PrincipalKind, create_token
from gateway.ingest.ndjson import parse_objects
from gateway.store.ingest import BatchResult, EventWriter
from gateway.store.pools import Store

__all__ = ["APP_SECRET", "Gateway", "authorization", "serve"]

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
    return {"Authorization": f"Bearer {create_token(APP_SECRET, principal.kind, principal.id, ttl_seconds=300)}"}


@contextlib.asynccontextmanager
async def serve(app: Starlette, state: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` whose requests see the lifespan `state`."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        # As an ASGI server does: each request's scope carries a copy of the lifespan state.
        await app({**scope, "state": dict(state)}, receive, send)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://gateway") as http:
        yield http
