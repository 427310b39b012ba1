"""The decider and its cache, with an engine that counts what it is asked: the cache key, the bounded
LRU, and what reaches the decision log."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from gateway.errors import PolicyUnavailable
from gateway.policy.cache import DecisionCache
from gateway.policy.decider import DecisionRecord, PolicyDecider, PolicyQuestion, weigh_decision
from gateway.policy.decision import ENTRYPOINT, PRINCIPAL_KEYS, Decision, FieldVerdict
from gateway.policy.fields import WITHHELD, RequestedField
from gateway.policy.reads import PolicyReads

OPERATION = {"name": "Dashboard", "type": "query", "hash": "0" * 64}
VIDEO = RequestedField(path="video", type="Query", field="video", alias=None, arguments={"id": "v1"})
TIMELINE = RequestedField(path="video.shareTimeline", type="Video", field="shareTimeline", alias=None, arguments={"granularity": "DAY"})


class CountingEngine:
    """Allows every field but Video.shareTimeline; reads the principal's keys the test says."""

    def __init__(
        self, principal_keys_read: frozenset[str] = frozenset(), answer_paths: bool = True, arguments_read: frozenset[str] | None = None
    ) -> None:
        self.reads = PolicyReads(principal_keys_read, arguments_read)
        self.answer_paths = answer_paths
        self.revision = "r1"
        self.before_serving: list[Any] = []
        self.inputs: list[dict[str, Any]] = []

    async def evaluate(self, policy_input: dict[str, Any]) -> Any:
        self.inputs.append(policy_input)
        fields = {
            requested["path"]: {"allow": requested["coordinate"] != "Video.shareTimeline", "reason": requested["coordinate"]}
            for requested in policy_input["fields"]
        }
        if not self.answer_paths:
            fields.popitem()
        return {"fields": fields, "obligations": {"k_threshold": 5}}

    async def close(self) -> None:
        return None


def user(user_id: str) -> Principal:
    return Principal(PrincipalKind.USER, user_id)


def decision(reason: str) -> Decision:
    return Decision(fields={"video": FieldVerdict(allow=True, reason=reason)})


@pytest.mark.parametrize(
    ("keys_read", "engine_calls"),
    [
        pytest.param(PRINCIPAL_KEYS, 2, id="engine-reads-the-id"),
        pytest.param(frozenset({"app"}), 1, id="engine-reads-only-the-app"),
        pytest.param(frozenset(), 1, id="engine-ignores-the-id"),
    ],
)
async def test_principal_id_is_in_the_key_only_when_the_engine_reads_it(keys_read: frozenset[str], engine_calls: int) -> None:
    engine = CountingEngine(keys_read)
    decider = PolicyDecider(engine)

    await decider.decide(user("u1"), PolicyQuestion(OPERATION, [VIDEO]))
    await decider.decide(user("u2"), PolicyQuestion(OPERATION, [VIDEO]))

    assert len(engine.inputs) == engine_calls
    assert [input_["principal"]["id"] for input_ in engine.inputs] == ["u1", "u2"][:engine_calls]


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(ANONYMOUS, id="kind"),
        pytest.param(Principal(PrincipalKind.APP, "u1", frozenset({"stats", "insights"})), id="scopes"),
    ],
)
async def test_principal_kind_and_scopes_are_always_in_the_key(other: Principal) -> None:
    engine = CountingEngine()
    decider = PolicyDecider(engine)

    await decider.decide(Principal(PrincipalKind.APP, "u1", frozenset({"stats"})), PolicyQuestion(OPERATION, [VIDEO]))
    await decider.decide(other, PolicyQuestion(OPERATION, [VIDEO]))

    assert len(engine.inputs) == 2


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param([VIDEO, TIMELINE], id="another-field"),
        pytest.param([RequestedField(path="video", type="Query", field="video", alias=None, arguments={"id": "v2"})], id="another-argument"),
        pytest.param([RequestedField(path="clip", type="Query", field="video", alias="clip", arguments={"id": "v1"})], id="another-path"),
    ],
)
async def test_fields_and_arguments_are_in_the_key(fields: list[RequestedField]) -> None:
    engine = CountingEngine()
    decider = PolicyDecider(engine)

    await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, [VIDEO]))
    await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, fields))

    assert len(engine.inputs) == 2


def video(video_id: str, granularity: str = "DAY") -> list[RequestedField]:
    return [
        RequestedField(path="video", type="Query", field="video", alias=None, arguments={"id": video_id}),
        RequestedField(path="video.shareTimeline", type="Video", field="shareTimeline", alias=None, arguments={"granularity": granularity}),
    ]


