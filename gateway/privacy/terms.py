"""The policy's obligations for one decision, checked and typed once.

A decision the gateway cannot read as terms is the policy failing, so the
request fails closed (POLICY_UNAVAILABLE), never served with weaker terms.
"""

from __future__ import annotations

from cachetools import LRUCache
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import PolicyUnavailable
from gateway.privacy.release import Granularity

__all__ = ["PrivacyTerms", "terms_of"]


class _Obligations(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    k_threshold: int = Field(ge=0)  # 0: no threshold (the policy's call, e.g. in a test policy)
    granularity_floor: Granularity
    bucket_delay_seconds: int = Field(ge=0)
    epsilon: dict[str, float] = {}
    epsilon_budget_per_day: float | None = Field(default=None, ge=0)
    # How far above a video's running median of shares per hour a release must be to count as a
    # share surge (gateway.privacy.surges); 1 or less would make every ordinary release a surge.
    share_surge_factor: float = Field(default=3.0, gt=1)


@dataclass(frozen=True, slots=True)
class PrivacyTerms:
    """k, the granularity floor, the delay after a bucket closes, ε per metric, the daily ε budget,
    and the factor over its running median that makes a release a share surge."""

    k: int
    floor: Granularity
    delay: timedelta
    epsilon: dict[str, Fraction]
    budget_per_day: Fraction | None
    surge_factor: Fraction

    @property
    def noised(self) -> bool:
        return bool(self.epsilon)

    @classmethod
    def parse(cls, obligations: dict[str, Any]) -> PrivacyTerms:
        try:
            parsed = _Obligations.model_validate({**obligations, "granularity_floor": str(obligations.get("granularity_floor", "")).lower()})
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise PolicyUnavailable(f"the policy's obligations are malformed ({where}: {error['msg']})") from exc
        epsilon = {}
        for metric, value in parsed.epsilon.items():
            if not value > 0:
                raise PolicyUnavailable(f"the policy's obligations are malformed (epsilon.{metric} must be positive)")
            epsilon[metric] = _exact(value)
        budget = None if parsed.epsilon_budget_per_day is None else Fraction(repr(parsed.epsilon_budget_per_day))
        return cls(
            k=parsed.k_threshold,
            floor=parsed.granularity_floor,
            delay=timedelta(seconds=parsed.bucket_delay_seconds),
            epsilon=epsilon,
            budget_per_day=budget,
            surge_factor=_exact(parsed.share_surge_factor),
        )


def _exact(value: float) -> Fraction:
    """The decimal the policy wrote as an exact ratio (0.1 is 1/10, not the nearest binary
    fraction): the sampler draws with ε so, and a surge's rate is compared with a ratio of medians."""
    return Fraction(repr(value)).limit_denominator(10**6)


# A cached decision serves many requests with the same obligations object: parse it once.
_CACHE_SIZE = 256
_parsed: LRUCache[int, tuple[dict[str, Any], PrivacyTerms]] = LRUCache(_CACHE_SIZE)


def terms_of(obligations: dict[str, Any]) -> PrivacyTerms:
    key = id(obligations)
    hit = _parsed.get(key)
    if hit is not None and hit[0] is obligations:
        return hit[1]
    terms = PrivacyTerms.parse(obligations)
    _parsed[key] = (obligations, terms)  # holding the dict keeps its id from being reused
    return terms
