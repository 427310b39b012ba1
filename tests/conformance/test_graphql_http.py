"""GraphQL over HTTP, to the letter: the graphql-http audit (npm `graphql-http`, its `serverAudits`,
pinned in package.json here) run against a real `gateway serve`, as anonymous and as a user. Every
MUST and every SHOULD passes (a MAY may be declined). `make test` installs the audit with npm when
`node` is on the machine; without node these tests skip and say so."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import PrincipalKind, create_token

from conftest import SECRET
from processes import Served, serving

HERE = Path(__file__).parent
AUDIT_SECONDS = 300

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("no `node` on this machine: the graphql-http audit needs Node.js (install it, then run `make test`)")
    if not (HERE / "node_modules" / "graphql-http").is_dir():
        pytest.skip("graphql-http is not installed: `make test` runs `npm ci` in tests/conformance when node is present")
    return found


@pytest.fixture(scope="module")
async def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    async with serving(database_url, tmp_path_factory.mktemp("conformance")) as served:
        yield served


async def audit(node: str, url: str, token: str | None) -> list[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        node, str(HERE / "audit.mjs"), url, *([token] if token else []), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(AUDIT_SECONDS):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


@pytest.mark.parametrize("kind", [PrincipalKind.ANONYMOUS, PrincipalKind.USER], ids=["anonymous", "user"])
async def test_every_must_and_should_of_the_audit_passes(node: str, server: Served, kind: PrincipalKind) -> None:
    token = None if kind is PrincipalKind.ANONYMOUS else create_token(SECRET, kind, "u1", ttl_seconds=600)

    results = await audit(node, f"{server.url}/graphql", token)

    assert len(results) > 50  # the audit ran (it has about 60)
    assert {result["status"] for result in results} <= {"ok", "notice"}
    failing = [f"{result['status']}: {result['name']}: {result['reason']}" for result in results if result["status"] in ("error", "warn")]
    assert failing == []
    # What may be declined is only ever a MAY.
    assert all(result["name"].startswith("MAY") for result in results if result["status"] == "notice")
