"""Decides a request's fields: the cache first, then the engine; every decision goes to the log."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.auth import Principal
from gateway.errors import PolicyUnavailable
from gateway.policy.cache import DecisionCache
from gateway.policy.decision import ENTRYPOINT, Decision, PolicyEngine, parse_decision
from gateway.policy.fields import RequestedField

__all__ = ["DecisionRecord", "PolicyDecider"]


@dataclass(frozen=True)
class DecisionRecord:
    """One entry of the decision log, in OPA's decision-log shape."""

    decision_id: str
    timestamp: datetime
    revision: str
    path: str
    input: dict[str, Any]
    result: dict[str, Any]
    cache_hit: bool
    denied: bool
    duration_ms: float


class PolicyDecider:
    def __init__(
        self,
        engine: PolicyEngine,
        cache: DecisionCache | None = None,
        record: Callable[[DecisionRecord], None] = lambda record: None,
    ) -> None:
        self.engine = engine
        self.cache = cache if cache is not None else DecisionCache()
        self._record = record

    async def decide(
        self, principal: Principal, operation: dict[str, Any], fields: list[RequestedField]
    ) -> Decision:
        started = time.perf_counter()
        revision = self.engine.revision
        field_inputs = [requested.as_input() for requested in fields]
        policy_input: dict[str, Any] = {
            "principal": {"kind": principal.kind.value, "id": principal.id, "scopes": sorted(principal.scopes)},
            "operation": operation,
            "fields": field_inputs,
        }
        key = self._key(principal, operation, field_inputs)
        decision = self.cache.get(revision, key)
        cache_hit = decision is not None
        if decision is None:
            raw = await self.engine.evaluate(policy_input)
            decision = parse_decision(raw, [requested.path for requested in fields])
            self.cache.put(revision, key, decision)
        self._record(
            DecisionRecord(
                decision_id=str(uuid.uuid4()),
                timestamp=datetime.now(UTC),
                revision=revision,
                path=ENTRYPOINT,
                input=policy_input,
                result={
                    "fields": {path: verdict.model_dump() for path, verdict in decision.fields.items()},
                    "obligations": decision.obligations,
                },
                cache_hit=cache_hit,
                denied=any(not verdict.allow for verdict in decision.fields.values()),
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        )
        return decision

    def _key(self, principal: Principal, operation: dict[str, Any], fields: list[dict[str, Any]]) -> tuple[Any, ...]:
        # The principal's id is part of the key only when the policy can read it.
        principal_id = principal.id if getattr(self.engine, "reads_principal_id", True) else None
        try:
            field_set = json.dumps([operation, fields], sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise PolicyUnavailable(f"a requested field's arguments cannot be sent to the policy: {exc}") from exc
        return (principal.kind, tuple(sorted(principal.scopes)), principal_id, field_set)
