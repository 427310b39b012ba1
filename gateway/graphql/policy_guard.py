"""The policy guard: after validation and before any resolver, the policy decides every requested field.

One input per request (principal, operation, every field with its path,
alias and arguments) goes to the decider; a denied field refuses the whole
operation (`data: null`, one FORBIDDEN error per denied field, no resolver
runs); an engine failure refuses it with POLICY_UNAVAILABLE. The decision's
obligations become the request's privacy service (malformed obligations
refuse the request as well), and its owner-only verdicts the coordinates the
executor checks ownership of. After the resolvers ran, the noise they drew is
charged to the budget, and the answer reports what the privacy service did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from cachetools import LRUCache
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
)
from strawberry.extensions import SchemaExtension

from gateway.errors import Forbidden, GatewayError, PolicyUnavailable, StoreUnavailable
from gateway.graphql.context import RequestContext
from gateway.graphql.persisted import registered_documents_only, require_registered
from gateway.graphql.responses import answer_minute
from gateway.policy.decider import ENTRY_OVERHEAD, PARSED_PER_JSON_BYTE, PolicyQuestion
from gateway.policy.decision import Decision
from gateway.policy.fields import RequestedField, collect_fields, select_operation
from gateway.privacy.disclosure import Disclosure
from gateway.privacy.terms import PrivacyTerms, terms_of
from gateway.store.documents import document_hash

__all__ = ["BASELINE_TERMS", "FixedTerms", "InvalidVariables", "PolicyGuard", "decide"]

# The same dashboard query with the same variables asks the same question every time. Bounded
# in bytes: a question of 300 fields holds ~100 KB, so a count of entries would bound nothing.
QUESTION_CACHE_BYTES = 32 * 1024 * 1024


def _weigh(query: str, question: PolicyQuestion) -> int:
    """Roughly the bytes an entry holds: the document's text in its key, and the question (its
    parsed fields hold about as many times their JSON as a parsed decision does) twice over: as
    asked, and as the policy is given it (PolicyQuestion.seen_by)."""
    return ENTRY_OVERHEAD + len(query) + 2 * PARSED_PER_JSON_BYTE * len(question.serialized)


# Each entry is (question, its weight).
_questions: LRUCache[tuple[int, str, bytes | None, str | None], tuple[PolicyQuestion, int]] = LRUCache(
    QUESTION_CACHE_BYTES, getsizeof=lambda entry: entry[1]
)

# What a schema without the policy guard answers under (the benchmark's baseline only): a creator's terms.
BASELINE_TERMS = PrivacyTerms.parse({"k_threshold": 5, "granularity_floor": "HOUR", "bucket_delay_seconds": 3600})


class InvalidVariables(Exception):
    """The request's variables do not fit the operation's declarations: a request error (nothing
    was decided or executed), which GraphQL over HTTP answers without `data`."""

    def __init__(self, errors: list[GraphQLError]) -> None:
        self.errors = errors


def _question(
    schema: GraphQLSchema,
    query: str,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, Any] | None,
) -> PolicyQuestion:
    # Keyed on the variables the operation declares, the only ones it reads (and bounded by the
    # HTTP layer): a client sending others cannot fill the cache with them.
    declared = {definition.variable.name.value for definition in operation.variable_definitions or ()}
    try:
        variables_key = orjson.dumps({name: value for name, value in (variables or {}).items() if name in declared}, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. an integer beyond 64 bits: coercion says what is wrong with it
        variables_key = None
    key = (id(schema), query, variables_key, operation.name.value if operation.name else None)
    kept = _questions.get(key) if variables_key is not None else None
    if kept is not None:
        return kept[0]
    fields = collect_fields(schema, document, operation, variables)
    errors = [item for item in fields if isinstance(item, GraphQLError)]
    if errors:
        raise InvalidVariables(errors)
    question = PolicyQuestion(
        operation={
            "name": operation.name.value if operation.name else None,
            "type": operation.operation.value,
            "hash": document_hash(query),
        },
        fields=[item for item in fields if isinstance(item, RequestedField)],
    )
    weight = _weigh(query, question)
    if variables_key is not None and weight <= QUESTION_CACHE_BYTES:
        _questions[key] = (question, weight)
    return question


def _denial(decision: Decision, field: RequestedField) -> GraphQLError:
    """The FORBIDDEN a denied field is refused with, at its path, with the policy's reason."""
    reason = decision.fields[field.path].reason or f"{field.coordinate} is not allowed"
    return GraphQLError(reason, path=field.path.split("."), original_error=Forbidden(reason, field=field.coordinate))


