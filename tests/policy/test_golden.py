"""Golden cases: each cases/*.json pins a policy input to the decision the shipped policy gives.

A case holds `input` (built by the policy guard from the case's `query` and `variables`, when it
has one) and `output` (the value of data.gateway.authz.decision: a verdict for every path, and
the obligations). Every engine must give exactly that output: the embedded one (regopy), real OPA
itself (real_opa.py), and the gateway's OPA-server engine over HTTP against the OPA stand-in,
which evaluates with real OPA. Cases are read generically: a new case file is a new test.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import Principal, PrincipalKind
from gateway.errors import PolicyUnavailable
from gateway.graphql.context import RequestContext
from gateway.graphql.schema import build_schema
from gateway.policy.decider import PolicyDecider
from gateway.policy.decision import PolicyEngine, parse_decision
from gateway.policy.reads import READS_EVERYTHING, policy_reads, withhold_arguments
from gateway.policy.embedded import EmbeddedEngine
from gateway.policy.opa import OpaServerEngine
from gateway.policy.worker import PolicyFiles

from .opa_standin import OpaStandin
from .real_opa import RealOpa

POLICIES = Path(__file__).parents[2] / "policies"
CASES = {path.stem: json.loads(path.read_text()) for path in sorted((Path(__file__).parent / "cases").glob("*.json"))}
QUERY_CASES = [name for name, case in CASES.items() if "query" in case]
# Generous: these tests compare answers, the timeout tests are in test_guard.py.
EVALUATION_TIMEOUT = 5.0


def principal_of(policy_input: dict[str, Any]) -> Principal:
    principal = policy_input["principal"]
    return Principal(PrincipalKind(principal["kind"]), principal["id"], frozenset(principal["scopes"]), principal.get("app"))


class RecordingEngine:
    """Keeps the input it is asked about and fails closed, so that no resolver runs."""

    revision = "recording"
    reads = READS_EVERYTHING

    def __init__(self) -> None:
        self.inputs: list[dict[str, Any]] = []
        self.before_serving: list[Any] = []

    async def evaluate(self, policy_input: dict[str, Any]) -> Any:
        self.inputs.append(policy_input)
        raise PolicyUnavailable("recorded")

    async def close(self) -> None:
        return None


def test_cases_cover_every_principal_kind() -> None:
    kinds = {case["input"]["principal"]["kind"] for case in CASES.values()}

    assert kinds == {kind.value for kind in PrincipalKind}


@pytest.mark.parametrize("name", QUERY_CASES)
async def test_case_input_is_what_the_guard_sends(name: str) -> None:
    case = CASES[name]
    engine = RecordingEngine()
    context = RequestContext(
        principal=principal_of(case["input"]), pools=None, reader=None, request_id=name, decider=PolicyDecider(engine)  # type: ignore[arg-type]
    )

    result = await build_schema().execute(case["query"], variable_values=case.get("variables"), context_value=context)

    assert result.data is None
    assert engine.inputs == [case["input"]]


@pytest.fixture(scope="module", params=["embedded", "real-opa", "opa-server"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[PolicyEngine | RealOpa]:
    if request.param == "embedded":
        embedded = EmbeddedEngine(POLICIES, timeout=EVALUATION_TIMEOUT)
        await embedded.start()
        assert embedded.ready, embedded.last_error
        yield embedded
        await embedded.close()
        return
    if request.param == "real-opa":
        with RealOpa(PolicyFiles.read(POLICIES)) as opa:
            yield opa
        return
    standin: OpaStandin = request.getfixturevalue("opa_server")
    client = OpaServerEngine(standin.url, timeout=EVALUATION_TIMEOUT)
    await client.start()
    yield client
    await client.close()


@pytest.mark.parametrize("name", list(CASES))
async def test_engine_gives_the_golden_decision(engine: PolicyEngine | RealOpa, name: str) -> None:
    case = CASES[name]

    answer = await engine.evaluate(case["input"])

    assert answer == case["output"]
    decision = parse_decision(answer, [requested["path"] for requested in case["input"]["fields"]])
    assert {path: verdict.model_dump() for path, verdict in decision.fields.items()} == case["output"]["fields"]


@pytest.mark.parametrize("name", list(CASES))
async def test_engine_decides_alike_when_the_arguments_the_policy_does_not_name_are_withheld(engine: PolicyEngine | RealOpa, name: str) -> None:
    """What the embedded engine serves (gateway.policy.reads): the shipped policy given the values of
    the arguments it names only decides every golden case as it does given them all."""
    case = CASES[name]
    named = policy_reads(PolicyFiles.read(POLICIES)).arguments
    withheld = withhold_arguments(case["input"]["fields"], named)

    assert await engine.evaluate({**case["input"], "fields": withheld}) == case["output"]
