"""Exponential backoff with full jitter, so a fleet of chargers does not reconnect in lock-step."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before the next retry: base·2^n capped at `maximum`, randomised in [delay/2, delay]."""

    base_s: float = 1.0
    maximum_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        delay = min(self.maximum_s, self.base_s * (2 ** min(self.failures, 30)))  # no overflow after many failures
        self.failures += 1
        return delay / 2 + self.rng.random() * delay / 2

    def reset(self) -> None:
        self.failures = 0
