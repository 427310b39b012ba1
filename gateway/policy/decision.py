"""The contract between the gateway and its Rego policy: what goes in, what comes out.

Input (one per request, built by the policy guard):

    {
      "principal": {"kind": "user", "id": "u1", "scopes": []},
      "operation": {"name": "Dashboard", "type": "query", "hash": "<sha256 of the document>"},
      "fields": [
        {"path": "video.shareTimeline", "coordinate": "Video.shareTimeline",
         "type": "Video", "field": "shareTimeline", "alias": null,
         "arguments": {"granularity": "DAY", "from": null, "to": null}}
      ]
    }

`principal.app` is present for an app only: the app acting for user `id`. An
argument's value is "(withheld)" unless the policy's data lists it (gateway.policy.reads).
`path` is the response path (aliases, not field names, and no list indexes),
unique within a request. The entrypoint `data.gateway.authz.decision` answers:

    {
      "fields": {"video.shareTimeline": {"allow": true, "reason": "…", "owner_only": true}},
      "obligations": {"k_threshold": 5, "granularity_floor": "HOUR", …}
    }

A field missing from `fields`, or a malformed answer, is the engine failing:
the request gets POLICY_UNAVAILABLE, never data (fail closed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.errors import PolicyUnavailable
from gateway.policy.reads import PRINCIPAL_KEYS, PolicyReads

if TYPE_CHECKING:
    from gateway.policy.worker import PolicyFiles

__all__ = ["ENTRYPOINT", "PRINCIPAL_KEYS", "Decision", "FieldVerdict", "PolicyEngine", "Warmer", "parse_decision"]

# The rule every engine evaluates, as an OPA Data API path.
ENTRYPOINT = "gateway/authz/decision"


class FieldVerdict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    allow: bool
    reason: str = ""
    # Allowed only on data the principal owns (checked by the resolver at run time).
    owner_only: bool = False


class _DecisionDocument(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    fields: dict[str, FieldVerdict]
    obligations: dict[str, Any] = {}


@dataclass(frozen=True)
class Decision:
    fields: dict[str, FieldVerdict]
    obligations: dict[str, Any] = field(default_factory=dict)
    # The coordinates allowed on the principal's own data only (gateway.policy.decider sets them
    # from its question, once per decision: a cached decision serves many requests).
    owner_only: frozenset[str] = frozenset()
    # Whether any field is denied, worked out once (a cached decision serves many requests).
    any_denied: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "any_denied", any(not verdict.allow for verdict in self.fields.values()))


def parse_decision(document: Any, paths: list[str]) -> Decision:
    """Check an engine's answer against the paths asked about; anything off fails closed."""
    try:
        parsed = _DecisionDocument.model_validate(document)
    except ValidationError as exc:
        raise PolicyUnavailable(f"the policy answered in an unexpected shape: {exc.errors()[0]['msg']}") from exc
    missing = [path for path in paths if path not in parsed.fields]
    if missing:
        raise PolicyUnavailable(f"the policy gave no decision for {missing[0]}")
    return Decision(fields=dict(parsed.fields), obligations=dict(parsed.obligations))


# Called with a revision about to go in force, what of the input it reads, and a way to evaluate
# under it; returns how many decisions it made (gateway.policy.decider warms its cache).
Warmer = Callable[[str, PolicyReads, Callable[[dict[str, Any]], Awaitable[Any]]], Awaitable[int]]


class PolicyEngine(Protocol):
    """Evaluates the entrypoint for one input. Implementations: embedded (regopy), OPA server."""

    last_error: str | None  # why the engine is not serving, or why the last policy edit was rejected
    # Run before a reloaded revision serves (an engine that does not reload itself never runs them).
    before_serving: list[Warmer]
    # Since start: evaluations that overran the policy timeout, and workers started to replace one
    # that died or overran (always 0 for an engine without workers).
    timeouts: int
    restarts: int

    @property
    def revision(self) -> str:
        """Identifies the policy in force; changes whenever it is reloaded."""
        ...

    @property
    def ready(self) -> bool:
        """A policy is in force (for /readyz)."""
        ...

    @property
    def files(self) -> PolicyFiles | None:
        """The policy files in force, when this process holds them (the embedded engine)."""
        ...

    @property
    def reads(self) -> PolicyReads:
        """What of the input the policy in force may read (gateway.policy.reads): the decision cache
        keys on no more, and the policy is given the values of the arguments it lists only. A
        policy that reads only `app` and names no argument identifying a video is decided once per
        app and question, not once per user of it and video."""
        ...

    async def start(self) -> None: ...

    async def check(self) -> None:
        """Refresh `ready` and `last_error` (for /readyz)."""

    async def evaluate(self, policy_input: dict[str, Any]) -> Any:
        """The raw value of `data.gateway.authz.decision` for this input.

        Raises PolicyUnavailable when the engine errs, times out or has no policy.
        """
        ...

    async def close(self) -> None: ...
