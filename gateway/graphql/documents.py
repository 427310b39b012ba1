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

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_FIELDS", "MAX_TOKENS", "QUERY_TOO_COMPLEX", "parse_document", "validate_query"]

QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
MAX_DEPTH = 10
MAX_ALIASES = 30
# Fields an operation selects, fragments expanded: what the policy decides one by one. The embedded
# engine's time grows faster than linearly with them (rego-cpp 1.5.2: 39 fields 11 ms, 390 fields
# 150 ms, 1,170 fields 0.9 s), so past this many a request would only time the policy out. The
# standard introspection query selects 226.
MAX_FIELDS = 300
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
    """Refuses operations nested deeper than MAX_DEPTH, selecting more than MAX_FIELDS fields or
    using more than MAX_ALIASES aliases."""

    def enter_document(self, node: DocumentNode, *_: object) -> None:
        aliases = 0
        for definition in node.definitions:
            for selection in _walk(definition):
                aliases += selection.alias is not None
        if aliases > MAX_ALIASES:
            self.report_error(too_complex(f"{aliases} aliases; at most {MAX_ALIASES} are allowed"))

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
        depth = self._depth(node.selection_set, frozenset(), {})
        if depth > MAX_DEPTH:
            self.report_error(too_complex(f"the operation is nested {depth} levels deep; at most {MAX_DEPTH} are allowed"))
        else:
            paths: set[str] = set()
            self._paths(node.selection_set, "", set(), paths)
            if len(paths) > MAX_FIELDS:
                self.report_error(too_complex(f"the operation selects more than {MAX_FIELDS} fields (fragments expanded)"))

    def _paths(self, selection_set: SelectionSetNode | None, prefix: str, expanded: set[tuple[str, str]], paths: set[str]) -> None:
        """Adds the response paths under `selection_set` (fields selected twice merge, as the
        policy is asked about them) to `paths`; stops once past MAX_FIELDS. A fragment is
        expanded once per path (it adds nothing the second time), so fragments spreading each
        other many times over cannot make the counting itself costly."""
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if len(paths) > MAX_FIELDS:
                return
            if isinstance(selection, FieldNode):
                path = prefix + (selection.alias or selection.name).value
                paths.add(path)
                self._paths(selection.selection_set, path + ".", expanded, paths)
            elif isinstance(selection, InlineFragmentNode):
                self._paths(selection.selection_set, prefix, expanded, paths)
            elif isinstance(selection, FragmentSpreadNode) and (prefix, selection.name.value) not in expanded:
                expanded.add((prefix, selection.name.value))
                fragment = self.context.get_fragment(selection.name.value)
                if fragment is not None:
                    self._paths(fragment.selection_set, prefix, expanded, paths)

    def _depth(self, selection_set: SelectionSetNode | None, fragments: frozenset[str], known: dict[str, int]) -> int:
        """How deep `selection_set` nests, fragments expanded. A fragment's depth is worked out once
        (`known`), so fragments spreading each other many times over cost no more than once."""
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):
                    continue  # introspection has its own fixed shape
                deepest = max(deepest, 1 + self._depth(selection.selection_set, fragments, known))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self._depth(selection.selection_set, fragments, known))
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in fragments:
                name = selection.name.value
                if name not in known:
                    fragment = self.context.get_fragment(name)
                    known[name] = self._depth(fragment.selection_set, fragments | {name}, known) if fragment is not None else 0
                deepest = max(deepest, known[name])
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


