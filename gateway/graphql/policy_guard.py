"""The policy guard: after validation and before any resolver, the policy decides every requested field.

One input per request (principal, operation, every field with its path,
alias and arguments) goes to the decider; a denied field refuses the whole
operation (`data: null`, one FORBIDDEN error per denied field, no resolver
runs); an engine failure refuses it with POLICY_UNAVAILABLE. Resolvers find
the decision in the request context, and its obligations as the request's
privacy layer (malformed obligations refuse the request as well).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import orjson
from graphql import DocumentNode, ExecutionResult, GraphQLError, GraphQLSchema, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from gateway.errors import Forbidden, PolicyUnavailable
from gateway.graphql.context import RequestContext
from gateway.policy.decider import PolicyQuestion
from gateway.policy.fields import RequestedField, collect_fields, select_operation
from gateway.privacy.layer import PrivacyLayer
from gateway.privacy.terms import terms_of

__all__ = ["PolicyGuard"]

# The same dashboard query with the same variables asks the same question every time.
QUESTION_CACHE_SIZE = 2048
_questions: OrderedDict[tuple[int, str, bytes, str | None], PolicyQuestion] = OrderedDict()


class _BadVariables(Exception):
    def __init__(self, errors: list[GraphQLError]) -> None:
        self.errors = errors


def _question(
    schema: GraphQLSchema,
    query: str,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, Any] | None,
) -> PolicyQuestion:
    try:
        variables_key = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        raise PolicyUnavailable(f"the variables cannot be sent to the policy: {exc}") from exc
    key = (id(schema), query, variables_key, operation.name.value if operation.name else None)
    question = _questions.get(key)
    if question is not None:
        _questions.move_to_end(key)
        return question
    fields = collect_fields(schema, document, operation, variables)
    errors = [item for item in fields if isinstance(item, GraphQLError)]
    if errors:
        raise _BadVariables(errors)
    question = PolicyQuestion(
        operation={
            "name": operation.name.value if operation.name else None,
            "type": operation.operation.value,
            "hash": hashlib.sha256(query.encode()).hexdigest(),
        },
        fields=[item for item in fields if isinstance(item, RequestedField)],
    )
    _questions[key] = question
    while len(_questions) > QUESTION_CACHE_SIZE:
        _questions.popitem(last=False)
    return question


class PolicyGuard(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if not isinstance(context, RequestContext) or context.decider is None:
            raise PolicyUnavailable("no policy engine is configured")  # never serve without a policy
        document = execution.graphql_document
        operation = select_operation(document, execution.operation_name) if document else None
        if document is None or operation is None or execution.query is None:
            yield
            return
        try:
            question = _question(execution.schema._schema, execution.query, document, operation, execution.variables)
        except _BadVariables as exc:
            execution.result = ExecutionResult(data=None, errors=exc.errors)
            yield
            return
        except PolicyUnavailable as exc:
            execution.result = ExecutionResult(data=None, errors=[GraphQLError(exc.message, original_error=exc)])
            yield
            return
        requested = question.fields
        try:
            decision = await context.decider.decide(context.principal, question)
        except PolicyUnavailable as exc:
            execution.result = ExecutionResult(data=None, errors=[GraphQLError(exc.message, original_error=exc)])
            yield
            return
        context.decision = decision
        try:
            terms = terms_of(decision.obligations)
        except PolicyUnavailable as exc:
            execution.result = ExecutionResult(data=None, errors=[GraphQLError(exc.message, original_error=exc)])
            yield
            return
        context.privacy = PrivacyLayer(
            terms, context.principal, context.noise_key, context.now, requested=question.coordinates
        )
        if not decision.any_denied:
            yield
            return
        denied = [
            GraphQLError(
                decision.fields[field.path].reason or f"{field.coordinate} is not allowed",
                path=field.path.split("."),
                original_error=Forbidden(decision.fields[field.path].reason or f"{field.coordinate} is not allowed", field=field.coordinate),
            )
            for field in requested
            if not decision.fields[field.path].allow
        ]
        execution.result = ExecutionResult(data=None, errors=denied)
        yield
