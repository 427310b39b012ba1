"""What a resolver knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.auth import Principal
from gateway.graphql.loaders import Loaders
from gateway.policy.decider import PolicyDecider
from gateway.policy.decision import Decision
from gateway.privacy.layer import PrivacyLayer
from gateway.store.pools import Store

__all__ = ["RequestContext"]


@dataclass
class RequestContext:
    principal: Principal
    store: Store
    loaders: Loaders
    request_id: str
    decider: PolicyDecider | None = None
    # The policy's answer for this request, set by the policy guard before any resolver runs.
    decision: Decision | None = None
    # Key of the consistent noise (derived from GATEWAY_SECRET).
    noise_key: bytes = b""
    # One clock reading per request, so every default range in it agrees.
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def privacy(self) -> PrivacyLayer | None:
        """The decision's obligations applied to this request's answers, set with `decision`;
        kept by the loaders, which apply it to what they load."""
        return self.loaders.layer

    @privacy.setter
    def privacy(self, layer: PrivacyLayer) -> None:
        self.loaders.layer = layer
