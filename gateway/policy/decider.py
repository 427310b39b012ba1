"""Decides a request's fields: the cache first, then the engine; every decision goes to the log."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.auth import Principal
from gateway.errors import PolicyUnavailable
from gateway.policy.cache import DecisionCache
from gateway.policy.decision import ENTRYPOINT, Decision, PolicyEngine, parse_decision
from gateway.policy.fields import RequestedField

__all__ = ["DecisionRecord", "PolicyDecider", "PolicyQuestion"]


@dataclass(frozen=True)
class PolicyQuestion:
    """What one operation asks the policy, independent of who asks: reused across requests."""

    operation: dict[str, Any]
    fields: list[RequestedField]
    field_inputs: list[dict[str, Any]] = field(init=False)
    # operation + fields as JSON: part of the cache key and of the logged input.
    serialized: bytes = field(init=False)

    digest: bytes = field(init=False)
    # Every `Type.field` asked for, anywhere in the operation.
    coordinates: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "coordinates", frozenset(requested.coordinate for requested in self.fields))
        inputs = [requested.as_input() for requested in self.fields]
        object.__setattr__(self, "field_inputs", inputs)
        try:
            serialized = orjson.dumps({"operation": self.operation, "fields": inputs}, option=orjson.OPT_SORT_KEYS)
        except TypeError as exc:
            raise PolicyUnavailable(f"a requested field's arguments cannot be sent to the policy: {exc}") from exc
        object.__setattr__(self, "serialized", serialized)
        object.__setattr__(self, "digest", hashlib.sha256(serialized).digest())

    @property
    def paths(self) -> list[str]:
        return [requested.path for requested in self.fields]


@dataclass(frozen=True)
class DecisionRecord:
    """One entry of the decision log, in OPA's decision-log shape.

    The input is kept as the principal plus the question (operation and fields),
    and the question and the result by digest as well: many requests ask the
    same question and get the same answer, which the log stores once.
    """

    decision_id: str
    timestamp: datetime
    revision: str
    path: str
    principal: bytes
    question: bytes
    question_digest: bytes
    result: bytes
    result_digest: bytes
    cache_hit: bool
    denied: bool
    duration_ms: float

    @property
    def input(self) -> bytes:
        """{"principal": …, "operation": …, "fields": …} as JSON."""
        return b'{"principal":' + self.principal + b"," + self.question[1:]


@dataclass(frozen=True)
class _Cached:
    decision: Decision
    result: bytes
    result_digest: bytes


class PolicyDecider:
    def __init__(
        self,
        engine: PolicyEngine,
        cache: DecisionCache[_Cached] | None = None,
        record: Callable[[DecisionRecord], None] = lambda record: None,
    ) -> None:
        self.engine = engine
        self.cache: DecisionCache[_Cached] = cache if cache is not None else DecisionCache()
        self._record = record

    async def decide(self, principal: Principal, question: PolicyQuestion) -> Decision:
        started = time.perf_counter()
        revision = self.engine.revision
        scopes = sorted(principal.scopes)
        principal_input: dict[str, Any] = {"kind": principal.kind.value, "id": principal.id, "scopes": scopes}
        if principal.app_id is not None:
            principal_input["app"] = principal.app_id  # which app acts for the user: policy may tell apps apart
        # Who the principal is (its id, its app) is part of the key only when the policy can read it.
        who = (principal.id, principal.app_id) if self.engine.reads_principal_id else None
        key = (principal.kind, tuple(scopes), who, question.serialized)
        cached = self.cache.get(revision, key)
        cache_hit = cached is not None
        if cached is None:
            policy_input = {"principal": principal_input, "operation": question.operation, "fields": question.field_inputs}
            decision = parse_decision(await self.engine.evaluate(policy_input), question.paths)
            result = orjson.dumps(
                {
                    "fields": {path: verdict.model_dump() for path, verdict in decision.fields.items()},
                    "obligations": decision.obligations,
                }
            )
            cached = _Cached(decision, result, hashlib.sha256(result).digest())
            self.cache.put(revision, key, cached)
        self._record(
            DecisionRecord(
                decision_id=str(uuid.uuid4()),
                timestamp=datetime.now(UTC),
                revision=revision,
                path=ENTRYPOINT,
                principal=orjson.dumps(principal_input),
                question=question.serialized,
                question_digest=question.digest,
                result=cached.result,
                result_digest=cached.result_digest,
                cache_hit=cache_hit,
                denied=cached.decision.any_denied,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        )
        return cached.decision