class _Disclosing(SchemaExtension):
    """Charges the budget for what the resolvers released, and reports what the privacy service did."""

    def _context(self) -> RequestContext | None:
        context = self.execution_context.context
        return context if isinstance(context, RequestContext) else None

    def _refuse(self, error: GatewayError | list[GraphQLError]) -> None:
        errors = error if isinstance(error, list) else [GraphQLError(error.message, original_error=error)]
        self.execution_context.result = ExecutionResult(data=None, errors=errors)

    async def _settle(self) -> None:
        context = self._context()
        result = self.execution_context.result
        if context is None or context.disclosure is None or context.budget is None:
            return
        if not isinstance(result, ExecutionResult) or result.data is None:
            return  # a refused operation released nothing: nothing to charge
        try:
            await context.budget.charge(context.disclosure, context.principal)
        except GatewayError as exc:
            # Nothing of the answer is released: the budget did not cover it, or could not be asked.
            context.disclosure.withdraw()
            result.data = None
            result.errors = [GraphQLError(exc.message, original_error=exc)]

    def get_results(self) -> dict[str, Any]:
        context = self._context()
        if context is None or context.disclosure is None:
            return {}
        return {"privacy": context.disclosure.report()}


async def decide(
    context: RequestContext,
    schema: GraphQLSchema,
    query: str,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, Any] | None,
) -> list[GraphQLError] | None:
    """Asks the policy about every field of `operation`. Allowed: the context gets the owner-only
    coordinates and the privacy service under the decision's obligations, and None is returned.
    Refused: the errors that refuse the operation as a whole (a document the obligations do not
    let the principal run, or the fields denied). InvalidVariables when the variables cannot be
    coerced to what the operation declares."""
    if context.decider is None:
        raise PolicyUnavailable("no policy engine is configured")  # never serve without a policy
    # Read before deciding: a reload in between keys an answer made under the new policy by the
    # old revision, under which no later request asks.
    revision = context.decider.engine.revision
    try:
        question = _question(schema, query, document, operation, variables)
        decision = await context.decider.decide(context.principal, question)
        terms = terms_of(decision.obligations)
        confined = registered_documents_only(decision.obligations)
    except PolicyUnavailable as exc:
        return [GraphQLError(exc.message, original_error=exc)]
    context.decided = True
    context.policy_revision = revision
    context.coordinates = question.coordinates
    context.owner_only = decision.owner_only
    if context.arrived is not None:
        context.now = answer_minute(context.arrived, context.principal, terms)
    context.disclosure = Disclosure(terms, context.reader, context.noise_key, context.now)
    if confined:
        try:
            await require_registered(context.documents, context.principal, question.operation["hash"])
        except (Forbidden, StoreUnavailable) as exc:
            return [GraphQLError(exc.message, original_error=exc)]
    if decision.any_denied:
        return [_denial(decision, field) for field in question.fields if not decision.fields[field.path].allow]
    return None


class PolicyGuard(_Disclosing):
    """Decides the operation unless the HTTP layer already did (gateway.routes.graphql asks first,
    to serve a kept answer): no operation is executed without a decision."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = self._context()
        if context is None:
            raise PolicyUnavailable("no policy engine is configured")
        if not context.decided:
            document = execution.graphql_document
            operation = select_operation(document, execution.operation_name) if document else None
            if document is None or operation is None or execution.query is None:
                yield
                return
            try:
                refusal = await decide(context, execution.schema._schema, execution.query, document, operation, execution.variables)
            except InvalidVariables as exc:
                refusal = exc.errors
            if refusal is not None:
                self._refuse(refusal)
        yield
        await self._settle()


class FixedTerms(_Disclosing):
    """In place of the policy guard (the benchmark's baseline only): every request is answered
    under BASELINE_TERMS, with no decision and so no owner-only field."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self._context()
        if context is not None and context.disclosure is None:
            context.disclosure = Disclosure(BASELINE_TERMS, context.reader, context.noise_key, context.now)
        yield
        await self._settle()
