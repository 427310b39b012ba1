"""A real `gateway serve` (GATEWAY_DEMO on) over demo data loaded through the ingest path, and
Debian's chromium driven by Playwright, for the dashboard's browser tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import SECRET
from processes import GATEWAY, Served, serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "browser"
# A busy two-core machine: every wait in the page is generous, none is a sleep.
PAGE_TIMEOUT_MS = 30_000
DEMO_DATA = ["--users", "300", "--videos", "40", "--events", "15000", "--seed", "7"]
DEMO_DATA_SECONDS = 180

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


def _gateway_env(database_url: str, directory: Path) -> dict[str, str]:
    return {**os.environ, "GATEWAY_DATABASE_URL": database_url, "GATEWAY_SECRET": SECRET, "GATEWAY_DATA_DIR": str(directory / "data")}


async def gateway_cli(database_url: str, directory: Path, *args: str, seconds: float = 120) -> str:
    """Runs `gateway <args>` against the database as an operator would; its stdout."""
    process = await asyncio.create_subprocess_exec(
        str(GATEWAY), *args, env=_gateway_env(database_url, directory), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(seconds):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, f"gateway {' '.join(args)} exited {process.returncode}: {err.decode(errors='replace')[-2000:]}"
    return out.decode()


@dataclass
class DemoServer:
    """The server under test, with the demo on, and the operator's CLI against its store."""

    served: Served
    database_url: str
    directory: Path

    @property
    def url(self) -> str:
        return self.served.url

    async def cli(self, *args: str) -> str:
        return await gateway_cli(self.database_url, self.directory, *args)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian chromium is not installed: {CHROMIUM} is missing (`apt-get install chromium`; the Makefile installs it)")
    return CHROMIUM


@pytest.fixture(scope="module")
async def served(chromium: Path, database_url: str) -> AsyncIterator[DemoServer]:
    """`gateway serve` with the demo and the IDE on, over the module's database holding the demo platform."""
    directory = Path(tempfile.mkdtemp(prefix="gateway-browser-"))
    try:
        await gateway_cli(database_url, directory, "demo-data", *DEMO_DATA, seconds=DEMO_DATA_SECONDS)
        async with serving(database_url, directory, demo="1", ide="1") as server:
            yield DemoServer(server, database_url, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Watched:
    """A page, and what it asked for and complained about."""

    page: Any
    context: Any
    origin: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """Nothing went to any host but the server, and the console stayed free of errors."""
        elsewhere = [url for url in self.requests if not (url.startswith(self.origin + "/") or url.startswith("data:"))]
        assert not elsewhere, f"requests to other hosts: {elsewhere}"
        assert not self.console_errors, f"console errors: {self.console_errors}"


@pytest.fixture
async def open_page(browser: Any, served: DemoServer) -> AsyncIterator[Callable[..., Any]]:
    """Opens a fresh browser context (no storage, no cookies) at a viewport; closed after the test."""
    contexts: list[Any] = []

    async def opener(viewport: dict[str, int] = DESKTOP, **options: Any) -> Watched:
        """`options`: further browser context options (e.g. `timezone_id`)."""
        context = await browser.new_context(viewport=viewport, service_workers="block", **options)
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        watched = Watched(page, context, served.url)
        page.on("request", lambda request: watched.requests.append(request.url))
        page.on("console", lambda message: watched.console_errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: watched.console_errors.append(f"uncaught: {error}"))
        return watched

    yield opener
    for context in contexts:
        with contextlib.suppress(Exception):
            await context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
