"""What a policy edit would change, told before it takes effect: the inputs the decision log
recorded, decided again under the policy in force and under the proposed one.

Each distinct input of the log (who asked, as the policies can tell askers apart, and the
question: an operation and its fields) is decided once by each policy and stands for every
logged decision that asked it. The baseline is the current policy decided again, not what the
log recorded: the log spans revisions, and what an older revision decided differently is not the
edit's doing. How far the recorded decisions stray from the current policy is counted apart
(`Impact.drift`), so a reviewer knows what the log's history says about today.

Both policies run as a reload runs one (`EmbeddedEngine`: its own tests first, then a bundle
that answers a probe, in worker processes that may crash without taking this one down).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import orjson

from gateway.errors import PolicyUnavailable
from gateway.policy.decision import Decision, FieldVerdict, parse_decision
from gateway.policy.embedded import EmbeddedEngine
from gateway.policy.reads import withhold_arguments
from gateway.store.decision_log import LoggedDecision, LoggedInput, LogWindow

__all__ = [
    "Access",
    "AccessChange",
    "Example",
    "Failure",
    "Impact",
    "PolicyRejected",
    "Preview",
    "Tally",
    "TermChange",
    "replay",
    "vetted_engine",
]

# A preview waits for answers rather than failing closed: seconds one evaluation may take.
EVALUATION_TIMEOUT = 10.0


class PolicyRejected(Exception):
    """The policy would not go live: it cannot be read, does not parse, fails its own tests or a probe."""


@contextlib.asynccontextmanager
async def vetted_engine(directory: Path, *, workers: int) -> AsyncIterator[EmbeddedEngine]:
    """The policy in `directory`, vetted as a reload vets it, evaluating in `workers` processes."""
    engine = EmbeddedEngine(directory, timeout=EVALUATION_TIMEOUT, queue_timeout=EVALUATION_TIMEOUT, workers=workers)
    try:
        if not await engine.reload():
            raise PolicyRejected(engine.rejection or engine.last_error or "it did not go live")
        yield engine
    finally:
        await engine.close()


class Access(StrEnum):
    """What a field's verdict lets the principal read."""

    DENIED = "denied"
    OWN_DATA = "own data only"
    ALLOWED = "allowed"

    @classmethod
    def of(cls, verdict: FieldVerdict) -> Access:
        if not verdict.allow:
            return cls.DENIED
        return cls.OWN_DATA if verdict.owner_only else cls.ALLOWED


@dataclass(frozen=True)
class AccessChange:
    """A field coordinate whose access changes for a principal kind. `owner_only` counts: a field
    that stops being owner-only opens every creator's data to every creator."""

    principal_kind: str
    coordinate: str
    before: Access
    after: Access


@dataclass(frozen=True)
class TermChange:
    """An obligation term (`k_threshold`, `epsilon.shares`, …) whose value changes for a principal
    kind. Values are JSON text; None when the term is absent."""

    principal_kind: str
    term: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Failure:
    """A policy that gives no decision for an input (it errs, overruns or leaves a field out):
    the request would fail closed, 503."""

    policy: str  # "current" or "proposed"
    principal_kind: str
    error: str


@dataclass(frozen=True)
class Example:
    """One logged decision a change touches: to look it up in the decision log. No principal id."""

    decision_id: str
    timestamp: datetime
    operation: dict[str, Any]
    path: str | None  # the field's response path, for an access change
    scopes: list[str]

    def as_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"decision_id": self.decision_id, "timestamp": self.timestamp.isoformat(), "operation": self.operation}
        if self.path is not None:
            document["path"] = self.path
        if self.scopes:
            document["scopes"] = self.scopes
        return document


