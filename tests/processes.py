"""`gateway serve` started as an operator starts it, for the tests that need a real server process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from conftest import SECRET
from harness import roomy_policies

__all__ = ["GATEWAY", "START_SECONDS", "Served", "free_port", "serving", "start_serve"]

GATEWAY = Path(sys.executable).with_name("gateway")
# A busy two-core machine may take a while to start Python, migrate and start the policy workers.
START_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def start_serve(
    database_url: str | None, directory: Path, *, policy_dir: Path | None = None, **settings: str
) -> tuple[asyncio.subprocess.Process, int]:
    """`gateway serve` over `database_url` (None: the embedded Postgres it starts under `directory`)
    with its data under `directory`, on a free port, deciding over `policy_dir`
    (harness.roomy_policies() unless given); its log lines on the process's stderr (a pipe the
    caller must read). `settings` are further GATEWAY_* variables by field name."""
    port = free_port()
    inherited = {name: value for name, value in os.environ.items() if name != "GATEWAY_DATABASE_URL"}
    env = {
        **inherited,
        **({"GATEWAY_DATABASE_URL": database_url} if database_url is not None else {}),
        "GATEWAY_SECRET": SECRET,
        "GATEWAY_DATA_DIR": str(directory / "data"),
        "GATEWAY_POLICY_DIR": str(policy_dir or roomy_policies()),
        "GATEWAY_PORT": str(port),
        # One serving process unless a test asks for more (tests/test_workers.py): quicker to start.
        "GATEWAY_WORKERS": "1",
        **{f"GATEWAY_{name.upper()}": value for name, value in settings.items()},
    }
    process = await asyncio.create_subprocess_exec(
        str(GATEWAY), "serve", env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    return process, port


@dataclass
class Served:
    """A `gateway serve` process; what it logs is read as it comes, so its pipe never fills."""

    process: asyncio.subprocess.Process
    url: str
    lines: list[str] = field(default_factory=list)
    _listening: asyncio.Event = field(default_factory=asyncio.Event)
    _read: asyncio.Condition = field(default_factory=asyncio.Condition)
    _ended: bool = False

    async def drain(self) -> None:
        assert self.process.stderr is not None
        while raw := await self.process.stderr.readline():
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if "Uvicorn running on" in line:
                self._listening.set()
            async with self._read:
                self._read.notify_all()
        self._listening.set()  # ended: whoever waits finds out
        async with self._read:
            self._ended = True
            self._read.notify_all()

    async def said(self, text: str, times: int = 1, seconds: float = START_SECONDS) -> list[str]:
        """The lines containing `text`, once there are `times` of them (read so far or to come)."""

        def saying() -> list[str]:
            return [line for line in self.lines if text in line]

        async with asyncio.timeout(seconds), self._read:
            await self._read.wait_for(lambda: len(saying()) >= times or self._ended)
        assert len(saying()) >= times, f"the server ended before saying {text!r} {times} times:\n" + "\n".join(self.lines[-20:])
        return saying()

    async def listening(self) -> None:
        async with asyncio.timeout(START_SECONDS):
            await self._listening.wait()
        assert self.process.returncode is None, "\n".join(self.lines[-20:])

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> int:
        return int(psutil.Process(self.pid).memory_info().rss)

    def policy_workers(self) -> list[psutil.Process]:
        children = psutil.Process(self.pid).children(recursive=True)
        return [child for child in children if "gateway.policy.worker" in " ".join(child.cmdline())]


@contextlib.asynccontextmanager
async def serving(database_url: str | None, directory: Path, *, policy_dir: Path | None = None, **settings: str) -> AsyncIterator[Served]:
    """`gateway serve` over `database_url`, once it accepts connections (a cold start: nothing
    decided, nothing kept). `settings` are further GATEWAY_* variables by field name."""
    process, port = await start_serve(database_url, directory, policy_dir=policy_dir, **settings)
    served = Served(process, f"http://127.0.0.1:{port}")
    draining = asyncio.create_task(served.drain())
    try:
        await served.listening()
        yield served
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await draining
