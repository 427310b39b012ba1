"""Consistent noise: exact discrete Laplace from a keyed PRF."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import pytest

from gateway.privacy.noise import PrfBits, derive_noise_key, discrete_laplace, noisy_count

KEY = derive_noise_key("noise-tests-secret-" + "0" * 32)


def pmf(epsilon: float, x: int) -> float:
    q = math.exp(-epsilon)
    return (1 - q) / (1 + q) * q ** abs(x)


@pytest.mark.parametrize("epsilon", [Fraction(1, 4), Fraction(1, 2), Fraction(1), Fraction(3, 2)])
def test_samples_follow_the_discrete_laplace_distribution(epsilon: Fraction) -> None:
    draws = 20_000
    samples = Counter(discrete_laplace(PrfBits(KEY, f"question-{i}".encode()), epsilon) for i in range(draws))
    # Pearson's chi-square over the central values, the tails lumped into one cell each side.
    eps = float(epsilon)
    edge = max(3, int(4 / eps))
    statistic = 0.0
    cells = 0
    for x in range(-edge, edge + 1):
        expected = draws * pmf(eps, x)
        statistic += (samples[x] - expected) ** 2 / expected
        cells += 1
    tail_probability = 2 * sum(pmf(eps, x) for x in range(edge + 1, 2000))
    observed_tail = sum(count for value, count in samples.items() if abs(value) > edge)
    statistic += (observed_tail - draws * tail_probability) ** 2 / (draws * tail_probability)
    cells += 1
    # The 0.999 quantile of chi-square with `cells - 1` degrees of freedom is below df + 4.5·sqrt(2·df).
    degrees = cells - 1
    assert statistic < degrees + 4.5 * math.sqrt(2 * degrees), (statistic, degrees)
    # Symmetric, centred on zero.
    assert abs(sum(value * count for value, count in samples.items()) / draws) < 6 / eps / math.sqrt(draws) * 3


def test_the_same_question_gets_the_same_answer() -> None:
    answers = {noisy_count(KEY, Fraction(1, 4), 40, "shares", "video-1", "day:2026-11-01", "app-1") for _ in range(1000)}
    assert len(answers) == 1


def test_each_part_of_the_question_changes_the_noise() -> None:
    base = ("shares", "video-1", "day:2026-11-01", "app-1")
    variants = [
        ("views", "video-1", "day:2026-11-01", "app-1"),
        ("shares", "video-2", "day:2026-11-01", "app-1"),
        ("shares", "video-1", "day:2026-11-02", "app-1"),
        ("shares", "video-1", "day:2026-11-01", "app-2"),
    ]
    # A single pair may coincide by chance (P(equal) is about ε/2); over 50 counts it cannot always.
    for variant in variants:
        differing = sum(
            noisy_count(KEY, Fraction(1, 4), count, *base) != noisy_count(KEY, Fraction(1, 4), count, *variant) for count in range(50)
        )
        assert differing > 25, variant


def test_a_changed_count_draws_fresh_noise() -> None:
    # Were the noise keyed on the question only, answer(n+1) - answer(n) would always be exactly 1.
    differences = Counter(
        noisy_count(KEY, Fraction(1, 4), count + 1, "shares", "video-1", "total", "app-1")
        - noisy_count(KEY, Fraction(1, 4), count, "shares", "video-1", "total", "app-1")
        for count in range(200)
    )
    assert differences[1] < 40


def test_another_secret_gives_other_noise() -> None:
    other = derive_noise_key("another-secret-" + "1" * 32)
    differing = sum(noisy_count(KEY, Fraction(1, 2), n, "views", "v", "total", "a") != noisy_count(other, Fraction(1, 2), n, "views", "v", "total", "a") for n in range(50))
    assert differing > 25


def test_noisy_counts_are_integers() -> None:
    # Integers out; the sampler's exactness is what the distribution tests below check.
    values = [noisy_count(KEY, Fraction(1, 10), 7, "views", "v", str(i), "a") for i in range(200)]
    assert all(type(value) is int for value in values)


def test_uniform_draws_have_no_modulo_bias() -> None:
    bits = PrfBits(KEY, b"uniform")
    counts = Counter(bits.uniform(3) for _ in range(30_000))
    assert all(abs(counts[value] - 10_000) < 400 for value in range(3)), counts
