"""The scopes an app may ask a user for, in the words the consent page uses.

Which scopes exist, and what each lets an app read, is the policy's (`access.principals.app.scopes`
in its data, decided field by field like every request); this module only says it plainly."""

from __future__ import annotations

from pathlib import Path

from gateway.policy.worker import PolicyFiles, PolicyFilesError

__all__ = ["NEVER", "describe", "policy_scopes", "scopes_of"]

WORDS = {
    "stats": "The public counts of your videos and channel: views, likes, comments, shares and followers.",
    "insights": (
        "The insights you see on your own videos: like and engagement rates, watch time, share and view "
        "timelines (by day at the finest), share channels, and your audience by region and age band, "
        "with small groups hidden and counts blurred with noise."
    ),
    "activity": "Your own activity: the videos you liked and the creators you follow. Never what you share: that stays between you and the platform.",
}

# What the consent page says of every app, whatever it asks for.
NEVER = (
    "No scope lets this app learn who shared any video, not even what you shared, nor who else liked, "
    "viewed or followed any video or creator, yours or anyone else's: the platform does not answer that question to anyone."
)


def describe(scope: str) -> str:
    return WORDS.get(scope, f"What the platform's policy allows under the scope “{scope}”.")


def policy_scopes(policy_dir: Path) -> frozenset[str]:
    """The scopes the policy in `policy_dir` defines. With no readable policy here (an OPA server
    holds it), the scopes this module describes."""
    try:
        return scopes_of(PolicyFiles.read(policy_dir))
    except (PolicyFilesError, OSError, UnicodeDecodeError):
        return frozenset(WORDS)


def scopes_of(files: PolicyFiles) -> frozenset[str]:
    """The scopes `files` define: the keys of `access.principals.app.scopes` in their data."""
    node: object = files.data_document()
    for key in ("access", "principals", "app", "scopes"):
        node = node.get(key) if isinstance(node, dict) else None
    return frozenset(node) if isinstance(node, dict) else frozenset()
