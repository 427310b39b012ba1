"""Red team (found while red-teaming issue 14): a policy worker left one answer behind.

`RegoWorker._exchange` writes a question and then reads its answer. Its own timeout kills the
worker (the pipe is out of step after it), but a cancellation from outside the exchange, such as
the decider's warming running out of its 5 s (`asyncio.timeout(WARMING_SECONDS)` around a series
of `_evaluate_on`), or any caller's own deadline, is a CancelledError: it is neither the exchange's
TimeoutError nor an Exception, so the worker is not marked dead, its lock is released, and the
answer to the cancelled question stays in the pipe. The next question on that worker reads it: one
principal is decided with another's verdicts and obligations, and every later question with its
predecessor's, until the worker is replaced.

Seen on a real `gateway serve` during a reload under load: the log said "policy 7deca2189a95:
warmed 180 of 256 recent decisions ()", then an anonymous request's logged result read "Query.video
is allowed for app", "Video.audience is allowed for app on their own data only", and its answer
carried the app's terms (k 50, budgetLeft 10.0); the requests after it failed with "the policy gave
no decision" until the next revision replaced the workers.

Fixed: a cancelled exchange ends its worker, and answers carry the number of their question."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.policy.decision import ENTRYPOINT
from gateway.policy.embedded import _Slot
from gateway.policy.worker import PolicyFiles, RegoWorker, WorkerGone

POLICIES = Path(__file__).parents[2] / "policies"
OPERATION = {"name": "Q", "type": "query", "hash": "0" * 64}


def question(principal: dict[str, Any], coordinate: str) -> dict[str, Any]:
    type_name, field_name = coordinate.split(".")
    requested = {"path": "video", "coordinate": coordinate, "type": type_name, "field": field_name, "alias": None, "arguments": {"id": "v1"}}
    return {"principal": principal, "operation": OPERATION, "fields": [requested]}


async def test_a_question_asked_after_a_cancelled_one_gets_its_own_answer() -> None:
    files = PolicyFiles.read(POLICIES)
    worker = await RegoWorker.start(files.modules, files.data, entrypoints=[ENTRYPOINT], timeout=60)
    slot = _Slot(files, worker, 60, lambda: None)
    try:
        app = {"kind": "app", "id": "u1", "scopes": ["insights"], "app": "app_1"}
        anonymous = {"kind": "anonymous", "id": None, "scopes": []}
        # The caller gives up while the worker is deciding (as warming does when its time is up).
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await worker.request({"op": "evaluate", "input": question(app, "Query.video")}, timeout=60)

        with pytest.raises(WorkerGone):  # that worker answers no more: its pipe holds the app's answer
            await worker.request({"op": "evaluate", "input": question(anonymous, "Query.video")}, timeout=60)
        replacement = await slot.worker()
        reply = await replacement.request({"op": "evaluate", "input": question(anonymous, "Query.video")}, timeout=60)

        assert replacement.pid != worker.pid
        reason = str(reply)
        assert "for anonymous" in reason and "for app" not in reason, f"the anonymous question got another's answer: {reason[:300]}"
    finally:
        await slot.close()
