"""Third-party apps and the grants users give them (migration 0006). Owner connection only:
no pool role has a privilege on these tables."""

from __future__ import annotations

import secrets

import asyncpg

from gateway.errors import NotFound

__all__ = ["authorize_app", "register_app"]


async def register_app(conn: asyncpg.Connection, name: str) -> str:
    """Stores a new app; returns its id."""
    app_id = f"app_{secrets.token_hex(8)}"
    await conn.execute("INSERT INTO apps (app_id, name) VALUES ($1, $2)", app_id, name)
    return app_id


async def authorize_app(conn: asyncpg.Connection, app_id: str, user_id: str, scopes: list[str]) -> None:
    """Records that `user_id` granted `app_id` these scopes, replacing any earlier grant."""
    try:
        await conn.execute(
            """INSERT INTO app_authorizations (app_id, user_id, scopes) VALUES ($1, $2, $3)
               ON CONFLICT (app_id, user_id) DO UPDATE SET scopes = EXCLUDED.scopes, authorized_at = now()""",
            app_id,
            user_id,
            scopes,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"no such app: {app_id}") from exc
