"""The OPA-server engine: `POST /v1/data/gateway/authz/decision` through opa-python-client."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from opa_client.opa_async import AsyncOpaClient

from gateway.errors import PolicyUnavailable
from gateway.policy.decision import ENTRYPOINT, Warmer
from gateway.policy.reads import READS_EVERYTHING, PolicyReads

__all__ = ["OpaServerEngine"]

logger = logging.getLogger("gateway.policy")

DEFAULT_TIMEOUT = 0.250
# The server's policy can change without telling us: decisions are cached for
# at most this long (the revision rotates), so a change there takes effect here soon.
REVISION_SECONDS = 5.0


class OpaServerEngine:
    @property
    def reads(self) -> PolicyReads:
        return READS_EVERYTHING  # the server's policy is not ours to inspect

    @property
    def files(self) -> None:
        return None  # the server holds them

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"GATEWAY_OPA_URL must be http(s)://host[:port], not {url!r}")
        self.url = url
        self.timeout = timeout
        self.last_error: str | None = None
        self.before_serving: list[Warmer] = []  # the server's revisions change there, unannounced
        self.timeouts = 0
        self.restarts = 0  # the server is not ours to restart
        self._client = AsyncOpaClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 8181),
            ssl=parts.scheme == "https",
            timeout=timeout,
            retries=0,
        )
        self._package, _, self._rule = ENTRYPOINT.rpartition("/")
        self._base = f"{parts.scheme}://{parts.netloc}"

    async def start(self) -> None:
        await self._client.__aenter__()

    @property
    def ready(self) -> bool:
        """The server answered the last evaluation (or none has been asked yet)."""
        return self.last_error is None

    async def check(self) -> None:
        """Ask the server's /health, so readiness recovers without a request having to succeed first.
        (opa-python-client's check_health reads a server that cannot be reached as unhealthy; an
        operator needs to tell the two apart.)"""
        try:
            async with asyncio.timeout(self.timeout), aiohttp.ClientSession() as session, session.get(f"{self._base}/health") as response:
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.last_error = f"the OPA server at {self._base} is unreachable: {exc or type(exc).__name__}"
            return
        self.last_error = None if status == 200 else f"the OPA server at {self._base} reports itself unhealthy (HTTP {status})"

    @property
    def revision(self) -> str:
        return f"opa:{self.url}:{int(time.monotonic() // REVISION_SECONDS)}"

    async def evaluate(self, policy_input: dict[str, Any]) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client.query_rule(
                    input_data=policy_input, package_path=self._package, rule_name=self._rule
                )
        except TimeoutError as exc:
            self.timeouts += 1
            self.last_error = f"the OPA server did not answer within {self.timeout * 1000:.0f} ms"
            raise PolicyUnavailable(self.last_error) from exc
        except aiohttp.ClientResponseError as exc:
            self.last_error = f"the OPA server failed: {exc.status} {exc.message}"
            raise PolicyUnavailable(self.last_error) from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # Clients are told what failed, not where it runs: the address is for the operator's log
            # and readiness check.
            logger.error("the OPA server at %s failed: %s", self._base, exc)
            self.last_error = f"the OPA server at {self._base} failed: {type(exc).__name__}"
            raise PolicyUnavailable(f"the OPA server failed ({type(exc).__name__})") from exc
        if not isinstance(response, dict) or "result" not in response:
            self.last_error = f"the OPA server has no {ENTRYPOINT} (is the policy loaded?)"
            raise PolicyUnavailable(self.last_error)
        self.last_error = None
        return response["result"]

    async def close(self) -> None:
        await self._client.close_connection()
