"""The embedded engine: decisions from the shipped policy, reloads that keep the last good policy in
force, and a worker process that dies or hangs without taking the gateway down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop

from gateway.errors import PolicyUnavailable
from gateway.policy.decision import Decision, parse_decision
from gateway.policy.embedded import EmbeddedEngine

POLICIES = Path(__file__).parents[2] / "policies"

ANONYMOUS = {"kind": "anonymous", "id": None, "scopes": []}
CREATOR = {"kind": "user", "id": "u1", "scopes": []}
COMPLIANCE = {"kind": "compliance", "id": "c1", "scopes": []}
SERVICE = {"kind": "service", "id": "ingest", "scopes": []}


def app(*scopes: str) -> dict[str, Any]:
    return {"kind": "app", "id": "app1", "scopes": list(scopes)}


def field(coordinate: str, path: str | None = None, **arguments: Any) -> dict[str, Any]:
    type_name, field_name = coordinate.split(".")
    return {
        "path": path or coordinate,
        "coordinate": coordinate,
        "type": type_name,
        "field": field_name,
        "alias": None,
        "arguments": arguments,
    }


def policy_input(principal: dict[str, Any], *fields: dict[str, Any], operation: str = "Dashboard") -> dict[str, Any]:
    return {"principal": principal, "operation": {"name": operation, "type": "query", "hash": "0" * 64}, "fields": list(fields)}


async def decide(engine: EmbeddedEngine, principal: dict[str, Any], *fields: dict[str, Any]) -> Decision:
    return parse_decision(await engine.evaluate(policy_input(principal, *fields)), [f["path"] for f in fields])


# The dashboard query's fields: a video with its counts, ratios and share timeline.
DASHBOARD = [
    field("Query.video", "video", id="v1"),
    field("Video.id", "video.id"),
    field("Video.creatorId", "video.creatorId"),
    field("Video.publishedAt", "video.publishedAt"),
    field("Video.stats", "video.stats"),
    field("VideoStats.views", "video.stats.views"),
    field("VideoStats.likes", "video.stats.likes"),
    field("VideoStats.comments", "video.stats.comments"),
    field("VideoStats.shares", "video.stats.shares"),
    field("VideoStats.likeRatio", "video.stats.likeRatio"),
    field("VideoStats.engagementRate", "video.stats.engagementRate"),
    field("Video.shareTimeline", "video.shareTimeline", granularity="DAY", **{"from": None, "to": None}),
    field("Timeline.buckets", "video.shareTimeline.buckets"),
    field("TimeBucket.start", "video.shareTimeline.buckets.start"),
    field("TimeBucket.count", "video.shareTimeline.buckets.count"),
]


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    return target


@pytest.fixture
async def engine(policy_dir: Path) -> AsyncIterator[EmbeddedEngine]:
    # Generous: on a busy two-core machine 20 questions at once can outwait the production 250 ms;
    # the timeout tests below set their own.
    engine = EmbeddedEngine(policy_dir, timeout=30)
    assert await engine.reload(), engine.last_error
    yield engine
    await engine.close()


def edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2))


@pytest.mark.parametrize(
    ("principal", "requested", "allow", "owner_only", "reason"),
    [
        pytest.param(ANONYMOUS, field("VideoStats.shares"), True, False, "VideoStats.shares is allowed for anonymous", id="anonymous-public-count"),
        pytest.param(
            ANONYMOUS, field("Video.shareTimeline"), False, False, "Video.shareTimeline is not allowed for anonymous", id="anonymous-timeline"
        ),
        pytest.param(
            CREATOR,
            field("Video.shareTimeline", granularity="HOUR"),
            True,
            True,
            "Video.shareTimeline is allowed for user on their own data only",
            id="creator-own-timeline",
        ),
        pytest.param(CREATOR, field("MyShare.sharedAt"), True, False, "MyShare.sharedAt is allowed for user", id="user-own-activity"),
        pytest.param(
            app("stats"),
            field("Video.shareChannels"),
            False,
            False,
            "Video.shareChannels needs one of the app scopes: insights",
            id="app-without-scope",
        ),
        pytest.param(
            app("insights"),
            field("Video.viewTimeline", granularity="HOUR"),
            False,
            False,
            "Video.viewTimeline(granularity: HOUR) is finer than the DAY floor for app",
            id="app-below-floor",
        ),
        pytest.param(COMPLIANCE, field("Query.decisionLog"), True, False, "Query.decisionLog is allowed for compliance", id="compliance-log"),
        pytest.param(CREATOR, field("Query.decisionLog"), False, False, "Query.decisionLog is not allowed for user", id="user-no-log"),
        pytest.param(SERVICE, field("Query.video"), False, False, "Query.video is not allowed for service", id="service-nothing"),
        pytest.param(
            SERVICE,
            field("Query.__schema"),
            False,
            False,
            "Query.__schema is introspection, which is not allowed for service",
            id="service-introspection",
        ),
        pytest.param(ANONYMOUS, field("Video.__typename"), True, False, "Video.__typename is allowed for anonymous", id="anonymous-typename"),
    ],
)
async def test_engine_decides_one_field(
    engine: EmbeddedEngine, principal: dict[str, Any], requested: dict[str, Any], allow: bool, owner_only: bool, reason: str
) -> None:
    decision = await decide(engine, principal, requested)

    verdict = decision.fields[requested["path"]]
    assert (verdict.allow, verdict.owner_only, verdict.reason) == (allow, owner_only, reason)


async def test_engine_answers_every_path_of_the_dashboard(engine: EmbeddedEngine) -> None:
    creator = await decide(engine, CREATOR, *DASHBOARD)
    anonymous = await decide(engine, ANONYMOUS, *DASHBOARD)

    assert set(creator.fields) == {f["path"] for f in DASHBOARD}
    assert all(verdict.allow for verdict in creator.fields.values())
    assert [path for path, verdict in anonymous.fields.items() if not verdict.allow] == [
        "video.shareTimeline",
        "video.shareTimeline.buckets",
        "video.shareTimeline.buckets.count",
        "video.shareTimeline.buckets.start",
        "video.stats.engagementRate",
        "video.stats.likeRatio",
    ]


@pytest.mark.parametrize(
    ("principal", "obligations"),
    [
        pytest.param(CREATOR, {"k_threshold": 5, "granularity_floor": "HOUR", "epsilon": {}}, id="creator"),
        pytest.param(app("insights"), {"k_threshold": 50, "granularity_floor": "DAY"}, id="app"),
    ],
)
async def test_engine_returns_the_principals_obligations(engine: EmbeddedEngine, principal: dict[str, Any], obligations: dict[str, Any]) -> None:
    decision = await decide(engine, principal, field("Video.id"))

    assert decision.obligations["bucket_delay_seconds"] == 3600
    assert {key: decision.obligations[key] for key in obligations} == obligations


async def test_engine_keeps_odd_strings_intact(engine: EmbeddedEngine) -> None:
    # rego-cpp prints strings unescaped unless they came in escaped: quotes, backslashes,
    # newlines and non-ASCII must survive the trip through the worker.
    path = 'v"i\\d\né☃'
    decision = await decide(engine, ANONYMOUS, field("Video.id", path))

    assert decision.fields[path].allow


async def test_engine_serves_concurrent_requests(engine: EmbeddedEngine) -> None:
    decisions = await asyncio.gather(*(decide(engine, CREATOR, *DASHBOARD) for _ in range(20)))

    assert all(len(decision.fields) == len(DASHBOARD) for decision in decisions)


async def test_reload_changes_revision(engine: EmbeddedEngine, policy_dir: Path) -> None:
    before = engine.revision
    edit_json(policy_dir / "data.json", lambda data: data["obligations"]["principals"]["app"]["epsilon"].update(views=0.4))

    assert await engine.reload()

    assert engine.revision != before
    assert engine.last_error is None
    assert (await decide(engine, app("stats"), field("Video.id"))).obligations["epsilon"]["views"] == 0.4


async def test_reload_without_change_keeps_revision(engine: EmbeddedEngine) -> None:
    before = engine.revision

    assert not await engine.reload()

    assert engine.revision == before


async def test_syntax_error_keeps_last_good_policy(engine: EmbeddedEngine, policy_dir: Path) -> None:
    good = engine.revision
    authz = policy_dir / "gateway" / "authz.rego"
    authz.write_text(authz.read_text() + "\nbroken := {\n")

    assert not await engine.reload()

    assert engine.revision == good
    assert engine.last_error is not None
    assert "does not parse" in engine.last_error
    assert "gateway/authz.rego" in engine.last_error
    assert f"policy {good[:12]} stays in force" in engine.last_error
    assert (await decide(engine, ANONYMOUS, field("Video.id"))).fields["Video.id"].allow


async def test_failing_policy_test_keeps_last_good_policy(engine: EmbeddedEngine, policy_dir: Path) -> None:
    good = engine.revision
    edit_json(policy_dir / "data.json", lambda data: data["obligations"]["principals"]["user"].update(k_threshold=2))

    assert not await engine.reload()

    assert engine.revision == good
    assert engine.last_error is not None
    assert "gateway.obligations_test.test_k_threshold_per_kind" in engine.last_error
    assert (await decide(engine, CREATOR, field("Video.id"))).obligations["k_threshold"] == 5


async def test_runtime_error_keeps_last_good_policy(engine: EmbeddedEngine, policy_dir: Path) -> None:
    good = engine.revision
    authz = policy_dir / "gateway" / "authz.rego"
    # A second value for `decision` when the operation is named: no policy test names one, the
    # probe request does, and two values for one complete rule are an evaluation error.
    authz.write_text(authz.read_text() + '\ndecision := {"fields": {}, "obligations": {}} if input.operation.name\n')

    assert not await engine.reload()

    assert engine.revision == good
    assert engine.last_error is not None
    assert "it fails a probe request" in engine.last_error
    assert (await decide(engine, CREATOR, *DASHBOARD)).fields["video.id"].allow


# A refusal of the probe's video, by its id: reached through the field object (`value` is its
# arguments), or by name.
BY_TRAVERSAL = '{"the probe video" |\n\tsome value in requested\n\tis_object(value)\n\tvalue.id == "probe"\n}'
BY_NAME = '{"the probe video" |\n\trequested.arguments.id == "probe"\n}'


def refusing_the_probe_video(policy_dir: Path, refusal: str) -> None:
    authz = policy_dir / "gateway" / "authz.rego"
    source = authz.read_text()
    denials = "\treason := granularity_refusal(requested.coordinate, granularity)\n}"
    assert denials in source
    authz.write_text(source.replace(denials, f"{denials} | {refusal}"))


def listing(*names: str | None) -> Callable[[dict[str, Any]], None]:
    """A data.json edit: access.arguments lists `names` (removed when given None)."""

    def edit(data: dict[str, Any]) -> None:
        if names == (None,):
            del data["access"]["arguments"]
        else:
            data["access"]["arguments"] = list(names)

    return edit


@pytest.mark.parametrize(
    ("refusal", "listed", "given", "rejected"),
    [
        pytest.param(BY_NAME, listing("granularity", "id"), {"granularity", "id"}, None, id="named-and-listed"),
        pytest.param(BY_TRAVERSAL, listing(None), None, None, id="traversal-nothing-listed"),
        pytest.param(BY_NAME, listing("granularity"), None, "reads the argument(s) id, which data.json access.arguments does not list", id="named-not-listed"),
        pytest.param(BY_TRAVERSAL, listing("granularity", "id"), None, "uses a field object in a way the gateway cannot follow", id="traversal-listed"),
    ],
)
async def test_a_policy_is_given_the_arguments_it_lists_which_must_be_all_it_reads(
    engine: EmbeddedEngine,
    policy_dir: Path,
    refusal: str,
    listed: Callable[[dict[str, Any]], None],
    given: set[str] | None,
    rejected: str | None,
) -> None:
    good = engine.revision
    refusing_the_probe_video(policy_dir, refusal)
    edit_json(policy_dir / "data.json", listed)

    assert await engine.reload() is (rejected is None), engine.last_error

    if rejected is None:
        assert engine.reads.arguments == given
        assert not (await decide(engine, ANONYMOUS, field("Query.video", "video", id="probe"))).fields["video"].allow
    else:
        assert engine.revision == good
        assert engine.last_error is not None and rejected in engine.last_error


async def test_a_policy_that_decides_on_an_argument_it_is_not_given_is_refused(
    engine: EmbeddedEngine, policy_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reload's second line, behind the reading of the Rego (gateway.policy.reads): were that
    reading to miss how a rule reaches an argument (simulated here: it finds nothing amiss), the
    rule would decide on "(withheld)"; the probe, decided both ways, refuses the revision."""
    good = engine.revision
    refusing_the_probe_video(policy_dir, BY_TRAVERSAL)
    monkeypatch.setattr("gateway.policy.embedded.arguments_refusal", lambda files: None)

    assert not await engine.reload()

    assert engine.revision == good
    assert engine.last_error is not None
    assert "a module reaches an argument's value in a way the gateway cannot see" in engine.last_error