async def test_an_argument_the_policy_does_not_name_is_withheld_and_out_of_the_key() -> None:
    """The creators of two videos asking the same dashboard are one class: decided once, and the
    policy never learns which video either asked about; the log still says what each asked."""
    engine = CountingEngine(arguments_read=frozenset({"granularity"}))
    records: list[DecisionRecord] = []
    decider = PolicyDecider(engine, record=records.append)

    await decider.decide(user("u1"), PolicyQuestion(OPERATION, video("v1")))
    await decider.decide(user("u2"), PolicyQuestion(OPERATION, video("v2")))

    assert len(engine.inputs) == 1
    assert [field["arguments"] for field in engine.inputs[0]["fields"]] == [{"id": WITHHELD}, {"granularity": "DAY"}]
    assert [json.loads(record.input)["fields"][0]["arguments"]["id"] for record in records] == ["v1", "v2"]
    assert [record.cache_hit for record in records] == [False, True]


@pytest.mark.parametrize(
    ("arguments_read", "second"),
    [
        pytest.param(frozenset({"granularity"}), video("v1", "HOUR"), id="a-named-argument"),
        pytest.param(frozenset({"id", "granularity"}), video("v2"), id="every-argument-named"),
        pytest.param(None, video("v2"), id="a-policy-given-every-value"),
    ],
)
async def test_the_value_of_an_argument_the_policy_is_given_is_in_the_key(
    arguments_read: frozenset[str] | None, second: list[RequestedField]
) -> None:
    engine = CountingEngine(arguments_read=arguments_read)
    decider = PolicyDecider(engine)

    await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, video("v1")))
    await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, second))

    assert [[field["arguments"] for field in input_["fields"]] for input_ in engine.inputs] == [
        [{name: value if arguments_read is None or name in arguments_read else WITHHELD for name, value in field.arguments.items()} for field in asked]
        for asked in (video("v1"), second)
    ]


async def test_a_revision_that_names_another_argument_is_given_its_values() -> None:
    engine = CountingEngine(arguments_read=frozenset({"granularity"}))
    decider = PolicyDecider(engine)
    await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, video("v1")))

    engine.revision, engine.reads = "r2", PolicyReads(frozenset(), frozenset({"id", "granularity"}))
    await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, video("v1")))
    await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, video("v2")))

    assert [input_["fields"][0]["arguments"]["id"] for input_ in engine.inputs] == [WITHHELD, "v1", "v2"]


async def test_revision_change_invalidates_the_cache() -> None:
    engine = CountingEngine()
    decider = PolicyDecider(engine)
    await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, [VIDEO]))

    engine.revision = "r2"
    await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, [VIDEO]))
    await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, [VIDEO]))

    assert len(engine.inputs) == 2
    assert (decider.cache.hits, decider.cache.misses) == (1, 2)


async def test_every_decision_is_recorded_with_its_cache_outcome() -> None:
    records: list[DecisionRecord] = []
    decider = PolicyDecider(CountingEngine(PRINCIPAL_KEYS), record=records.append)

    await decider.decide(user("u1"), PolicyQuestion(OPERATION, [VIDEO, TIMELINE]))
    await decider.decide(user("u1"), PolicyQuestion(OPERATION, [VIDEO, TIMELINE]))

    assert [(record.cache_hit, record.denied, record.revision, record.path) for record in records] == [
        (False, True, "r1", ENTRYPOINT),
        (True, True, "r1", ENTRYPOINT),
    ]
    assert json.loads(records[0].input) == {
        "principal": {"kind": "user", "id": "u1", "scopes": []},
        "operation": OPERATION,
        "fields": [VIDEO.as_input(), TIMELINE.as_input()],
    }
    assert json.loads(records[0].result) == {
        "fields": {
            "video": {"allow": True, "reason": "Query.video", "owner_only": False},
            "video.shareTimeline": {"allow": False, "reason": "Video.shareTimeline", "owner_only": False},
        },
        "obligations": {"k_threshold": 5},
    }
    assert records[0].decision_id != records[1].decision_id


