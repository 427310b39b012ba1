"""Bearer token → Principal. Two kinds of JWT are accepted, both with `exp` required:

- operators' tokens (`gateway token create`, `gateway apps authorize`), HS256 under `GATEWAY_SECRET`;
- apps' access tokens from the OAuth endpoints (RFC 9068 `at+jwt`), ES256 under a key of the
  gateway's key ring (gateway.oauth.keys), verifiable by anyone from `/.well-known/jwks.json`.

Every other algorithm (`none` included) is refused."""

from __future__ import annotations

import dataclasses
import functools
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import jwt
import joserfc.jwt
from cachetools import TTLCache
from joserfc.errors import ExpiredTokenError, JoseError

from gateway.errors import Forbidden, Unauthenticated
from gateway.oauth.keys import ALGORITHM as ISSUED_ALGORITHM
from gateway.oauth.keys import KeyRing

__all__ = [
    "ANONYMOUS",
    "AppGrants",
    "IssuedTokens",
    "Principal",
    "PrincipalKind",
    "authenticate",
    "authenticate_service",
    "create_access_token",
    "create_app_token",
    "create_token",
]

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

    An app acts on behalf of one user: its `id` is that user's and `app_id` names the app;
    `grant_generation` is the generation of the user's grant its token was issued under
    (see `AppGrants`), and `token_family` the OAuth token family it descends from (None for an
    operator's token); neither makes two principals differ.
    """

    kind: PrincipalKind
    id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    app_id: str | None = None
    grant_generation: int = field(default=0, compare=False)
    token_family: str | None = field(default=None, compare=False)


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


def create_app_token(
    secret: str, app_id: str, user_id: str, scopes: Iterable[str], ttl_seconds: int, generation: int = 0
) -> str:
    """A token for app `app_id` acting on behalf of `user_id`, limited to `scopes`, issued under
    the grant's `generation` (`gateway.store.apps.authorize_app`)."""
    granted = sorted(set(scopes))
    if not granted:
        raise ValueError("an app token needs at least one scope")
    claims = {"sub": user_id, "kind": PrincipalKind.APP.value, "app": app_id, "scopes": granted, "gen": generation}
    return _sign(secret, claims, ttl_seconds)


@dataclass(frozen=True, eq=False)
class IssuedTokens:
    """What signs and verifies the access tokens the OAuth endpoints issue: the key ring, and the
    issuer (the gateway's public URL), which is also their audience."""

    keys: KeyRing
    issuer: str


ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068


def create_access_token(
    issued: IssuedTokens, app_id: str, user_id: str, scopes: Iterable[str], ttl_seconds: int, generation: int, family: str, now: float | None = None
) -> str:
    """An app's access token (RFC 9068) from an OAuth grant: signed with the ring's current key,
    naming the token family it descends from (revoking the family ends it)."""
    granted = sorted(set(scopes))
    if not granted:
        raise ValueError("an app token needs at least one scope")
    if ttl_seconds <= 0:
        raise ValueError("ttl must be positive")
    issued_at = int(time.time() if now is None else now)
    key = issued.keys.signing_key()
    claims = {
        "iss": issued.issuer,
        "aud": issued.issuer,
        "sub": user_id,
        "client_id": app_id,
        "scope": " ".join(granted),
        "jti": secrets.token_urlsafe(16),
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
        "kind": PrincipalKind.APP.value,
        "app": app_id,
        "scopes": granted,
        "gen": generation,
        "fam": family,
    }
    return joserfc.jwt.encode({"alg": ISSUED_ALGORITHM, "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}, claims, key)


def _sign(secret: str, claims: dict[str, object], ttl_seconds: int) -> str:
    if ttl_seconds <= 0:
        raise ValueError("ttl must be positive")
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, **claims, "iat": now, "exp": now + ttl_seconds}, secret, algorithm=ALGORITHM)


def authenticate(authorization: str | None, secret: str, issued: IssuedTokens | None = None) -> Principal:
    """The principal an `Authorization` header names; no header is anonymous, a bad one is refused.
    Without `issued`, apps' OAuth access tokens are refused too."""
    if authorization is None:
        return ANONYMOUS
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'")
    principal, expires = _verify(token.strip(), secret, issued)
    if expires <= time.time():
        raise Unauthenticated("token expired")
    return principal


def authenticate_service(authorization: str | None, secret: str, what: str) -> Principal:
    """The `service` principal an `Authorization` header names, for operators' routes (`what`
    names the route in the refusal): none is 401, another kind 403."""
    principal = authenticate(authorization, secret)
    if principal.kind is PrincipalKind.ANONYMOUS:
        raise Unauthenticated(f"{what} needs a bearer token of kind 'service'")
    if principal.kind is not PrincipalKind.SERVICE:
        raise Forbidden(f"{what} needs a token of kind 'service'")
    return principal


# A dashboard sends the same token many times a minute; verifying its signature
# once is enough (the expiry is checked on every use).
@functools.lru_cache(maxsize=4096)
def _verify(token: str, secret: str, issued: IssuedTokens | None) -> tuple[Principal, float]:
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from exc
    if algorithm == ISSUED_ALGORITHM:
        if issued is None:
            raise Unauthenticated("invalid token: apps' access tokens are not accepted here")
        return _verify_issued(token, issued)
    return _verify_operators(token, secret)


def _verify_issued(token: str, issued: IssuedTokens) -> tuple[Principal, float]:
    try:
        verified = joserfc.jwt.decode(token, issued.keys.key_set(), algorithms=[ISSUED_ALGORITHM])
        if verified.header.get("typ") != ACCESS_TOKEN_TYPE:
            raise Unauthenticated(f"invalid token: an access token's typ is {ACCESS_TOKEN_TYPE}")
        _issued_claims(issued.issuer).validate(verified.claims)
    except ExpiredTokenError as exc:
        raise Unauthenticated("token expired") from exc
    except JoseError as exc:
        raise Unauthenticated(f"invalid token: {exc.description or exc.error}") from exc
    claims = verified.claims
    family = claims.get("fam")
    if claims.get("kind") != PrincipalKind.APP.value or not isinstance(family, str) or not family:
        raise Unauthenticated("invalid token: an access token is an app's, of a token family")
    principal, expires = _principal_of(claims)
    return dataclasses.replace(principal, token_family=family), expires


@functools.lru_cache(maxsize=8)
def _issued_claims(issuer: str) -> joserfc.jwt.JWTClaimsRegistry:
    return joserfc.jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": issuer},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
    )


