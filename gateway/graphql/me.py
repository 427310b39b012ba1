"""The signed-in user's own activity, read through the private pool (bound to the user in SQL)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.errors import BadUserInput
from gateway.graphql.consent import ConsentSettings
from gateway.graphql.context import Context
from gateway.store import queries

__all__ = ["Me"]

MAX_OWN_ROWS = 500


@strawberry.type
class MyShare:
    video_id: strawberry.ID
    channel: str
    shared_at: datetime


@strawberry.type
class MyLike:
    video_id: strawberry.ID
    liked_at: datetime


@strawberry.type
class MyFollow:
    creator_id: strawberry.ID
    followed_at: datetime


def own_limit(first: int) -> int:
    if not 1 <= first <= MAX_OWN_ROWS:
        raise BadUserInput(f"`first` must be between 1 and {MAX_OWN_ROWS}")
    return first


@strawberry.type(description="The signed-in user's own activity. Nobody else's rows are reachable here.")
class Me:
    user_id: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.user_id)

    @strawberry.field(description="Videos you shared, newest first.")
    async def shares(self, info: Context, first: int = 50) -> list[MyShare]:
        async with info.context.store.private.acquire() as conn:
            rows = await queries.my_shares(conn, self.user_id, own_limit(first))
        return [MyShare(video_id=strawberry.ID(r["video_id"]), channel=r["channel"], shared_at=r["occurred_at"]) for r in rows]

    @strawberry.field(description="Videos you like now, most recent first.")
    async def likes(self, info: Context, first: int = 50) -> list[MyLike]:
        async with info.context.store.private.acquire() as conn:
            rows = await queries.my_likes(conn, self.user_id, own_limit(first))
        return [MyLike(video_id=strawberry.ID(r["video_id"]), liked_at=r["occurred_at"]) for r in rows]

    @strawberry.field(description="Creators you follow now, most recent first.")
    async def follows(self, info: Context, first: int = 50) -> list[MyFollow]:
        async with info.context.store.private.acquire() as conn:
            rows = await queries.my_follows(conn, self.user_id, own_limit(first))
        return [MyFollow(creator_id=strawberry.ID(r["creator_id"]), followed_at=r["occurred_at"]) for r in rows]

    @strawberry.field(description="Your consent settings: anonymous sharing, and the creators you may be shown to.")
    def settings(self) -> ConsentSettings:
        return ConsentSettings(user_id=self.user_id)