@pytest.mark.parametrize(
    ("principal", "asker"),
    [
        pytest.param(user("u1"), "u1", id="user"),
        pytest.param(Principal(PrincipalKind.APP, "u1", frozenset({"stats:read"}), app_id="app-1"), "u1", id="app-acting-for-a-user"),
        pytest.param(Principal(PrincipalKind.COMPLIANCE, "auditor-1"), None, id="compliance"),
        pytest.param(ANONYMOUS, None, id="anonymous"),
    ],
)
async def test_a_record_names_the_person_who_asked_and_its_ids_follow_time(principal: Principal, asker: str | None) -> None:
    """The asker is whom an erasure forgets the request of (gateway.store.decision_log); the ids
    are UUIDv7, so each decision logged lands at the right edge of the log's primary key."""
    records: list[DecisionRecord] = []
    decider = PolicyDecider(CountingEngine(), record=records.append)

    for _ in range(50):
        await decider.decide(principal, PolicyQuestion(OPERATION, [VIDEO]))

    assert {record.asker for record in records} == {asker}
    ids = [uuid.UUID(record.decision_id) for record in records]
    assert {decision_id.version for decision_id in ids} == {7}
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_obligations_are_asked_with_no_fields_cached_and_not_recorded() -> None:
    records: list[DecisionRecord] = []
    engine = CountingEngine()
    decider = PolicyDecider(engine, record=records.append)

    first = await decider.obligations(user("u1"))
    second = await decider.obligations(user("u2"))

    assert first == second == {"k_threshold": 5}
    assert [policy_input["fields"] for policy_input in engine.inputs] == [[]]
    assert engine.inputs[0]["principal"] == {"kind": "user", "id": "u1", "scopes": []}
    assert (decider.cache.misses, decider.cache.hits) == (1, 1)
    assert records == []


async def test_incomplete_answer_is_neither_cached_nor_recorded() -> None:
    records: list[DecisionRecord] = []
    engine = CountingEngine(answer_paths=False)
    decider = PolicyDecider(engine, record=records.append)

    for _ in range(2):
        with pytest.raises(PolicyUnavailable, match="no decision for video.shareTimeline"):
            await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, [VIDEO, TIMELINE]))

    assert len(engine.inputs) == 2
    assert records == []
    assert len(decider.cache) == 0


def test_arguments_the_policy_cannot_read_fail_closed() -> None:
    odd = RequestedField(path="video", type="Query", field="video", alias=None, arguments={"id": object()})

    with pytest.raises(PolicyUnavailable, match="cannot be sent to the policy"):
        PolicyQuestion(OPERATION, [odd])


def test_cache_is_a_bounded_lru() -> None:
    cache: DecisionCache[Decision] = DecisionCache(max_entries=2)
    cache.get("r1", "a")
    cache.put("r1", "a", decision("a"))
    cache.put("r1", "b", decision("b"))

    assert cache.get("r1", "a") == decision("a")  # now the most recently used
    cache.put("r1", "c", decision("c"))

    assert len(cache) == 2
    assert cache.get("r1", "b") is None
    assert cache.get("r1", "a") == decision("a")
    assert cache.get("r1", "c") == decision("c")
    assert (cache.hits, cache.misses) == (3, 2)
    assert cache.hit_rate == pytest.approx(3 / 5)


def test_cache_is_bounded_in_bytes_as_well_as_entries() -> None:
    cache: DecisionCache[Decision] = DecisionCache(max_entries=100, max_bytes=100, weigh=lambda key, entry: len(str(key)))
    cache.get("r1", "a" * 40)
    cache.put("r1", "a" * 40, decision("a"))
    cache.put("r1", "b" * 40, decision("b"))
    cache.put("r1", "c" * 40, decision("c"))  # 120 bytes: the least recently used goes

    assert (len(cache), cache.nbytes) == (2, 80)
    assert cache.get("r1", "a" * 40) is None
    cache.put("r1", "d" * 101, decision("d"))  # bigger than the whole cache: not kept, nothing evicted
    assert (len(cache), cache.nbytes) == (2, 80)
    assert cache.get("r1", "b" * 40) == decision("b")


async def test_distinct_large_questions_hold_no_more_than_the_cache_bytes() -> None:
    """A client asking a different 16 KB question each time fills the decision cache up to its
    byte limit, not its entry count (4,096 such entries would hold 64 MB of keys alone)."""
    limit = 1024 * 1024
    engine = CountingEngine()
    decider = PolicyDecider(engine, DecisionCache(4096, limit, weigh=weigh_decision))
    for number in range(400):
        padded = RequestedField(path="video", type="Query", field="video", alias=None, arguments={"id": f"{number:04d}" + "x" * 16_000})
        await decider.decide(ANONYMOUS, PolicyQuestion(OPERATION, [padded]))
        engine.inputs.clear()

    assert decider.cache.nbytes <= limit
    assert 30 <= len(decider.cache) < 64  # each entry weighs its 16 KB key and its parsed answer


def test_cache_drops_a_decision_made_under_a_replaced_revision() -> None:
    cache: DecisionCache[Decision] = DecisionCache()
    cache.get("r1", "a")
    cache.get("r2", "b")  # r2 is now in force

    cache.put("r1", "a", decision("stale"))

    assert cache.get("r2", "a") is None
    assert len(cache) == 0


def app(app_id: str) -> Principal:
    return Principal(PrincipalKind.APP, "u1", frozenset({"stats"}), app_id)


