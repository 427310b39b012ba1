"""A stand-in for an OPA server, for testing the gateway's OPA-server engine over real HTTP.

No OPA binary can be installed on our machines, so the tests cannot start `opa run --server`
(test_golden.py does when `opa` is on PATH). This is the next best thing: a small HTTP server
on 127.0.0.1 (Starlette under uvicorn, in a thread of the test process) that speaks the part
of OPA's documented REST API the gateway uses:

    POST /v1/data/{path}   body {"input": …}  →  200 {"result": …}, or 200 {} when the document
                           is undefined; 400 {"code": "invalid_parameter", …} on a bad body;
                           500 {"code": "internal_error", …} when evaluation fails
    GET  /health           →  200 {}

and evaluates the very Rego of `policies/` with regopy, in a worker process (regopy can crash
its process; `gateway.policy.worker.RegoWorker` keeps that out of this one). Only the paths it
was built for (by default the gateway's entrypoint) can be asked; others are answered 500.

Knobs for tests, read on every request: `delay` (seconds before answering, to outlast the
gateway's timeout) and `mode` (answer 500, leave a requested path out of the decision, or
answer as if the policy were not loaded). `received` lists what was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.policy.decision import ENTRYPOINT
from gateway.policy.worker import PolicyFiles, RegoWorker, WorkerError

__all__ = ["Mode", "OpaStandin", "Received"]

START_TIMEOUT = 15.0
EVALUATION_TIMEOUT = 5.0
# An evaluation without "input": `input` is undefined, as in OPA.
_NO_INPUT = object()


class Mode(enum.Enum):
    DECIDE = "decide"  # evaluate the policy, as OPA does
    FAIL = "fail"  # answer 500, as OPA does when evaluation errs
    DROP_PATH = "drop-path"  # evaluate, then leave the last requested field's path out of `fields`
    UNDEFINED = "undefined"  # answer {}, as OPA does for a document the policy does not define


@dataclass(frozen=True)
class Received:
    path: str
    body: Any


class OpaStandin:
    """`with OpaStandin(policy_dir) as opa:` serves on `opa.url` until the block ends.

    Args:
        policy_dir: a directory of `*.rego` and `data.json`, read once at start.
        entrypoints: the Data API paths it can evaluate.
    """

    def __init__(self, policy_dir: Path, entrypoints: tuple[str, ...] = (ENTRYPOINT,)) -> None:
        self.policy_dir = policy_dir
        self.entrypoints = entrypoints
        self.delay = 0.0
        self.mode = Mode.DECIDE
        self.received: list[Received] = []
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def reset(self) -> None:
        self.delay, self.mode = 0.0, Mode.DECIDE
        self.received.clear()

    def __enter__(self) -> OpaStandin:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        host, port = listener.getsockname()
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(
            self._app(),
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [listener]}, name="opa-standin", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"the OPA stand-in did not start serving {self.policy_dir}")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def _app(self) -> Starlette:
        files = PolicyFiles.read(self.policy_dir)
        evaluator = _Evaluator(files, list(self.entrypoints))

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            await evaluator.start()
            try:
                yield
            finally:
                await evaluator.close()

        async def data(request: Request) -> Response:
            path = request.path_params["path"].strip("/")
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError as exc:
                return _opa_error(400, "invalid_parameter", f"body contains malformed input document: {exc}")
            if not isinstance(body, dict):
                return _opa_error(400, "invalid_parameter", "body must be an object")
            self.received.append(Received(path, body))
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.mode is Mode.FAIL:
                return _opa_error(500, "internal_error", "the stand-in was told to fail")
            if self.mode is Mode.UNDEFINED:
                return JSONResponse({})
            if path not in self.entrypoints:
                return _opa_error(500, "internal_error", f"the stand-in evaluates only {', '.join(self.entrypoints)}")
            try:
                reply = await evaluator.evaluate(path, body.get("input", _NO_INPUT))
            except WorkerError as exc:
                return _opa_error(500, "internal_error", str(exc))
            if not reply.get("ok"):
                return _opa_error(500, "internal_error", str(reply.get("error")))
            if reply.get("undefined"):
                return JSONResponse({})
            result = reply["value"]
            if self.mode is Mode.DROP_PATH:
                requested = body.get("input", {}).get("fields", [])
                if requested:
                    result["fields"].pop(requested[-1]["path"], None)
            return JSONResponse({"result": result})

        async def health(request: Request) -> Response:
            return JSONResponse({})

        return Starlette(
            routes=[Route("/v1/data/{path:path}", data, methods=["POST"]), Route("/health", health, methods=["GET"])],
            lifespan=lifespan,
        )


class _Evaluator:
    """The worker processes that run the Rego: one for requests with an input, one for requests
    without (a worker keeps the last input it was given). A fresh one replaces one that died."""

    def __init__(self, files: PolicyFiles, entrypoints: list[str]) -> None:
        self._files, self._entrypoints = files, entrypoints
        self._workers: dict[bool, RegoWorker] = {}
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._workers[True] = await self._spawn()

    async def evaluate(self, path: str, policy_input: Any) -> dict[str, Any]:
        with_input = policy_input is not _NO_INPUT
        async with self._lock:
            worker = self._workers.get(with_input)
            if worker is None or not worker.alive:
                if worker is not None:
                    await worker.close()
                worker = self._workers[with_input] = await self._spawn()
            request: dict[str, Any] = {"op": "evaluate", "entrypoint": path}
            if with_input:
                request["input"] = policy_input
            return await worker.request(request, EVALUATION_TIMEOUT)

    async def close(self) -> None:
        for worker in self._workers.values():
            await worker.close()

    async def _spawn(self) -> RegoWorker:
        return await RegoWorker.start(self._files.modules, self._files.data, entrypoints=self._entrypoints, timeout=START_TIMEOUT)


def _opa_error(status_code: int, code: str, message: str) -> Response:
    return JSONResponse({"code": code, "message": message}, status_code=status_code)

