"""A stand-in for an OPA server, for testing the gateway's OPA-server engine over real HTTP.

It stands in for the `opa run --server` binary, which cannot be installed on our machines, not for
OPA's evaluation: the policy is evaluated by real OPA (v1.20.2, through opa-golib-python-bindings;
see real_opa.py). Around it, a small HTTP server on 127.0.0.1 (Starlette under uvicorn, in a thread
of the test process) speaks the part of OPA's documented REST API the gateway uses:

    POST /v1/data/{path}   body {"input": …}  →  200 {"result": …}, or 200 {} when the document
                           is undefined; 400 {"code": "invalid_parameter", …} on a bad body;
                           500 {"code": "internal_error", …} when evaluation fails
    GET  /health           →  200 {}

It serves what the `opa` service of compose.yaml serves: the modules of the policy directory and
its data.json, read once at start, tests left out. Without real OPA (its install failed) it does
not start: the tests that use it skip, saying why.

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

from gateway.policy.worker import PolicyFiles

from .real_opa import EvaluationError, RealOpa, Undefined

__all__ = ["Mode", "OpaStandin", "Received"]

START_TIMEOUT = 15.0


class Mode(enum.Enum):
    DECIDE = "decide"  # evaluate the policy
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
    """

    def __init__(self, policy_dir: Path) -> None:
        self.policy_dir = policy_dir
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
        app = self._app()  # first: without real OPA this skips, before a socket is open
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        host, port = listener.getsockname()
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(
            app,
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
        opa = RealOpa(PolicyFiles.read(self.policy_dir))

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            try:
                yield
            finally:
                opa.close()

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
            try:
                # Off the event loop, so that /health answers while OPA evaluates.
                result = await asyncio.to_thread(opa.document, path, body.get("input"))
            except Undefined:
                return JSONResponse({})
            except EvaluationError as exc:
                return _opa_error(500, "internal_error", str(exc))
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


def _opa_error(status_code: int, code: str, message: str) -> Response:
    return JSONResponse({"code": code, "message": message}, status_code=status_code)

