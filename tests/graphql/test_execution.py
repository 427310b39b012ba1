"""The one-pass completion of plain value lists (gateway/graphql/execution.py) answers exactly what
graphql-core's ordinary field-by-field completion answers, whatever the selection's shape."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from fixture_platform import ADA, ADA_FIRST, EVENTS
from harness import FIELD_TEST_TERMS, Gateway

from gateway.auth import Principal, PrincipalKind
from gateway.graphql.context import RequestContext
from gateway.graphql.schema import GatewaySchema, PreparedDocument, Query, build_schema
from gateway.privacy.disclosure import Disclosure
from gateway.privacy.terms import PrivacyTerms
from gateway.store.releases import ReleaseReader

SELECTIONS = """
query Shapes($id: ID!, $inc: Boolean!, $skip: Boolean!) {
  video(id: $id) {
    shareTimeline(granularity: HOUR, from: "2025-02-25T00:00:00Z", to: "2025-03-20T00:00:00Z") {
      buckets { start n: count suppressed __typename ...Bucket count @skip(if: $skip) }
    }
    viewTimeline(granularity: DAY, from: "2025-02-25T00:00:00Z", to: "2025-03-10T00:00:00Z") {
      buckets { ... on TimeBucket { s: start } count @include(if: $inc) }
    }
    shareChannels { buckets { key count @include(if: $inc) suppressed } }
    audience(dimension: REGION) { buckets { __typename k: key c: count } }
  }
}
fragment Bucket on TimeBucket { count again: start }
"""


@pytest.fixture(scope="module", autouse=True)
async def platform(gateway: Gateway) -> None:
    await gateway.backfill(EVENTS)


async def answer(schema: strawberry.Schema, gateway: Gateway, variables: dict[str, Any]) -> Any:
    store = gateway.state["store"]
    principal = Principal(PrincipalKind.USER, ADA)
    reader = ReleaseReader(store.reader)
    context = RequestContext(principal=principal, pools=store, reader=reader, request_id="test")
    # Neither schema runs the policy guard: the request's privacy service is set as the guard would set it.
    terms = PrivacyTerms.parse({**FIELD_TEST_TERMS, "granularity_floor": "HOUR"})
    context.disclosure = Disclosure(terms, reader, b"k" * 32, context.now)
    result = await schema.execute(SELECTIONS, variable_values=variables, context_value=context)
    assert result.errors is None
    return result.data


@pytest.mark.parametrize("include", [pytest.param(True, id="included"), pytest.param(False, id="excluded")])
@pytest.mark.parametrize("skip", [pytest.param(True, id="skipped"), pytest.param(False, id="kept")])
async def test_value_lists_complete_as_graphql_core_would(gateway: Gateway, include: bool, skip: bool) -> None:
    one_pass = build_schema(policy_guard=False)
    field_by_field = GatewaySchema(query=Query, extensions=[PreparedDocument])
    variables = {"id": ADA_FIRST, "inc": include, "skip": skip}

    fast, ordinary = await answer(one_pass, gateway, variables), await answer(field_by_field, gateway, variables)

    assert fast == ordinary
    buckets = fast["video"]["shareTimeline"]["buckets"]
    assert len(buckets) == 23 * 24 and sum(bucket["n"] for bucket in buckets) > 0  # the data is really there
