"""Small pieces of the worker loop: reconnect backoff, and a delivery held until its
outcome is stored."""

from __future__ import annotations

from bananas.brokers.base import Delivery, Lease
from bananas.context import Context


class Backoff:
    """Exponential reconnect delays: 0.05 s doubling up to ``cap_s``."""

    def __init__(self, cap_s: float = 1.0) -> None:
        self.cap_s = cap_s
        self.delay_s = 0.0

    def next(self) -> float:
        self.delay_s = min(self.cap_s, max(0.05, self.delay_s * 2))
        return self.delay_s

    def reset(self) -> None:
        self.delay_s = 0.0


class Held:
    """A delivery this worker holds until its outcome is stored."""

    __slots__ = ("ctx", "delivery", "started")

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self.ctx: list[Context] = []
        self.started: float | None = None  # monotonic, once a slot runs it

    @property
    def lease(self) -> Lease:
        """The lease, as renewals quote it (made when asked: renewals are rare, jobs are not)."""
        d = self.delivery
        return Lease(d.id, d.routing_key, d.token)
