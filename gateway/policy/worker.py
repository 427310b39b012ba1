"""The process that runs Rego, and the pipe that reaches it.

regopy 1.5.2 can take its process down (`with input as {…}` aborts it, some
mistakes in a module segfault it), so Rego never runs in the gateway's own
process: `python -m gateway.policy.worker`
loads a policy and answers requests over its standard input and output. Each
frame is a 4-byte big-endian length and a JSON object:

    → {"op": "load", "modules": {"gateway/authz.rego": "…"}, "data": "{…}", "entrypoints": ["gateway/authz/decision"]}
    ← {"ok": true}                       or {"ok": false, "error": "gateway/authz.rego:12:3: …"}
    → {"op": "evaluate", "input": {…}, "entrypoint": "gateway/authz/decision"}
    ← {"ok": true, "value": …}           or {"ok": true, "undefined": true} or {"ok": false, "error": "…"}

The modules are built once into a bundle with the entrypoints (the first is the default);
an evaluation without "input" leaves `input` undefined, as a policy test expects.

`RegoWorker` is the gateway's side: one process, one request at a time. A crash
or an overrun surfaces as `WorkerCrashed` / `WorkerTimeout` (the caller starts a
fresh worker), a queue too long as `WorkerBusy`; never as a dead caller.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import os
import re
import signal
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "PolicyFiles",
    "PolicyFilesError",
    "RegoWorker",
    "WorkerBusy",
    "WorkerClosed",
    "WorkerCrashed",
    "WorkerError",
    "WorkerGone",
    "WorkerLoadError",
    "WorkerTimeout",
]

logger = logging.getLogger("gateway.policy")

HEADER = struct.Struct(">I")
DATA_FILE = "data.json"
TEST_SUFFIX = "_test.rego"


class PolicyFilesError(Exception):
    """The policy directory cannot be read as a policy (missing, or data.json is not JSON)."""


@dataclass(frozen=True)
class PolicyFiles:
    """One consistent read of a policy directory: what a worker loads, named by its revision."""

    directory: Path
    modules: dict[str, str]  # relative path → source, *.rego that are not tests
    tests: dict[str, str]  # relative path → source, *_test.rego
    data: str  # the text of data.json ("{}" when there is none)
    revision: str  # sha256 of every file's path and content

    @classmethod
    def read(cls, directory: Path) -> PolicyFiles:
        if not directory.is_dir():
            raise PolicyFilesError(f"{directory} is not a directory")
        modules: dict[str, str] = {}
        tests: dict[str, str] = {}
        digest = hashlib.sha256()
        for path in sorted(directory.rglob("*.rego")):
            name = path.relative_to(directory).as_posix()
            source = path.read_text(encoding="utf-8")
            (tests if name.endswith(TEST_SUFFIX) else modules)[name] = source
            digest.update(f"{name}\0{len(source)}\0".encode() + source.encode())
        data_path = directory / DATA_FILE
        data = data_path.read_text(encoding="utf-8") if data_path.is_file() else "{}"
        try:
            parsed = json.loads(data)
        except json.JSONDecodeError as exc:
            raise PolicyFilesError(f"{DATA_FILE}:{exc.lineno}:{exc.colno}: {exc.msg}") from exc
        except (ValueError, RecursionError) as exc:  # an integer of thousands of digits; nesting past the recursion limit
            raise PolicyFilesError(f"{DATA_FILE} cannot be read: {exc}") from exc
        if not isinstance(parsed, dict):
            raise PolicyFilesError(f"{DATA_FILE} must hold a JSON object")
        digest.update(f"{DATA_FILE}\0{len(data)}\0".encode() + data.encode())
        return cls(directory, modules, tests, data, digest.hexdigest())

    def data_document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.data)
        return document


# --- the gateway's side -------------------------------------------------------------------------


class WorkerError(Exception):
    """The worker could not answer."""


class WorkerLoadError(WorkerError):
    """The policy did not load: a module does not parse, or the bundle does not build."""


class WorkerCrashed(WorkerError):
    """The worker process died (or was never reachable) while answering."""


class WorkerTimeout(WorkerError):
    """The worker did not answer in time; it has been killed."""


class WorkerBusy(WorkerError):
    """The request's turn did not come in time; the worker is fine, only busy."""


