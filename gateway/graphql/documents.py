"""Parsing and validation of GraphQL documents: limits, no suggestions, and caches for both.

A document is parsed under token, comment and length limits, then validated
with every suggestion hidden ("Did you mean …" would reveal names a principal
may not see) and with depth and alias limits. Both steps are cached by text /
document, so a dashboard's repeated query costs a dictionary lookup.
"""

from __future__ import annotations

from functools import lru_cache

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import ASTValidationRule

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_TOKENS", "QUERY_TOO_COMPLEX", "parse_document", "validate_query"]

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2_000
MAX_COMMENTS = 100
MAX_SOURCE_LENGTH = 20_000
CACHE_SIZE = 1_024


def too_complex(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": QUERY_TOO_COMPLEX})


@lru_cache(maxsize=CACHE_SIZE)
def parse_document(query: str) -> DocumentNode:
    """Parse `query`; a document over a limit raises QUERY_TOO_COMPLEX, bad syntax a GraphQLSyntaxError."""
    if len(query) > MAX_SOURCE_LENGTH:
        raise too_complex(f"the document is longer than {MAX_SOURCE_LENGTH} characters")
    try:
        return parse(query, max_lexical_tokens=MAX_TOKENS, max_comments=MAX_COMMENTS, no_location=False)
    except GraphQLError as error:
        if "Document contains more" in error.message:
            raise too_complex(f"the document has more than {MAX_TOKENS} tokens or {MAX_COMMENTS} comments") from error
        raise


class ComplexityLimits(ASTValidationRule):
    """Refuses operations nested deeper than MAX_DEPTH or using more than MAX_ALIASES aliases."""

    def enter_document(self, node: DocumentNode, *_: object) -> None:
        aliases = 0
        for definition in node.definitions:
            for selection in _walk(definition):
                aliases += selection.alias is not None
        if aliases > MAX_ALIASES:
            self.report_error(too_complex(f"{aliases} aliases; at most {MAX_ALIASES} are allowed"))

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
        depth = self._depth(node.selection_set, frozenset())
        if depth > MAX_DEPTH:
            self.report_error(too_complex(f"the operation is nested {depth} levels deep; at most {MAX_DEPTH} are allowed"))

    def _depth(self, selection_set: SelectionSetNode | None, fragments: frozenset[str]) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):
                    continue  # introspection has its own fixed shape
                deepest = max(deepest, 1 + self._depth(selection.selection_set, fragments))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self._depth(selection.selection_set, fragments))
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in fragments:
                fragment = self.context.get_fragment(selection.name.value)
                if fragment is not None:
                    deepest = max(deepest, self._depth(fragment.selection_set, fragments | {selection.name.value}))
        return deepest


def _walk(definition: object) -> list[FieldNode]:
    """Every field node under an operation or fragment definition."""
    found: list[FieldNode] = []
    stack = [getattr(definition, "selection_set", None)]
    while stack:
        selection_set = stack.pop()
        if selection_set is None:
            continue
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found.append(selection)
            stack.append(getattr(selection, "selection_set", None))
    return found


RULES = (*specified_rules, ComplexityLimits)


@lru_cache(maxsize=CACHE_SIZE)
def validate_query(schema: GraphQLSchema, query: str) -> list[GraphQLError]:
    """Validation errors of an already parsed query, cached by its text (hashing a
    document walks the whole tree; hashing the text is one pass over a string)."""
    return validate(schema, parse_document(query), RULES, hide_suggestions=True)


