"""Decides a request's fields: the cache first, then the engine; every decision goes to the log."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import InitVar, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import uuid_utils

from gateway.auth import Principal, PrincipalKind
from gateway.errors import PolicyUnavailable
from gateway.policy.cache import DecisionCache
from gateway.policy.decision import ENTRYPOINT, Decision, PolicyEngine, parse_decision
from gateway.policy.fields import RequestedField
from gateway.policy.reads import PolicyReads, withhold_arguments
from gateway.telemetry.timings import policy_evaluation_latency

__all__ = ["ENTRY_OVERHEAD", "PARSED_PER_JSON_BYTE", "DecisionRecord", "PolicyDecider", "PolicyQuestion", "weigh_decision"]

logger = logging.getLogger("gateway.policy")


@dataclass(frozen=True)
class PolicyQuestion:
    """What one operation asks the policy, independent of who asks: reused across requests."""

    operation: dict[str, Any]
    fields: list[RequestedField]
    # The fields as the policy is given them, when not `fields` with every argument's value (seen_by).
    given: InitVar[list[dict[str, Any]] | None] = None
    field_inputs: list[dict[str, Any]] = field(init=False)
    # operation + field_inputs as JSON: part of the cache key and of the logged input.
    serialized: bytes = field(init=False)

    digest: bytes = field(init=False)
    # Every `Type.field` asked for, anywhere in the operation.
    coordinates: frozenset[str] = field(init=False)
    # seen_by's answers, by the argument names given.
    _seen: dict[frozenset[str], PolicyQuestion] = field(init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self, given: list[dict[str, Any]] | None) -> None:
        object.__setattr__(self, "coordinates", frozenset(requested.coordinate for requested in self.fields))
        object.__setattr__(self, "field_inputs", given if given is not None else [requested.as_input() for requested in self.fields])
        try:
            serialized = orjson.dumps({"operation": self.operation, "fields": self.field_inputs}, option=orjson.OPT_SORT_KEYS)
        except TypeError as exc:
            raise PolicyUnavailable(f"a requested field's arguments cannot be sent to the policy: {exc}") from exc
        object.__setattr__(self, "serialized", serialized)
        object.__setattr__(self, "digest", hashlib.sha256(serialized).digest())

    @property
    def paths(self) -> list[str]:
        return [requested.path for requested in self.fields]

    def seen_by(self, arguments_given: frozenset[str] | None) -> PolicyQuestion:
        """The question as a policy given only the values of `arguments_given` sees it (None: every
        value): what that policy is asked, and what its decision is cached by."""
        if arguments_given is None:
            return self
        seen = self._seen.get(arguments_given)
        if seen is None:
            inputs = withhold_arguments(self.field_inputs, arguments_given)
            seen = self if inputs == self.field_inputs else PolicyQuestion(self.operation, self.fields, inputs)
            self._seen[arguments_given] = seen
        return seen


# A question of no fields: the policy answers it with the principal's obligations alone.
NO_FIELDS = PolicyQuestion(operation={"name": None, "type": "query", "hash": hashlib.sha256(b"").hexdigest()}, fields=[])


@dataclass(frozen=True)
class DecisionRecord:
    """One entry of the decision log, in OPA's decision-log shape.

    The input is kept as the principal plus the question (operation and fields),
    and the question and the result by digest as well: many requests ask the
    same question and get the same answer, which the log stores once. The
    question is kept as asked, with every argument's value, though the policy
    was given only those its data lists (a preview gives each policy what it lists).
    """

    decision_id: str
    timestamp: datetime
    revision: str
    path: str
    principal: bytes
    # The person who asked, or for whom an app asked (an erasure forgets their requests); None: no person.
    asker: str | None
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


# A parsed decision (pydantic verdicts, their dict, its strings) holds about this many times the
# bytes of its JSON; measured with tracemalloc for 5 to 500 fields: 12.3 to 14.9.
PARSED_PER_JSON_BYTE = 16
ENTRY_OVERHEAD = 1024


def weigh_decision(key: Hashable, cached: _Cached) -> int:
    """Roughly the bytes a cached decision holds: its key carries the whole question."""
    question = key[-1] if isinstance(key, tuple) and isinstance(key[-1], bytes) else b""
    return ENTRY_OVERHEAD + len(question) + PARSED_PER_JSON_BYTE * len(cached.result)


# The principals whose requests are a person's: a user's own, and an app's acting for one (its id is theirs).
ASKING_PEOPLE = frozenset({PrincipalKind.USER, PrincipalKind.APP})

# Distinct recent questions warmed under a new revision before it serves, and how long warming may take.
RECENT_QUESTIONS = 256
WARMING_SECONDS = 5.0

Evaluate = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class _Asked:
    principal_input: dict[str, Any]
    question: PolicyQuestion


class PolicyDecider:
    """The cache, then the engine. Concurrent identical questions share one evaluation (so a
    burst after start or after a reload asks the engine once), and the questions asked recently
    are decided under a new revision before it serves (`warm`), so a reload is no cold start."""

    def __init__(
        self,
        engine: PolicyEngine,
        cache: DecisionCache[_Cached] | None = None,
        record: Callable[[DecisionRecord], None] = lambda record: None,
    ) -> None:
        self.engine = engine
        self.cache: DecisionCache[_Cached] = cache if cache is not None else DecisionCache()
        self._record = record
        self._in_flight: dict[tuple[str, Hashable], asyncio.Task[_Cached]] = {}
        self._recent: OrderedDict[Hashable, _Asked] = OrderedDict()
        self.evaluation_seconds = policy_evaluation_latency()
        engine.before_serving.append(self.warm)

    async def decide(self, principal: Principal, question: PolicyQuestion) -> Decision:
        started = time.perf_counter()
        revision, principal_input, cached, cache_hit = await self._decided(principal, question)
        self._record(
            DecisionRecord(
                # Ordered by time (UUIDv7, still a UUID as OPA's are): each row of the decision log
                # lands at the right edge of its primary key, where a random id dirtied a page of the
                # index per row (after a checkpoint, 17 MB of WAL against 3 MB for 3,300 rows).
                decision_id=str(uuid_utils.uuid7()),
                timestamp=datetime.now(UTC),
                revision=revision,
                path=ENTRYPOINT,
                principal=orjson.dumps(principal_input),
                asker=principal.id if principal.kind in ASKING_PEOPLE else None,
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

    async def obligations(self, principal: Principal) -> dict[str, Any]:
        """The obligations the policy sets `principal`, whatever it asks: what is known before a
        request's document is read (its rate limit). Decided and cached like any decision, but not
        logged: no field is decided, and the request's own decision carries the same obligations."""
        _, _, cached, _ = await self._decided(principal, NO_FIELDS)
        return cached.decision.obligations

    async def _decided(self, principal: Principal, question: PolicyQuestion) -> tuple[str, dict[str, Any], _Cached, bool]:
        """The revision in force, the principal as the policy reads it, the decision, and whether it came from the cache."""
        revision = self.engine.revision
        scopes = sorted(principal.scopes)
        principal_input: dict[str, Any] = {"kind": principal.kind.value, "id": principal.id, "scopes": scopes}
        if principal.app_id is not None:
            principal_input["app"] = principal.app_id  # which app acts for the user: policy may tell apps apart
        reads = self.engine.reads
        seen = question.seen_by(reads.arguments)  # what the policy is given, and its decision cached by
        key = _key(principal_input, seen, reads.principal)
        self._recent[key] = _Asked(principal_input, question)
        self._recent.move_to_end(key)
        if len(self._recent) > RECENT_QUESTIONS:
            self._recent.popitem(last=False)
        cached = self.cache.get(revision, key)
        cache_hit = cached is not None
        if cached is None:
            flight = self._in_flight.get((revision, key))
            if flight is None:
                flight = asyncio.ensure_future(self._evaluate(revision, key, principal_input, seen, self.engine.evaluate))
                self._in_flight[(revision, key)] = flight
                flight.add_done_callback(functools.partial(self._landed, (revision, key)))
            # Shared: one waiter giving up (its client left) must not cancel the others' answer.
            cached = await asyncio.shield(flight)
        return revision, principal_input, cached, cache_hit

    async def warm(self, revision: str, reads: PolicyReads, evaluate: Evaluate) -> int:
        """Decides the questions asked most recently under `revision`, which is about to go in
        force, with `evaluate` (its engine); returns how many were decided. Bounded in time: what is
        not warmed is decided when asked."""
        warmed = 0
        try:
            async with asyncio.timeout(WARMING_SECONDS):
                for asked in reversed(list(self._recent.values())):
                    seen = asked.question.seen_by(reads.arguments)
                    key = _key(asked.principal_input, seen, reads.principal)
                    self.cache.stage(revision, key, await self._evaluate(revision, key, asked.principal_input, seen, evaluate, keep=False))
                    warmed += 1
        except (TimeoutError, PolicyUnavailable) as exc:
            logger.warning("policy %s: warmed %d of %d recent decisions (%s)", revision[:12], warmed, len(self._recent), exc or "out of time")
        return warmed

    async def _evaluate(
        self, revision: str, key: Hashable, principal_input: dict[str, Any], question: PolicyQuestion, evaluate: Evaluate, *, keep: bool = True
    ) -> _Cached:
        policy_input = {"principal": principal_input, "operation": question.operation, "fields": question.field_inputs}
        started = time.perf_counter()
        try:
            answer = await evaluate(policy_input)
        finally:
            self.evaluation_seconds.observe(time.perf_counter() - started)
        decision = parse_decision(answer, question.paths)
        decision = replace(
            decision, owner_only=frozenset(asked.coordinate for asked in question.fields if decision.fields[asked.path].owner_only)
        )
        result = orjson.dumps(
            {
                "fields": {path: verdict.model_dump() for path, verdict in decision.fields.items()},
                "obligations": decision.obligations,
            }
        )
        cached = _Cached(decision, result, hashlib.sha256(result).digest())
        if keep:
            self.cache.put(revision, key, cached)
        return cached

    def _landed(self, at: tuple[str, Hashable], flight: asyncio.Task[_Cached]) -> None:
        self._in_flight.pop(at, None)
        if not flight.cancelled():
            flight.exception()  # retrieved here: every waiter may have gone


def _key(principal_input: dict[str, Any], seen: PolicyQuestion, principal_keys_read: frozenset[str]) -> Hashable:
    # Who the principal is (its id, its app) is part of the key only as far as the policy can read
    # it, and the question as the policy is given it (`seen`: the argument values it lists only).
    who = tuple(principal_input.get(name) if name in principal_keys_read else None for name in ("id", "app"))
    return (principal_input["kind"], tuple(principal_input["scopes"]), who, seen.serialized)
