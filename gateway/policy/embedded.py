"""The default policy engine: the policy directory's Rego, evaluated by regopy in worker processes.

The policy is read once into a bundle (entrypoint `data.gateway.authz.decision`) that a pool
of worker processes evaluates, one request at a time each, the least loaded taking the next;
regopy never runs in the gateway's own process, so when it crashes the request gets
POLICY_UNAVAILABLE and a fresh worker takes that one's place.

Reloads are atomic: a new revision goes live only after the arguments its data lists are
borne out by its modules (gateway.policy.reads), its own `*_test.rego` pass, its bundle builds
and it answers a probe request for every principal kind, alike with the unlisted arguments
withheld. Otherwise the last good revision stays in force and `last_error` says why (never
fail open).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.auth import PrincipalKind
from gateway.errors import PolicyUnavailable
from gateway.policy.decision import ENTRYPOINT, Warmer, parse_decision
from gateway.policy.reads import READS_EVERYTHING, PolicyReads, arguments_refusal, policy_reads, withhold_arguments
from gateway.policy.testing import run_tests
from gateway.policy.worker import (
    DATA_FILE,
    PolicyFiles,
    PolicyFilesError,
    RegoWorker,
    WorkerBusy,
    WorkerClosed,
    WorkerError,
    WorkerTimeout,
)

__all__ = ["EmbeddedEngine"]

logger = logging.getLogger("gateway.policy")

# A probe asks about these fields for every principal kind; any well-formed answer will do.
PROBE_FIELDS: list[dict[str, Any]] = [
    {"path": "__typename", "coordinate": "Query.__typename", "type": "Query", "field": "__typename", "alias": None, "arguments": {}},
    {"path": "video", "coordinate": "Query.video", "type": "Query", "field": "video", "alias": None, "arguments": {"id": "probe"}},
    {
        "path": "video.shareTimeline",
        "coordinate": "Video.shareTimeline",
        "type": "Video",
        "field": "shareTimeline",
        "alias": None,
        "arguments": {"granularity": "DAY", "from": None, "to": None},
    },
    {"path": "__schema.types.name", "coordinate": "__Type.name", "type": "__Type", "field": "name", "alias": None, "arguments": {}},
]


WORKER_DOES_NOT_START = "the policy engine worker does not start"


class _Slot:
    """One worker serving a revision, replaced when it dies."""

    def __init__(self, files: PolicyFiles, worker: RegoWorker, start_timeout: float, restarted: Callable[[], None]) -> None:
        self.files = files
        self._worker = worker
        self._start_timeout = start_timeout
        self._restarted = restarted
        self._restart: asyncio.Task[RegoWorker] | None = None
        self.closing = False
        # Why the last restart failed; None while a worker serves (or the last restart worked).
        self.failure: str | None = None

    async def worker(self) -> RegoWorker:
        """The live worker, waiting (at most the start timeout) for a restart when the last one died."""
        if self.closing:
            raise WorkerClosed("this revision has been retired")
        if self._worker.alive:
            return self._worker
        restart = self.restart()
        try:
            async with asyncio.timeout(self._start_timeout):
                worker = await asyncio.shield(restart)
        except TimeoutError as exc:
            raise PolicyUnavailable("the policy engine is restarting") from exc
        except Exception as exc:  # WorkerError, or the process could not be spawned at all (OSError)
            raise PolicyUnavailable(f"the policy engine does not restart: {exc}") from exc
        return worker

    @property
    def pid(self) -> int:
        return self._worker.pid

    @property
    def live(self) -> bool:
        return self._worker.alive

    @property
    def load(self) -> int:
        """Requests at this worker, answered or waiting for their turn."""
        return self._worker.load

    def restart(self) -> asyncio.Task[RegoWorker]:
        """Starts a fresh worker for this revision unless one is starting already."""
        if self._restart is None and not self.closing:
            self._restart = asyncio.create_task(self._start())
            # Its failure is reported to whoever waits for it; nobody may, after an eager restart.
            self._restart.add_done_callback(lambda task: task.cancelled() or task.exception())
        if self._restart is None:
            raise WorkerClosed("this revision has been retired")
        return self._restart

    async def _start(self) -> RegoWorker:
        try:
            await self._worker.close()
            worker = await RegoWorker.start(self.files.modules, self.files.data, entrypoints=[ENTRYPOINT], timeout=self._start_timeout)
        except Exception as exc:
            self.failure = f"{WORKER_DOES_NOT_START}: {exc}"
            logger.error("%s", self.failure)
            raise
        finally:
            self._restart = None
        self._worker, self.failure = worker, None
        self._restarted()
        logger.info("policy engine restarted (worker %d) for policy %s", worker.pid, self.files.revision[:12])
        return worker

    async def close(self) -> None:
        self.closing = True
        if self._restart is not None and not self._restart.done():
            self._restart.cancel()
            with contextlib.suppress(asyncio.CancelledError, WorkerError):
                await self._restart
        await self._worker.close()


class _Served:
    """The revision in force and the pool of workers that serve it: each request goes to the
    least loaded live worker, so one slow decision holds up only the requests behind it."""

    def __init__(self, files: PolicyFiles, workers: list[RegoWorker], start_timeout: float, restarted: Callable[[], None]) -> None:
        self.files = files
        self.slots = [_Slot(files, worker, start_timeout, restarted) for worker in workers]

    @property
    def closing(self) -> bool:
        return self.slots[0].closing

    @property
    def failure(self) -> str | None:
        """Why no worker can serve: set only when every worker is dead and the last restart of
        each failed (one live worker serves, slower)."""
        failures = [slot.failure for slot in self.slots]
        return failures[0] if all(failures) else None

    @property
    def pids(self) -> list[int]:
        """The workers' processes, those that serve first."""
        return [slot.pid for slot in sorted(self.slots, key=lambda slot: not slot.live)]

    async def pick(self) -> tuple[_Slot, RegoWorker]:
        """The least loaded live worker (the first on a tie); dead ones are restarted meanwhile,
        and when none lives the request waits for the first slot's restart."""
        live = []
        for slot in self.slots:
            if slot.live:
                live.append(slot)
            else:
                with contextlib.suppress(WorkerClosed):
                    slot.restart()
        slot = min(live, key=lambda slot: slot.load) if live else self.slots[0]
        return slot, await slot.worker()

    async def revive(self) -> None:
        """Replaces every dead worker, waiting for each (what readiness asks)."""
        for slot in self.slots:
            if not slot.live:
                with contextlib.suppress(PolicyUnavailable, WorkerError):
                    await slot.worker()

    async def close(self) -> None:
        for slot in self.slots:
            await slot.close()


