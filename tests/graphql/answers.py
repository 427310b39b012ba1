"""Reading a GraphQL response in the field tests: its data, or the refusals it carries."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["answer", "refusals"]


def answer(response: httpx.Response) -> Any:
    """The data of a response that must have succeeded completely."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def refusals(response: httpx.Response) -> list[tuple[str, str | None, list[str | int] | None]]:
    """(code, extensions.field, path) of each error; the response must be a GraphQL result."""
    assert response.status_code == 200, response.text
    return [(e["extensions"]["code"], e["extensions"].get("field"), e.get("path")) for e in response.json()["errors"]]
