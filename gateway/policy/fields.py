"""Every field a GraphQL operation requests, as the policy sees it.

Walks the operation the way execution will: through fragments and inline
fragments, honouring `@skip`/`@include` with the request's variables (an
excluded field is not asked about; an included one is), keyed by response
path (aliases, not names), with argument values coerced and variables
substituted.

Introspection is asked about by class, as the policy decides it: `__schema` and
`__type` are requested fields (class `schema`), but what is selected inside
them (the fields of the introspection types, all of class `schema`) is not
walked; the first `__typename` stands for every other (class `typename`). A
full introspection query is one field, not 226: one cheap decision.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_directive_values, get_variable_values
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef

__all__ = ["RequestedField", "collect_fields", "select_operation"]


# Arguments the policy's input does not carry, so that neither the decision log nor the decision
# cache keeps them: whom compliance erases, and why (free text that may name them; the erasure's
# record keeps only a keyed digest of the id, and a reason that names nobody).
WITHHELD_ARGUMENTS: dict[str, frozenset[str]] = {"Mutation.eraseUser": frozenset({"userId", "reason"})}
WITHHELD = "(withheld)"


@dataclass(frozen=True)
class RequestedField:
    path: str
    type: str
    field: str
    alias: str | None
    arguments: dict[str, Any]

    @property
    def coordinate(self) -> str:
        return f"{self.type}.{self.field}"

    def as_input(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "coordinate": self.coordinate,
            "type": self.type,
            "field": self.field,
            "alias": self.alias,
            "arguments": self.arguments,
        }


def select_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == operation_name), None)


def collect_fields(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, raw_variables: dict[str, Any] | None
) -> list[RequestedField] | list[GraphQLError]:
    """The requested fields in document order, or the errors coercing the variables."""
    variables = get_variable_values(schema, operation.variable_definitions or (), raw_variables or {}, hide_suggestions=True)
    if isinstance(variables, list):
        return variables
    root = schema.get_root_type(operation.operation)
    if root is None:
        return []
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    walker = _Walker(schema, fragments, variables)
    try:
        walker.walk(root, operation.selection_set, "")
    except GraphQLError as error:  # an argument's value, e.g. an explicit null for a non-null argument
        return [error]
    return list(walker.found.values())


class _Walker:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode], variables: VariableValues) -> None:
        self.schema, self.fragments, self.variables = schema, fragments, variables
        self.found: dict[str, RequestedField] = {}
        # (path, fragment) already walked: a fragment spread again at the same path adds nothing,
        # so fragments spreading each other many times over (or in a cycle) are walked once.
        self.expanded: set[tuple[str, str]] = set()
        self.typename_asked = False

    def walk(self, parent: GraphQLNamedType, selection_set: SelectionSetNode, prefix: str) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                self._field(parent, selection, prefix)
            elif isinstance(selection, InlineFragmentNode):
                condition = self.schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent
                if condition is not None:
                    self.walk(condition, selection.selection_set, prefix)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                condition = self.schema.get_type(fragment.type_condition.name.value) if fragment else None
                if fragment is not None and condition is not None and (prefix, name) not in self.expanded:
                    self.expanded.add((prefix, name))
                    self.walk(condition, fragment.selection_set, prefix)

    def _field(self, parent: GraphQLNamedType, node: FieldNode, prefix: str) -> None:
        definition = _field_definition(self.schema, parent, node.name.value)
        if definition is None:
            return  # validation has refused unknown fields already
        if definition is TypeNameMetaFieldDef:
            if self.typename_asked:
                return  # decided with the first: the policy decides __typename by class
            self.typename_asked = True
        key = node.alias.value if node.alias else node.name.value
        path = f"{prefix}.{key}" if prefix else key
        existing = self.found.get(path)
        if existing is not None and existing.coordinate != f"{parent.name}.{node.name.value}":
            # Two fields under one response name (exclusive type conditions on an abstract
            # type): each is decided, the second under its path qualified by its type.
            path = f"{path}@{parent.name}"
        if path not in self.found:
            arguments = get_argument_values(definition, node, self.variables, hide_suggestions=True)
            withheld = WITHHELD_ARGUMENTS.get(f"{parent.name}.{node.name.value}", frozenset())
            self.found[path] = RequestedField(
                path=path,
                type=parent.name,
                field=node.name.value,
                alias=node.alias.value if node.alias else None,
                arguments={name: WITHHELD if name in withheld else _json(value) for name, value in arguments.items()},
            )
        if node.selection_set is not None and definition not in (SchemaMetaFieldDef, TypeMetaFieldDef):
            # (Inside __schema and __type every field is introspection's, decided with them.)
            self.walk(get_named_type(definition.type), node.selection_set, path)

    def _included(self, node: Any) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip is not None and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include is not None and include.get("if") is False)


def _field_definition(schema: GraphQLSchema, parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    if name == "__typename":
        return TypeNameMetaFieldDef
    if parent is schema.query_type:
        if name == "__schema":
            return SchemaMetaFieldDef
        if name == "__type":
            return TypeMetaFieldDef
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        field: GraphQLField | None = parent.fields.get(name)
        return field
    return None


def _json(value: Any) -> Any:
    """Argument values as JSON the policy can read."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    return value
