"""What a resolver knows about the request it serves."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from strawberry.dataloader import DataLoader
from strawberry.types import Info

from gateway.auth import Principal
from gateway.clock import Clock, utc_now
from gateway.errors import PolicyUnavailable
from gateway.graphql.persisted import PersistedDocuments
from gateway.policy.decider import PolicyDecider
from gateway.privacy.budget import BudgetLedger
from gateway.privacy.disclosure import Disclosure
from gateway.store import queries
from gateway.store.pools import Store
from gateway.store.queries import VideoRow
from gateway.store.releases import ReleaseReader

__all__ = ["Context", "RequestContext"]


@dataclass
class RequestContext:
    principal: Principal
    pools: Store
    reader: ReleaseReader
    request_id: str
    decider: PolicyDecider | None = None
    # Where the noise a request draws is charged (None: nowhere, e.g. in a test of the executor).
    budget: BudgetLedger | None = None
    # Key of the consistent noise (derived from GATEWAY_SECRET).
    noise_key: bytes = b""
    # Key of the digests erasure records name a person by (derived from GATEWAY_SECRET).
    erasure_key: bytes = b""
    # One clock reading per request, so every default range and every release it sees agree.
    now: datetime = field(default_factory=utc_now)
    # When the request arrived (None: `now` stays as given). The policy guard answers it at the
    # start of the asker's minute it arrived in (gateway.graphql.responses.answer_minute).
    arrived: datetime | None = None
    # The clock itself, for what a request records at the moment it happens (a consent change).
    clock: Clock = utc_now
    # Called when the request revoked apps' grants (an erasure): this process forgets the grants it
    # kept at once, before the store's notice reaches it (gateway.store.revocations).
    revoked: Callable[[], None] = lambda: None
    # The documents registered for apps, for an app the policy confines to them (None: none are).
    documents: PersistedDocuments | None = None
    # Set by the policy guard before any resolver runs: that the policy decided the operation, the
    # coordinates it allows on the principal's own data only, and the privacy service under its obligations.
    decided: bool = field(default=False, init=False)
    # The revision of the policy that decided, and every `Type.field` the operation asks for.
    policy_revision: str = field(default="", init=False)
    coordinates: frozenset[str] = field(default=frozenset(), init=False)
    owner_only: frozenset[str] = frozenset()
    disclosure: Disclosure | None = None
    # Whether the answer depends only on what a kept answer is checked against
    # (gateway.graphql.responses): the catalogue of videos, read through the methods below, and
    # releases. A resolver that reads the store some other way (`store`) clears it.
    catalogue_only: bool = field(default=True, init=False)
    videos: DataLoader[str, VideoRow | None] = field(init=False)

    def __post_init__(self) -> None:
        # Not a bound method: the loader would hold the context that holds it, a cycle only the
        # garbage collector frees (gateway.graphql.execution says what that cost).
        self.videos = DataLoader(functools.partial(_load_videos, self.pools))

    @property
    def store(self) -> Store:
        """The pools, for a resolver that reads rows of its own (a principal's activity, the
        decision log): its answer is not kept."""
        self.catalogue_only = False
        return self.pools

    def privacy(self) -> Disclosure:
        """The request's privacy service; a request without one is refused, never served."""
        if self.disclosure is None:
            raise PolicyUnavailable("no privacy terms for this request")
        return self.disclosure

    # -- the catalogue: published videos and their creators ---------------------------------

    def video(self, video_id: str) -> Awaitable[VideoRow | None]:
        # Shared by every field that asked for it: a cancelled field must not cancel the load.
        return asyncio.shield(self.videos.load(video_id))

    async def creator_exists(self, creator_id: str) -> bool:
        async with self.pools.reader.acquire() as conn:
            return await queries.creator_exists(conn, creator_id)

    async def creator_video_rows(self, creator_id: str) -> list[VideoRow]:
        async with self.pools.reader.acquire() as conn:
            return await queries.creator_video_rows(conn, creator_id)

    async def creator_videos(
        self, creator_id: str, order: str, after: tuple[float, str] | None, limit: int
    ) -> list[tuple[VideoRow, float]]:
        async with self.pools.reader.acquire() as conn:
            return await queries.creator_videos(conn, creator_id, order, after, limit)


async def _load_videos(pools: Store, video_ids: list[str]) -> list[VideoRow | None]:
    async with pools.reader.acquire() as conn:
        found = await queries.videos_by_id(conn, video_ids)
    return [found.get(video_id) for video_id in video_ids]


Context = Info[RequestContext, None]
