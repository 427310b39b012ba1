"""What a resolver knows about the request it serves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime

from strawberry.dataloader import DataLoader
from strawberry.types import Info

from gateway.auth import Principal
from gateway.clock import utc_now
from gateway.errors import PolicyUnavailable
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
    store: Store
    reader: ReleaseReader
    request_id: str
    decider: PolicyDecider | None = None
    # Where the noise a request draws is charged (None: nowhere, e.g. in a test of the executor).
    budget: BudgetLedger | None = None
    # Key of the consistent noise (derived from GATEWAY_SECRET).
    noise_key: bytes = b""
    # One clock reading per request, so every default range and every release it sees agree.
    now: datetime = field(default_factory=utc_now)
    # Set by the policy guard before any resolver runs: the coordinates the policy allows on the
    # principal's own data only, and the privacy service under its obligations.
    owner_only: frozenset[str] = frozenset()
    disclosure: Disclosure | None = None
    videos: DataLoader[str, VideoRow | None] = field(init=False)

    def __post_init__(self) -> None:
        self.videos = DataLoader(self._load_videos)

    def video(self, video_id: str) -> Awaitable[VideoRow | None]:
        # Shared by every field that asked for it: a cancelled field must not cancel the load.
        return asyncio.shield(self.videos.load(video_id))

    def privacy(self) -> Disclosure:
        """The request's privacy service; a request without one is refused, never served."""
        if self.disclosure is None:
            raise PolicyUnavailable("no privacy terms for this request")
        return self.disclosure

    async def _load_videos(self, video_ids: list[str]) -> list[VideoRow | None]:
        async with self.store.reader.acquire() as conn:
            found = await queries.videos_by_id(conn, video_ids)
        return [found.get(video_id) for video_id in video_ids]


Context = Info[RequestContext, None]
