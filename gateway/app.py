"""The Starlette application: routes, and the lifespan that opens the store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from gateway.config import Settings
from gateway.graphql.schema import build_schema
from gateway.routes.errors import EXCEPTION_HANDLERS
from gateway.routes.events import post_events
from gateway.routes.graphql import graphql_endpoint
from gateway.routes.health import healthz, readyz
from gateway.store.ingest import EventWriter
from gateway.store.migrate import migrate
from gateway.store.pools import Store
from gateway.store.server import database_url, release_embedded

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    schema = build_schema()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        secret = settings.signing_secret()
        url = await database_url(settings)
        await migrate(url, secret)
        store = await Store.open(url, secret)
        try:
            yield {
                "settings": settings,
                "secret": secret,
                "store": store,
                "writer": EventWriter(store.ingest),
                "schema": schema,
            }
        finally:
            await store.close()
            await asyncio.to_thread(release_embedded, settings)

    routes = [
        Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
        Route("/events", post_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)
