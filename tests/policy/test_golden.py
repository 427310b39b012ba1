"""Golden cases: each cases/*.json pins a policy input to the decision the shipped policy gives.

A case holds `input` (built by the policy guard from the case's `query` and `variables`, when it
has one) and `output` (the value of data.gateway.authz.decision: a verdict for every path, and
the obligations). Every engine of the run must give exactly that output: the embedded one, the
OPA-server engine against the OPA stand-in, and against a real `opa run --server` when `opa` is
on PATH.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import Principal, PrincipalKind
from gateway.errors import PolicyUnavailable
from gateway.graphql.context import RequestContext
from gateway.graphql.schema import build_schema
from gateway.policy.decider import PolicyDecider
from gateway.policy.decision import PRINCIPAL_KEYS, PolicyEngine, parse_decision
from gateway.policy.embedded import EmbeddedEngine
from gateway.policy.opa import OpaServerEngine

from .opa_standin import OpaStandin

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
    principal_keys_read = PRINCIPAL_KEYS

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


async def open_opa_server() -> tuple[subprocess.Popen[bytes], str]:
    """`opa run --server` over the shipped policy on a free port, once it reports healthy."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        ["opa", "run", "--server", "--addr", f"127.0.0.1:{port}", "--log-level", "error", str(POLICIES)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return process, url
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                break
            await asyncio.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(f"`opa run --server` did not become healthy on {url}")


@pytest.fixture(
    scope="module",
    params=[pytest.param("embedded"), pytest.param("opa-standin"), pytest.param("opa-server")],
)
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[PolicyEngine]:
    if request.param == "embedded":
        embedded = EmbeddedEngine(POLICIES, timeout=EVALUATION_TIMEOUT)
        await embedded.start()
        assert embedded.ready, embedded.last_error
        yield embedded
        await embedded.close()
        return
    if request.param == "opa-standin":
        standin: OpaStandin = request.getfixturevalue("opa_server")
        client = OpaServerEngine(standin.url, timeout=EVALUATION_TIMEOUT)
        await client.start()
        yield client
        await client.close()
        return
    if shutil.which("opa") is None:
        pytest.skip("no `opa` on PATH (it cannot be installed on our machines; the OPA stand-in runs these cases instead)")
    process, url = await open_opa_server()
    client = OpaServerEngine(url, timeout=EVALUATION_TIMEOUT)
    await client.start()
    try:
        yield client
    finally:
        await client.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("name", list(CASES))
async def test_engine_gives_the_golden_decision(engine: PolicyEngine, name: str) -> None:
    case = CASES[name]

    answer = await engine.evaluate(case["input"])

    assert answer == case["output"]
    decision = parse_decision(answer, [requested["path"] for requested in case["input"]["fields"]])
    assert {path: verdict.model_dump() for path, verdict in decision.fields.items()} == case["output"]["fields"]
