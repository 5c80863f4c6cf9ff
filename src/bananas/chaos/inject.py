"""The ``Injector``: decides, per job attempt and per broker call, which configured fault
to inject, logs it and counts it (``bananas_chaos_injected_total{kind}``).

Job faults wrap the handlers (``chaos_tasks``): latency, failure (``InjectedFault``),
timeout, memory held while the handler runs, and a crash of the process (SIGKILL).
Broker faults wrap the broker (``chaos_broker``): connection errors and partitions fail a
call before it is sent (``BrokerUnavailable``), corruption cuts a dequeued body short.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, cast

from bananas.brokers.base import Broker, Delivery
from bananas.chaos.config import ChaosConfig, from_env
from bananas.errors import BrokerUnavailable
from bananas.registry import TaskDefinition

logger = logging.getLogger("bananas.chaos")

#: Fault kinds, as the metric's ``kind`` label and the logs' ``chaos_kind`` field name them.
KINDS = ("failure", "latency", "timeout", "crash", "memory", "corruption", "broker_error", "partition")

_listeners: list[Callable[[str], None]] = []


def add_listener(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(kind)`` for every fault injected in this process (metrics use it);
    returns the function that removes it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


class InjectedFault(Exception):
    """The failure a chaos configuration injected into a job attempt (retried as any error)."""


class Injector:
    """Rolls the dice for one process (thread-safe: sync handlers run in threads)."""

    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.injected: Counter[str] = Counter()
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()
        self._partition_until = 0.0  # monotonic

    def roll(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._lock:
            return self._random.random() < rate

    def record(self, kind: str, message: str, *args: object) -> None:
        """Count one injected fault and log it (WARNING, ``chaos_kind``)."""
        with self._lock:
            self.injected[kind] += 1
        logger.warning("chaos: " + message, *args, extra={"component": "chaos", "chaos_kind": kind})
        for listener in list(_listeners):
            listener(kind)

    # --- job faults -----------------------------------------------------------------
    def before_job(self, name: str) -> tuple[float, bytearray | None]:
        """Decide this attempt's faults: crash now, or return the delay to wait and the
        memory to hold; failures and timeouts are raised by ``after_delay``."""
        c = self.config
        if self.roll(c.crash_rate):
            self.record("crash", "crashing this worker process (SIGKILL) in job %s", name)
            os.write(2, f"chaos: crashing worker process {os.getpid()} (SIGKILL) in job {name}\n".encode())
            os.kill(os.getpid(), signal.SIGKILL)
        delay = 0.0
        if self.roll(c.latency.rate):
            with self._lock:
                delay = self._random.uniform(c.latency.min_s, c.latency.max_s)
            self.record("latency", "delaying job %s by %.3f s", name, delay)
        block = None
        if self.roll(c.memory.rate):
            self.record("memory", "job %s holds %d MiB more", name, c.memory.mib)
            block = bytearray(c.memory.mib * 2**20)
            block[::4096] = b"x" * len(range(0, len(block), 4096))  # resident, not just reserved
        return delay, block

    def after_delay(self, name: str) -> None:
        """Raise the failure or timeout this attempt was given, if any."""
        if self.roll(self.config.failure_rate):
            self.record("failure", "failing job %s", name)
            raise InjectedFault(f"chaos: injected failure in {name}")
        if self.roll(self.config.timeout_rate):
            self.record("timeout", "timing out job %s", name)
            raise TimeoutError(f"timed out (chaos: injected timeout in {name})")

    # --- broker faults --------------------------------------------------------------
    def broker_call(self, operation: str) -> None:
        """Fail this broker call (raise ``BrokerUnavailable``) during a partition, when one
        starts, or at the broker error rate."""
        now = time.monotonic()
        if now < self._partition_until:
            raise BrokerUnavailable(f"chaos: partitioned from the broker during {operation} "
                                    f"({self._partition_until - now:.1f} s left)")  # fmt: skip
        c = self.config
        if self.roll(c.partition.rate):
            self._partition_until = now + c.partition.duration_s
            self.record("partition", "cutting this process off its broker for %.1f s", c.partition.duration_s)
            raise BrokerUnavailable(f"chaos: partitioned from the broker during {operation}")
        if self.roll(c.broker_error_rate):
            self.record("broker_error", "failing the broker call %s", operation)
            raise BrokerUnavailable(f"chaos: injected broker connection error during {operation}")

    def corrupt(self, deliveries: list[Delivery]) -> None:
        """Cut the bodies of a share ``corruption_rate`` of ``deliveries`` short."""
        for d in deliveries:
            if d.body and self.roll(self.config.corruption_rate):
                with self._lock:
                    cut = self._random.randrange(len(d.body))
                self.record("corruption", "cutting the body of job %s to %d of %d bytes", d.id, cut, len(d.body))
                d.body = d.body[:cut]


def arm(config: ChaosConfig | None = None, environ: Mapping[str, str] | None = None) -> Injector | None:
    """An injector for ``config``, or for the file ``BANANAS_CHAOS`` names when it is None;
    None when there is neither.

    Raises:
        ChaosRefused: ``BANANAS_ENV`` is not one of the configuration's environments.
    """
    if config is None:
        config = from_env(environ)
        if config is None:
            return None
    else:
        config.check(environ)
    logger.warning("chaos is on: %s", ", ".join(f"{k} {v:g}" for k, v in config.rates().items() if v) or "no faults",
                   extra={"component": "chaos"})  # fmt: skip
    return Injector(config)


def _wrap(fn: Callable[..., Any], is_async: bool, name: str, injector: Injector) -> Callable[..., Any]:
    if is_async:

        async def chaotic_async(**kwargs: Any) -> Any:
            delay, block = injector.before_job(name)
            if delay:
                await asyncio.sleep(delay)
            injector.after_delay(name)
            try:
                return await fn(**kwargs)
            finally:
                del block

        return functools.update_wrapper(chaotic_async, fn)

    def chaotic(**kwargs: Any) -> Any:
        delay, block = injector.before_job(name)
        if delay:
            time.sleep(delay)
        injector.after_delay(name)
        try:
            return fn(**kwargs)
        finally:
            del block

    return functools.update_wrapper(chaotic, fn)


def chaos_tasks(injector: Injector | None, tasks: Mapping[str, TaskDefinition]) -> Mapping[str, TaskDefinition]:
    """``tasks`` whose handlers go through ``injector`` first (unchanged without one)."""
    if injector is None:
        return tasks
    out = {}
    for name, task in tasks.items():
        wrapped = copy.copy(task)
        wrapped.fn = _wrap(task.fn, task.spec.is_async, name, injector)
        out[name] = wrapped
    return out


class ChaosBroker:
    """A broker whose calls go through the injector first (see ``chaos_broker``)."""

    def __init__(self, inner: Broker, injector: Injector) -> None:
        self._inner = inner
        self._injector = injector
        self.url = inner.url

    def clone(self) -> Broker:
        return chaos_broker(self._injector, self._inner.clone())

    async def close(self) -> None:
        await self._inner.close()

    def enqueue_blocking(self, *args: Any, **kwargs: Any) -> None:
        self._injector.broker_call("enqueue")
        self._inner.enqueue_blocking(*args, **kwargs)

    async def dequeue(self, *args: Any, **kwargs: Any) -> Any:
        self._injector.broker_call("dequeue")
        batch = await self._inner.dequeue(*args, **kwargs)
        self._injector.corrupt(batch)
        return batch

    async def wait_for_work(self, *args: Any, **kwargs: Any) -> Any:
        self._injector.broker_call("wait for work")
        handed = await self._inner.wait_for_work(*args, **kwargs)
        self._injector.corrupt(handed)
        return handed

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        async def call(*args: Any, **kwargs: Any) -> Any:
            self._injector.broker_call(name.replace("_", " "))
            return await attr(*args, **kwargs)

        return call


def chaos_broker(injector: Injector | None, broker: Broker) -> Broker:
    """``broker`` with its calls going through ``injector`` first (unchanged without one)."""
    return broker if injector is None else cast(Broker, ChaosBroker(broker, injector))
