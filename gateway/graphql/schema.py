"""The schema: `Query`, `Mutation` (a user's consent: gateway.graphql.consent; compliance's erasure: gateway.graphql.erasure), and the extension that
hands Strawberry the already parsed and validated document."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.auth import PrincipalKind
from gateway.errors import Forbidden, NotFound, Unauthenticated
from gateway.graphql.compliance import DecisionLogConnection, decision_log
from gateway.graphql.consent import ConsentMutations
from gateway.graphql.context import Context
from gateway.graphql.creator import Creator
from gateway.graphql.documents import parse_document
from gateway.graphql.erasure import ErasureReceipt, erase_user
from gateway.graphql.execution import ValueListExecutionContext
from gateway.graphql.me import Me
from gateway.graphql.policy_guard import FixedTerms, PolicyGuard
from gateway.graphql.video import Video
from gateway.ingest.events import is_platform_id

__all__ = ["Mutation", "Query", "build_schema"]

log = logging.getLogger(__name__)


@strawberry.type
class Query:
    @strawberry.field(description="A video by id; null with NOT_FOUND when there is none.")
    async def video(self, info: Context, id: strawberry.ID) -> Video | None:
        if not is_platform_id(id):
            raise NotFound(f"no video {id!r}")  # no stored id looks like this one
        row = await info.context.video(str(id))
        if row is None:
            raise NotFound(f"no video {id!r}")
        return Video.of(row)

    @strawberry.field(description="A creator by user id; null with NOT_FOUND when they have no videos.")
    async def creator(self, info: Context, id: strawberry.ID) -> Creator | None:
        if not is_platform_id(id):
            raise NotFound(f"no creator {id!r}")  # no stored id looks like this one
        if not await info.context.creator_exists(str(id)):
            raise NotFound(f"no creator {id!r}")
        return Creator(owner_id=str(id))

    decision_log: DecisionLogConnection = strawberry.field(
        resolver=decision_log, description="Policy decisions, oldest first. Compliance only."
    )

    @strawberry.field(description="The signed-in user's own activity.")
    def me(self, info: Context) -> Me | None:
        principal = info.context.principal
        if principal.kind is PrincipalKind.ANONYMOUS:
            raise Unauthenticated("sign in to see your own activity")
        if principal.kind not in (PrincipalKind.USER, PrincipalKind.APP) or principal.id is None:
            raise Forbidden("`me` is for users, and apps acting for one", field="Query.me")
        return Me(user_id=principal.id)


@strawberry.type
class Mutation(ConsentMutations):
    """A user's consent (gateway.graphql.consent) and compliance's erasure (gateway.graphql.erasure)."""

    erase_user: ErasureReceipt | None = strawberry.field(
        resolver=erase_user,
        description="Erases a person's own data at their request: their events, their place in the ledger of people, their app "
        "grants (revoked). Released aggregates are kept. Compliance only.",
    )


class PreparedDocument(SchemaExtension):
    """The HTTP layer parses and validates (with limits and caches) before execution;
    this hands Strawberry that document so neither step runs twice."""

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query
        if query is not None:
            self.execution_context.graphql_document = parse_document(query)
        yield

    def on_validate(self) -> Iterator[None]:
        self.execution_context.pre_execution_errors = []
        yield


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Expected refusals are answers, not incidents; the HTTP layer logs unexpected ones with a request id.
        return None


def build_schema(*, policy_guard: bool = True) -> strawberry.Schema:
    """The schema; `policy_guard=False` exists for the benchmark's baseline only."""
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        extensions=[PreparedDocument, PolicyGuard if policy_guard else FixedTerms],
        config=StrawberryConfig(auto_camel_case=True, disable_field_suggestions=True),
        execution_context_class=ValueListExecutionContext,
    )