@pytest.mark.parametrize(
    "data", [pytest.param('{"n": ' + "7" * 5000 + "}", id="an-integer-of-5000-digits"), pytest.param("[" * 100_000 + "]" * 100_000, id="nested-100k-deep")]
)
async def test_data_json_python_cannot_read_is_refused_not_raised(engine: EmbeddedEngine, policy_dir: Path, data: str) -> None:
    good = engine.revision
    (policy_dir / "data.json").write_text(data)

    assert not await engine.reload()

    assert engine.revision == good
    assert engine.last_error is not None and "data.json cannot be read" in engine.last_error


async def test_reverting_a_rejected_edit_clears_last_error(engine: EmbeddedEngine, policy_dir: Path) -> None:
    good = engine.revision
    authz = policy_dir / "gateway" / "authz.rego"
    source = authz.read_text()
    authz.write_text(source + "\nbroken := {\n")
    assert not await engine.reload()

    authz.write_text(source)

    assert not await engine.reload()
    assert (engine.revision, engine.last_error) == (good, None)


async def test_policy_that_never_loads_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "authz.rego").write_text("package gateway.authz\n\ndecision := {\n")
    engine = EmbeddedEngine(tmp_path)
    try:
        assert not await engine.reload()

        assert (engine.ready, engine.revision) == (False, "")
        assert engine.last_error is not None
        assert "no policy is in force" in engine.last_error
        with pytest.raises(PolicyUnavailable, match="no policy is in force"):
            await engine.evaluate(policy_input(ANONYMOUS, field("Video.id")))
    finally:
        await engine.close()


