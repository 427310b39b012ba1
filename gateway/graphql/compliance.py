"""What the compliance principal reads: the policy decision log."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from gateway.auth import PrincipalKind
from gateway.errors import BadUserInput, Forbidden
from gateway.graphql import cursors
from gateway.graphql.context import Context
from gateway.graphql.shapes import PageInfo
from gateway.store.decision_log import read_decisions

__all__ = ["DecisionLogConnection", "decision_log"]

MAX_PAGE = 500


@strawberry.type(description="One policy decision, in OPA's decision-log shape.")
class PolicyDecision:
    decision_id: strawberry.ID
    timestamp: datetime
    revision: str
    path: str
    input: JSON
    result: JSON
    cache_hit: bool
    denied: bool
    duration_ms: float


@strawberry.type
class PolicyDecisionEdge:
    cursor: str
    node: PolicyDecision


@strawberry.type
class DecisionLogConnection:
    edges: list[PolicyDecisionEdge]
    page_info: PageInfo


def _cursor(timestamp: datetime, decision_id: str) -> str:
    return cursors.encode(timestamp.isoformat(), decision_id)


def _position(cursor: str) -> tuple[datetime, str]:
    def position(parts: list[Any]) -> tuple[datetime, str]:
        timestamp, decision_id = parts
        moment = datetime.fromisoformat(timestamp)
        if moment.tzinfo is None:
            raise ValueError(timestamp)
        return moment, str(uuid.UUID(decision_id))

    return cursors.decode(cursor, position, "`after` is not a decision-log cursor; pass `pageInfo.endCursor`")


async def decision_log(
    info: Context,
    from_: Annotated[datetime | None, strawberry.argument(name="from", description="Inclusive start.")] = None,
    to: Annotated[datetime | None, strawberry.argument(description="Exclusive end.")] = None,
    denied: Annotated[bool | None, strawberry.argument(description="Only denied (true) or only allowed (false) decisions.")] = None,
    first: int = 100,
    after: str | None = None,
) -> DecisionLogConnection:
    # The policy decides this field; the check here keeps the log closed even if a policy edit opened it.
    if info.context.principal.kind is not PrincipalKind.COMPLIANCE:
        raise Forbidden("the decision log is for compliance", field="Query.decisionLog")
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"`first` must be between 1 and {MAX_PAGE}")
    if from_ is not None and to is not None and from_ >= to:
        raise BadUserInput("`from` must be before `to`")
    async with info.context.store.private.acquire() as conn:
        rows = await read_decisions(conn, from_, to, denied, _position(after) if after else None, first + 1)
    edges = [
        PolicyDecisionEdge(
            cursor=_cursor(row["timestamp"], row["decision_id"]),
            node=PolicyDecision(
                decision_id=strawberry.ID(row["decision_id"]),
                timestamp=row["timestamp"],
                revision=row["revision"],
                path=row["path"],
                input=json.loads(row["input"]),
                result=json.loads(row["result"]),
                cache_hit=row["cache_hit"],
                denied=row["denied"],
                duration_ms=row["duration_ms"],
            ),
        )
        for row in rows[:first]
    ]
    return DecisionLogConnection(
        edges=edges, page_info=PageInfo(has_next_page=len(rows) > first, end_cursor=edges[-1].cursor if edges else None)
    )