@pytest.mark.parametrize(
    ("keys_read", "engine_calls"),
    [
        pytest.param(PRINCIPAL_KEYS, 2, id="engine-reads-the-principal"),
        pytest.param(frozenset({"app"}), 2, id="engine-reads-the-app"),
        pytest.param(frozenset({"id"}), 1, id="engine-reads-only-the-user"),
        pytest.param(frozenset(), 1, id="engine-ignores-it"),
    ],
)
async def test_an_apps_id_reaches_the_policy_and_the_key_when_the_engine_reads_it(keys_read: frozenset[str], engine_calls: int) -> None:
    engine = CountingEngine(keys_read)
    records: list[DecisionRecord] = []
    decider = PolicyDecider(engine, record=records.append)

    await decider.decide(app("app_a"), PolicyQuestion(OPERATION, [VIDEO]))
    await decider.decide(app("app_b"), PolicyQuestion(OPERATION, [VIDEO]))

    assert [input_["principal"] for input_ in engine.inputs] == [
        {"kind": "app", "id": "u1", "scopes": ["stats"], "app": app_id} for app_id in ["app_a", "app_b"][:engine_calls]
    ]
    assert [json.loads(record.input)["principal"]["app"] for record in records] == ["app_a", "app_b"], "the log names each app"


@pytest.mark.parametrize(
    ("keys_read", "engine_calls"),
    [pytest.param(frozenset({"app"}), 1, id="engine-reads-only-the-app"), pytest.param(PRINCIPAL_KEYS, 2, id="engine-reads-the-user-too")],
)
async def test_a_policy_that_reads_only_the_app_decides_once_for_all_its_users(keys_read: frozenset[str], engine_calls: int) -> None:
    engine = CountingEngine(keys_read)
    decider = PolicyDecider(engine)

    for user_id in ("u1", "u2"):
        await decider.decide(Principal(PrincipalKind.APP, user_id, frozenset({"stats"}), "app_a"), PolicyQuestion(OPERATION, [VIDEO]))

    assert len(engine.inputs) == engine_calls


class GatedEngine(CountingEngine):
    """Answers only once the test opens the gate; one answer fails when `fail` says so."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fail = fail

    async def evaluate(self, policy_input: dict[str, Any]) -> Any:
        answer = await super().evaluate(policy_input)
        await self.gate.wait()
        if self.fail:
            raise PolicyUnavailable("the policy engine is busy")
        return answer


@pytest.mark.parametrize("fail", [pytest.param(False, id="answered"), pytest.param(True, id="failed")])
async def test_concurrent_identical_questions_share_one_evaluation(fail: bool) -> None:
    engine = GatedEngine(fail)
    records: list[DecisionRecord] = []
    decider = PolicyDecider(engine, record=records.append)
    question = PolicyQuestion(OPERATION, [VIDEO, TIMELINE])

    asking = [asyncio.create_task(decider.decide(user(f"u{n}"), question)) for n in range(64)]
    await asyncio.sleep(0)  # a yield, not a wait: every task reaches the engine's gate or joins the one there
    engine.gate.set()
    answers = await asyncio.gather(*asking, return_exceptions=True)

    assert len(engine.inputs) == 1
    if fail:
        assert all(isinstance(answer, PolicyUnavailable) for answer in answers)  # each fails closed
        assert records == []
        assert len(decider.cache) == 0  # nothing kept: the next request asks again
    else:
        assert all(isinstance(answer, Decision) and not answer.fields["video"].owner_only for answer in answers)
        assert len(records) == 64  # every request's decision is logged


async def test_a_waiter_that_gives_up_does_not_cancel_the_others() -> None:
    engine = GatedEngine()
    decider = PolicyDecider(engine)
    question = PolicyQuestion(OPERATION, [VIDEO])
    first = asyncio.create_task(decider.decide(user("u1"), question))
    second = asyncio.create_task(decider.decide(user("u2"), question))
    await asyncio.sleep(0)
    first.cancel()  # its client went away
    engine.gate.set()

    assert isinstance(await second, Decision)
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_warming_decides_recent_questions_under_the_coming_revision() -> None:
    engine = CountingEngine()
    decider = PolicyDecider(engine)
    questions = [PolicyQuestion({**OPERATION, "name": f"Q{n}"}, [VIDEO]) for n in range(3)]
    for question in questions:
        await decider.decide(user("u1"), question)
    assert len(engine.inputs) == 3

    warmed = await decider.warm("r2", PolicyReads(frozenset(), None), engine.evaluate)
    engine.revision = "r2"
    for question in questions:
        await decider.decide(user("u1"), question)

    assert warmed == 3
    assert len(engine.inputs) == 6  # three when asked, three while warming, none after the switch
