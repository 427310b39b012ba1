"""The OAuth consent page in Debian's chromium, against a real `gateway serve`: a user signed in
through the dashboard (or pasting a token) approves or denies an app, the browser is sent back to
the app's redirect URI, and the code it carries works, once, at the token endpoint."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636.challenge import create_s256_code_challenge

from processes import serving

from .conftest import PHONE, DemoServer, Watched

CALLBACK = "https://acme.example/callback"
TOKEN_KEY = "privacy-gateway.token"


@pytest.fixture(scope="module")
async def served(chromium: Path, database_url: str) -> AsyncIterator[DemoServer]:
    """`gateway serve` over an empty store: the consent page needs no data."""
    directory = Path(tempfile.mkdtemp(prefix="gateway-consent-"))
    try:
        async with serving(database_url, directory) as server:
            yield DemoServer(server, database_url, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
async def client(served: DemoServer) -> dict[str, str]:
    printed = await served.cli("apps", "create", "--name", "Acme <b>Analytics</b>", "--redirect-uri", CALLBACK)
    return dict(line.split(": ", 1) for line in printed.strip().splitlines())


async def user_token(served: DemoServer, subject: str) -> str:
    return (await served.cli("token", "create", "--kind", "user", "--subject", subject)).strip()


async def open_consent(open_page: Any, client: dict[str, str], served: DemoServer, *, signed_in: str | None, viewport: Any = None) -> tuple[Watched, str, list[str]]:
    """The consent page for `client` asking stats and insights; the app's callback answered by the
    browser context itself (the app's host is not reached). Returns the page, the PKCE verifier and
    the callback URLs the browser was sent to."""
    watched: Watched = await (open_page(viewport) if viewport else open_page())
    landed: list[str] = []

    async def callback(route: Any) -> None:
        landed.append(route.request.url)
        await route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>Acme</title><p>back at the app</p>")

    await watched.context.route(CALLBACK + "*", callback)
    if signed_in:
        # As the dashboard's sign-in leaves it: the token in this tab's sessionStorage.
        await watched.context.add_init_script(f"sessionStorage.setItem({TOKEN_KEY!r}, {signed_in!r})")
    verifier = secrets.token_urlsafe(48)
    params = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": CALLBACK,
        "scope": "stats insights",
        "state": "browser-state",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    await watched.page.goto(f"{served.url}/oauth/authorize?{urlencode(params)}")
    return watched, verifier, landed


async def test_a_signed_in_user_approves_and_the_app_gets_a_working_code(
    open_page: Any, served: DemoServer, client: dict[str, str], artifacts: Path
) -> None:
    token = await user_token(served, "u7")
    watched, verifier, landed = await open_consent(open_page, client, served, signed_in=token)
    page = watched.page

    assert await page.text_content("[data-testid=app-name]") == "Acme <b>Analytics</b>", "the name is shown as text, never as markup"
    scopes = await page.locator("[data-testid=scopes] li").all_text_contents()
    assert [scope.split(":")[0] for scope in scopes] == ["insights", "stats"]
    assert "learn who shared any video, not even what you shared" in (await page.text_content("[data-testid=never]") or "")
    assert await page.text_content("[data-testid=signed-in-as]") == "Signed in as u7."
    await page.screenshot(path=str(artifacts / "consent.png"), full_page=True)

    await page.click("[data-testid=approve]")
    await page.wait_for_url(CALLBACK + "*")

    back = {key: values[0] for key, values in parse_qs(urlsplit(landed[-1]).query).items()}
    assert back["state"] == "browser-state"
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        exchanged = await http.post(
            "/oauth/token",
            data={"grant_type": "authorization_code", "code": back["code"], "redirect_uri": CALLBACK, "code_verifier": verifier},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert exchanged.status_code == 200, exchanged.text
        answer = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {exchanged.json()['access_token']}"})
    assert answer.status_code == 200, answer.text
    assert exchanged.json()["scope"] == "insights stats"
    requests_elsewhere = [url for url in watched.requests if not url.startswith(served.url + "/") and not url.startswith(CALLBACK)]
    assert requests_elsewhere == []
    assert watched.console_errors == []


async def test_a_user_who_pastes_a_token_can_deny_at_phone_width(open_page: Any, served: DemoServer, client: dict[str, str]) -> None:
    watched, _, landed = await open_consent(open_page, client, served, signed_in=None, viewport=PHONE)
    page = watched.page

    await page.click("[data-testid=approve]")
    assert "Sign in first" in (await page.text_content("[data-testid=error]") or "")
    await page.fill("[data-testid=token-input]", await user_token(served, "u8"))
    overflow = await page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    await page.click("[data-testid=deny]")
    await page.wait_for_url(CALLBACK + "*")

    back = {key: values[0] for key, values in parse_qs(urlsplit(landed[-1]).query).items()}
    assert (back["error"], back["state"]) == ("access_denied", "browser-state")
    assert "code" not in back
    assert overflow <= 0, "no horizontal scroll at 375 px"


async def test_a_bad_token_is_told_on_the_page_and_nothing_is_sent_back(open_page: Any, served: DemoServer, client: dict[str, str]) -> None:
    watched, _, landed = await open_consent(open_page, client, served, signed_in=None)
    page = watched.page

    await page.fill("[data-testid=token-input]", "not-a-token")
    await page.click("[data-testid=approve]")
    await page.wait_for_function("() => document.querySelector('[data-testid=error]').textContent.length > 0")

    assert "invalid token" in (await page.text_content("[data-testid=error]") or "")
    assert landed == []
    assert await page.is_enabled("[data-testid=approve]")