def _verify_operators(token: str, secret: str) -> tuple[Principal, float]:
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
    return _principal_of(claims)


def _principal_of(claims: dict[str, Any]) -> tuple[Principal, float]:
    """The principal verified claims name (either kind of token)."""
    try:
        kind = PrincipalKind(str(claims.get("kind")))
    except ValueError as exc:
        raise Unauthenticated("invalid token: unknown principal kind") from exc
    if kind is PrincipalKind.ANONYMOUS:
        raise Unauthenticated("invalid token: unknown principal kind")
    scopes = claims.get("scopes", [])
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        raise Unauthenticated("invalid token: scopes must be a list of strings")
    app_id, generation = claims.get("app"), claims.get("gen", 0)
    if kind is PrincipalKind.APP:
        if not isinstance(app_id, str) or not app_id:
            raise Unauthenticated("invalid token: an app token must name its app")
        if not scopes:
            raise Unauthenticated("invalid token: an app token must carry its scopes")
        if type(generation) is not int or generation < 0:
            raise Unauthenticated("invalid token: gen must be a whole number")
    elif "app" in claims or "gen" in claims:
        raise Unauthenticated("invalid token: only an app token names an app")
    principal = Principal(kind, str(claims["sub"]), frozenset(scopes), app_id, grant_generation=generation)
    return principal, float(claims["exp"])


class GrantLike(Protocol):
    """A user's current grant to an app (`gateway.store.apps.Grant`)."""

    @property
    def scopes(self) -> frozenset[str]: ...

    @property
    def generation(self) -> int: ...


_UNSEEN: Any = object()


class AppGrants:
    """Holds app tokens to the grant as it stands: a token issued before the user revoked the
    app (an older generation), or carrying a scope the user no longer grants, is refused.

    An OAuth access token is also refused once its token family is revoked (the app revoked it,
    or a code or refresh token of the family was used twice).

    A grant (a family) is looked up at most once per `ttl` seconds per (app, user) (per family) in
    a process; a revocation's notice makes every process forget them at once
    (gateway.store.revocations), and `ttl` bounds it when a notice is lost. No grant on record (an
    operator's token not issued by `gateway apps authorize`) leaves the token as signed."""

    def __init__(
        self,
        lookup: Callable[[str, str], Awaitable[GrantLike | None]],
        ttl: float = 5.0,
        size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        family_revoked: Callable[[str], Awaitable[bool | None]] | None = None,
    ) -> None:
        self._lookup = lookup
        self._family_revoked = family_revoked
        # What was looked up, `None` (no grant on record) included; an entry expires after `ttl`.
        self._grants: TTLCache[tuple[str, str], GrantLike | None] = TTLCache(size, ttl, timer=clock)
        self._families: TTLCache[str, bool | None] = TTLCache(size, ttl, timer=clock)
        # Moves at each forget(): a lookup that began before it may have read what was revoked,
        # and is used for its request but not kept.
        self._forgotten = 0

    def forget(self) -> None:
        """Drops every grant and family kept: one changed (gateway.store.revocations)."""
        self._forgotten += 1
        self._grants.clear()
        self._families.clear()

    async def check(self, principal: Principal) -> None:
        if principal.kind is not PrincipalKind.APP or principal.app_id is None or principal.id is None:
            return
        key = (principal.app_id, principal.id)
        grant = self._grants.get(key, _UNSEEN)
        if grant is _UNSEEN:
            since = self._forgotten
            grant = await self._lookup(*key)
            if since == self._forgotten:
                self._grants[key] = grant
        if principal.token_family is not None:
            await self._check_family(principal.token_family)
            if grant is None:
                raise Unauthenticated(f"{principal.id} has not authorized this app")
        if grant is None:
            return
        if principal.grant_generation < grant.generation:
            raise Unauthenticated(f"{principal.id} has revoked this app's access; the app must be authorized again")
        withdrawn = principal.scopes - grant.scopes
        if withdrawn:
            raise Unauthenticated(f"{principal.id} no longer grants this app: {', '.join(sorted(withdrawn))}")

    async def _check_family(self, family: str) -> None:
        revoked = self._families.get(family, _UNSEEN)
        if revoked is _UNSEEN:
            if self._family_revoked is None:
                raise Unauthenticated("invalid token: apps' access tokens are not accepted here")
            since = self._forgotten
            revoked = await self._family_revoked(family)
            if since == self._forgotten:
                self._families[family] = revoked
        if revoked is None:
            raise Unauthenticated("invalid token: no such token family")
        if revoked:
            raise Unauthenticated("this token was revoked; the app must be authorized again")
