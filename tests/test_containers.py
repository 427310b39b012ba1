"""The Dockerfile and compose.yaml, read as Docker would read them (no Docker here to build them):
what they start is the gateway as its settings and routes say it is."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.app import create_app
from gateway.config import Settings

ROOT = Path(__file__).parents[1]
SETTINGS = {f"GATEWAY_{name.upper()}" for name in Settings.model_fields}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    def words(self) -> list[str]:
        """The arguments in exec form (a JSON array) or shell form."""
        if self.arguments.startswith("["):
            words: list[str] = json.loads(self.arguments)
            return words
        return shlex.split(self.arguments)


def instructions(text: str) -> list[Instruction]:
    """A Dockerfile's instructions, line continuations joined and comments dropped."""
    found, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return found


def final_stage() -> list[Instruction]:
    """The instructions of the image that is run: from the last FROM on."""
    every = instructions((ROOT / "Dockerfile").read_text())
    last_from = max(index for index, instruction in enumerate(every) if instruction.keyword == "FROM")
    return every[last_from:]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    """ENV key=value pairs (the only form used here)."""
    pairs = [word.split("=", 1) for instruction in stage if instruction.keyword == "ENV" for word in instruction.words()]
    return {key: value for key, value in pairs}


def option(words: list[str], name: str) -> str | None:
    return words[words.index(name) + 1] if name in words else None


def served_on(stage: list[Instruction]) -> tuple[str, int]:
    """Where the image's command serves: its --host/--port, else GATEWAY_HOST/PORT, else the defaults."""
    (command,) = [instruction.words() for instruction in stage if instruction.keyword == "CMD"]
    assert command[:2] == ["gateway", "serve"]
    env, defaults = env_of(stage), Settings()
    host = option(command, "--host") or env.get("GATEWAY_HOST") or defaults.host
    port = option(command, "--port") or env.get("GATEWAY_PORT") or defaults.port
    return host, int(port)


def expanded(value: str) -> str:
    """`${NAME:-default}` as compose reads it where NAME is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def routes() -> set[str]:
    app = create_app(Settings(database_url="postgresql://unused/unused", secret="x" * 32))
    return {route.path for route in app.routes}


def test_image_is_slim_python_3_11() -> None:
    (base,) = final_stage()[0].words()
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base


def test_image_runs_as_a_user_without_privileges() -> None:
    users = [instruction.arguments for instruction in final_stage() if instruction.keyword == "USER"]
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_image_serves_on_every_interface_at_the_port_it_exposes() -> None:
    stage = final_stage()
    exposed = [int(port.split("/")[0]) for instruction in stage if instruction.keyword == "EXPOSE" for port in instruction.words()]
    assert served_on(stage) == ("0.0.0.0", 8000)
    assert exposed == [8000]


def test_healthcheck_asks_a_route_of_the_app_where_the_app_serves(routes: set[str]) -> None:
    stage = final_stage()
    (healthcheck,) = [instruction for instruction in stage if instruction.keyword == "HEALTHCHECK"]
    probe = " ".join(healthcheck.words()[healthcheck.words().index("CMD") + 1:])
    (url,) = re.findall(r"http://[^'\" ]+", probe)
    parts = urlsplit(url.replace("%s", env_of(stage)["GATEWAY_PORT"]))
    assert parts.path in routes and parts.path == "/healthz"
    assert (parts.hostname, parts.port) == ("127.0.0.1", served_on(stage)[1])


def test_image_env_names_are_settings() -> None:
    assert {name for name in env_of(final_stage()) if name.startswith("GATEWAY_")} <= SETTINGS


def test_image_copies_the_policies_it_is_told_to_read() -> None:
    stage = final_stage()
    copied = {instruction.words()[-1] for instruction in stage if instruction.keyword == "COPY" and instruction.words()[0] == "policies"}
    assert env_of(stage)["GATEWAY_POLICY_DIR"] in copied


def test_build_context_keeps_what_the_dockerfile_copies() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}
    copies = [instruction.words() for instruction in instructions((ROOT / "Dockerfile").read_text()) if instruction.keyword == "COPY"]
    copied = {source for words in copies if not words[0].startswith("--from=") for source in words[:-1]}
    assert copied == {"pyproject.toml", "README.md", "gateway", "policies"}
    assert not copied & ignored


def test_compose_runs_postgres_16_with_a_healthcheck(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:16(\.\d+)*(-\w+)?", postgres["image"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_compose_gateway_waits_for_a_healthy_postgres(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_gateway_env_names_are_settings(compose: dict[str, Any]) -> None:
    environment = compose["services"]["gateway"]["environment"]
    assert {"GATEWAY_DATABASE_URL", "GATEWAY_SECRET"} <= set(environment) <= SETTINGS


def test_compose_gateway_reaches_the_postgres_service_as_its_owner(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]["environment"]
    url = urlsplit(expanded(compose["services"]["gateway"]["environment"]["GATEWAY_DATABASE_URL"]))
    assert (url.hostname, url.port, url.username, url.password, url.path) == (
        "postgres", 5432, postgres["POSTGRES_USER"], expanded(postgres["POSTGRES_PASSWORD"]), "/" + postgres["POSTGRES_DB"]
    )


def test_compose_gateway_secret_must_be_given(compose: dict[str, Any]) -> None:
    """Compose refuses to start without it (`${NAME:?message}`), rather than sign with a default."""
    assert re.fullmatch(r"\$\{GATEWAY_SECRET:\?[^}]+\}", compose["services"]["gateway"]["environment"]["GATEWAY_SECRET"])


def test_compose_publishes_the_port_the_image_serves_on(compose: dict[str, Any]) -> None:
    (published,) = compose["services"]["gateway"]["ports"]
    assert int(published.rsplit(":", 1)[1]) == served_on(final_stage())[1]


def test_compose_lets_requests_in_flight_finish_before_it_kills(compose: dict[str, Any]) -> None:
    grace = compose["services"]["gateway"]["stop_grace_period"]
    assert int(grace.removesuffix("s")) > Settings().shutdown_seconds


def test_compose_opa_is_optional_and_reads_the_policies_read_only(compose: dict[str, Any]) -> None:
    opa = compose["services"]["opa"]
    assert opa["profiles"] == ["opa"]
    assert opa["image"].startswith("openpolicyagent/opa:")
    mounts = [volume.split(":") for volume in opa["volumes"]]
    (target,) = [target for source, target, *mode in mounts if source == "./policies" and mode == ["ro"]]
    assert target in opa["command"]
    assert "--server" in opa["command"]
    assert "opa" not in compose["services"]["gateway"].get("depends_on", {}), "the gateway would not start without the profile"