async def test_worker_crash_gives_policy_unavailable_then_recovers(engine: EmbeddedEngine) -> None:
    crashed = engine.worker_pid
    assert crashed is not None
    os.kill(crashed, signal.SIGKILL)

    with pytest.raises(PolicyUnavailable, match="crashed"):
        await decide(engine, CREATOR, *DASHBOARD)

    decision = await decide(engine, CREATOR, *DASHBOARD)
    assert decision.fields["video.shareTimeline"].owner_only
    assert engine.worker_pid not in (None, crashed)


def test_worker_killed_under_uvloop_is_replaced(policy_dir: Path) -> None:
    """`gateway serve` runs on uvloop, whose pipe to a dead worker raises RuntimeError rather than
    a ConnectionError: the worker must still be replaced, not every later decision fail."""

    async def scenario() -> None:
        engine = EmbeddedEngine(policy_dir)
        try:
            assert await engine.reload(), engine.last_error
            crashed = engine.worker_pid
            assert crashed is not None
            worker = await engine._served.slots[0].worker()  # type: ignore[union-attr]
            os.kill(crashed, signal.SIGKILL)
            # As a server between two requests: the loop has reaped the worker and closed its pipes.
            await worker._process.wait()
            with contextlib.suppress(PolicyUnavailable):
                await decide(engine, CREATOR, *DASHBOARD)  # fails closed, or is answered by the fresh worker
            for _ in range(3):
                decision = await decide(engine, CREATOR, *DASHBOARD)
                assert decision.fields["video.shareTimeline"].owner_only
            assert engine.worker_pid not in (None, crashed)
        finally:
            await engine.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


