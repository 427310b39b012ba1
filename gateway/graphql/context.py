"""What a resolver knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.auth import Principal
from gateway.graphql.loaders import Loaders
from gateway.store.pools import Store

__all__ = ["RequestContext"]


@dataclass
class RequestContext:
    principal: Principal
    store: Store
    loaders: Loaders
    request_id: str
    # One clock reading per request, so every default range in it agrees.
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
