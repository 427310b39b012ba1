"""The pages a browser gets (the dashboard, the IDE, the demo's creators) and CORS, over HTTP against
the real app; what the pages do in a browser is tests/browser's."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gateway.auth import PrincipalKind, authenticate
from gateway.routes.pages import DASHBOARD, GRAPHIQL

from harness import APP_SECRET, Gateway, running_gateway

ROOT = Path(__file__).parents[2]
ORIGIN = "https://dashboard.example"
VIDEOS = "query { __typename }"


@pytest.fixture(scope="module")
async def ide(database_url: str) -> AsyncIterator[Gateway]:
    """A gateway as `make run` starts it: IDE and demo on, and one origin allowed."""
    async with running_gateway(database_url, ide=True, demo=True, cors_origins=(ORIGIN,)) as started:
        yield started


@pytest.fixture(scope="module")
async def plain(database_url: str) -> AsyncIterator[Gateway]:
    """A gateway at the shipped defaults."""
    async with running_gateway(database_url) as started:
        yield started


class _Loads(HTMLParser):
    """Every address a page loads (scripts, styles, icons, images)."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        address = attributes.get("src") or (attributes.get("href") if tag == "link" else None)
        if address:
            self.addresses.append((tag, address, attributes.get("integrity")))


def loads(page: Path) -> list[tuple[str, str, str | None]]:
    parser = _Loads()
    parser.feed(page.read_text())
    return parser.addresses


@pytest.mark.parametrize("page", [DASHBOARD / "index.html", GRAPHIQL / "index.html"], ids=["dashboard", "graphiql"])
def test_pages_load_nothing_from_elsewhere(page: Path) -> None:
    addresses = loads(page)

    assert addresses
    for tag, address, _ in addresses:
        assert address.startswith(("/static/", "data:")), f"<{tag}> loads {address}"
    assert not re.search(r"<script>(?!\s*</script>)", page.read_text()), "an inline script: the page's CSP refuses it"


def test_the_ides_vendored_files_are_the_pinned_ones() -> None:
    """Each third-party file of the IDE has the hash recorded for its pinned version (the integrity
    hashes of Strawberry's own CDN page), and index.html loads each with that hash."""
    checked = subprocess.run([sys.executable, str(ROOT / "scripts" / "refresh_graphiql.py"), "--check"], capture_output=True, text=True, timeout=120)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert all(integrity for tag, address, integrity in loads(GRAPHIQL / "index.html") if "/vendor/" in address)


async def test_the_dashboard_is_served_with_a_policy_that_keeps_it_on_this_origin(plain: Gateway) -> None:
    response = await plain.http.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy and "script-src 'self'" in policy
    for tag, address, _ in loads(DASHBOARD / "index.html"):
        if address.startswith("/static/"):
            assert (await plain.http.get(address)).status_code == 200, address
    # The same page reached as a file carries the same policy (else a link would sidestep it).
    as_file = await plain.http.get("/static/dashboard/index.html")
    assert as_file.status_code == 200
    assert as_file.headers["content-security-policy"] == policy


async def test_the_ide_is_off_unless_asked_for(plain: Gateway, ide: Gateway) -> None:
    off = await plain.http.get("/graphiql")
    assert off.status_code == 404
    assert off.json()["error"]["code"] == "NOT_FOUND"
    assert (await plain.http.get("/static/graphiql/graphiql.js")).status_code == 404

    on = await ide.http.get("/graphiql")
    assert on.status_code == 200
    assert "default-src 'self'" in on.headers["content-security-policy"]
    for tag, address, _ in loads(GRAPHIQL / "index.html"):
        if address.startswith("/static/"):
            assert (await ide.http.get(address)).status_code == 200, address


async def test_the_ide_is_under_the_policy_like_any_client(ide: Gateway) -> None:
    """The IDE is a page, not a way around the policy: what it sends without a token is anonymous."""
    response = await ide.http.post("/graphql", json={"query": '{ video(id: "v1") { stats { likeRatio } } }'})

    assert [error["extensions"]["code"] for error in response.json()["errors"]] == ["FORBIDDEN"]


async def test_demo_creators_are_offered_only_in_the_demo(plain: Gateway, ide: Gateway) -> None:
    await ide.backfill(
        [
            {"event_id": f"pub-{n}", "type": "video_published", "occurred_at": "2026-11-01T10:00:00Z", "video_id": f"demo-v{n}",
             "creator_id": "demo-busy" if n < 3 else "demo-quiet", "actor_id": "demo-busy" if n < 3 else "demo-quiet"}
            for n in range(4)
        ]
    )
    assert (await plain.http.get("/demo/creators")).status_code == 404

    response = await ide.http.get("/demo/creators")

    assert response.status_code == 200
    creators = response.json()["creators"]
    assert [creator["id"] for creator in creators][:2] == ["demo-busy", "demo-quiet"]
    assert creators[0]["videos"] == 3
    principal = authenticate(f"Bearer {creators[0]['token']}", APP_SECRET)
    assert (principal.kind, principal.id) == (PrincipalKind.USER, "demo-busy")
    assert response.headers["cache-control"] == "no-store"


async def test_cors_preflight_answers_for_an_allowed_origin_only(plain: Gateway, ide: Gateway) -> None:
    asking = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}

    allowed = await ide.http.options("/graphql", headers=asking)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert {"authorization", "content-type"} <= {h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")}
    # Bearer tokens, never cookies: the browser is not told it may send credentials.
    assert "access-control-allow-credentials" not in allowed.headers

    other = await ide.http.options("/graphql", headers={**asking, "Origin": "https://elsewhere.example"})
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers

    # No origins configured (the default): no CORS at all.
    assert "access-control-allow-origin" not in (await plain.http.options("/graphql", headers=asking)).headers


async def test_a_cross_origin_request_gets_its_answer_and_the_headers_it_may_read(ide: Gateway) -> None:
    response = await ide.http.post("/graphql", json={"query": VIDEOS}, headers={"Origin": ORIGIN})

    assert response.json()["data"] == {"__typename": "Query"}
    assert response.headers["access-control-allow-origin"] == ORIGIN
    exposed = {header.strip().lower() for header in response.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "retry-after", "ratelimit", "ratelimit-policy"} <= exposed
    assert {"ratelimit", "ratelimit-policy"} <= set(response.headers)
