#!/usr/bin/env python3
"""Refresh or verify the vendored GraphiQL files listed in manifest.json (standard library only).

    python3 scripts/refresh_graphiql.py            # npm pack the pinned versions into a temporary folder, check every
                                  # file against manifest.json, and only then copy them into vendor/
    python3 scripts/refresh_graphiql.py --check    # offline: check the files in vendor/ and index.html's integrity
                                  # attributes against manifest.json
    python3 scripts/refresh_graphiql.py --dest DIR # refresh into DIR instead of this folder (to compare, or to test)

Exit status: 0 all match; 1 a file differs from its recorded hash, is missing, or is referenced
wrongly by index.html (on a refresh nothing is written then); 2 npm failed or was not found.

To move to another version: edit the version and the "from" specs in manifest.json, run the
refresh (it fails and prints the hashes it got), check the new files, record the printed hashes
in manifest.json, ASSETS.md and index.html, and run it again.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from html.parser import HTMLParser
from pathlib import Path

# The page and its vendored files ship inside the package; this script does not (it is not served).
HERE = Path(__file__).resolve().parents[1] / "gateway" / "static" / "graphiql"
MANIFEST = HERE / "manifest.json"
INDEX = HERE / "index.html"
URL_PREFIX = "/static/graphiql/"


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def entries(manifest: dict) -> list[tuple[str, str, str, str, bool]]:
    """(spec to pack, path in the package, path under this folder, sha384, is an asset) per file."""
    rows = []
    for package in manifest["packages"]:
        spec = f"{package['name']}@{package['version']}"
        for f in package["files"]:
            rows.append((spec, f["src"], f"{package['dir']}/{f['dest']}", f["sha384"], True))
        for lic in package.get("licenses", []):
            rows.append((lic["from"], lic["src"], f"{package['dir']}/{lic['dest']}", lic["sha384"], False))
    return rows


def npm_pack(spec: str, into: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found on PATH")
    proc = subprocess.run(
        [npm, "pack", spec, "--json", "--ignore-scripts", "--pack-destination", str(into)],
        cwd=into,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"npm pack {spec} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    try:
        filename = json.loads(proc.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError) as exc:
        raise RuntimeError(f"npm pack {spec}: unexpected output {proc.stdout[:500]!r}") from exc
    # Scoped names come back as "@scope/name-1.0.0.tgz" in some npm versions, "scope-name-1.0.0.tgz" in others.
    path = into / filename
    if not path.exists():
        path = into / filename.lstrip("@").replace("/", "-")
    if not path.exists():
        raise RuntimeError(f"npm pack {spec}: {filename} not found in {into}")
    return path


def read_member(tarball: Path, inner: str) -> bytes | None:
    """The bytes of `inner` (a path inside the package) in an npm tarball, whose top folder varies."""
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) == 2 and parts[1] == inner and member.isfile():
                handle = tar.extractfile(member)
                return handle.read() if handle else None
    return None


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str | None]] = []  # (path under this folder, integrity)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        url = a.get("src") if tag == "script" else a.get("href") if tag == "link" else None
        if url and url.startswith(URL_PREFIX + "vendor/"):
            self.refs.append((url[len(URL_PREFIX):], a.get("integrity")))


def check_index(rows: list[tuple[str, str, str, str, bool]]) -> list[str]:
    """index.html loads every asset of the manifest, each with its recorded integrity, and no other vendor file."""
    if not INDEX.exists():
        return [f"{INDEX.name}: missing"]
    parser = _Refs()
    parser.feed(INDEX.read_text(encoding="utf-8"))
    expected = {dest: digest for _, _, dest, digest, asset in rows if asset}
    problems = []
    seen = set()
    for path, integrity in parser.refs:
        seen.add(path)
        if path not in expected:
            problems.append(f"index.html: loads {path}, which manifest.json does not list")
        elif integrity != expected[path]:
            problems.append(f"index.html: {path} has integrity {integrity!r}, manifest.json records {expected[path]}")
    for path in sorted(set(expected) - seen):
        problems.append(f"index.html: does not load {path}")
    return problems


def check(root: Path, rows: list[tuple[str, str, str, str, bool]]) -> list[str]:
    problems = []
    listed = set()
    for _, _, dest, digest, _ in rows:
        listed.add(dest)
        path = root / dest
        if not path.is_file():
            problems.append(f"{dest}: missing")
            continue
        got = sri(path.read_bytes())
        if got != digest:
            problems.append(f"{dest}: {got}, manifest.json records {digest}")
        else:
            print(f"ok  {dest}  {digest}")
    vendor = root / "vendor"
    if vendor.is_dir():
        for path in sorted(p for p in vendor.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if rel not in listed:
                problems.append(f"{rel}: not listed in manifest.json")
    return problems


def refresh(root: Path, rows: list[tuple[str, str, str, str, bool]]) -> list[str]:
    problems = []
    fetched: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="graphiql-refresh-") as tmp:
        tarballs: dict[str, Path] = {}
        for spec in dict.fromkeys(spec for spec, *_ in rows):
            print(f"npm pack {spec}")
            tarballs[spec] = npm_pack(spec, Path(tmp))
        for spec, inner, dest, digest, _ in rows:
            data = read_member(tarballs[spec], inner)
            if data is None:
                problems.append(f"{spec}: has no {inner}")
                continue
            got = sri(data)
            if got != digest:
                problems.append(f"{spec} {inner} -> {dest}: got {got}, manifest.json records {digest}")
            fetched[dest] = data
    if problems:
        return problems  # write nothing unless everything matches
    for dest, data in fetched.items():
        path = root / dest
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        part.write_bytes(data)
        os.chmod(part, 0o644)
        part.replace(path)
        print(f"wrote {dest}")
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="check the files on disk only (no network)")
    parser.add_argument("--dest", type=Path, default=HERE, help="folder to refresh into (default: gateway/static/graphiql)")
    args = parser.parse_args(argv)

    rows = entries(json.loads(MANIFEST.read_text(encoding="utf-8")))
    root = args.dest.resolve()
    try:
        problems = [] if args.check else refresh(root, rows)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not problems:
        problems = check(root, rows)
        if root == HERE:
            problems += check_index(rows)
    for problem in problems:
        print(f"MISMATCH {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"all {len(rows)} files match manifest.json" + (" and index.html" if root == HERE else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
