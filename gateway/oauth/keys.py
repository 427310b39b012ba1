"""The keys the gateway signs apps' access tokens with: ES256 (P-256) keys kept in
`GATEWAY_DATA_DIR/keys.json`, made on first use and rotated by `gateway keys rotate`.

Rotating makes a new key the one that signs and retires the old one, which still verifies until
every token it signed has expired (`keep_seconds` after its retirement), and is then dropped.
`/.well-known/jwks.json` publishes the public half of every key kept, so anyone can verify a
token the gateway issued. Every serving process reads the same file and notices a rotation
within a second; replicas on several machines must share it (or its contents)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet

__all__ = ["ALGORITHM", "KeyRing", "KeyRingError", "rotate_keys"]

ALGORITHM = "ES256"
CURVE = "P-256"
FILE_NAME = "keys.json"
# How often a process looks at the file for a rotation made elsewhere (another worker, the CLI).
RELOAD_SECONDS = 1.0


class KeyRingError(Exception):
    """The key file exists but cannot be used (not JSON, or not keys): nothing is overwritten."""


@dataclass(frozen=True)
class KeptKey:
    key: ECKey
    created_at: datetime
    retired_at: datetime | None = None

    def stored(self) -> dict[str, Any]:
        return {
            "jwk": self.key.as_dict(private=True),
            "created_at": self.created_at.isoformat(),
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
        }

    @classmethod
    def read(cls, entry: Any) -> KeptKey:
        try:
            key = ECKey.import_key(entry["jwk"])
            retired = entry.get("retired_at")
            kept = cls(key, datetime.fromisoformat(entry["created_at"]), datetime.fromisoformat(retired) if retired else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyRingError(f"not a signing key: {exc}") from exc
        if not key.is_private or key.as_dict().get("crv") != CURVE or not key.kid:
            raise KeyRingError(f"a signing key must be a private {CURVE} key with a kid")
        return kept


def new_key(now: datetime) -> KeptKey:
    key = ECKey.generate_key(CURVE, parameters={"use": "sig", "alg": ALGORITHM})
    key.ensure_kid()  # the RFC 7638 thumbprint
    return KeptKey(key, now)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialises the processes that may make or rotate the keys (workers starting, the CLI)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{FILE_NAME}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(path: Path) -> list[KeptKey]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyRingError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyRingError(f"{path} holds no list of keys")
    return [KeptKey.read(entry) for entry in document["keys"]]


def _write(path: Path, keys: list[KeptKey]) -> None:
    """Replaces the file at once (readers see the old keys or the new, never half), readable by its owner only."""
    staged = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({"keys": [key.stored() for key in keys]}, file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    os.replace(staged, path)


def _signing(keys: list[KeptKey]) -> KeptKey | None:
    current = [key for key in keys if key.retired_at is None]
    return max(current, key=lambda key: key.created_at) if current else None


def ensure_keys(directory: Path, now: datetime) -> list[KeptKey]:
    """The kept keys, making the first one when there is none."""
    path = directory / FILE_NAME
    keys = _read(path)
    if _signing(keys) is not None:
        return keys
    with _locked(directory):
        keys = _read(path)  # another process may have made it meanwhile
        if _signing(keys) is None:
            keys = [*keys, new_key(now)]
            _write(path, keys)
    return keys


def rotate_keys(directory: Path, keep_seconds: float, now: datetime) -> tuple[KeptKey, list[KeptKey]]:
    """Makes a new signing key and retires the current one; drops keys retired more than
    `keep_seconds` ago (every token they signed has expired). Returns the new key and those dropped."""
    path = directory / FILE_NAME
    with _locked(directory):
        keys = _read(path)
        expired = [key for key in keys if key.retired_at is not None and now - key.retired_at > timedelta(seconds=keep_seconds)]
        kept = [key if key.retired_at is not None else KeptKey(key.key, key.created_at, now) for key in keys if key not in expired]
        fresh = new_key(now)
        _write(path, [*kept, fresh])
    return fresh, expired


class KeyRing:
    """A serving process's view of the key file: the key that signs, and every key that verifies."""

    def __init__(self, directory: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = directory / FILE_NAME
        self._clock = clock
        self._keys = ensure_keys(directory, datetime.now(UTC))
        self._stamp = self._file_stamp()
        self._checked = clock()
        self._build()

    def _build(self) -> None:
        signing = _signing(self._keys)
        if signing is None:
            raise KeyRingError(f"{self.path} has no current signing key: run `gateway keys rotate`")
        self._signing_key = signing.key
        self._key_set = KeySet([kept.key for kept in self._keys])
        self._public = {"keys": [kept.key.as_dict(private=False) for kept in self._keys]}

    def _file_stamp(self) -> tuple[int, int]:
        stat = self.path.stat()
        return stat.st_mtime_ns, stat.st_ino

    def _follow(self) -> None:
        """Picks up a rotation made by another process (checked at most once a second). A file
        that went bad meanwhile keeps the keys already read: they still verify and sign."""
        now = self._clock()
        if now - self._checked < RELOAD_SECONDS:
            return
        self._checked = now
        with contextlib.suppress(OSError, KeyRingError):
            stamp = self._file_stamp()
            if stamp != self._stamp:
                keys = _read(self.path)
                if _signing(keys) is not None:
                    self._keys, self._stamp = keys, stamp
                    self._build()

    def signing_key(self) -> ECKey:
        self._follow()
        return self._signing_key

    def key_set(self) -> KeySet:
        self._follow()
        return self._key_set

    def public_keys(self) -> dict[str, Any]:
        """The JWK Set of `/.well-known/jwks.json`."""
        self._follow()
        return self._public
