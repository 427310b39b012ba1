"""Owner-only is the policy's verdict, enforced where fields are executed: no resolver has to remember it.

Under a policy edited to make `VideoStats.views` one of the creator's insights (owner-only for users,
an edit compliance could make), the field, a plain attribute with no ownership code at all, is
refused to a user who is not the creator and served to the creator. A field made owner-only whose
parent does not say whose data it is (the root, for `Query.creator`) is refused to everyone: nothing
is served by default.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.auth import Principal, PrincipalKind

from fixture_platform import ADA, ADA_FIRST, BO, BO_ONLY, EVENTS, VIEWER
from harness import FIELD_TEST_TERMS, Gateway, policies_with, running_gateway

VIEWS = "query($id: ID!) { video(id: $id) { id stats { views } } }"
CREATOR = "query($id: ID!) { creator(id: $id) { id } }"


def made_insights(policy_dir: Path, *coordinates: str) -> Path:
    """The policy in `policy_dir`, with `coordinates` in the creator's insights (owner-only) alone."""
    data_file = policy_dir / "data.json"
    data = json.loads(data_file.read_text())
    for coordinate in coordinates:
        data["access"]["fields"][coordinate] = ["creator_insights"]
    data_file.write_text(json.dumps(data))
    return policy_dir


@pytest.fixture(scope="module")
async def gateway(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    policy_dir = made_insights(policies_with(tmp_path_factory.mktemp("policies"), FIELD_TEST_TERMS), "VideoStats.views", "Query.creator")
    async with running_gateway(database_url, policy_dir=policy_dir) as started:
        await started.backfill(EVENTS)
        yield started


async def test_ownership_a_field_the_policy_makes_owner_only_is_refused_to_another_user(gateway: Gateway) -> None:
    response = await gateway.graphql(VIEWS, {"id": ADA_FIRST}, principal=Principal(PrincipalKind.USER, VIEWER))

    body = response.json()
    assert body["data"] == {"video": None}  # views is non-null: refusing it nulls its parents up to the nullable video
    assert [(error["extensions"], error["path"]) for error in body["errors"]] == [
        ({"code": "FORBIDDEN", "field": "VideoStats.views"}, ["video", "stats", "views"])
    ]


async def test_ownership_a_field_the_policy_makes_owner_only_is_served_to_the_owner(gateway: Gateway) -> None:
    response = await gateway.graphql(VIEWS, {"id": ADA_FIRST}, principal=Principal(PrincipalKind.USER, ADA))

    assert response.json() == {"data": {"video": {"id": ADA_FIRST, "stats": {"views": 7}}}, "extensions": response.json()["extensions"]}


async def test_ownership_an_owner_only_field_of_an_object_that_names_no_owner_is_refused_to_all(gateway: Gateway) -> None:
    response = await gateway.graphql(CREATOR, {"id": ADA}, principal=Principal(PrincipalKind.USER, ADA))

    assert response.json()["data"] == {"creator": None}
    assert [error["extensions"] for error in response.json()["errors"]] == [{"code": "FORBIDDEN", "field": "Query.creator"}]


async def test_ownership_one_decision_serves_every_creator_and_video_and_each_is_served_only_their_own(gateway: Gateway) -> None:
    """The policy names no video argument, so it is asked once for the class (users, no scopes) and
    this question, whichever video and creator: the decision says owner-only, and the resolver
    checks whose video each one is."""
    query = "query OneDecision($id: ID!) { video(id: $id) { id stats { views } } }"
    cache = gateway.state["decider"].cache
    misses = cache.misses

    asked = [
        (ADA, ADA_FIRST),
        (BO, BO_ONLY),
        (BO, ADA_FIRST),
        (ADA, BO_ONLY),
    ]
    answers = [(await gateway.graphql(query, {"id": video}, principal=Principal(PrincipalKind.USER, creator))).json() for creator, video in asked]

    assert cache.misses - misses == 1
    assert [answer["data"]["video"] and answer["data"]["video"]["id"] for answer in answers] == [ADA_FIRST, BO_ONLY, None, None]
    assert [[error["extensions"]["code"] for error in answer.get("errors", [])] for answer in answers] == [[], [], ["FORBIDDEN"], ["FORBIDDEN"]]