class WorkerClosed(WorkerError):
    """The worker was closed (retired by a reload, or at shutdown)."""


class WorkerGone(WorkerClosed):
    """The worker died (another request crashed or overran it) while this request waited for its
    turn: this request was never evaluated, and another worker may take it."""


class RegoWorker:
    """One worker process loaded with one policy. Requests are answered one at a time, in order."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._lock = asyncio.Lock()
        self._dead: str | None = None  # why it cannot answer any more
        self._closed = False
        self._requests = 0  # in flight or waiting for their turn
        self._asked = 0  # numbers each question; the worker echoes it with the answer
        # The last lines the worker wrote to stderr: what rego-cpp said before it aborted.
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=3)
        self._stderr_drained = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def start(cls, modules: dict[str, str], data: str, *, entrypoints: list[str], timeout: float) -> RegoWorker:
        """Spawns a worker and builds the modules' bundle; raises WorkerLoadError when they do not parse or build."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.policy.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        worker = cls(process)
        try:
            reply = await worker.request({"op": "load", "modules": modules, "data": data, "entrypoints": entrypoints}, timeout)
        except BaseException:
            await worker.close()
            raise
        if not reply.get("ok"):
            await worker.close()
            raise WorkerLoadError(str(reply.get("error")))
        return worker

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def load(self) -> int:
        """Requests being answered or waiting for their turn."""
        return self._requests

    @property
    def alive(self) -> bool:
        """Neither found dead by a request nor seen to end by the event loop."""
        return self._dead is None and self._process.returncode is None

    async def request(self, message: dict[str, Any], timeout: float, wait: float | None = None) -> dict[str, Any]:
        """Sends one request and returns its answer. The request waits at most `wait` seconds
        (default: `timeout`) for its turn (WorkerBusy), then the worker has `timeout` seconds to
        answer (WorkerTimeout)."""
        wait = timeout if wait is None else wait
        self._requests += 1
        try:
            try:
                async with asyncio.timeout(wait):
                    await self._lock.acquire()
            except TimeoutError as exc:
                raise WorkerBusy(f"the policy engine is busy: no turn within {wait * 1000:.0f} ms") from exc
            try:
                return await self._exchange(message, timeout)
            finally:
                self._lock.release()
        finally:
            self._requests -= 1

    async def _exchange(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self._closed:
            raise WorkerClosed("the policy engine worker was closed")
        if self._dead is not None:
            raise WorkerGone(self._dead)
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        self._asked += 1
        asked = self._asked
        body = json.dumps({**message, "seq": asked}, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            async with asyncio.timeout(timeout):
                stdin.write(HEADER.pack(len(body)) + body)
                await stdin.drain()
                (size,) = HEADER.unpack(await stdout.readexactly(HEADER.size))
                reply: dict[str, Any] = json.loads(await stdout.readexactly(size))
        except TimeoutError as exc:
            self._dead = f"the policy engine gave no answer within {timeout * 1000:.0f} ms"
            self._kill()
            raise WorkerTimeout(self._dead) from exc
        except asyncio.CancelledError:
            # The caller gave up mid-exchange (a request's or warming's deadline): the answer may
            # still come, and the next question would read it as its own. This worker asks no more.
            self._dead = "a question to it was cancelled mid-answer"
            self._kill()
            raise
        except Exception as exc:
            # The pipe broke (ConnectionError; uvloop raises RuntimeError writing to a closed one), the
            # worker ended mid-answer (IncompleteReadError) or wrote something that is not a frame
            # (ValueError): whatever it was, this worker answers no more, and a fresh one takes over.
            self._dead = await self._cause_of_death()
            raise WorkerCrashed(self._dead) from exc
        if reply.pop("seq", None) != asked:
            # Never another question's answer: one principal decided with another's verdicts.
            self._dead = f"the policy engine answered out of turn (expected answer {asked})"
            self._kill()
            raise WorkerCrashed(self._dead)
        return reply

    async def _cause_of_death(self) -> str:
        """How the process ended, with the last thing it said (rego-cpp's message when it aborts)."""
        try:
            async with asyncio.timeout(1.0):
                returncode = await self._process.wait()
        except TimeoutError:
            self._kill()
            returncode = await self._process.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await asyncio.shield(self._stderr_drained)
        said = f": {self._stderr_tail[-1]}" if self._stderr_tail else ""
        return describe_exit(returncode) + said

    async def close(self) -> None:
        """Lets a request in flight finish, then ends the process: closing its input lets it exit."""
        async with self._lock:
            self._closed = True
            self._dead = self._dead or "closed"
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                async with asyncio.timeout(1.0):
                    await self._process.wait()
            except TimeoutError:
                self._kill()
                await self._process.wait()
            await self._stderr_drained

    async def _drain_stderr(self) -> None:
        stderr = self._process.stderr
        assert stderr is not None
        while line := await stderr.readline():
            text = line.decode(errors="replace").strip()
            if text:
                self._stderr_tail.append(text)
                logger.debug("policy worker %d: %s", self._process.pid, text)

    def _kill(self) -> None:
        if self._process.returncode is None:
            self._process.kill()


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"the policy engine crashed ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"the policy engine crashed (signal {-returncode})"
    return f"the policy engine exited with status {returncode}"


# --- the worker's side --------------------------------------------------------------------------

_NO_INPUT = object()

# regopy node kinds (regopy.NodeKind), as the C API returns them.
_UNDEFINED, _ERROR, _ERROR_MESSAGE, _ERROR_CODE, _ERROR_SEQ = 1014, 1800, 1801, 1803, 1804

# An error as regopy's exception text gives it: `(error 18:gateway/authz.rego|5824|133 (errormsg 18:Invalid collection)`.
_PARSE_ERROR = re.compile(r"\(error (\d+):")
_ERROR_MESSAGE_TEXT = re.compile(r"\(errormsg (\d+):")


class _Session:
    """The worker's state: the modules loaded and their bundle."""

    def __init__(self) -> None:
        import regopy
        from regopy import rego_shared

        self._regopy = regopy
        self._c = rego_shared
        self._sources: dict[str, str] = {}
        self._runtime: Any = None
        self._bundle: Any = None
        self._entrypoints: list[str] = []

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "load":
            return self._load(request["modules"], request["data"], request["entrypoints"])
        if op == "evaluate":
            return self._evaluate(request.get("entrypoint"), request.get("input", _NO_INPUT))
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _load(self, modules: dict[str, str], data: str, entrypoints: list[str]) -> dict[str, Any]:
        interpreter = self._regopy.Interpreter()
        self._sources = modules
        for name, source in modules.items():
            try:
                interpreter.add_module(name, source)
            except self._regopy.RegoError as exc:
                return {"ok": False, "error": self._describe_parse_error(str(exc), name)}
        try:
            interpreter.add_data_json(data)
        except self._regopy.RegoError as exc:
            return {"ok": False, "error": f"data.json: {first_line(str(exc))}"}
        if not entrypoints:
            return {"ok": True}
        try:
            bundle = interpreter.build(None, entrypoints)
        except self._regopy.RegoError as exc:
            return {"ok": False, "error": f"the bundle does not build: {self._describe_parse_error(str(exc), None)}"}
        if not bundle.ok():
            return {"ok": False, "error": "the bundle does not build"}
        self._bundle, self._entrypoints = bundle, entrypoints
        self._runtime = self._regopy.Interpreter()
        return {"ok": True}

    def _evaluate(self, entrypoint: str | None, policy_input: Any) -> dict[str, Any]:
        if self._bundle is None:
            return {"ok": False, "error": "no bundle is loaded"}
        if policy_input is not _NO_INPUT:
            # As JSON text, not regopy.Input: rego-cpp keeps strings from source and data JSON-escaped
            # and prints them as they are, so only an input escaped the same way prints as JSON.
            self._c.rego_set_input_term(self._runtime._impl, json.dumps(policy_input, ensure_ascii=False))
        output = self._c.rego_bundle_query_entrypoint(self._runtime._impl, self._bundle._impl, entrypoint or self._entrypoints[0])
        try:
            return self._answer(output)
        finally:
            self._c.rego_free_output(output)

    def _answer(self, output: Any) -> dict[str, Any]:
        c = self._c
        root = c.rego_output_node(output)
        kind = c.rego.regoNodeType(root)
        if kind in (_ERROR, _ERROR_SEQ) or not c.rego_output_ok(output):
            return {"ok": False, "error": self._error_text(root)}
        if kind == _UNDEFINED:
            return {"ok": True, "undefined": True}
        text = c.rego_output_string(output)
        try:
            result = json.loads(text, object_pairs_hook=_unique_keys)
        except ValueError as exc:
            return {"ok": False, "error": f"the policy engine printed a result that is not JSON ({exc})"}
        if isinstance(result, list):
            result = result[0] if result else {}
        try:
            return {"ok": True, "value": result["expressions"][0]}
        except (KeyError, IndexError, TypeError):
            return {"ok": True, "undefined": True}

    def _error_text(self, node: Any) -> str:
        c = self._c
        messages: list[str] = []

        def collect(current: Any) -> None:
            kind = c.rego.regoNodeType(current)
            if kind in (_ERROR_MESSAGE, _ERROR_CODE):
                text = c.rego_node_value(current)
                if text:
                    messages.append(text if kind == _ERROR_MESSAGE else f"({text})")
                return
            for index in range(c.rego_node_size(current)):
                collect(c.rego_node_get(current, index))

        collect(node)
        return " ".join(messages) or "the policy engine reported an error"

    def _describe_parse_error(self, text: str, fallback: str | None) -> str:
        """`file:line:col: message` for each error regopy reports, located in the module's source."""
        described: list[str] = []
        for match in _PARSE_ERROR.finditer(text):
            length = int(match.group(1))
            start = match.end()
            location = text[start : start + length]
            offset_text = text[start + length :].split(maxsplit=1)[0]
            offsets = offset_text.strip("|").split("|")
            message_match = _ERROR_MESSAGE_TEXT.search(text, start + length)
            if message_match is None:
                continue
            message_length = int(message_match.group(1))
            message = text[message_match.end() : message_match.end() + message_length]
            described.append(f"{self._locate(location, offsets[0] if offsets else '')}: {message}")
        if described:
            return "; ".join(described)
        return f"{fallback}: {first_line(text)}" if fallback else first_line(text)

    def _locate(self, name: str, offset_text: str) -> str:
        source = self._sources.get(name)
        if source is None or not offset_text.isdigit():
            return name
        before = source.encode()[: int(offset_text)]  # rego-cpp counts bytes
        line_start = before.rfind(b"\n") + 1
        column = len(before[line_start:].decode(errors="replace")) + 1
        line = before.count(b"\n") + 1
        return f"{name}:{line}:{column}"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that names a key twice is refused rather than resolved to one of its values."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return obj


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"


def _read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    message: dict[str, Any] = json.loads(stream.read(size))
    return message


def _write_frame(stream: BinaryIO, message: dict[str, Any]) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def main() -> None:
    # The protocol keeps the original stdout; rego-cpp echoes errors onto fd 1, which now goes nowhere.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    requests = sys.stdin.buffer
    session = _Session()
    while (request := _read_frame(requests)) is not None:
        try:
            reply = session.handle(request)
        except Exception as exc:  # an answer, not a dead worker: the caller fails closed on it
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        _write_frame(replies, {**reply, "seq": request.get("seq")})


if __name__ == "__main__":
    main()
