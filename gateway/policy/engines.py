"""Which policy engine serves: an OPA server when `GATEWAY_OPA_URL` is set, else the embedded one."""

from __future__ import annotations

from typing import Any, Protocol

from gateway.config import Settings
from gateway.policy.embedded import EmbeddedEngine
from gateway.policy.opa import OpaServerEngine

__all__ = ["ServingEngine", "open_engine"]


class ServingEngine(Protocol):
    last_error: str | None

    @property
    def revision(self) -> str: ...

    @property
    def ready(self) -> bool: ...

    async def evaluate(self, policy_input: dict[str, Any]) -> Any: ...

    async def check(self) -> None:
        """Refresh `ready` and `last_error` (for /readyz)."""

    async def close(self) -> None: ...


async def open_engine(settings: Settings) -> ServingEngine:
    engine: EmbeddedEngine | OpaServerEngine
    if settings.opa_url:
        engine = OpaServerEngine(settings.opa_url, timeout=settings.policy_timeout)
    else:
        engine = EmbeddedEngine(settings.policy_dir, timeout=settings.policy_timeout)
    await engine.start()
    return engine