class EmbeddedEngine:
    """PolicyEngine over the Rego in `policy_dir`, run by regopy in a pool of worker processes.

    Args:
        policy_dir: the directory of `*.rego`, `*_test.rego` and `data.json`.
        timeout: seconds one evaluation may take; past it, PolicyUnavailable (and the worker
            is replaced).
        queue_timeout: seconds a request may wait for its turn at a worker (others' questions
            being decided: at a cold start every distinct question is new); past it,
            PolicyUnavailable. Default: `timeout`.
        start_timeout: seconds a worker may take to start and load the bundle; a request
            waits at most this long for a worker that is restarting.
        workers: worker processes serving the policy in force (each loads the bundle).
        test_timeout: seconds each policy test may take during a reload.
        poll_interval: seconds between checks of the directory for changes (`start()`).
    """

    def __init__(
        self,
        policy_dir: Path,
        *,
        timeout: float = 0.25,
        start_timeout: float = 10.0,
        test_timeout: float = 10.0,
        poll_interval: float = 1.0,
        workers: int = 2,
        queue_timeout: float | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("the policy engine needs at least one worker")
        self.policy_dir = policy_dir
        self.workers = workers
        self.timeout = timeout
        self.queue_timeout = timeout if queue_timeout is None else queue_timeout
        self.start_timeout = start_timeout
        self.test_timeout = test_timeout
        self.poll_interval = poll_interval
        # Why the last reload did not go live; None once a revision is in force and unchallenged.
        self.last_error: str | None = None
        # The same, as the vetting found it ("it does not parse: …"), without what stays in force.
        self.rejection: str | None = None
        # Run with each new revision's worker before the revision serves (the decider warms its cache).
        self.before_serving: list[Warmer] = []
        self.timeouts = 0
        self.restarts = 0
        self._served: _Served | None = None
        self._rejected_revision: str | None = None
        self._reload_lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._reads: tuple[str, PolicyReads] | None = None  # (revision, answer), read on every decision

    @property
    def revision(self) -> str:
        """The revision in force (a sha256 of the policy files), or "" when none is."""
        return self._served.files.revision if self._served is not None else ""

    @property
    def files(self) -> PolicyFiles | None:
        """The policy files in force (None when none is), as read when they were vetted: what is on
        disk may be an edit that was refused."""
        return self._served.files if self._served is not None else None

    @property
    def ready(self) -> bool:
        """A policy is in force and a worker serves it (or the last one died and the next has not
        failed to start)."""
        return self._served is not None and self._served.failure is None

    @property
    def reads(self) -> PolicyReads:
        """What of the input the policy in force may read, from its modules (gateway.policy.reads)."""
        if self._served is None:
            return READS_EVERYTHING
        files = self._served.files
        if self._reads is None or self._reads[0] != files.revision:
            self._reads = (files.revision, policy_reads(files))
        return self._reads[1]

    async def check(self) -> None:
        """Replaces a worker found dead (rather than at the next decision), so that readiness says
        whether one can serve; `last_error` says why not."""
        served = self._served
        if served is None:
            return
        await served.revive()
        if served.failure is not None:
            self.last_error = served.failure
        elif self.last_error is not None and self.last_error.startswith(WORKER_DOES_NOT_START):
            self.last_error = None

    @property
    def worker_pid(self) -> int | None:
        """A process evaluating the policy in force, a live one if any (diagnostics: a worker is
        restarted when it dies)."""
        return self._served.pids[0] if self._served is not None else None

    @property
    def worker_pids(self) -> list[int]:
        """Every worker process of the policy in force, live ones first."""
        return self._served.pids if self._served is not None else []

    def _restarted(self) -> None:
        self.restarts += 1

    async def start(self) -> None:
        """Loads the policy and starts watching the directory; a policy that does not load leaves
        the engine unready (every evaluation fails closed) until a good one is written."""
        seen = await asyncio.to_thread(self._fingerprint)
        await self.reload()
        self._watcher = asyncio.create_task(self._watch(seen))

    async def reload(self) -> bool:
        """Reads the directory again; returns whether a new revision went live."""
        async with self._reload_lock:
            try:
                files = await asyncio.to_thread(PolicyFiles.read, self.policy_dir)
            except (PolicyFilesError, OSError, UnicodeDecodeError) as exc:
                self._reject(None, f"it cannot be read: {exc}")
                return False
            if files.revision == self.revision:
                self.last_error = self.rejection = None
                self._rejected_revision = None
                return False
            if files.revision == self._rejected_revision:
                return False
            why = await self._vet(files)
            if isinstance(why, str):
                self._reject(files.revision, why)
                return False
            await self._warm(files, why[0])
            previous, self._served = self._served, _Served(files, why, self.start_timeout, self._restarted)
            self.last_error = self.rejection = None
            self._rejected_revision = None
            logger.info("policy %s in force (%d modules, %d tests)", files.revision[:12], len(files.modules), len(files.tests))
            if previous is not None:
                await previous.close()
            return True

    async def _vet(self, files: PolicyFiles) -> list[RegoWorker] | str:
        """The workers that will serve the new revision, or why the revision may not go live."""
        refusal = arguments_refusal(files)
        if refusal is not None:
            return refusal
        run = await run_tests(files, timeout=self.test_timeout)
        if run.load_error is not None:
            return f"it does not parse: {run.load_error}"
        if run.failures:
            failed = "; ".join(f"{result.test.name} ({result.reason})" for result in run.failures[:5])
            return f"{len(run.failures)} of {len(run.results)} policy tests fail: {failed}"
        try:
            worker = await RegoWorker.start(files.modules, files.data, entrypoints=[ENTRYPOINT], timeout=self.start_timeout)
        except WorkerError as exc:
            return f"it does not load: {exc}"
        given = policy_reads(files).arguments
        try:
            for kind in PrincipalKind:
                probe = _probe_input(kind)
                decision = await self._evaluate_on(worker, probe, self.start_timeout)
                parse_decision(decision, [field["path"] for field in PROBE_FIELDS])
                # Withholding what it does not list must not change a decision (gateway.policy.reads).
                withheld = withhold_arguments(probe["fields"], given)
                if withheld != probe["fields"] and await self._evaluate_on(worker, {**probe, "fields": withheld}, self.start_timeout) != decision:
                    await worker.close()
                    return (
                        "it decides a probe request otherwise when the arguments data.json access.arguments does not list are "
                        "withheld: a module reaches an argument's value in a way the gateway cannot see (read it as "
                        "`requested.arguments.<name>` and list it)"
                    )
        except (PolicyUnavailable, WorkerError) as exc:
            await worker.close()
            return f"it fails a probe request: {exc}"
        others = await asyncio.gather(
            *(RegoWorker.start(files.modules, files.data, entrypoints=[ENTRYPOINT], timeout=self.start_timeout) for _ in range(self.workers - 1)),
            return_exceptions=True,
        )
        started = [worker, *(other for other in others if isinstance(other, RegoWorker))]
        refused = [other for other in others if isinstance(other, BaseException)]
        if refused:
            for each in started:
                await each.close()
            return f"its workers do not start: {refused[0]}"
        return started

    async def _warm(self, files: PolicyFiles, worker: RegoWorker) -> None:
        """Lets each warmer decide under the new revision, on its worker, before it serves. A
        warmer that fails costs only its warmth: the revision goes live all the same."""
        reads = policy_reads(files)
        for warm in self.before_serving:
            try:
                await warm(files.revision, reads, functools.partial(self._evaluate_on, worker, timeout=self.timeout))
            except Exception:
                logger.exception("warming policy %s failed; its decisions are made when asked", files.revision[:12])

    def _reject(self, revision: str | None, why: str) -> None:
        self._rejected_revision = revision
        self.rejection = why
        rejected = f"policy {revision[:12]}" if revision else "the policy directory"
        kept = f"policy {self.revision[:12]} stays in force" if self.revision else "no policy is in force"
        self.last_error = f"{rejected} was rejected, {why}; {kept}"
        logger.error("%s", self.last_error)

    async def evaluate(self, policy_input: dict[str, Any]) -> Any:
        # A request retried on another worker (its own died before its turn) is retried at most
        # once per worker: it fails closed rather than chasing workers that keep dying.
        for _ in range(self.workers + 1):
            served = self._served
            if served is None:
                raise PolicyUnavailable(f"no policy is in force: {self.last_error or 'the engine has not started'}")
            try:
                slot, worker = await served.pick()
                return await self._evaluate_on(worker, policy_input, self.timeout, self.queue_timeout)
            except WorkerClosed:
                # A reload retired the worker, or another request's crash or overrun ended it, while
                # this one waited for its turn: ask again (a fresh or another worker).
                if self._served is served and served.closing:
                    raise PolicyUnavailable("the policy engine is shutting down") from None
            except WorkerBusy as exc:
                raise PolicyUnavailable(str(exc)) from exc
            except WorkerError as exc:
                if isinstance(exc, WorkerTimeout):
                    self.timeouts += 1
                logger.error("policy engine failed (%s); starting a fresh one", exc)
                with contextlib.suppress(WorkerClosed):
                    slot.restart()
                raise PolicyUnavailable(str(exc)) from exc
        raise PolicyUnavailable("the policy engine's workers keep failing")

    @staticmethod
    async def _evaluate_on(worker: RegoWorker, policy_input: dict[str, Any], timeout: float, wait: float | None = None) -> Any:
        reply = await worker.request({"op": "evaluate", "input": policy_input}, timeout, wait)
        if not reply.get("ok"):
            raise PolicyUnavailable(f"the policy erred: {reply.get('error')}")
        if reply.get("undefined"):
            raise PolicyUnavailable("the policy gave no decision: data.gateway.authz.decision is undefined")
        return reply["value"]

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        async with self._reload_lock:
            if self._served is not None:
                await self._served.close()
                self._served = None

    async def _watch(self, seen: tuple[tuple[str, int, int], ...]) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                # Reading the directory can fail (out of file descriptors, a permission, a directory
                # swapped mid-scan): the watcher must outlive it and look again at the next poll.
                current = await asyncio.to_thread(self._fingerprint)
                if current == seen:
                    continue
                seen = current
                await self.reload()
            except Exception:
                logger.exception("policy reload failed; the policy in force stays")

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """Names, modification times and sizes of the policy files: a change means "read again"."""
        if not self.policy_dir.is_dir():
            return ()
        paths = [*self.policy_dir.rglob("*.rego"), self.policy_dir / DATA_FILE]
        entries = []
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                entries.append((path.as_posix(), stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(entries))


def _probe_input(kind: PrincipalKind) -> dict[str, Any]:
    return {
        "principal": {"kind": kind.value, "id": f"probe-{kind.value}", "scopes": []},
        "operation": {"name": "Probe", "type": "query", "hash": "probe"},
        "fields": PROBE_FIELDS,
    }
