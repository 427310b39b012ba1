"""Third-party apps and the grants users give them (migrations 0006, 0010). Registering,
authorizing and revoking take the owner connection (no pool role has a privilege on these
tables); a request reads the current grant through `app_grant()`, with the reader pool."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import asyncpg

from gateway.errors import NotFound, StoreUnavailable
from gateway.store.failures import STORE_FAILURES

__all__ = ["Grant", "authorize_app", "current_grant", "register_app", "revoke_app"]


@dataclass(frozen=True)
class Grant:
    """What a user currently grants an app: its scopes (none once revoked), and the generation
    of tokens that may use them (revoking moves it on)."""

    scopes: frozenset[str]
    generation: int


async def register_app(
    conn: asyncpg.Connection, name: str, *, redirect_uris: list[str] | None = None, secret_sha256: bytes | None = None, public: bool = False
) -> str:
    """Stores a new app (with `redirect_uris`, an OAuth client: gateway.store.oauth.register_client); returns its id."""
    app_id = f"app_{secrets.token_hex(8)}"
    await conn.execute(
        "INSERT INTO apps (app_id, name, client_type, secret_sha256, redirect_uris) VALUES ($1, $2, $3, $4, $5)",
        app_id,
        name,
        "public" if public else "confidential",
        secret_sha256,
        redirect_uris or [],
    )
    return app_id


async def authorize_app(conn: asyncpg.Connection, app_id: str, user_id: str, scopes: list[str]) -> int:
    """Records that `user_id` granted `app_id` these scopes, replacing any earlier grant; returns
    the generation the app's new token is issued under."""
    try:
        generation: int = await conn.fetchval(
            """INSERT INTO app_authorizations (app_id, user_id, scopes) VALUES ($1, $2, $3)
               ON CONFLICT (app_id, user_id) DO UPDATE SET scopes = EXCLUDED.scopes, authorized_at = now()
               RETURNING generation""",
            app_id,
            user_id,
            scopes,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"no such app: {app_id}") from exc
    return generation


async def revoke_app(conn: asyncpg.Connection, app_id: str, user_id: str) -> None:
    """Withdraws every scope `user_id` granted `app_id`: the tokens issued so far stop working."""
    revoked = await conn.fetchval(
        """UPDATE app_authorizations SET scopes = '{}', generation = generation + 1, revoked_at = now()
           WHERE app_id = $1 AND user_id = $2 RETURNING true""",
        app_id,
        user_id,
    )
    if not revoked:
        raise NotFound(f"{user_id} has not authorized {app_id}")


async def current_grant(pool: asyncpg.Pool, app_id: str, user_id: str) -> Grant | None:
    """The grant as it stands now (None: the CLI never recorded one)."""
    try:
        row = await pool.fetchrow("SELECT scopes, generation FROM app_grant($1, $2)", app_id, user_id)
    except STORE_FAILURES as exc:
        raise StoreUnavailable(f"the app's grant could not be checked: the store is unavailable ({type(exc).__name__})") from exc
    if row is None or row["scopes"] is None:
        return None
    return Grant(frozenset(row["scopes"]), row["generation"])
