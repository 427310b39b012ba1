"""Real OPA in the test process: opa-golib-python-bindings, OPA v1.20.2's own Go `rego` package
built into a c-shared library with a ctypes wrapper.

The gateway's embedded engine is rego-cpp (regopy), which differs from OPA in places
(policies/README.md), and an `opa` binary cannot be had on our machines (nothing is downloaded but
packages from a registry). These bindings are OPA's evaluator itself, shipped in a PyPI wheel: the
golden cases and the policy's Rego tests run under it as well as under regopy, and the OPA
stand-in evaluates with it.

The package declares Python >= 3.14 but installs and works on 3.11: `make test` installs it, pinned,
with `--ignore-requires-python`, which a dependency in pyproject.toml cannot say (`pip install -e .`
would refuse the whole install on 3.11). When that install fails, make logs pip's answer in
INSTALL_LOG and goes on; `MISSING` then says why, and the tests that need real OPA skip with it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.policy.decision import ENTRYPOINT
from gateway.policy.worker import PolicyFiles

__all__ = ["INSTALL_LOG", "MISSING", "EvaluationError", "RealOpa", "Undefined", "require_real_opa"]

# Where `make test` leaves pip's output when the install fails.
INSTALL_LOG = Path(sys.prefix) / "real-opa-install.log"


class Undefined(Exception):
    """The document asked for is undefined (OPA's Data API answers `{}`, `opa eval` nothing)."""


class EvaluationError(Exception):
    """OPA rejected the policy (it parses a module when it is added, and compiles them all, type
    checks included, on the first evaluation) or failed evaluating it."""


def _why_missing(exc: Exception) -> str:
    logged = INSTALL_LOG.read_text(errors="replace").strip().splitlines() if INSTALL_LOG.is_file() else []
    reason = logged[-1] if logged else f"{type(exc).__name__}: {exc}"
    return f"real OPA (opa-golib-python-bindings, installed by `make test`) is not available: {reason}"


try:
    from opa_bindings import OpaEngine, OpaError

    # The library loads on the first engine: a wheel that installed but cannot load here is missing too.
    OpaEngine().close()
    MISSING: str | None = None
except (ImportError, OSError) as exc:
    MISSING = _why_missing(exc)


def require_real_opa() -> None:
    """Skips the calling test or fixture, saying why, when real OPA is not installed."""
    if MISSING is not None:
        pytest.skip(MISSING)


class RealOpa:
    """One OPA engine holding a policy directory's modules and data.json (and its tests, if asked).

    `with RealOpa(files) as opa:` releases the engine at the end.
    """

    def __init__(self, files: PolicyFiles, *, with_tests: bool = False) -> None:
        require_real_opa()
        self._engine = OpaEngine()
        try:
            for name, source in {**files.modules, **(files.tests if with_tests else {})}.items():
                self._engine.add_policy(name, source)
            self._engine.add_data(files.data_document())
        except OpaError as exc:
            self._engine.close()
            raise EvaluationError(str(exc)) from exc

    def __enter__(self) -> RealOpa:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.close()

    def document(self, path: str, policy_input: Any = None) -> Any:
        """The value of the document at a Data API path (`gateway/authz/decision`; "" is all of
        `data`), with `input` undefined when policy_input is None. Raises Undefined, or
        EvaluationError when OPA rejects the policy or fails evaluating it."""
        # OPA's Data API takes any string as a segment: quoted, a segment is a key whatever it holds.
        segments = "".join(f"[{json.dumps(segment)}]" for segment in path.split("/") if segment)
        try:
            bindings = self._engine.eval_query(f"value := data{segments}", policy_input)
        except OpaError as exc:
            raise EvaluationError(str(exc)) from exc
        if not bindings:
            raise Undefined(f"data.{path.replace('/', '.')} is undefined")
        return bindings[0]["value"]

    async def evaluate(self, policy_input: dict[str, Any]) -> Any:
        """The decision for one input, as the gateway's engines answer it (off the event loop)."""
        return await asyncio.to_thread(self.document, ENTRYPOINT, policy_input)