@dataclass
class Tally:
    """Logged decisions and distinct inputs a change touches; the example is from the most asked input."""

    decisions: int = 0
    inputs: int = 0
    example: Example | None = None
    _example_weight: int = field(default=-1, repr=False)

    def add(self, logged: LoggedInput, decisions: int, path: str | None = None, example: LoggedDecision | None = None) -> None:
        """Counts `decisions` of the input `logged`; `example` is one of them (default: its latest)."""
        self.decisions += decisions
        self.inputs += 1
        if decisions > self._example_weight:
            self._example_weight = decisions
            decision = example or logged.latest
            self.example = Example(
                decision.decision_id, decision.timestamp, logged.question["operation"], path, list(logged.principal.get("scopes", []))
            )


@dataclass
class Impact:
    """Everything that differs, tallied by principal kind and what differs."""

    decisions: int = 0  # logged decisions compared
    inputs: int = 0
    access: dict[AccessChange, Tally] = field(default_factory=dict)
    terms: dict[TermChange, Tally] = field(default_factory=dict)
    failures: dict[Failure, Tally] = field(default_factory=dict)
    # Logged decisions that would be answered otherwise: a field's access changes, or one policy
    # decides what the other fails on.
    flipped: Tally = field(default_factory=Tally)
    # Logged decisions whose recorded outcome is not what the current policy decides.
    drift: Tally = field(default_factory=Tally)

    @property
    def flips(self) -> bool:
        return self.flipped.inputs > 0

    def add(self, logged: LoggedInput, current: Decision | PolicyUnavailable, proposed: Decision | PolicyUnavailable) -> None:
        self.decisions += logged.decisions
        self.inputs += 1
        kind = str(logged.principal.get("kind"))
        for policy, decided in (("current", current), ("proposed", proposed)):
            if isinstance(decided, PolicyUnavailable):
                self.failures.setdefault(Failure(policy, kind, decided.message), Tally()).add(logged, logged.decisions)
        if isinstance(current, Decision):
            self._count_drift(logged, current)
        if not (isinstance(current, Decision) and isinstance(proposed, Decision)):
            if isinstance(current, Decision) or isinstance(proposed, Decision):
                self.flipped.add(logged, logged.decisions)  # one policy decides what the other fails on
            return
        changed: dict[AccessChange, str] = {}
        for requested in logged.question["fields"]:
            path = requested["path"]
            before, after = Access.of(current.fields[path]), Access.of(proposed.fields[path])
            if before is not after:
                # A coordinate asked at several paths (aliases) counts once per decision.
                changed.setdefault(AccessChange(kind, requested["coordinate"], before, after), path)
        for change, path in changed.items():
            self.access.setdefault(change, Tally()).add(logged, logged.decisions, path)
        if changed:
            self.flipped.add(logged, logged.decisions, next(iter(changed.values())))
        before_terms, after_terms = dict(_terms(current.obligations)), dict(_terms(proposed.obligations))
        for term in sorted(before_terms.keys() | after_terms.keys()):
            if before_terms.get(term) != after_terms.get(term):
                key = TermChange(kind, term, before_terms.get(term), after_terms.get(term))
                self.terms.setdefault(key, Tally()).add(logged, logged.decisions)

    def _count_drift(self, logged: LoggedInput, current: Decision) -> None:
        strays = [outcome for outcome in logged.outcomes if not _same_outcome(logged, outcome.result, current)]
        if strays:
            example = max(strays, key=lambda outcome: outcome.decisions).latest
            self.drift.add(logged, sum(outcome.decisions for outcome in strays), example=example)

    def as_document(self) -> dict[str, Any]:
        """The impact as JSON-ready data, the most frequent change first."""

        def tallied(tally: Tally) -> dict[str, Any]:
            return {
                "decisions": tally.decisions,
                "inputs": tally.inputs,
                "example": tally.example.as_document() if tally.example is not None else None,
            }

        def term_value(text: str | None) -> dict[str, Any]:
            return {} if text is None else {"value": orjson.loads(text)}

        return {
            "access_changes": [
                {"principal_kind": change.principal_kind, "coordinate": change.coordinate, "before": change.before.value, "after": change.after.value, **tallied(tally)}
                for change, tally in by_frequency(self.access)
            ],
            "obligation_changes": [
                {"principal_kind": change.principal_kind, "term": change.term, "before": term_value(change.before), "after": term_value(change.after), **tallied(tally)}
                for change, tally in by_frequency(self.terms)
            ],
            "failures": [
                {"policy": failure.policy, "principal_kind": failure.principal_kind, "error": failure.error, **tallied(tally)}
                for failure, tally in by_frequency(self.failures)
            ],
            "flipped": tallied(self.flipped),
            "drift": tallied(self.drift),
        }


