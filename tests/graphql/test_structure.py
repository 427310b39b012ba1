"""The schema's shape: no path from Query or Mutation to a person other than the creator, except under
`me` (and the user's own consent) and the sharers who chose to be shown; and schema.graphql is what
the code exports."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from pathlib import Path

import strawberry
from strawberry.scalars import JSON
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)

from gateway.graphql.schema import build_schema

SCHEMA_FILE = Path(__file__).parents[2] / "schema.graphql"

# Names that say "a person": a field, type or enum value with one in its name points at someone.
PERSON = re.compile(r"user|actor|viewer|liker|commenter|follower|sharer|subscriber|owner|author|account|person|people|member|profile|friend|recipient", re.I)
# Leaves that cannot hold an identifier: a field named after people may return these, or objects made
# only of them, e.g. CreatorTotals.followers (a count) or Creator.followerGrowth (a series of counts).
NO_ROOM_FOR_AN_ID = frozenset({"Int", "Float", "Boolean", "DateTime"})
# Scalars whose values have a known shape; any other (JSON, say) is opaque and can carry anything.
KNOWN_SCALARS = NO_ROOM_FOR_AN_ID | {"String", "ID"}
ID_NAME = re.compile(r"(Id|ID|Ids|IDs)$")

# Fields outside `me` that may yield an id. Each is needed (test_allow_list_is_minimal). VideoEdge.cursor
# needs no entry: a String named after no one; that no cursor (nor anything else) carries an actor id is
# test_property.py's to show, over real and random cursors.
# Subtrees that are not creator-, public- or app-facing, like `me`:
# - Query.me: the principal's own rows, bound to the principal in SQL and by row-level security.
# - Query.decisionLog: compliance's audit trail of policy decisions (it names requesters and what
#   they asked); the resolver refuses every principal kind but compliance, whatever the policy says.
# - Mutation.setShareSettings, Mutation.setVisibleTo: the signed-in user's own consent, as under `me`
#   (bound to the user in SQL and by row-level security; users only, never an app).
PRIVATE_ROOTS = frozenset({"Query.me", "Query.decisionLog", "Mutation.setShareSettings", "Mutation.setVisibleTo"})

ALLOWED = frozenset({
    # The id the client asked for, of a video: not a person.
    "Video.id",
    # Who published a video: the creator's own, public identity, the key a dashboard starts from.
    "Video.creatorId",
    # The creator the client asked for by this very id.
    "Creator.id",
    # The sharers of a video who chose to be shown to its creator (Mutation.setVisibleTo), to that
    # creator only: owner-only, served by no shipped policy, read through a function that returns
    # those users and nobody else (migration 0018).
    "Video.consentedSharers",
    # Compliance erasing a person at their request: the receipt names the erasure and who asked for
    # it (compliance), never the person erased.
    "Mutation.eraseUser",
    "ErasureReceipt.erasureId",
})


def fields_of(named: GraphQLNamedType, schema: GraphQLSchema) -> Iterator[tuple[GraphQLObjectType | GraphQLInterfaceType, str, GraphQLField]]:
    types: list[GraphQLNamedType] = list(schema.get_possible_types(named)) if isinstance(named, GraphQLUnionType) else [named]
    for type_ in types:
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for name, field in type_.fields.items():
                yield type_, name, field


def reachable(schema: GraphQLSchema, *, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, GraphQLField]]:
    """Every field coordinate reachable from Query and Mutation, not descending through the coordinates in `skip`."""
    assert schema.query_type is not None
    seen: set[str] = set()
    pending: list[GraphQLNamedType] = [schema.query_type, *([schema.mutation_type] if schema.mutation_type else [])]
    while pending:
        named = pending.pop()
        if named.name in seen:
            continue
        seen.add(named.name)
        for parent, name, field in fields_of(named, schema):
            coordinate = f"{parent.name}.{name}"
            yield coordinate, field
            if coordinate not in skip:
                returned = get_named_type(field.type)
                pending.append(returned)
                if isinstance(returned, GraphQLInterfaceType):
                    pending.extend(schema.get_possible_types(returned))


def could_hold_an_id(named: GraphQLNamedType, schema: GraphQLSchema, seen: frozenset[str] = frozenset()) -> bool:
    if isinstance(named, GraphQLEnumType) or named.name in NO_ROOM_FOR_AN_ID or named.name in seen:
        return False
    if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType):
        return True  # String, ID, or a custom scalar
    return any(could_hold_an_id(get_named_type(field.type), schema, seen | {named.name}) for _, _, field in fields_of(named, schema))


def person_paths(schema: GraphQLSchema, allowed: frozenset[str] = ALLOWED) -> set[str]:
    """Coordinates outside `me` that yield an id, an opaque value, or name a person, beyond `allowed`."""
    found = set()
    for coordinate, field in reachable(schema, skip=PRIVATE_ROOTS):
        if coordinate in PRIVATE_ROOTS or coordinate in allowed:
            continue
        name = coordinate.split(".")[1]
        returned = get_named_type(field.type)
        if returned.name == "ID" or ID_NAME.search(name):
            found.add(coordinate)
        elif isinstance(returned, GraphQLScalarType) and returned.name not in KNOWN_SCALARS:
            found.add(coordinate)
        elif PERSON.search(name) and could_hold_an_id(returned, schema):
            found.add(coordinate)
        elif PERSON.search(returned.name):
            found.add(coordinate)
        for argument_name, argument in field.args.items():
            argument_type = get_named_type(argument.type)
            if isinstance(argument_type, GraphQLEnumType):
                # An enum value naming people (e.g. audience(dimension: SHARER)) would make a breakdown a list of them.
                found.update(f"{coordinate}({argument_name}: {value})" for value in argument_type.values if PERSON.search(value))
    return found


def test_no_field_outside_me_yields_a_person() -> None:
    assert person_paths(build_schema()._schema) == set()


def test_allow_list_is_minimal() -> None:
    schema = build_schema()._schema

    for coordinate in ALLOWED:
        assert coordinate in person_paths(schema, ALLOWED - {coordinate}), f"{coordinate} is allowed but not needed"


def test_me_is_reachable_only_from_query_me() -> None:
    schema = build_schema()._schema

    assert {coordinate for coordinate, field in reachable(schema) if get_named_type(field.type).name == "Me"} == {"Query.me"}


def test_own_rows_types_are_reachable_only_under_me() -> None:
    schema = build_schema()._schema
    under_me = {get_named_type(field.type).name for coordinate, field in reachable(schema) if coordinate.startswith("Me.")}
    own_consent = frozenset({"Mutation.setShareSettings", "Mutation.setVisibleTo"})
    outside_me = {get_named_type(field.type).name for coordinate, field in reachable(schema, skip=frozenset({"Query.me"}) | own_consent)
                  if coordinate not in own_consent}

    assert {"MyShare", "MyLike", "MyFollow", "ConsentSettings"} <= under_me
    assert {name for name in under_me & outside_me if isinstance(schema.get_type(name), GraphQLObjectType)} == set()


# A schema that gets it wrong in each way the walk looks for, to show the walk is not blind.
@strawberry.type
class Sharer:
    name: str


@strawberry.enum
class Dimension(enum.Enum):
    REGION = "region"
    SHARER = "sharer"


@strawberry.type
class CountsOnly:
    hour: int
    count: int


@strawberry.type
class LeakyVideo:
    id: strawberry.ID
    sharer_ids: list[str]
    top_sharer: Sharer
    first_viewer: str
    sharers: list[str]
    follower_count: int
    details: JSON
    viewer_timeline: list[CountsOnly]
    viewer_keys: list[CountsOnly | Sharer]

    @strawberry.field
    def breakdown(self, dimension: Dimension) -> int:
        return 0


@strawberry.type
class LeakyQuery:
    video: LeakyVideo


def test_walk_finds_every_kind_of_path_to_a_person() -> None:
    leaks = person_paths(strawberry.Schema(query=LeakyQuery)._schema)

    assert leaks == {
        "LeakyVideo.id",
        "LeakyVideo.sharerIds",
        "LeakyVideo.topSharer",
        "LeakyVideo.firstViewer",
        "LeakyVideo.sharers",
        "LeakyVideo.viewerKeys",
        "LeakyVideo.details",
        "LeakyVideo.breakdown(dimension: SHARER)",
    }


def test_schema_file_is_what_the_code_exports() -> None:
    exported = build_schema().as_str() + "\n"

    assert SCHEMA_FILE.read_text() == exported, "schema.graphql differs from the code's schema: run `make schema`"