async def test_dead_workers_that_cannot_be_replaced_make_the_engine_unready(engine: EmbeddedEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine._served is not None
    workers = [await slot.worker() for slot in engine._served.slots]
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # a real fault: no worker can be spawned
    os.kill(workers[0].pid, signal.SIGKILL)
    await workers[0]._process.wait()

    await engine.check()
    assert engine.ready, "one live worker serves"
    assert (await decide(engine, CREATOR, *DASHBOARD)).fields["video.shareTimeline"].owner_only
    for worker in workers[1:]:
        os.kill(worker.pid, signal.SIGKILL)
        await worker._process.wait()

    await engine.check()  # what /readyz asks
    assert not engine.ready
    assert engine.last_error is not None and "does not start" in engine.last_error
    with pytest.raises(PolicyUnavailable, match="does not restart"):
        await decide(engine, CREATOR, *DASHBOARD)

    monkeypatch.undo()
    await engine.check()
    assert engine.ready and engine.last_error is None
    assert not set(engine.worker_pids) & {worker.pid for worker in workers}
    assert (await decide(engine, CREATOR, *DASHBOARD)).fields["video.shareTimeline"].owner_only


# Answers every field; a request named "Slow" first builds a set that takes rego-cpp seconds.
SLOW_POLICY = """package gateway.authz

import rego.v1

decision := {"fields": verdicts, "obligations": {}} if not input.operation.name == "Slow"

decision := {"fields": verdicts, "obligations": {"size": count(slow)}} if input.operation.name == "Slow"

verdicts[f.path] := {"allow": true, "reason": "allowed", "owner_only": false} if {
	some f in input.fields
}

slow contains n if {
	some n in numbers.range(1, 4000)
}
"""


async def test_timeout_gives_policy_unavailable_then_recovers(tmp_path: Path) -> None:
    (tmp_path / "authz.rego").write_text(SLOW_POLICY)
    engine = EmbeddedEngine(tmp_path, timeout=0.25)
    try:
        assert await engine.reload(), engine.last_error
        started = time.perf_counter()

        with pytest.raises(PolicyUnavailable, match="no answer within 250 ms"):
            await engine.evaluate(policy_input(ANONYMOUS, field("Video.id"), operation="Slow"))

        assert time.perf_counter() - started < 2
        fast = await engine.evaluate(policy_input(ANONYMOUS, field("Video.id")))
        assert fast["fields"]["Video.id"]["allow"] is True
    finally:
        await engine.close()


async def at_a_worker(engine: EmbeddedEngine, operation: str = "Dashboard") -> asyncio.Task[Any]:
    """A question about one field under way, once it is at a worker (answered there, or queued)."""
    assert engine._served is not None

    def load() -> int:
        assert engine._served is not None
        return sum(slot.load for slot in engine._served.slots)

    before = load()
    asking = asyncio.create_task(engine.evaluate(policy_input(ANONYMOUS, field("Video.id"), operation=operation)))
    while load() <= before:
        await asyncio.sleep(0)
    return asking


async def test_a_slow_decision_holds_up_only_its_own_worker(tmp_path: Path) -> None:
    """With two workers, a fast question asked while a slow one is being evaluated is answered by the
    other worker, before the slow one lands; the slow one still gets its answer."""
    (tmp_path / "authz.rego").write_text(SLOW_POLICY)
    engine = EmbeddedEngine(tmp_path, timeout=60, workers=2)
    try:
        assert await engine.reload(), engine.last_error
        slow = await at_a_worker(engine, "Slow")

        fast = await engine.evaluate(policy_input(ANONYMOUS, field("Video.id")))

        assert fast["fields"]["Video.id"]["allow"] is True
        assert not slow.done()
        assert (await slow)["obligations"]["size"] == 4000  # numbers.range includes both ends
        assert (engine.timeouts, engine.restarts) == (0, 0)
    finally:
        await engine.close()


async def test_a_question_waits_for_its_turn_at_most_the_queue_timeout(tmp_path: Path) -> None:
    """Waiting for a worker (others' questions being decided) is bounded apart from evaluating: a
    request behind a slow one fails closed once the queue timeout has passed, not the evaluation's."""
    (tmp_path / "authz.rego").write_text(SLOW_POLICY)
    engine = EmbeddedEngine(tmp_path, timeout=60, queue_timeout=0.1, workers=1)
    try:
        assert await engine.reload(), engine.last_error
        slow = await at_a_worker(engine, "Slow")

        with pytest.raises(PolicyUnavailable, match="busy: no turn within 100 ms"):
            await engine.evaluate(policy_input(ANONYMOUS, field("Video.id")))
        assert (await slow)["obligations"]["size"] == 4000  # the slow one is not disturbed
        assert engine.timeouts == 0
    finally:
        await engine.close()


async def test_a_question_queued_behind_one_that_kills_the_worker_is_answered_by_the_next(tmp_path: Path) -> None:
    """A slow question overruns and its worker is killed: the question waiting behind it was never
    evaluated, so it goes to a fresh worker instead of failing with it (the red team saw every
    request queued behind one timeout fail)."""
    (tmp_path / "authz.rego").write_text(SLOW_POLICY)
    engine = EmbeddedEngine(tmp_path, timeout=0.25, queue_timeout=30, workers=1)
    try:
        assert await engine.reload(), engine.last_error
        slow = await at_a_worker(engine, "Slow")
        queued = await at_a_worker(engine)

        with pytest.raises(PolicyUnavailable, match="no answer within 250 ms"):
            await slow
        assert (await queued)["fields"]["Video.id"]["allow"] is True
        assert (engine.timeouts, engine.restarts) == (1, 1)
    finally:
        await engine.close()


async def test_timeouts_and_restarts_are_counted(tmp_path: Path) -> None:
    (tmp_path / "authz.rego").write_text(SLOW_POLICY)
    engine = EmbeddedEngine(tmp_path, timeout=0.25, workers=1)
    try:
        assert await engine.reload(), engine.last_error
        with pytest.raises(PolicyUnavailable, match="no answer within"):
            await engine.evaluate(policy_input(ANONYMOUS, field("Video.id"), operation="Slow"))
        await engine.check()  # the overrun worker was killed; this waits for its replacement

        assert (engine.timeouts, engine.restarts) == (1, 1)
        assert engine.ready
    finally:
        await engine.close()


async def test_watcher_outlives_a_failure_to_read_the_directory(policy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The directory cannot be listed for a while (the red team ran the process out of file
    descriptors): the watcher logs it and goes on, so a later edit still goes live."""
    engine = EmbeddedEngine(policy_dir, poll_interval=0.05)
    await engine.start()
    try:
        failures = 0

        def out_of_descriptors(self: Path, pattern: str) -> Any:
            nonlocal failures
            failures += 1
            raise OSError(24, "Too many open files")

        monkeypatch.setattr(Path, "rglob", out_of_descriptors)
        while failures < 3:
            await asyncio.sleep(0.05)
        monkeypatch.undo()
        before = engine.revision
        edit_json(policy_dir / "data.json", lambda data: data["obligations"]["principals"]["app"]["epsilon"].update(likes=0.4))

        deadline = time.monotonic() + 30
        while engine.revision == before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert engine.revision != before
    finally:
        await engine.close()


async def test_watcher_reloads_a_changed_policy(policy_dir: Path) -> None:
    engine = EmbeddedEngine(policy_dir, poll_interval=0.05)
    await engine.start()
    try:
        before = engine.revision
        edit_json(policy_dir / "data.json", lambda data: data["obligations"]["principals"]["app"]["epsilon"].update(likes=0.3))

        deadline = time.monotonic() + 30
        while engine.revision == before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

        assert engine.revision != before
        assert (await decide(engine, app("stats"), field("Video.id"))).obligations["epsilon"]["likes"] == 0.3
    finally:
        await engine.close()


