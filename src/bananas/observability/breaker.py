"""The circuit breaker in front of the Elasticsearch tier: it stops sending while the
cluster is unreachable, and tries again after a cooldown."""

from __future__ import annotations

import threading
import time


class CircuitBreaker:
    """Closed -> open after ``threshold`` failures in a row; half-open after a cooldown that
    doubles while the cluster stays away (capped at ``max_cooldown_s``); one success closes it."""

    def __init__(self, threshold: int = 3, cooldown_s: float = 2.0, max_cooldown_s: float = 60.0) -> None:
        self.threshold = threshold
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.failures = 0
        self.cooldown_s = cooldown_s
        self.open_until = 0.0
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return self.failures >= self.threshold and time.monotonic() < self.open_until

    def allow(self) -> bool:
        """Whether a request may go out now (closed, or half-open after the cooldown)."""
        return not self.is_open

    def success(self) -> bool:
        """Record a success; True when this closed an open breaker."""
        with self._lock:
            was_open = self.failures >= self.threshold
            self.failures = 0
            self.cooldown_s = self.base_cooldown_s
            return was_open

    def failure(self) -> bool:
        """Record a failure; True when this opened the breaker."""
        with self._lock:
            self.failures += 1
            if self.failures < self.threshold:
                return False
            opened = self.failures == self.threshold
            if not opened:
                self.cooldown_s = min(self.max_cooldown_s, self.cooldown_s * 2)
            self.open_until = time.monotonic() + self.cooldown_s
            return opened
