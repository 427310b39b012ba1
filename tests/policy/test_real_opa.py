"""The shipped policy under real OPA (real_opa.py): each of its Rego tests is true, as `opa test`
runs them (one by one, `input` undefined), and OPA decides every input exactly as the embedded
engine (rego-cpp) does.

The embedded engine serves by default and `gateway policy test` runs the Rego tests on it; OPA is
what an operator may run instead (GATEWAY_OPA_URL) and what compliance writes Rego for. Both must
agree, or a policy would mean one thing in tests and another in production. Everything here is
read from the policy directory and the schema, so a new test rule, obligation or field coordinate
is covered without a change here.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from gateway.auth import PrincipalKind
from gateway.policy.embedded import EmbeddedEngine
from gateway.policy.testing import PolicyTest, discover_tests, schema_coordinates
from gateway.policy.worker import PolicyFiles

from .real_opa import RealOpa, Undefined, require_real_opa

POLICIES = Path(__file__).parents[2] / "policies"
FILES = PolicyFiles.read(POLICIES)
TESTS = discover_tests(FILES)
DATA = FILES.data_document()
SCHEMA = graphql.build_schema((Path(__file__).parents[2] / "schema.graphql").read_text(encoding="utf-8"))

# Generous: a decision about every coordinate at once, on a busy machine.
EVALUATION_TIMEOUT = 30.0
EXAMPLES = 400

# --- what inputs are made of: read from the schema and data.json, plus what neither names ------------

# A kind, a scope and a granularity no policy knows, and coordinates the gateway asks about that the
# schema's own types do not list: introspection, and a field compliance has not listed.
UNKNOWN_KIND, UNKNOWN_SCOPE, UNKNOWN_GRANULARITY = "robot", "everything", "SECOND"
EXTRA_COORDINATES = ["Query.__typename", "Video.__typename", "Query.__schema", "Query.__type", "__Type.name", "__Field.args", "Video.sharerIds"]

COORDINATES = list(dict.fromkeys([*schema_coordinates(SCHEMA), *DATA["access"]["fields"], *EXTRA_COORDINATES]))
KINDS = [*(kind.value for kind in PrincipalKind), UNKNOWN_KIND]
SCOPES = [*DATA["access"]["principals"]["app"]["scopes"], UNKNOWN_SCOPE]


def granularities(coordinate: str) -> list[str | None] | None:
    """The values to try for a coordinate's granularity argument (None when it has none): every
    value of the schema's enum, one the policy does not know, and null."""
    type_name, field_name = coordinate.split(".", 1)
    graphql_type = SCHEMA.type_map.get(type_name)
    if not isinstance(graphql_type, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType) or field_name not in graphql_type.fields:
        return None
    argument = graphql_type.fields[field_name].args.get("granularity")
    if argument is None:
        return None
    enum = graphql.get_named_type(argument.type)
    values: list[str | None] = list(enum.values) if isinstance(enum, graphql.GraphQLEnumType) else []
    return [*values, UNKNOWN_GRANULARITY, None]


def requested_field(path: str, coordinate: str, alias: str | None = None, granularity: Any = ...) -> dict[str, Any]:
    type_name, field_name = coordinate.split(".", 1)
    arguments = {} if granularity is ... else {"granularity": granularity, "from": None, "to": None}
    return {"path": path, "coordinate": coordinate, "type": type_name, "field": field_name, "alias": alias, "arguments": arguments}


def every_field() -> list[dict[str, Any]]:
    """Every coordinate once, and each one with a granularity argument once per value."""
    fields = []
    for coordinate in COORDINATES:
        values = granularities(coordinate)
        if values is None:
            fields.append(requested_field(coordinate, coordinate))
        else:
            fields.extend(requested_field(f"{coordinate}({value})", coordinate, granularity=value) for value in values)
    return fields


def policy_input(principal: dict[str, Any], fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"principal": principal, "operation": {"name": None, "type": "query", "hash": "0" * 64}, "fields": fields}


def disagreements(embedded: Any, opa: Any) -> list[str]:
    """Where two decisions differ, one line each: a path's verdict, or the obligations."""
    if not (isinstance(embedded, dict) and isinstance(opa, dict)):
        return [f"decision: embedded {embedded!r}, OPA {opa!r}"] if embedded != opa else []
    lines = []
    embedded_fields, opa_fields = embedded.get("fields", {}), opa.get("fields", {})
    for path in sorted(embedded_fields.keys() | opa_fields.keys()):
        if embedded_fields.get(path) != opa_fields.get(path):
            lines.append(f"{path}: embedded {embedded_fields.get(path)!r}, OPA {opa_fields.get(path)!r}")
    for key in sorted((embedded.keys() | opa.keys()) - {"fields"}):
        if embedded.get(key) != opa.get(key):
            lines.append(f"{key}: embedded {embedded.get(key)!r}, OPA {opa.get(key)!r}")
    return lines


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def opa() -> Iterator[RealOpa]:
    with RealOpa(FILES) as engine:
        yield engine


