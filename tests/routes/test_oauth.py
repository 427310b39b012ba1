"""OAuth 2.0 for apps, end to end over HTTP against the real app and store: consent, code with
PKCE, tokens, rotation, revocation, and every way a code or token is refused."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import jwt
import pytest
from authlib.oauth2.rfc7636.challenge import create_s256_code_challenge
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from gateway.auth import Principal, PrincipalKind
from gateway.oauth.keys import rotate_keys
from gateway.store.apps import revoke_app
from gateway.store.oauth import register_client

from harness import Gateway, authorization, policies_with, running_gateway

ISSUER = "http://127.0.0.1:8000"
CALLBACK = "https://app.example/callback"
STATS = "query { video(id: \"v1\") { id } }"
INSIGHTS = "query { video(id: \"v1\") { shareTimeline(granularity: DAY) { buckets { count } } } }"
ME = "query { me { id } }"


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    # Every request looks the grant and the token family up: a revocation shows at once.
    async with running_gateway(database_url, app_grant_ttl=0) as started:
        yield started


@dataclass
class App:
    client_id: str
    secret: str | None

    def basic(self) -> dict[str, str]:
        assert self.secret is not None
        return {"Authorization": "Basic " + base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()}


@pytest.fixture
async def app(admin: asyncpg.Connection) -> App:
    client_id, secret = await register_client(admin, "Acme Analytics", [CALLBACK, "http://127.0.0.1:9999/cb"], public=False)
    return App(client_id, secret)


def user(subject: str = "u1") -> dict[str, str]:
    return authorization(Principal(PrincipalKind.USER, subject))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def authorize_params(app: App, challenge: str, **changes: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": CALLBACK,
        "scope": "stats activity",
        "state": "st-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(changes)
    return {key: value for key, value in params.items() if value != ""}


def query_of(uri: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(uri).query).items()}


async def decide(gateway: Gateway, params: dict[str, str], decision: str = "approve", subject: str = "u1") -> httpx.Response:
    return await gateway.http.post("/oauth/authorize", data={**params, "decision": decision}, headers=user(subject))


async def code_for(gateway: Gateway, app: App, challenge: str, **changes: str) -> str:
    response = await decide(gateway, authorize_params(app, challenge, **changes))
    assert response.status_code == 200, response.text
    redirect = response.json()["redirect_to"]
    assert redirect.startswith(CALLBACK + "?")
    return query_of(redirect)["code"]


async def exchange(gateway: Gateway, app: App, code: str, verifier: str, **changes: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier, **changes}
    return await gateway.http.post("/oauth/token", data=form, headers=app.basic() if app.secret else {})


async def tokens(gateway: Gateway, app: App, **changes: str) -> dict[str, Any]:
    verifier, challenge = pkce()
    response = await exchange(gateway, app, await code_for(gateway, app, challenge, **changes), verifier)
    assert response.status_code == 200, response.text
    issued: dict[str, Any] = response.json()
    return issued


async def refresh(gateway: Gateway, app: App, refresh_token: str, **changes: str) -> httpx.Response:
    return await gateway.http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token, **changes}, headers=app.basic())


async def ask(gateway: Gateway, access_token: str, query: str = ME) -> httpx.Response:
    return await gateway.http.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {access_token}"})


def refused_as(response: httpx.Response, error: str) -> str:
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] == error, response.text
    assert response.headers["cache-control"] == "no-store"
    description: str = response.json().get("error_description", "")
    return description


# --- the whole flow ---------------------------------------------------------------------------


async def test_consent_page_names_the_app_and_each_scope_in_plain_words(gateway: Gateway, app: App) -> None:
    _, challenge = pkce()
    page = await gateway.http.get("/oauth/authorize", params=authorize_params(app, challenge, scope="stats insights"))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "Acme Analytics" in page.text
    assert "public counts of your videos" in page.text
    assert "like and engagement rates" in page.text
    assert "learn who shared any video, not even what you shared" in page.text


async def test_code_with_pkce_gives_tokens_that_answer_as_the_app_for_the_user(gateway: Gateway, app: App) -> None:
    verifier, challenge = pkce()
    approved = await decide(gateway, authorize_params(app, challenge))
    redirect = query_of(approved.json()["redirect_to"])
    response = await exchange(gateway, app, redirect["code"], verifier)
    issued = response.json()

    assert (redirect["state"], redirect["iss"]) == ("st-123", ISSUER)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert (issued["token_type"], issued["expires_in"], issued["scope"]) == ("Bearer", 3600, "activity stats")
    answer = await ask(gateway, issued["access_token"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"me": {"id": "u1"}}


async def test_access_tokens_verify_against_the_published_keys_with_an_independent_library(gateway: Gateway, app: App) -> None:
    issued = await tokens(gateway, app)
    keys = (await gateway.http.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(issued["access_token"])
    published = jwt.PyJWKSet.from_dict(keys)[header["kid"]]

    claims = jwt.decode(issued["access_token"], published.key, algorithms=["ES256"], audience=ISSUER, issuer=ISSUER)

    assert header["alg"] == "ES256" and header["typ"] == "at+jwt"
    assert all("d" not in key for key in keys["keys"]), "no private key is published"
    assert (claims["sub"], claims["client_id"], claims["scope"]) == ("u1", app.client_id, "activity stats")


async def test_metadata_is_valid_rfc8414(gateway: Gateway) -> None:
    response = await gateway.http.get("/.well-known/oauth-authorization-server")
    document = response.json()

    AuthorizationServerMetadata(document).validate()
    assert document["issuer"] == ISSUER
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert set(document["scopes_supported"]) == {"stats", "insights", "activity"}


async def test_the_scopes_offered_are_the_policy_in_force_s_not_a_refused_edit_s(database_url: str, tmp_path: Path) -> None:
    """An edit that the engine refused (a module of it does not parse) stays on disk; the
    scopes a process offers are still those of the revision it decides with, even when it first
    looks them up after that edit."""
    policies = policies_with(tmp_path / "policies", {})
    async with running_gateway(database_url, policy_dir=policies) as started:
        data_file = policies / "data.json"
        data = json.loads(data_file.read_text())
        data["access"]["principals"]["app"]["scopes"]["everything"] = data["access"]["principals"]["app"]["scopes"]["stats"]
        data_file.write_text(json.dumps(data))
        authz = policies / "gateway" / "authz.rego"
        authz.write_text(authz.read_text() + "\nbroken := {\n")
        revision = started.state["engine"].revision
        assert not await started.state["engine"].reload()
        assert started.state["engine"].revision == revision

        document = (await started.http.get("/.well-known/oauth-authorization-server")).json()
        assert set(document["scopes_supported"]) == {"stats", "insights", "activity"}


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(gateway: Gateway, app: App) -> None:
    first = await tokens(gateway, app)
    second = (await refresh(gateway, app, first["refresh_token"])).json()
    assert (await ask(gateway, second["access_token"])).status_code == 200

    reused = await refresh(gateway, app, first["refresh_token"])

    assert "already used" in refused_as(reused, "invalid_grant")
    refused_as(await refresh(gateway, app, second["refresh_token"]), "invalid_grant")
    for access in (first["access_token"], second["access_token"]):
        answer = await ask(gateway, access)
        assert answer.status_code == 401 and "revoked" in answer.json()["errors"][0]["message"]


async def test_refresh_may_narrow_but_never_widen_the_scopes(gateway: Gateway, app: App) -> None:
    issued = await tokens(gateway, app, scope="stats")

    widened = await refresh(gateway, app, issued["refresh_token"], scope="stats insights")
    narrowed = await refresh(gateway, app, issued["refresh_token"], scope="stats")

    refused_as(widened, "invalid_scope")
    assert narrowed.status_code == 200, "a refused widening leaves the refresh token usable"
    assert narrowed.json()["scope"] == "stats"


async def test_a_scope_the_user_did_not_grant_is_refused_by_the_policy(gateway: Gateway, app: App) -> None:
    issued = await tokens(gateway, app, scope="stats")

    answer = await ask(gateway, issued["access_token"], INSIGHTS)

    assert answer.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert answer.json()["errors"][0]["extensions"]["field"] == "Video.shareTimeline"


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("https://evil.example/callback", id="other-host"),
        pytest.param(CALLBACK + "/more", id="longer-path"),
        pytest.param(CALLBACK + "?next=x", id="added-query"),
        pytest.param("http://127.0.0.1:9998/cb", id="other-port"),
    ],
)
async def test_an_unregistered_redirect_uri_is_told_to_the_user_and_never_followed(gateway: Gateway, app: App, redirect_uri: str) -> None:
    _, challenge = pkce()
    page = await gateway.http.get("/oauth/authorize", params=authorize_params(app, challenge, redirect_uri=redirect_uri))
    decision = await decide(gateway, authorize_params(app, challenge, redirect_uri=redirect_uri))

    assert page.status_code == 400 and "location" not in page.headers
    assert "not a redirect URI registered" in page.text
    assert decision.status_code == 400 and "redirect_to" not in decision.text


async def test_an_unknown_client_is_told_to_the_user(gateway: Gateway) -> None:
    _, challenge = pkce()
    page = await gateway.http.get("/oauth/authorize", params=authorize_params(App("app_nope", None), challenge))

    assert page.status_code == 400 and "no app is registered" in page.text


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        pytest.param({"scope": "stats everything"}, "invalid_scope", id="unknown-scope"),
        pytest.param({"scope": ""}, "invalid_scope", id="no-scope"),
        pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="plain-pkce"),
        pytest.param({"code_challenge": ""}, "invalid_request", id="no-pkce"),
        pytest.param({"response_type": "token"}, "unsupported_response_type", id="implicit"),
    ],
)
async def test_other_bad_requests_go_back_to_the_app_with_an_error_and_the_state(
    gateway: Gateway, app: App, changes: dict[str, str], error: str
) -> None:
    _, challenge = pkce()
    page = await gateway.http.get("/oauth/authorize", params=authorize_params(app, challenge, **changes))

    assert page.status_code == 303
    back = query_of(page.headers["location"])
    assert page.headers["location"].startswith(CALLBACK + "?")
    assert (back["error"], back["state"], back["iss"]) == (error, "st-123", ISSUER)


async def test_deny_sends_access_denied_back(gateway: Gateway, app: App) -> None:
    _, challenge = pkce()
    denied = await decide(gateway, authorize_params(app, challenge), decision="deny")

    back = query_of(denied.json()["redirect_to"])
    assert (back["error"], back["state"]) == ("access_denied", "st-123")
    assert "code" not in back


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param(lambda: {}, 401, id="signed-out"),
        pytest.param(lambda: authorization(Principal(PrincipalKind.COMPLIANCE, "dpo")), 403, id="compliance"),
        pytest.param(lambda: {"Authorization": "Bearer not-a-token"}, 401, id="bad-token"),
    ],
)
async def test_only_a_signed_in_user_decides(gateway: Gateway, app: App, headers: Any, status: int) -> None:
    _, challenge = pkce()
    # The token is made when the test runs: one made at collection may have expired by then.
    response = await gateway.http.post("/oauth/authorize", data={**authorize_params(app, challenge), "decision": "approve"}, headers=headers())

    assert response.status_code == status


async def test_a_replayed_code_is_refused_and_revokes_the_tokens_issued_for_it(gateway: Gateway, app: App) -> None:
    verifier, challenge = pkce()
    code = await code_for(gateway, app, challenge)
    first = (await exchange(gateway, app, code, verifier)).json()

    replayed = await exchange(gateway, app, code, verifier)

    refused_as(replayed, "invalid_grant")
    assert (await ask(gateway, first["access_token"])).status_code == 401
    refused_as(await refresh(gateway, app, first["refresh_token"]), "invalid_grant")


async def test_a_wrong_pkce_verifier_is_refused(gateway: Gateway, app: App) -> None:
    _, challenge = pkce()
    code = await code_for(gateway, app, challenge)
    other_verifier, _ = pkce()

    assert "code_verifier" in refused_as(await exchange(gateway, app, code, other_verifier), "invalid_grant")


async def test_a_code_for_another_redirect_uri_is_refused(gateway: Gateway, app: App) -> None:
    verifier, challenge = pkce()
    code = await code_for(gateway, app, challenge)

    refused_as(await exchange(gateway, app, code, verifier, redirect_uri="http://127.0.0.1:9999/cb"), "invalid_grant")


async def test_an_expired_code_is_refused(gateway: Gateway, app: App) -> None:
    verifier, challenge = pkce()
    code = await code_for(gateway, app, challenge)

    with gateway.clock.at(gateway.clock() + timedelta(seconds=61)):
        expired = await exchange(gateway, app, code, verifier)

    assert "expired" in refused_as(expired, "invalid_grant")


async def test_a_code_is_bound_to_its_client(gateway: Gateway, app: App, admin: asyncpg.Connection) -> None:
    other_id, other_secret = await register_client(admin, "Other", [CALLBACK], public=False)
    verifier, challenge = pkce()
    code = await code_for(gateway, app, challenge)

    stolen = await exchange(gateway, App(other_id, other_secret), code, verifier)

    assert "another client" in refused_as(stolen, "invalid_grant")


@pytest.mark.parametrize(
    ("credentials", "body"),
    [
        pytest.param(lambda app: {"Authorization": "Basic " + base64.b64encode(f"{app.client_id}:wrong".encode()).decode()}, {}, id="wrong-secret"),
        pytest.param(lambda app: {}, {}, id="no-credentials"),
        pytest.param(lambda app: {}, {"client_id": "app_nope"}, id="unknown-client"),
        pytest.param(lambda app: {}, {"client_id": "{id}"}, id="confidential-without-secret"),
    ],
)
async def test_a_client_that_does_not_prove_itself_is_refused(gateway: Gateway, app: App, credentials: Any, body: dict[str, str]) -> None:
    verifier, challenge = pkce()
    code = await code_for(gateway, app, challenge)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}
    form.update({key: value.replace("{id}", app.client_id) for key, value in body.items()})

    response = await gateway.http.post("/oauth/token", data=form, headers=credentials(app))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_a_public_client_uses_pkce_alone(gateway: Gateway, admin: asyncpg.Connection) -> None:
    client_id, secret = await register_client(admin, "Pocket", [CALLBACK], public=True)
    public = App(client_id, None)
    verifier, challenge = pkce()
    code = await code_for(gateway, public, challenge)

    response = await exchange(gateway, public, code, verifier, client_id=client_id)

    assert secret is None
    assert response.status_code == 200, response.text
    assert (await ask(gateway, response.json()["access_token"])).status_code == 200


async def test_apps_revoke_ends_access_and_refresh_tokens(gateway: Gateway, app: App, admin: asyncpg.Connection) -> None:
    issued = await tokens(gateway, app)

    await revoke_app(admin, app.client_id, "u1")

    assert (await ask(gateway, issued["access_token"])).status_code == 401
    refused_as(await refresh(gateway, app, issued["refresh_token"]), "invalid_grant")


@pytest.mark.parametrize("which", ["refresh_token", "access_token"])
async def test_revoking_either_token_revokes_the_family(gateway: Gateway, app: App, which: str) -> None:
    issued = await tokens(gateway, app)

    revoked = await gateway.http.post("/oauth/revoke", data={"token": issued[which]}, headers=app.basic())

    assert revoked.status_code == 200
    assert (await ask(gateway, issued["access_token"])).status_code == 401
    refused_as(await refresh(gateway, app, issued["refresh_token"]), "invalid_grant")


async def test_revoking_an_unknown_token_is_answered_200_and_another_clients_token_is_refused(
    gateway: Gateway, app: App, admin: asyncpg.Connection
) -> None:
    other = App(*await register_client(admin, "Other", [CALLBACK], public=False))
    issued = await tokens(gateway, app)

    unknown = await gateway.http.post("/oauth/revoke", data={"token": "no-such-token"}, headers=app.basic())
    foreign = await gateway.http.post("/oauth/revoke", data={"token": issued["refresh_token"]}, headers=other.basic())

    assert unknown.status_code == 200
    refused_as(foreign, "invalid_grant")
    assert (await ask(gateway, issued["access_token"])).status_code == 200


def _forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    return ".".join([part(json.dumps(header).encode()), part(json.dumps(claims).encode()), part(signature)])


async def test_tokens_signed_by_an_unknown_key_or_with_alg_none_are_refused(gateway: Gateway, app: App) -> None:
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import ECKey

    genuine = jwt.decode((await tokens(gateway, app))["access_token"], options={"verify_signature": False})
    stranger = ECKey.generate_key("P-256")
    stranger.ensure_kid()
    foreign = jose_jwt.encode({"alg": "ES256", "kid": stranger.kid, "typ": "at+jwt"}, genuine, stranger)
    kid = jwt.get_unverified_header((await tokens(gateway, app))["access_token"])["kid"]
    borrowed_kid = jose_jwt.encode({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, genuine, stranger)
    unsigned = _forge({"alg": "none", "typ": "at+jwt", "kid": kid}, genuine)

    for forged in (foreign, borrowed_kid, unsigned):
        answer = await ask(gateway, forged)
        assert answer.status_code == 401, answer.text
        assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_rotated_key_still_verifies_its_tokens_and_new_tokens_use_the_new_key(gateway: Gateway, app: App) -> None:
    before = await tokens(gateway, app)
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    data_dir = gateway.state["settings"].data_dir
    from datetime import UTC, datetime

    fresh, dropped = rotate_keys(data_dir, keep_seconds=3900, now=datetime.now(UTC))
    # The ring looks at the file at most once a second: ask until it has (bounded).
    deadline = time.monotonic() + 30
    while jwt.get_unverified_header((after := await tokens(gateway, app))["access_token"])["kid"] != fresh.key.kid:
        assert time.monotonic() < deadline, "the new key was never picked up"
    published = {key["kid"] for key in (await gateway.http.get("/.well-known/jwks.json")).json()["keys"]}

    assert dropped == []
    assert {old_kid, fresh.key.kid} <= published
    assert (await ask(gateway, before["access_token"])).status_code == 200
    assert (await ask(gateway, after["access_token"])).status_code == 200


@pytest.mark.parametrize(
    ("send", "status"),
    [
        pytest.param(lambda http: http.post("/oauth/token", json={"grant_type": "refresh_token"}), 415, id="json-body"),
        pytest.param(lambda http: http.post("/oauth/token", content=b"grant_type=a&grant_type=b", headers={"Content-Type": "application/x-www-form-urlencoded"}), 400, id="repeated-parameter"),
        pytest.param(lambda http: http.post("/oauth/token", content=b"\xff\xfe", headers={"Content-Type": "application/x-www-form-urlencoded"}), 400, id="not-utf8"),
    ],
)
async def test_malformed_token_requests_get_a_clear_4xx_as_oauth_clients_read_one(gateway: Gateway, send: Any, status: int) -> None:
    response = await send(gateway.http)

    assert response.status_code == status
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"]


async def test_an_unknown_grant_type_is_unsupported(gateway: Gateway, app: App) -> None:
    response = await gateway.http.post("/oauth/token", data={"grant_type": "password", "username": "u1"}, headers=app.basic())

    refused_as(response, "unsupported_grant_type")


async def test_the_token_endpoint_counts_each_address_at_the_signed_out_limit(database_url: str, tmp_path: Path) -> None:
    policy = policies_with(tmp_path / "policy", {"rate_limit": {"requests_per_minute": 3}})
    form = {"grant_type": "refresh_token", "refresh_token": "guess", "client_id": "app_nope"}
    async with running_gateway(database_url, policy_dir=policy) as limited:
        answers = [await limited.http.post("/oauth/token", data=form) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [401, 401, 401, 429]
    assert answers[0].headers["ratelimit-policy"] == '"minute";q=3;w=60'
    assert answers[3].json()["error"] == "temporarily_unavailable"
    assert int(answers[3].headers["retry-after"]) > 0


# --- what a red team found: no input reaches a 500, none is echoed back to the app ------------


async def test_an_empty_scope_on_refresh_is_refused_and_leaves_the_refresh_token_usable(gateway: Gateway, app: App) -> None:
    issued = await tokens(gateway, app)

    blank = await refresh(gateway, app, issued["refresh_token"], scope=" ")

    refused_as(blank, "invalid_scope")
    assert (await refresh(gateway, app, issued["refresh_token"])).status_code == 200


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param("stats \u00e9", id="non-ascii"),
        pytest.param('stats "x"', id="quote"),
        pytest.param("stats \\x", id="backslash"),
        pytest.param("stats \x00", id="nul"),
        pytest.param("stats <script>alert(1)</script>", id="markup"),
    ],
)
async def test_an_odd_unknown_scope_goes_back_without_being_echoed(gateway: Gateway, app: App, scope: str) -> None:
    _, challenge = pkce()
    page = await gateway.http.get("/oauth/authorize", params=authorize_params(app, challenge, scope=scope))
    decision = await decide(gateway, authorize_params(app, challenge, scope=scope))

    assert page.status_code == 303
    back = query_of(page.headers["location"])
    assert back["error"] == "invalid_scope"
    assert scope.split()[-1] not in page.headers["location"] and "script" not in back["error_description"]
    assert query_of(decision.json()["redirect_to"])["error"] == "invalid_scope"


@pytest.mark.parametrize("client_id", ["\x00", "app_\u00e9", 'a"b', "app_0000000000000000\x00"])
async def test_an_odd_client_id_is_no_client_anywhere(gateway: Gateway, client_id: str) -> None:
    _, challenge = pkce()
    page = await gateway.http.get("/oauth/authorize", params=authorize_params(App(client_id, None), challenge))
    token = await gateway.http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": client_id})
    revoked = await gateway.http.post("/oauth/revoke", data={"token": "x", "client_id": client_id})

    assert page.status_code == 400 and "no app is registered" in page.text
    assert (token.status_code, token.json()["error"]) == (401, "invalid_client")
    assert (revoked.status_code, revoked.json()["error"]) == (401, "invalid_client")


async def test_basic_credentials_that_are_not_utf8_are_an_invalid_client(gateway: Gateway) -> None:
    credentials = base64.b64encode(b"\xff\xfe:\xff").decode()

    response = await gateway.http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "x"}, headers={"Authorization": f"Basic {credentials}"})

    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


async def test_a_link_with_a_repeated_parameter_is_told_to_the_user(gateway: Gateway, app: App) -> None:
    _, challenge = pkce()
    query = httpx.QueryParams(authorize_params(app, challenge)).add("redirect_uri", "https://evil.example/cb")

    page = await gateway.http.get(f"/oauth/authorize?{query}")

    assert page.status_code == 400 and "location" not in page.headers
    assert "more than once" in page.text


async def test_a_code_whose_grant_was_revoked_after_approval_gets_no_tokens(gateway: Gateway, app: App, admin: asyncpg.Connection) -> None:
    verifier, challenge = pkce()
    code = await code_for(gateway, app, challenge)

    await revoke_app(admin, app.client_id, "u1")

    assert "withdrew" in refused_as(await exchange(gateway, app, code, verifier), "invalid_grant")
