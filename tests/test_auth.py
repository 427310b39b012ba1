"""Bearer tokens: who they name, and every way a header is refused rather than read as anonymous."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from gateway.auth import ANONYMOUS, ISSUER, Principal, PrincipalKind, authenticate, create_app_token, create_token
from gateway.errors import Unauthenticated

# PyJWT warns (an error here) on an HMAC key shorter than the hash: 32 bytes for HS256, 64 for HS512.
SIGNING_SECRET = "auth-tests-signing-secret-" + "0123456789abcdef" * 3
OTHER_SECRET = "auth-tests-another-secret-" + "0123456789abcdef" * 3


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "u42", "kind": "user", "iat": now, "exp": now + 300}
    return {key: value for key, value in {**base, **changes}.items() if value is not None}


def signed(payload: dict[str, Any], secret: str = SIGNING_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=algorithm)


def b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any]) -> str:
    """A token that claims alg "none" and carries no signature."""
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        pytest.param(PrincipalKind.USER, "u42", id="user"),
        pytest.param(PrincipalKind.COMPLIANCE, "dpo@example.com", id="compliance"),
        pytest.param(PrincipalKind.SERVICE, "ingest-bot", id="service"),
    ],
)
def test_token_round_trips_to_its_principal(kind: PrincipalKind, subject: str) -> None:
    token = create_token(SIGNING_SECRET, kind, subject, ttl_seconds=60)

    assert authenticate(f"Bearer {token}", SIGNING_SECRET) == Principal(kind, subject)


def test_app_token_round_trips_to_the_user_it_acts_for() -> None:
    token = create_app_token(SIGNING_SECRET, "app_1", "u42", ["stats", "insights", "stats"], ttl_seconds=60)

    principal = authenticate(f"Bearer {token}", SIGNING_SECRET)

    assert (principal.kind, principal.id, principal.scopes, principal.app_id) == (PrincipalKind.APP, "u42", frozenset({"stats", "insights"}), "app_1")


def test_app_token_names_the_app_and_sorted_scopes() -> None:
    token = create_app_token(SIGNING_SECRET, "app_1", "u42", ["stats", "insights"], ttl_seconds=90)

    decoded = jwt.decode(token, options={"verify_signature": False})

    assert (decoded["kind"], decoded["sub"], decoded["app"], decoded["scopes"]) == ("app", "u42", "app_1", ["insights", "stats"])
    assert decoded["exp"] - decoded["iat"] == 90


def test_non_app_token_names_no_app() -> None:
    token = create_token(SIGNING_SECRET, PrincipalKind.USER, "u42", ttl_seconds=60)

    assert "app" not in jwt.decode(token, options={"verify_signature": False})
    assert authenticate(f"Bearer {token}", SIGNING_SECRET).app_id is None


def test_token_expires_after_its_ttl() -> None:
    token = create_token(SIGNING_SECRET, PrincipalKind.USER, "u42", ttl_seconds=90)

    decoded = jwt.decode(token, options={"verify_signature": False})

    assert decoded["exp"] - decoded["iat"] == 90
    assert decoded["iss"] == ISSUER


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("bearer {token}", id="lower-case-scheme"),
        pytest.param("BEARER {token}", id="upper-case-scheme"),
        pytest.param("Bearer  {token} ", id="extra-spaces"),
    ],
)
def test_bearer_scheme_is_case_insensitive(authorization: str) -> None:
    token = create_token(SIGNING_SECRET, PrincipalKind.USER, "u42", ttl_seconds=60)

    assert authenticate(authorization.format(token=token), SIGNING_SECRET) == Principal(PrincipalKind.USER, "u42")


def test_no_header_is_anonymous() -> None:
    principal = authenticate(None, SIGNING_SECRET)

    assert principal == ANONYMOUS
    assert (principal.kind, principal.id, principal.scopes) == (PrincipalKind.ANONYMOUS, None, frozenset())


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        pytest.param(lambda: f"Bearer {signed(claims(iat=int(time.time()) - 120, exp=int(time.time()) - 60))}", "token expired", id="expired"),
        pytest.param(lambda: f"Bearer {signed(claims(), secret=OTHER_SECRET)}", "invalid token: Signature verification failed", id="wrong-secret"),
        pytest.param(lambda: f"Bearer {signed(claims())[:-4]}AAAA", "invalid token", id="tampered-signature"),
        pytest.param(lambda: f"Bearer {signed(claims(), algorithm='HS512')}", "invalid token", id="other-hmac-algorithm"),
        pytest.param(lambda: f"Bearer {unsigned(claims())}", "invalid token", id="alg-none"),
        pytest.param(lambda: f"Bearer {signed(claims(exp=None))}", 'invalid token: Token is missing the "exp" claim', id="missing-exp"),
        pytest.param(lambda: f"Bearer {signed(claims(iat=None))}", 'invalid token: Token is missing the "iat" claim', id="missing-iat"),
        pytest.param(lambda: f"Bearer {signed(claims(sub=None))}", 'invalid token: Token is missing the "sub" claim', id="missing-sub"),
        pytest.param(lambda: f"Bearer {signed(claims(iss=None))}", 'invalid token: Token is missing the "iss" claim', id="missing-iss"),
        pytest.param(lambda: f"Bearer {signed(claims(iss='someone-else'))}", "invalid token: Invalid issuer", id="wrong-issuer"),
        pytest.param(lambda: f"Bearer {signed(claims(kind=None))}", "invalid token: unknown principal kind", id="missing-kind"),
        pytest.param(lambda: f"Bearer {signed(claims(kind='admin'))}", "invalid token: unknown principal kind", id="unknown-kind"),
        pytest.param(lambda: f"Bearer {signed(claims(kind='anonymous'))}", "invalid token: unknown principal kind", id="anonymous-kind"),
        pytest.param(lambda: f"Bearer {signed(claims(scopes='stats'))}", "invalid token: scopes must be a list of strings", id="scopes-not-a-list"),
        pytest.param(lambda: f"Bearer {signed(claims(scopes=['stats', 1]))}", "invalid token: scopes must be a list of strings", id="scope-not-a-string"),
        pytest.param(lambda: f"Bearer {signed(claims(kind='app', scopes=['stats']))}", "invalid token: an app token must name its app", id="app-without-app-claim"),
        pytest.param(lambda: f"Bearer {signed(claims(kind='app', app=7, scopes=['stats']))}", "invalid token: an app token must name its app", id="app-claim-not-a-string"),
        pytest.param(lambda: f"Bearer {signed(claims(kind='app', app='', scopes=['stats']))}", "invalid token: an app token must name its app", id="app-claim-empty"),
        pytest.param(lambda: f"Bearer {signed(claims(kind='app', app='app_1', scopes=[]))}", "invalid token: an app token must carry its scopes", id="app-with-empty-scopes"),
        pytest.param(lambda: f"Bearer {signed(claims(kind='app', app='app_1'))}", "invalid token: an app token must carry its scopes", id="app-without-scopes"),
        pytest.param(lambda: f"Bearer {signed(claims(app='app_1'))}", "invalid token: only an app token names an app", id="user-token-naming-an-app"),
        pytest.param(lambda: f"Bearer {signed(claims(kind='service', app='app_1'))}", "invalid token: only an app token names an app", id="service-token-naming-an-app"),
        pytest.param(lambda: f"Bearer {signed(claims(gen=1))}", "invalid token: only an app token names an app", id="user-token-with-a-generation"),
        pytest.param(lambda: f"Bearer {signed(claims(kind='app', app='app_1', scopes=['stats'], gen='1'))}", "invalid token: gen must be a whole number", id="app-gen-a-string"),
        pytest.param(lambda: f"Bearer {signed(claims(kind='app', app='app_1', scopes=['stats'], gen=-1))}", "invalid token: gen must be a whole number", id="app-gen-negative"),
        pytest.param(lambda: f"Bearer {signed(claims(kind='app', app='app_1', scopes=['stats'], gen=True))}", "invalid token: gen must be a whole number", id="app-gen-a-bool"),
        pytest.param(lambda: "Bearer not-a-jwt", "invalid token", id="malformed"),
        pytest.param(lambda: "Bearer a.b.c", "invalid token", id="malformed-three-parts"),
        pytest.param(lambda: "Bearer ", "Authorization must be 'Bearer <token>'", id="bearer-without-token"),
        pytest.param(lambda: "Bearer", "Authorization must be 'Bearer <token>'", id="bearer-alone"),
        pytest.param(lambda: "", "Authorization must be 'Bearer <token>'", id="empty-header"),
        pytest.param(lambda: f"Basic {base64.b64encode(b'admin:admin').decode()}", "Authorization must be 'Bearer <token>'", id="basic-scheme"),
        pytest.param(lambda: f"Token {signed(claims())}", "Authorization must be 'Bearer <token>'", id="token-scheme"),
        pytest.param(lambda: signed(claims()), "Authorization must be 'Bearer <token>'", id="token-without-scheme"),
    ],
)
def test_bad_authorization_is_unauthenticated(authorization: Any, message: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        authenticate(authorization(), SIGNING_SECRET)

    assert refused.value.message.startswith(message)
    assert (refused.value.code, refused.value.status_code) == ("UNAUTHENTICATED", 401)


def test_pyjwt_errors_do_not_leak_through_authenticate() -> None:
    with pytest.raises(Unauthenticated) as refused:
        authenticate("Bearer not-a-jwt", SIGNING_SECRET)

    assert isinstance(refused.value.__cause__, jwt.InvalidTokenError)


@pytest.mark.parametrize(
    ("kind", "ttl_seconds", "message"),
    [
        pytest.param(PrincipalKind.ANONYMOUS, 60, "anonymous principals carry no token", id="anonymous"),
        pytest.param(PrincipalKind.APP, 60, "app tokens come from create_app_token", id="app"),
        pytest.param(PrincipalKind.USER, 0, "ttl must be positive", id="zero-ttl"),
        pytest.param(PrincipalKind.USER, -1, "ttl must be positive", id="negative-ttl"),
    ],
)
def test_create_token_refuses(kind: PrincipalKind, ttl_seconds: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_token(SIGNING_SECRET, kind, "u42", ttl_seconds)


@pytest.mark.parametrize(
    ("scopes", "ttl_seconds", "message"),
    [
        pytest.param([], 60, "an app token needs at least one scope", id="no-scopes"),
        pytest.param(["stats"], 0, "ttl must be positive", id="zero-ttl"),
    ],
)
def test_create_app_token_refuses(scopes: list[str], ttl_seconds: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_app_token(SIGNING_SECRET, "app_1", "u42", scopes, ttl_seconds)
