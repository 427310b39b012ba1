"""`gateway serve` started as an operator starts it, for the tests that need a real server process."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from conftest import SECRET
from harness import SHIPPED_POLICIES

__all__ = ["GATEWAY", "START_SECONDS", "free_port", "start_serve"]

GATEWAY = Path(sys.executable).with_name("gateway")
# A busy two-core machine may take a while to start Python, migrate and start the policy workers.
START_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def start_serve(
    database_url: str, directory: Path, *, policy_dir: Path = SHIPPED_POLICIES, **settings: str
) -> tuple[asyncio.subprocess.Process, int]:
    """`gateway serve` over `database_url` with its data under `directory`, on a free port; its log
    lines on the process's stderr (a pipe the caller must read). `settings` are further GATEWAY_*
    variables by field name."""
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_SECRET": SECRET,
        "GATEWAY_DATA_DIR": str(directory / "data"),
        "GATEWAY_POLICY_DIR": str(policy_dir),
        "GATEWAY_PORT": str(port),
        **{f"GATEWAY_{name.upper()}": value for name, value in settings.items()},
    }
    process = await asyncio.create_subprocess_exec(
        str(GATEWAY), "serve", env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    return process, port
