"""Which policy engine serves: an OPA server when `GATEWAY_OPA_URL` is set, else the embedded one."""

from __future__ import annotations

from gateway.config import Settings
from gateway.policy.decision import PolicyEngine
from gateway.policy.embedded import EmbeddedEngine
from gateway.policy.opa import OpaServerEngine

__all__ = ["open_engine"]


async def open_engine(settings: Settings) -> PolicyEngine:
    engine: PolicyEngine
    if settings.opa_url:
        engine = OpaServerEngine(settings.opa_url, timeout=settings.policy_timeout)
    else:
        engine = EmbeddedEngine(
            settings.policy_dir, timeout=settings.policy_timeout, queue_timeout=settings.policy_queue_timeout, workers=settings.policy_workers
        )
    await engine.start()
    return engine