@dataclass(frozen=True)
class Preview:
    """A preview's answer: which policies, which stretch of the log, and the impact."""

    proposed_dir: Path
    proposed_revision: str
    current_dir: Path
    current_revision: str
    since: datetime
    window: LogWindow
    impact: Impact

    def as_document(self) -> dict[str, Any]:
        return {
            "proposed": {"policy_dir": str(self.proposed_dir), "revision": self.proposed_revision},
            "current": {"policy_dir": str(self.current_dir), "revision": self.current_revision},
            "since": self.since.isoformat(),
            "log": {"decisions": self.window.decisions, "inputs": self.window.inputs, "revisions": self.window.revisions},
            **self.impact.as_document(),
            "flips": self.impact.flips,
        }


Change = TypeVar("Change", AccessChange, TermChange, Failure)


def by_frequency(tallies: dict[Change, Tally]) -> list[tuple[Change, Tally]]:
    """The most decisions first; ties in the order of the change (principal kind, then what changed)."""
    return sorted(tallies.items(), key=lambda item: (-item[1].decisions, str(item[0])))


def _terms(obligations: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """The obligations as (dotted term, JSON value): `epsilon.shares`, `rate_limit.requests_per_minute`."""
    for name, value in obligations.items():
        if isinstance(value, dict) and value:
            yield from _terms(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _same_outcome(logged: LoggedInput, recorded: dict[str, Any], current: Decision) -> bool:
    """Whether a recorded result grants what the current decision grants, under the same terms
    (reasons may be worded otherwise)."""
    try:
        then = parse_decision(recorded, logged.paths)
    except PolicyUnavailable:
        return False
    same_access = all(Access.of(then.fields[path]) is Access.of(current.fields[path]) for path in logged.paths)
    return same_access and dict(_terms(then.obligations)) == dict(_terms(current.obligations))


async def replay(
    inputs: AsyncIterable[LoggedInput],
    current: EmbeddedEngine,
    proposed: EmbeddedEngine,
    *,
    concurrency: int,
    decided: Callable[[], None] = lambda: None,
) -> Impact:
    """Decides each input under both policies, `concurrency` inputs at a time (one per worker of
    each engine), and tallies what differs; `decided` is called after each input."""
    impact = Impact()
    pending = aiter(inputs)
    taking = asyncio.Lock()  # one reader of the log at a time

    async def decide(engine: EmbeddedEngine, logged: LoggedInput) -> Decision | PolicyUnavailable:
        # Each policy is given what it is when serving: the values of the arguments it lists (the
        # log keeps them all).
        policy_input = logged.policy_input
        policy_input["fields"] = withhold_arguments(policy_input["fields"], engine.reads.arguments)
        try:
            return parse_decision(await engine.evaluate(policy_input), logged.paths)
        except PolicyUnavailable as exc:
            return exc

    async def compare_in_turn() -> None:
        while True:
            async with taking:
                logged = await anext(pending, None)
            if logged is None:
                return
            before, after = await asyncio.gather(decide(current, logged), decide(proposed, logged))
            impact.add(logged, before, after)
            decided()

    comparers = [asyncio.ensure_future(compare_in_turn()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*comparers)
    finally:
        # One failed (the log could not be read): the others stop with it.
        for comparer in comparers:
            comparer.cancel()
        await asyncio.gather(*comparers, return_exceptions=True)
    return impact
