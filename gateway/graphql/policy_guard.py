"""The policy guard: after validation and before any resolver, the policy decides every requested field.

One input per request (principal, operation, every field with its path,
alias and arguments) goes to the decider; a denied field refuses the whole
operation (`data: null`, one FORBIDDEN error per denied field, no resolver
runs); an engine failure refuses it with POLICY_UNAVAILABLE. Resolvers find
the decision, with its obligations, in the request context.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.errors import Forbidden, PolicyUnavailable
from gateway.graphql.context import RequestContext
from gateway.policy.fields import collect_fields, select_operation

__all__ = ["PolicyGuard"]


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
        fields = collect_fields(execution.schema._schema, document, operation, execution.variables)
        if fields and isinstance(fields[0], GraphQLError):
            execution.result = ExecutionResult(data=None, errors=[error for error in fields if isinstance(error, GraphQLError)])
            yield
            return
        requested = [field for field in fields if not isinstance(field, GraphQLError)]
        try:
            decision = await context.decider.decide(
                context.principal,
                {
                    "name": execution.operation_name or (operation.name.value if operation.name else None),
                    "type": operation.operation.value,
                    "hash": hashlib.sha256(execution.query.encode()).hexdigest(),
                },
                requested,
            )
        except PolicyUnavailable as exc:
            execution.result = ExecutionResult(data=None, errors=[GraphQLError(exc.message, original_error=exc)])
            yield
            return
        context.decision = decision
        denied = [
            GraphQLError(
                decision.fields[field.path].reason or f"{field.coordinate} is not allowed",
                path=field.path.split("."),
                original_error=Forbidden(decision.fields[field.path].reason or f"{field.coordinate} is not allowed", field=field.coordinate),
            )
            for field in requested
            if not decision.fields[field.path].allow
        ]
        if denied:
            execution.result = ExecutionResult(data=None, errors=denied)
        yield
