"""Bearer token → Principal. Tokens are JWTs signed with `GATEWAY_SECRET` (HS256, `exp` required)."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import jwt

from gateway.errors import Unauthenticated

__all__ = ["ANONYMOUS", "Principal", "PrincipalKind", "authenticate", "create_token"]

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
    """Who is asking: a kind, an id (none for anonymous) and the scopes granted (apps)."""

    kind: PrincipalKind
    id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)


ANONYMOUS = Principal(PrincipalKind.ANONYMOUS)


def create_token(secret: str, kind: PrincipalKind, subject: str, ttl_seconds: int, scopes: Iterable[str] = ()) -> str:
    if kind is PrincipalKind.ANONYMOUS:
        raise ValueError("anonymous principals carry no token")
    if ttl_seconds <= 0:
        raise ValueError("ttl must be positive")
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": subject, "kind": kind.value, "iat": now, "exp": now + ttl_seconds}
    if scopes:
        claims["scopes"] = sorted(set(scopes))
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


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
    return Principal(kind, str(claims["sub"]), frozenset(scopes)), float(claims["exp"])
