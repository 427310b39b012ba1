"""collect_fields: every field an operation requests, as the policy is asked about it."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql import GraphQLError, GraphQLSchema, get_introspection_query, parse, validate

from gateway.graphql.schema import build_schema
from gateway.policy.fields import RequestedField, collect_fields, select_operation

SCHEMA = build_schema()._schema
DAY_DEFAULTS = {"granularity": "DAY", "from": None, "to": None}


def collect(query: str, variables: dict[str, Any] | None = None, schema: GraphQLSchema = SCHEMA) -> list[RequestedField]:
    document = parse(query)
    assert validate(schema, document) == []
    operation = select_operation(document, None)
    assert operation is not None
    fields = collect_fields(schema, document, operation, variables)
    assert not any(isinstance(field, GraphQLError) for field in fields), fields
    return fields  # type: ignore[return-value]


def coordinates(query: str, variables: dict[str, Any] | None = None) -> dict[str, str]:
    return {field.path: field.coordinate for field in collect(query, variables)}


def test_fields_are_collected_in_document_order_with_paths_and_coordinates() -> None:
    fields = collect('{ video(id: "v1") { id stats { views } } }')

    assert [field.as_input() for field in fields] == [
        {"path": "video", "coordinate": "Query.video", "type": "Query", "field": "video", "alias": None, "arguments": {"id": "v1"}},
        {"path": "video.id", "coordinate": "Video.id", "type": "Video", "field": "id", "alias": None, "arguments": {}},
        {"path": "video.stats", "coordinate": "Video.stats", "type": "Video", "field": "stats", "alias": None, "arguments": {}},
        {"path": "video.stats.views", "coordinate": "VideoStats.views", "type": "VideoStats", "field": "views", "alias": None, "arguments": {}},
    ]


def test_fragment_spread_fields_are_collected_where_the_spread_is() -> None:
    query = """
        { video(id: "v1") { ...Insights } creator(id: "u1") { videos { edges { node { ...Insights } } } } }
        fragment Insights on Video { shareTimeline { buckets { ...Bucket } } }
        fragment Bucket on TimeBucket { count }
    """

    assert coordinates(query) == {
        "video": "Query.video",
        "video.shareTimeline": "Video.shareTimeline",
        "video.shareTimeline.buckets": "Timeline.buckets",
        "video.shareTimeline.buckets.count": "TimeBucket.count",
        "creator": "Query.creator",
        "creator.videos": "Creator.videos",
        "creator.videos.edges": "VideoConnection.edges",
        "creator.videos.edges.node": "VideoEdge.node",
        "creator.videos.edges.node.shareTimeline": "Video.shareTimeline",
        "creator.videos.edges.node.shareTimeline.buckets": "Timeline.buckets",
        "creator.videos.edges.node.shareTimeline.buckets.count": "TimeBucket.count",
    }


@pytest.mark.parametrize(
    "selection",
    [
        pytest.param("... on Video { shareChannels { buckets { key } } }", id="typed"),
        pytest.param("... { shareChannels { buckets { key } } }", id="untyped"),
    ],
)
def test_inline_fragment_fields_are_collected(selection: str) -> None:
    assert coordinates(f'{{ video(id: "v1") {{ {selection} }} }}') == {
        "video": "Query.video",
        "video.shareChannels": "Video.shareChannels",
        "video.shareChannels.buckets": "Breakdown.buckets",
        "video.shareChannels.buckets.key": "BreakdownBucket.key",
    }


def test_alias_is_the_path_and_the_field_keeps_its_name() -> None:
    fields = collect('{ clip: video(id: "v1") { channels: shareChannels { buckets { key } } } }')

    assert [(field.path, field.coordinate, field.alias) for field in fields] == [
        ("clip", "Query.video", "clip"),
        ("clip.channels", "Video.shareChannels", "channels"),
        ("clip.channels.buckets", "Breakdown.buckets", None),
        ("clip.channels.buckets.key", "BreakdownBucket.key", None),
    ]


def test_same_field_twice_with_different_arguments_gives_two_paths() -> None:
    fields = collect('{ video(id: "v1") { daily: shareTimeline(granularity: DAY) { granularity } hourly: shareTimeline(granularity: HOUR) { granularity } } }')

    timelines = [field for field in fields if field.coordinate == "Video.shareTimeline"]
    assert [(field.path, field.arguments["granularity"]) for field in timelines] == [("video.daily", "DAY"), ("video.hourly", "HOUR")]


def test_same_path_twice_is_asked_once_with_both_selections() -> None:
    fields = collect('{ video(id: "v1") { stats { views } } video(id: "v1") { stats { likes } } }')

    assert [field.path for field in fields] == ["video", "video.stats", "video.stats.views", "video.stats.likes"]


@pytest.mark.parametrize(
    ("directive", "value", "included"),
    [
        pytest.param("@include(if: $v)", True, True, id="include-true"),
        pytest.param("@include(if: $v)", False, False, id="include-false"),
        pytest.param("@skip(if: $v)", True, False, id="skip-true"),
        pytest.param("@skip(if: $v)", False, True, id="skip-false"),
    ],
)
@pytest.mark.parametrize(
    "template",
    [
        pytest.param("shareTimeline {d} {{ buckets {{ count }} }}", id="field"),
        pytest.param("...Timeline {d}", id="fragment-spread"),
        pytest.param("... on Video {d} {{ shareTimeline {{ buckets {{ count }} }} }}", id="inline-fragment"),
        pytest.param("... {d} {{ shareTimeline {{ buckets {{ count }} }} }}", id="untyped-inline-fragment"),
    ],
)
def test_directives_with_variables_decide_what_is_asked_about(template: str, directive: str, value: bool, included: bool) -> None:
    selection = template.format(d=directive)
    query = f'query($v: Boolean!) {{ video(id: "v1") {{ id {selection} }} }}'
    if "...Timeline" in selection:
        query += " fragment Timeline on Video { shareTimeline { buckets { count } } }"
    timeline = {
        "video.shareTimeline": "Video.shareTimeline",
        "video.shareTimeline.buckets": "Timeline.buckets",
        "video.shareTimeline.buckets.count": "TimeBucket.count",
    }

    found = coordinates(query, {"v": value})

    assert found == {"video": "Query.video", "video.id": "Video.id", **(timeline if included else {})}


def test_field_included_in_one_place_and_skipped_in_another_is_asked_about() -> None:
    query = 'query($v: Boolean!) { video(id: "v1") { shareChannels @skip(if: $v) { buckets { key } } ... { shareChannels { buckets { count } } } } }'

    assert coordinates(query, {"v": True}) == {
        "video": "Query.video",
        "video.shareChannels": "Video.shareChannels",
        "video.shareChannels.buckets": "Breakdown.buckets",
        "video.shareChannels.buckets.count": "BreakdownBucket.count",
    }


@pytest.mark.parametrize(
    ("query", "variables", "arguments"),
    [
        pytest.param('{ video(id: "v1") { shareTimeline { granularity } } }', None, DAY_DEFAULTS, id="argument-defaults"),
        pytest.param(
            'query($g: Granularity!) { video(id: "v1") { shareTimeline(granularity: $g) { granularity } } }',
            {"g": "HOUR"},
            {**DAY_DEFAULTS, "granularity": "HOUR"},
            id="variable",
        ),
        pytest.param(
            'query($g: Granularity = WEEK) { video(id: "v1") { shareTimeline(granularity: $g) { granularity } } }',
            None,
            {**DAY_DEFAULTS, "granularity": "WEEK"},
            id="variable-default",
        ),
        pytest.param(
            'query($g: Granularity) { video(id: "v1") { shareTimeline(granularity: $g) { granularity } } }',
            {},
            DAY_DEFAULTS,
            id="unset-variable-takes-argument-default",
        ),
        pytest.param(
            'query($from: DateTime) { video(id: "v1") { shareTimeline(from: $from, to: "2025-03-08T00:00:00Z") { granularity } } }',
            {"from": "2025-03-01T00:00:00Z"},
            {"granularity": "DAY", "from": "2025-03-01T00:00:00+00:00", "to": "2025-03-08T00:00:00+00:00"},
            id="datetimes",
        ),
    ],
)
def test_arguments_have_variables_substituted_and_defaults_applied(
    query: str, variables: dict[str, Any] | None, arguments: dict[str, Any]
) -> None:
    timeline = next(field for field in collect(query, variables) if field.coordinate == "Video.shareTimeline")

    assert timeline.arguments == arguments


def test_list_and_enum_arguments_are_json() -> None:
    fields = collect('query($n: Int!) { creator(id: "u1") { videos(first: $n, orderBy: SHARES) { pageInfo { hasNextPage } } } }', {"n": 3})

    videos = next(field for field in fields if field.coordinate == "Creator.videos")
    assert videos.arguments == {"first": 3, "after": None, "orderBy": "SHARES"}


def test_introspection_is_collected_by_class() -> None:
    """__schema and __type are asked about, not what is selected inside them (all introspection's,
    class `schema`); the first __typename stands for the others (class `typename`)."""
    query = '{ video(id: "v1") { __typename stats { __typename } } __typename __schema { types { name } } __type(name: "Video") { fields { name } } }'

    assert coordinates(query) == {
        "video": "Query.video",
        "video.__typename": "Video.__typename",
        "video.stats": "Video.stats",
        "__schema": "Query.__schema",
        "__type": "Query.__type",
    }


def test_the_standard_introspection_query_is_one_field() -> None:
    assert coordinates(get_introspection_query(descriptions=True)) == {"__schema": "Query.__schema"}


def test_introspection_arguments_are_collected() -> None:
    fields = collect('{ __type(name: "Video") { fields(includeDeprecated: true) { name } } }')

    assert [field.arguments for field in fields] == [{"name": "Video"}]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param({}, "Variable '$id' has invalid value: Expected a value of non-null type 'ID!' to be provided.", id="missing"),
        pytest.param({"id": None, "g": "DAY"}, "Variable '$id' has invalid value: Expected value of non-null type 'ID!' not to be None.", id="null"),
        pytest.param({"id": "v1", "g": "SECOND"}, "Variable '$g' has invalid value: Value 'SECOND' does not exist in 'Granularity' enum.", id="bad-enum"),
        pytest.param({"id": {"a": 1}}, "Variable '$id' has invalid value: ID cannot represent value: {'a': 1}", id="bad-id"),
    ],
)
def test_bad_variables_are_errors(variables: dict[str, Any], message: str) -> None:
    query = 'query($id: ID!, $g: Granularity) { video(id: $id) { shareTimeline(granularity: $g) { granularity } } }'
    document = parse(query)
    operation = select_operation(document, None)
    assert operation is not None

    errors = collect_fields(SCHEMA, document, operation, variables)

    assert [error.message for error in errors if isinstance(error, GraphQLError)] == [message]
    assert not any(isinstance(error, RequestedField) for error in errors)


def test_explicit_null_for_a_defaulted_variable_is_an_error() -> None:
    query = 'query($g: Granularity = WEEK) { video(id: "v1") { shareTimeline(granularity: $g) { granularity } } }'
    document = parse(query)
    assert validate(SCHEMA, document) == []
    operation = select_operation(document, None)
    assert operation is not None

    errors = collect_fields(SCHEMA, document, operation, {"g": None})

    assert all(isinstance(error, GraphQLError) for error in errors) and errors


@pytest.mark.parametrize(
    ("name", "expected"),
    [pytest.param("Views", "views", id="named"), pytest.param(None, None, id="ambiguous"), pytest.param("Nope", None, id="unknown")],
)
def test_select_operation(name: str | None, expected: str | None) -> None:
    document = parse('query Views { video(id: "v1") { stats { views } } } query Likes { video(id: "v1") { stats { likes } } }')

    operation = select_operation(document, name)

    assert (operation.name.value.lower() if operation and operation.name else None) == expected


# The gateway's schema has no interface or union yet; these pin what collect_fields must do once it has.


@strawberry.interface
class Node:
    id: strawberry.ID


@strawberry.type
class Post(Node):
    title: str


@strawberry.type
class Comment(Node):
    body: str


@strawberry.type
class AbstractQuery:
    @strawberry.field
    def node(self) -> Node:
        return Post(id=strawberry.ID("1"), title="t")

    @strawberry.field
    def item(self) -> Post | Comment:
        return Post(id=strawberry.ID("1"), title="t")


ABSTRACT_SCHEMA = strawberry.Schema(query=AbstractQuery, types=[Post, Comment])._schema


def test_interface_fields_are_collected() -> None:
    fields = collect("{ node { id } }", schema=ABSTRACT_SCHEMA)

    assert [field.coordinate for field in fields] == ["AbstractQuery.node", "Node.id"]


def test_every_field_sharing_a_response_path_is_decided() -> None:
    fields = collect("{ item { ... on Post { text: title } ... on Comment { text: body } } }", schema=ABSTRACT_SCHEMA)

    assert {field.coordinate for field in fields} == {"AbstractQuery.item", "Post.title", "Comment.body"}
    assert len({field.path for field in fields}) == 3  # each under its own key, so each gets its own verdict
