"""Pages for a browser, from files shipped in the package (nothing is loaded from elsewhere): the
creator dashboard at `/`, and the GraphiQL IDE at `/graphiql` when `GATEWAY_IDE` is on. Both call
`/graphql` as any frontend does, under the same policy.

In the demo (`GATEWAY_DEMO`), `/demo/creators` offers tokens of the store's busiest creators so the
dashboard can sign one in without a token pasted."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.auth import PrincipalKind, create_token
from gateway.config import Settings
from gateway.errors import NotFound
from gateway.store import queries
from gateway.store.failures import STORE_FAILURES, store_unavailable

__all__ = ["DEMO_CREATORS", "announce_demo", "page_routes"]

log = logging.getLogger("gateway.demo")

STATIC = Path(__file__).resolve().parent.parent / "static"
DASHBOARD = STATIC / "dashboard"
GRAPHIQL = STATIC / "graphiql"

# Scripts, styles and data only from this origin; the page talks only to this origin. (Inline
# styles are allowed: React and the charts set style attributes.)
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

# Creators the demo offers, and how long their tokens last.
DEMO_CREATORS = 5
DEMO_TOKEN_SECONDS = 12 * 3600


class PageFiles(StaticFiles):
    """The pages' files, each with the pages' headers: an HTML file reached here is the same page
    as at its route, under the same policy."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


async def dashboard(request: Request) -> Response:
    return FileResponse(DASHBOARD / "index.html", headers=PAGE_HEADERS)


async def graphiql(request: Request) -> Response:
    return FileResponse(GRAPHIQL / "index.html", headers=PAGE_HEADERS)


async def busiest_creators(conn: asyncpg.Connection, secret: str) -> list[dict[str, Any]]:
    """The demo store's busiest creators (most videos), each with a user token."""
    return [
        {"id": creator, "videos": videos, "token": create_token(secret, PrincipalKind.USER, creator, DEMO_TOKEN_SECONDS)}
        for creator, videos in await queries.busiest_creators(conn, DEMO_CREATORS)
    ]


async def demo_creators(request: Request) -> Response:
    try:
        async with request.state.store.reader.acquire() as conn:
            creators = await busiest_creators(conn, request.state.secret)
    except STORE_FAILURES as exc:
        raise store_unavailable() from exc
    return JSONResponse({"creators": creators}, headers={"Cache-Control": "no-store"})


async def announce_demo(pool: asyncpg.Pool, secret: str, settings: Settings) -> None:
    """Says where the dashboard is and prints a demo creator's token (the demo only)."""
    async with pool.acquire() as conn:
        creators = await busiest_creators(conn, secret)
    address = f"http://{settings.host}:{settings.port}"
    ide = f"; the GraphQL IDE is at {address}/graphiql" if settings.ide else ""
    if not creators:
        log.info("demo: the dashboard is at %s/ (the store has no videos yet)%s", address, ide)
        return
    busiest = creators[0]
    log.info(
        "demo: the dashboard is at %s/ and offers %d demo creators%s. Creator %s (%d videos) signs in with this token:\n%s",
        address, len(creators), ide, busiest["id"], busiest["videos"], busiest["token"],
    )


async def _off(request: Request) -> Response:
    raise NotFound(f"{request.url.path} is off on this server")


def page_routes(settings: Settings) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/", dashboard, methods=["GET"]),
        Mount("/static/dashboard", app=PageFiles(directory=DASHBOARD), name="dashboard"),
    ]
    if settings.ide:
        routes += [Route("/graphiql", graphiql, methods=["GET"]), Mount("/static/graphiql", app=PageFiles(directory=GRAPHIQL), name="graphiql")]
    else:
        routes.append(Route("/graphiql", _off, methods=["GET"]))
    if settings.demo:
        routes.append(Route("/demo/creators", demo_creators, methods=["GET"]))
    return routes
