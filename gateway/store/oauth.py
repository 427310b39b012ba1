"""OAuth clients, codes and token families (migration 0013). Registering a client takes the
owner connection (`gateway apps create`); the endpoints use the `gateway_oauth` pool; a request
learns whether its token's family was revoked through `family_revoked()`, with the reader pool.

Codes and refresh tokens are kept as their SHA-256 only: they are 256 random bits, and the
store never holds a value that could be presented."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg

from gateway.errors import StoreUnavailable
from gateway.store.apps import authorize_app, register_app
from gateway.store.failures import STORE_FAILURES, store_unavailable

__all__ = [
    "Client",
    "Family",
    "Redeemed",
    "RefreshOutcome",
    "approve",
    "family_revoked",
    "find_client",
    "find_refresh_family",
    "issue_refresh_token",
    "redeem_code",
    "register_client",
    "revoke_family",
    "rotate_refresh_token",
    "secret_digest",
]

log = logging.getLogger(__name__)


def secret_digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Client:
    """A registered app as the OAuth endpoints see it."""

    app_id: str
    name: str
    public: bool
    secret_sha256: bytes | None
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class Family:
    """The tokens that descend from one approval."""

    family_id: str
    app_id: str
    user_id: str
    scopes: tuple[str, ...]
    generation: int


@dataclass(frozen=True)
class Redeemed:
    """A code just redeemed, with what it is bound to (checked by the token endpoint)."""

    family: Family
    redirect_uri: str
    code_challenge: str
    expired: bool
    withdrawn: bool  # the user revoked the app (or narrowed its scopes) after approving


class RefreshOutcome(StrEnum):
    UNKNOWN = "unknown"
    REUSED = "reused"  # the family is revoked now
    EXPIRED = "expired"
    REVOKED = "revoked"  # the family was revoked, or the user withdrew the grant
    WIDER = "wider"  # a scope asked for beyond the token's: the token stays usable


async def register_client(conn: asyncpg.Connection, name: str, redirect_uris: list[str], public: bool) -> tuple[str, str | None]:
    """Stores a new app that signs its users in through OAuth; returns its client id and, for a
    confidential client, its secret (shown once: only its digest is kept)."""
    secret = None if public else new_secret()
    digest = None if secret is None else secret_digest(secret)
    return await register_app(conn, name, redirect_uris=redirect_uris, secret_sha256=digest, public=public), secret


async def find_client(pool: asyncpg.Pool, app_id: str) -> Client | None:
    try:
        row = await pool.fetchrow(
            "SELECT app_id, name, client_type, secret_sha256, redirect_uris FROM apps WHERE app_id = $1", app_id
        )
    except STORE_FAILURES as exc:
        raise store_unavailable() from exc
    if row is None:
        return None
    return Client(row["app_id"], row["name"], row["client_type"] == "public", row["secret_sha256"], tuple(row["redirect_uris"]))


async def approve(
    pool: asyncpg.Pool, client: Client, user_id: str, scopes: list[str], redirect_uri: str, code_challenge: str, now: datetime, code_ttl: timedelta
) -> str:
    """Records the user's approval: the grant (replacing any earlier one, as `gateway apps
    authorize` does), a new token family, and a one-time code bound to the client, the redirect
    URI and the PKCE challenge. Returns the code."""
    code = new_secret()
    try:
        async with pool.acquire() as conn:
            async with conn.transaction():
                generation = await authorize_app(conn, client.app_id, user_id, scopes)
                family_id = uuid.uuid4()
                await conn.execute(
                    """INSERT INTO oauth_token_families (family_id, app_id, user_id, scopes, generation, created_at)
                       VALUES ($1, $2, $3, $4, $5, $6)""",
                    family_id, client.app_id, user_id, scopes, generation, now,
                )
                await conn.execute(
                    "INSERT INTO oauth_codes (code_sha256, family_id, redirect_uri, code_challenge, expires_at) VALUES ($1, $2, $3, $4, $5)",
                    secret_digest(code), family_id, redirect_uri, code_challenge, now + code_ttl,
                )
            # Codes live a minute; what is a day past its expiry is of no use even to detect a
            # replay. After the approval's commit (its locks held no longer than it needs), and
            # only a tidy-up: its failing does not make the approval, committed, look failed.
            try:
                await conn.execute("DELETE FROM oauth_codes WHERE expires_at < $1", now - timedelta(days=1))
            except STORE_FAILURES:
                log.warning("expired authorization codes were not swept; the next approval sweeps them", exc_info=True)
    except STORE_FAILURES as exc:
        raise store_unavailable() from exc
    return code


_FAMILY = "f.family_id::text AS family_id, f.app_id, f.user_id, f.scopes, f.generation"


def _family(row: asyncpg.Record) -> Family:
    return Family(row["family_id"], row["app_id"], row["user_id"], tuple(row["scopes"]), row["generation"])


async def redeem_code(pool: asyncpg.Pool, code: str, now: datetime) -> Redeemed | None:
    """Redeems a code once: the first presentation burns it whatever its outcome; a second one
    revokes the family (the tokens issued for the first) and returns None, as for an unknown code."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""SELECT c.redeemed_at, c.redirect_uri, c.code_challenge, c.expires_at, {_FAMILY},
                           a.generation IS DISTINCT FROM f.generation OR NOT (f.scopes <@ coalesce(a.scopes, '{{}}')) AS withdrawn
                    FROM oauth_codes c JOIN oauth_token_families f USING (family_id)
                    LEFT JOIN app_authorizations a ON a.app_id = f.app_id AND a.user_id = f.user_id
                    WHERE c.code_sha256 = $1 FOR UPDATE OF c""",
                secret_digest(code),
            )
            if row is None:
                return None
            if row["redeemed_at"] is not None:
                await _revoke(conn, row["family_id"], "authorization code used twice", now)
                return None
            await conn.execute("UPDATE oauth_codes SET redeemed_at = $2 WHERE code_sha256 = $1", secret_digest(code), now)
    except STORE_FAILURES as exc:
        raise store_unavailable() from exc
    return Redeemed(_family(row), row["redirect_uri"], row["code_challenge"], expired=row["expires_at"] <= now, withdrawn=row["withdrawn"])


async def issue_refresh_token(pool: asyncpg.Pool, family: Family, scopes: list[str], now: datetime, ttl: timedelta) -> str:
    token = new_secret()
    try:
        await pool.execute(
            "INSERT INTO oauth_refresh_tokens (token_sha256, family_id, scopes, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            secret_digest(token), uuid.UUID(family.family_id), scopes, now, now + ttl,
        )
    except STORE_FAILURES as exc:
        raise store_unavailable() from exc
    return token


async def rotate_refresh_token(
    pool: asyncpg.Pool, token: str, app_id: str, now: datetime, narrowed: list[str] | None = None
) -> tuple[Family, list[str]] | RefreshOutcome:
    """Uses a refresh token of `app_id` once: returns its family and the scopes of the next pair
    (its own, or `narrowed` to fewer), or why it cannot be used. A token used a second time
    revokes its family: one of the two presenting it is not the app."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""SELECT r.used_at, r.expires_at, r.scopes AS token_scopes, f.revoked_at, {_FAMILY},
                           a.generation AS granted_generation, a.scopes AS granted_scopes
                    FROM oauth_refresh_tokens r JOIN oauth_token_families f USING (family_id)
                    LEFT JOIN app_authorizations a ON a.app_id = f.app_id AND a.user_id = f.user_id
                    WHERE r.token_sha256 = $1 AND f.app_id = $2 FOR UPDATE OF r, f""",
                secret_digest(token), app_id,
            )
            if row is None:
                return RefreshOutcome.UNKNOWN
            if row["used_at"] is not None:
                await _revoke(conn, row["family_id"], "refresh token used twice", now)
                return RefreshOutcome.REUSED
            if row["revoked_at"] is not None:
                return RefreshOutcome.REVOKED
            withdrawn = row["granted_generation"] != row["generation"] or not set(row["token_scopes"]) <= set(row["granted_scopes"] or ())
            if withdrawn:
                await _revoke(conn, row["family_id"], "the user withdrew the grant", now)
                return RefreshOutcome.REVOKED
            if row["expires_at"] <= now:
                return RefreshOutcome.EXPIRED
            if narrowed is not None and not set(narrowed) <= set(row["token_scopes"]):
                return RefreshOutcome.WIDER
            await conn.execute("UPDATE oauth_refresh_tokens SET used_at = $2 WHERE token_sha256 = $1", secret_digest(token), now)
    except STORE_FAILURES as exc:
        raise store_unavailable() from exc
    return _family(row), sorted(set(narrowed)) if narrowed is not None else list(row["token_scopes"])


async def find_refresh_family(pool: asyncpg.Pool, token: str) -> tuple[str, str] | None:
    """(family id, app id) of a refresh token, for revocation."""
    try:
        row = await pool.fetchrow(
            """SELECT f.family_id::text AS family_id, f.app_id FROM oauth_refresh_tokens r
               JOIN oauth_token_families f USING (family_id) WHERE r.token_sha256 = $1""",
            secret_digest(token),
        )
    except STORE_FAILURES as exc:
        raise store_unavailable() from exc
    return None if row is None else (row["family_id"], row["app_id"])


async def revoke_family(pool: asyncpg.Pool, family_id: str, reason: str, now: datetime) -> None:
    try:
        async with pool.acquire() as conn:
            await _revoke(conn, family_id, reason, now)
    except STORE_FAILURES as exc:
        raise store_unavailable() from exc


async def _revoke(conn: asyncpg.Connection, family_id: str, reason: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE oauth_token_families SET revoked_at = $2, revoked_reason = $3 WHERE family_id = $1 AND revoked_at IS NULL",
        uuid.UUID(family_id), now, reason,
    )


async def family_revoked(pool: asyncpg.Pool, family_id: str) -> bool | None:
    """Whether an access token's family was revoked (None: no such family)."""
    try:
        family = uuid.UUID(family_id)
    except ValueError:
        return None
    try:
        revoked: bool | None = await pool.fetchval("SELECT token_family_revoked($1)", family)
    except STORE_FAILURES as exc:
        raise StoreUnavailable(f"the app's token could not be checked: the store is unavailable ({type(exc).__name__})") from exc
    return revoked
