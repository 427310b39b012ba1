"""The policy engine of a real server under faults: its workers killed, and bursts of identical
requests at a cold start and right after a policy reload."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from pathlib import Path

import httpx
import pytest

from gateway.auth import Principal, PrincipalKind

from processes import serving

from .conftest import codes, evaluations, event, graphql, post_events

pytestmark = pytest.mark.timeout(600)

OWNER = Principal(PrincipalKind.USER, "creator-r")
DASHBOARD = 'query($id: ID!) { video(id: $id) { id stats { views likes shares likeRatio } shareChannels { buckets { key count suppressed } } } }'
BURST = 64


async def seeded(http: httpx.AsyncClient) -> None:
    response = await post_events(http, [
        event("policy-published", "video_published", "video-p", "creator-r"),
        *(event(f"policy-view-{n}", "view", "video-p", f"viewer-{n}", watch_ms=1000) for n in range(3)),
    ])
    assert response.status_code == 200, response.text


def aliased(query: str, alias: str) -> str:
    return query.replace("{ video(", f"{{ {alias}: video(", 1)


async def test_killed_policy_workers_are_replaced(database_url: str, tmp_path: Path) -> None:
    """kill -9 of every policy worker: the server starts fresh ones; a request fails closed (503
    POLICY_UNAVAILABLE) at worst, never INTERNAL, and readiness comes back without a restart."""
    async with serving(database_url, tmp_path) as server, httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        await seeded(http)
        killed = server.policy_workers()
        assert killed, "the server runs its policy in worker processes"
        for worker in killed:
            os.kill(worker.pid, signal.SIGKILL)
        # Each under another alias: a question not decided yet (the video's id is not the policy's to read).
        answers = [await graphql(http, aliased(DASHBOARD, f"v{n}"), OWNER, variables={"id": f"video-{n}"}) for n in range(20)]
        ready = await http.get("/readyz")
        fresh = {worker.pid for worker in server.policy_workers()}

    outcomes = [(answer.status_code, tuple(codes(answer))) for answer in answers]
    failed = [outcome for outcome in outcomes if outcome[0] != 200]
    assert set(failed) <= {(503, ("POLICY_UNAVAILABLE",))}, failed
    assert len(failed) <= len(killed)  # one request per dead worker at most finds it dead
    assert outcomes[-1][0] == 200
    assert ready.status_code == 200, ready.text
    assert fresh and not fresh & {worker.pid for worker in killed}


async def burst(http: httpx.AsyncClient, query: str, variables: dict[str, str]) -> list[tuple[int, tuple[str, ...]]]:
    answers = await asyncio.gather(*(graphql(http, query, OWNER, variables=variables) for _ in range(BURST)))
    return [(answer.status_code, tuple(codes(answer))) for answer in answers]


async def test_bursts_at_a_cold_start_and_after_a_reload_ask_the_policy_once(database_url: str, tmp_path: Path) -> None:
    """64 identical requests the moment a server accepts connections, and again right after a policy
    edit goes live: none is refused, and the engine evaluates each question once (a request asks two,
    its principal's rate limit and its fields; concurrent identical questions share one evaluation;
    a reload decides the recent ones before it serves). The timeout
    is generous for a busy machine; counting evaluations is what shows the sharing."""
    policy_dir = tmp_path / "policies"
    shutil.copytree(Path(__file__).parents[2] / "policies", policy_dir)
    async with serving(database_url, tmp_path, policy_dir=policy_dir, policy_timeout="5") as server, httpx.AsyncClient(
        base_url=server.url, timeout=120
    ) as http:
        cold = await burst(http, DASHBOARD, {"id": "video-cold"})
        after_cold = await evaluations(http)

        revision = (await http.get("/readyz")).json()["policy"]["revision"]
        data = json.loads((policy_dir / "data.json").read_text())
        data["note"] = "an edit that changes no verdict"
        (policy_dir / "data.json").write_text(json.dumps(data))
        await until_revision_changes(http, revision)
        before_bursts = await evaluations(http)
        warm = await burst(http, DASHBOARD, {"id": "video-cold"})  # asked before the reload: decided by it
        fresh = await burst(http, aliased(DASHBOARD, "fresh"), {"id": "video-new"})  # never asked: one evaluation for 64
        after_reload = await evaluations(http)

    assert [outcome for outcome in cold + warm + fresh if outcome[0] != 200] == []
    # 64 requests, one evaluation of each question: the owner's rate limit (no fields) and the dashboard.
    assert after_cold == 2
    assert after_reload - before_bursts == 1  # the warmed questions cost none, the new one one


async def until_revision_changes(http: httpx.AsyncClient, revision: str) -> None:
    seen = {"revision": revision}

    async def check() -> None:
        seen["revision"] = (await http.get("/readyz")).json()["policy"]["revision"]

    async def changed() -> None:
        while seen["revision"] == revision:
            await check()
            await asyncio.sleep(0.1)

    await asyncio.wait_for(changed(), 60)
