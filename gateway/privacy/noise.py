"""Consistent noise: discrete Laplace samples drawn exactly from a keyed PRF.

The random bits come from HMAC-SHA256 under a key derived from GATEWAY_SECRET,
over what a count is of (gateway.privacy.disclosure: the subject, the metric,
the breakdown cell) and the true count: never the question or who asks. The
same quantity therefore always gets the same answer (averaging repeated
answers learns nothing), while a count that changed draws fresh noise (with
noise keyed on the question alone, the difference of two answers would be the
true difference, exactly).

The sampler is Canonne, Kamath and Steinke's (2020, Algorithm 2): integers
and exact rational arithmetic only, so the distribution has no floating-point
holes of the kind Mironov (2012) used to recover the true value from noisy
answers. P(noise = x) is proportional to exp(-ε·|x|).
"""

from __future__ import annotations

import hashlib
import hmac
from fractions import Fraction

import orjson

__all__ = ["PrfBits", "derive_noise_key", "discrete_laplace", "noisy_count"]


def derive_noise_key(secret: str) -> bytes:
    """A key for noise only, so that no PRF output is ever a token signature or the reverse."""
    return hmac.new(secret.encode(), b"privacy-gateway/noise/v1", hashlib.sha256).digest()


class PrfBits:
    """An endless stream of bits: HMAC-SHA256(key, message ‖ block number), block after block."""

    __slots__ = ("_available", "_block", "_bits", "_key", "_message")

    def __init__(self, key: bytes, message: bytes) -> None:
        self._key = key
        self._message = message
        self._block = 0
        self._bits = 0
        self._available = 0

    def take(self, count: int) -> int:
        """The next `count` bits as an integer."""
        while self._available < count:
            digest = hmac.new(self._key, self._message + self._block.to_bytes(8, "big"), hashlib.sha256).digest()
            self._block += 1
            self._bits = (self._bits << 256) | int.from_bytes(digest, "big")
            self._available += 256
        self._available -= count
        value = self._bits >> self._available
        self._bits &= (1 << self._available) - 1
        return value

    def uniform(self, bound: int) -> int:
        """Uniform on {0, …, bound-1}, by rejection: no modulo bias."""
        if bound == 1:
            return 0
        width = (bound - 1).bit_length()
        while True:
            candidate = self.take(width)
            if candidate < bound:
                return candidate

    def bernoulli(self, p: Fraction) -> bool:
        return self.uniform(p.denominator) < p.numerator

    def bernoulli_exp(self, gamma: Fraction) -> bool:
        """True with probability exp(-gamma), gamma >= 0, exactly."""
        while gamma > 1:
            if not self._bernoulli_exp_unit(Fraction(1)):
                return False
            gamma -= 1
        return self._bernoulli_exp_unit(gamma)

    def _bernoulli_exp_unit(self, gamma: Fraction) -> bool:
        # For 0 <= gamma <= 1: the first K with Bernoulli(gamma/K) false is odd w.p. exp(-gamma).
        k = 1
        while self.bernoulli(gamma / k):
            k += 1
        return k % 2 == 1


def discrete_laplace(bits: PrfBits, epsilon: Fraction) -> int:
    """A sample with P(x) ∝ exp(-ε·|x|): Canonne, Kamath and Steinke 2020, Algorithm 2, with ε = s/t."""
    s, t = epsilon.numerator, epsilon.denominator
    while True:
        u = bits.uniform(t)
        if not bits.bernoulli_exp(Fraction(u, t)):
            continue
        v = 0
        while bits.bernoulli_exp(Fraction(1)):
            v += 1
        magnitude = (u + t * v) // s
        negative = bits.take(1) == 1
        if negative and magnitude == 0:
            continue  # zero would otherwise be drawn twice as often as it should
        return -magnitude if negative else magnitude


def noisy_count(key: bytes, epsilon: Fraction, true_count: int, *question: str | int | None) -> int:
    """`true_count` plus discrete Laplace noise drawn from the PRF over the question and the count."""
    message = orjson.dumps([*question, true_count])  # JSON: no two questions encode alike
    return true_count + discrete_laplace(PrfBits(key, message), epsilon)