@pytest.fixture(scope="module")
def opa_with_tests() -> Iterator[RealOpa]:
    with RealOpa(FILES, with_tests=True) as engine:
        yield engine


@pytest.fixture(scope="module")
async def embedded() -> AsyncIterator[EmbeddedEngine]:
    require_real_opa()  # nothing to compare it with otherwise
    engine = EmbeddedEngine(POLICIES, timeout=EVALUATION_TIMEOUT)
    await engine.start()
    assert engine.ready, engine.last_error
    yield engine
    await engine.close()


# --- the Rego tests, as `opa test` runs them -------------------------------------------------------------


@pytest.mark.parametrize("test", [pytest.param(test, id=test.name) for test in TESTS])
def test_rego_test_passes_under_opa(opa_with_tests: RealOpa, test: PolicyTest) -> None:
    try:
        outcome = opa_with_tests.document(test.entrypoint)
    except Undefined:
        outcome = "undefined"

    assert outcome is True, f"{test.name} ({test.file}) is {outcome!r} under OPA"


def test_every_test_rule_opa_sees_is_run(opa_with_tests: RealOpa) -> None:
    """`opa test` runs every rule named test_…, wherever it is: the tests above (and `gateway policy
    test`) find them by reading the files, and must miss none that OPA finds."""
    seen_by_opa: set[str] = set()

    def walk(document: Any, package: list[str]) -> None:
        if isinstance(document, dict):
            for key, value in document.items():
                if key.startswith("test_"):
                    seen_by_opa.add(".".join([*package, key]))
                else:
                    walk(value, [*package, key])

    walk(opa_with_tests.document(""), [])

    assert seen_by_opa, "OPA found no test rule at all"
    assert seen_by_opa <= {test.name for test in TESTS}


# --- OPA and the embedded engine decide alike ------------------------------------------------------------

SCOPE_SETS = [list(scopes) for size in range(len(SCOPES) + 1) for scopes in itertools.combinations(SCOPES, size)]


@pytest.mark.parametrize("kind", KINDS)
async def test_every_field_is_decided_alike_for_every_scope_set(embedded: EmbeddedEngine, opa: RealOpa, kind: str) -> None:
    fields = every_field()
    differing = {}
    for scopes in SCOPE_SETS:
        principal = {"kind": kind, "id": "someone", "scopes": scopes} | ({"app": "app-1"} if kind == "app" else {})
        question = policy_input(principal, fields)

        embedded_answer, opa_answer = await embedded.evaluate(question), await opa.evaluate(question)

        assert set(opa_answer["fields"]) == {field["path"] for field in fields}
        if lines := disagreements(embedded_answer, opa_answer):
            differing[",".join(scopes) or "no scopes"] = lines
    assert differing == {}


coordinates = st.sampled_from(COORDINATES)
names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@st.composite
def requested_fields(draw: st.DrawFn) -> list[dict[str, Any]]:
    fields = []
    for index in range(draw(st.integers(0, 10))):
        coordinate = draw(coordinates)
        alias = draw(st.none() | st.from_regex(r"[a-z][A-Za-z0-9_]{0,8}", fullmatch=True))
        path = f"q{index}.{alias or coordinate.split('.', 1)[1]}"
        values = granularities(coordinate)
        if values is None:
            fields.append(requested_field(path, coordinate, alias))
        else:
            fields.append(requested_field(path, coordinate, alias, draw(st.sampled_from(values) | names)))
    return fields


principals = st.builds(
    lambda kind, principal_id, scopes, app: {"kind": kind, "id": principal_id, "scopes": scopes} | ({"app": app} if kind == "app" else {}),
    kind=st.sampled_from(KINDS) | names,
    principal_id=st.none() | names,
    scopes=st.lists(st.sampled_from(SCOPES) | names, max_size=4),
    app=names,
)
questions = st.builds(
    lambda principal, operation, fields: {"principal": principal, "operation": operation, "fields": fields},
    principal=principals,
    operation=st.fixed_dictionaries(
        {"name": st.none() | names, "type": st.sampled_from(["query", "mutation", "subscription"]), "hash": st.from_regex(r"[0-9a-f]{64}", fullmatch=True)}
    ),
    fields=requested_fields(),
)


# Derandomized: every run asks the same questions, so the verdict does not depend on luck.
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=questions)
async def test_random_input_is_decided_alike(embedded: EmbeddedEngine, opa: RealOpa, question: dict[str, Any]) -> None:
    note(json.dumps(question))

    embedded_answer, opa_answer = await embedded.evaluate(question), await opa.evaluate(question)

    assert disagreements(embedded_answer, opa_answer) == []
