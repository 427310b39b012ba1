"""Obligations as typed terms; malformed ones fail closed."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest

from gateway.errors import PolicyUnavailable
from gateway.privacy.terms import PrivacyTerms, terms_of
from gateway.privacy.release import Granularity

SHIPPED_APP = {
    "k_threshold": 50,
    "granularity_floor": "DAY",
    "bucket_delay_seconds": 3600,
    "epsilon": {"views": 0.5, "shares": 0.25, "viewers": 0.1},
    "epsilon_budget_per_day": 10.0,
    "rate_limit": {"requests_per_minute": 120},
}


def test_app_terms_are_read_exactly() -> None:
    terms = PrivacyTerms.parse(SHIPPED_APP)
    assert (terms.k, terms.floor, terms.delay) == (50, Granularity.DAY, timedelta(hours=1))
    # ε as the decimal written, not the nearest binary fraction.
    assert terms.epsilon == {"views": Fraction(1, 2), "shares": Fraction(1, 4), "viewers": Fraction(1, 10)}
    assert terms.budget_per_day == 10
    assert terms.noised


def test_no_epsilon_means_exact_counts() -> None:
    terms = PrivacyTerms.parse({"k_threshold": 5, "granularity_floor": "HOUR", "bucket_delay_seconds": 3600, "epsilon": {}, "epsilon_budget_per_day": None})
    assert not terms.noised and terms.budget_per_day is None


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"k_threshold": -1}, "k_threshold"),
        ({"k_threshold": "five"}, "k_threshold"),
        ({"granularity_floor": "MINUTE"}, "granularity_floor"),
        ({"bucket_delay_seconds": -5}, "bucket_delay_seconds"),
        ({"epsilon": {"views": 0}}, "epsilon.views"),
        ({"epsilon": {"views": "lots"}}, "epsilon.views"),
        ({"epsilon_budget_per_day": -1}, "epsilon_budget_per_day"),
        ({"share_surge_factor": 1}, "share_surge_factor"),
        ({"share_surge_factor": "three"}, "share_surge_factor"),
    ],
)
def test_malformed_obligations_fail_closed(change: dict[str, Any], complaint: str) -> None:
    with pytest.raises(PolicyUnavailable, match=complaint.replace(".", r"\.")):
        PrivacyTerms.parse({**SHIPPED_APP, **change})


def test_share_surge_factor_is_read_exactly_and_three_unless_given() -> None:
    assert PrivacyTerms.parse({**SHIPPED_APP, "share_surge_factor": 2.5}).surge_factor == Fraction(5, 2)
    assert PrivacyTerms.parse(SHIPPED_APP).surge_factor == 3


def test_missing_obligation_fails_closed() -> None:
    obligations = dict(SHIPPED_APP)
    del obligations["k_threshold"]
    with pytest.raises(PolicyUnavailable, match="k_threshold"):
        PrivacyTerms.parse(obligations)


def test_one_obligations_object_is_parsed_once() -> None:
    obligations = dict(SHIPPED_APP)
    assert terms_of(obligations) is terms_of(obligations)
    assert terms_of(dict(SHIPPED_APP)) is not terms_of(obligations)
