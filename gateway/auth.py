"""Bearer token → Principal. Tokens are JWTs signed with `GATEWAY_SECRET` (HS256, `exp` required)."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import jwt

from gateway.errors import Unauthenticated

__all__ = ["ANONYMOUS", "Principal", "PrincipalKind", "authenticate", "create_app_token", "create_token"]

ISSUER = "privacy-gateway"
ALGORITHM = "HS256"


class PrincipalKind(StrEnum):
    ANONYMOUS = "anonymous"
    USER = "user"
    APP = "app"
    COMPLIANCE = "compliance"
    SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    """Who is asking: a kind, an id (none for anonymous) and the scopes granted (apps).

    An app acts on behalf of one user: its `id` is that user's and `app_id` names the app.
    """

    kind: PrincipalKind
    id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    app_id: str | None = None


ANONYMOUS = Principal(PrincipalKind.ANONYMOUS)


def create_token(secret: str, kind: PrincipalKind, subject: str, ttl_seconds: int, scopes: Iterable[str] = ()) -> str:
    if kind is PrincipalKind.ANONYMOUS:
        raise ValueError("anonymous principals carry no token")
    if kind is PrincipalKind.APP:
        raise ValueError("app tokens come from create_app_token")
    claims: dict[str, object] = {"sub": subject, "kind": kind.value}
    if scopes:
        claims["scopes"] = sorted(set(scopes))
    return _sign(secret, claims, ttl_seconds)


def create_app_token(secret: str, app_id: str, user_id: str, scopes: Iterable[str], ttl_seconds: int) -> str:
    """A token for app `app_id` acting on behalf of `user_id`, limited to `scopes`."""
    granted = sorted(set(scopes))
    if not granted:
        raise ValueError("an app token needs at least one scope")
    return _sign(secret, {"sub": user_id, "kind": PrincipalKind.APP.value, "app": app_id, "scopes": granted}, ttl_seconds)


def _sign(secret: str, claims: dict[str, object], ttl_seconds: int) -> str:
    if ttl_seconds <= 0:
        raise ValueError("ttl must be positive")
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, **claims, "iat": now, "exp": now + ttl_seconds}, secret, algorithm=ALGORITHM)


def authenticate(authorization: str | None, secret: str) -> Principal:
    """The principal an `Authorization` header names; no header is anonymous, a bad one is refused."""
    if authorization is None:
        return ANONYMOUS
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'")
    principal, expires = _verify(token.strip(), secret)
    if expires <= time.time():
        raise Unauthenticated("token expired")
    return principal


# A dashboard sends the same token many times a minute; verifying its signature
# once is enough (the expiry is checked on every use).
@functools.lru_cache(maxsize=4096)
def _verify(token: str, secret: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from exc
    try:
        kind = PrincipalKind(str(claims.get("kind")))
    except ValueError as exc:
        raise Unauthenticated("invalid token: unknown principal kind") from exc
    if kind is PrincipalKind.ANONYMOUS:
        raise Unauthenticated("invalid token: unknown principal kind")
    scopes = claims.get("scopes", [])
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        raise Unauthenticated("invalid token: scopes must be a list of strings")
    app_id = claims.get("app")
    if kind is PrincipalKind.APP:
        if not isinstance(app_id, str) or not app_id:
            raise Unauthenticated("invalid token: an app token must name its app")
        if not scopes:
            raise Unauthenticated("invalid token: an app token must carry its scopes")
    elif "app" in claims:
        raise Unauthenticated("invalid token: only an app token names an app")
    return Principal(kind, str(claims["sub"]), frozenset(scopes), app_id), float(claims["exp"])
